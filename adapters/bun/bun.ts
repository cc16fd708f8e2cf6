// The part of the Bun global this adapter uses, with its types: the project
// type-checks with Node's types only (no bun-types among the dependencies),
// so the shapes are written out here from Bun's documentation.

export type UdpData = Uint8Array | string;

export interface UdpSocket {
  readonly port: number;
  readonly fd: number;
  readonly closed: boolean;
  /** Sends one datagram now; false when the kernel's buffer is full. */
  send(data: UdpData, port: number, address: string): boolean;
  /** [data, port, address, data, port, address, ...]: one sendmmsg(2); returns how many went out. */
  sendMany(packets: readonly (UdpData | number)[]): number;
  close(): void;
}

export interface UdpOptions {
  hostname?: string;
  port?: number;
  binaryType?: "buffer" | "uint8array";
  socket?: {
    data?(socket: UdpSocket, data: Uint8Array, port: number, address: string): void;
    drain?(socket: UdpSocket): void;
    /** ICMP errors reported on the socket (ECONNREFUSED and the like); the only argument is the error. */
    error?(error: Error): void;
  };
}

/** A stream socket (the unix socket of the UAPI); `data` carries our per-connection state. */
export interface StreamSocket<T> {
  data: T;
  /** Writes what the kernel takes now; returns the bytes taken (less than asked: wait for drain). */
  write(data: Uint8Array | string): number;
  /** Closes after what was written is flushed. */
  end(): void;
}

export interface StreamHandlers<T> {
  open?(socket: StreamSocket<T>): void;
  data?(socket: StreamSocket<T>, data: Uint8Array): void;
  drain?(socket: StreamSocket<T>): void;
  close?(socket: StreamSocket<T>, error?: Error): void;
  end?(socket: StreamSocket<T>): void;
  error?(socket: StreamSocket<T>, error: Error): void;
  connectError?(socket: StreamSocket<T>, error: Error): void;
}

export interface StreamServer {
  /** Stops listening; with true, also closes the connections. */
  stop(closeActiveConnections?: boolean): void;
}

export interface Subprocess {
  readonly stdout: ReadableStream<Uint8Array> | null;
  readonly stderr: ReadableStream<Uint8Array> | null;
  readonly exited: Promise<number>;
}

export interface BunFile {
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export type SpawnIO = "pipe" | "inherit" | "ignore" | Uint8Array;

export interface BunApi {
  readonly version: string;
  readonly argv: string[];
  udpSocket(options: UdpOptions): Promise<UdpSocket>;
  listen<T>(options: { unix: string; socket: StreamHandlers<T> }): StreamServer;
  connect<T>(options: { unix: string; socket: StreamHandlers<T> }): Promise<StreamSocket<T>>;
  spawn(argv: string[], options: { stdin?: SpawnIO; stdout?: SpawnIO; stderr?: SpawnIO }): Subprocess;
  file(path: string | URL): BunFile;
  /** Writes all of `data` to the file; resolves with the bytes written. */
  write(destination: BunFile, data: string | Uint8Array): Promise<number>;
  readonly stdin: BunFile;
  readonly stdout: BunFile;
  readonly stderr: BunFile;
  readonly dns: { lookup(host: string, options?: { family?: 0 | 4 | 6 }): Promise<{ address: string; family: 4 | 6 }[]> };
}

/** Bun's global, typed. */
export const Bun = (globalThis as unknown as { Bun: BunApi }).Bun;
