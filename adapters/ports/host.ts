// What the CLI needs from a runtime. Each server adapter (adapters/node,
// adapters/deno, adapters/bun) implements it with its own native APIs; the
// CLI (adapters/cli/) is written once against it.
import type { Endpoint } from "../../src/engine.ts";
import type { X25519 } from "../../src/crypto.ts";
import type { Bind } from "./bind.ts";
import type { Tun } from "./tun.ts";

/** A monotonic clock. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
}
import type { ListenOptions, RelayServer } from "../relay/relay.ts";

/** One connection on a unix socket. */
export interface Conn {
  write(text: string): void;
  /** Calls `data` for each chunk and `end` once. */
  start(data: (chunk: string) => void, end: () => void): void;
  close(): void;
}

/**
 * A TCP connection on the host, as WHATWG streams so that code over it (the
 * proxies of `wg up --netstack`) is the same on every runtime. Closing the
 * writable sends FIN and reading goes on (half-close); close() ends both.
 */
export interface HostStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Our side's address and port. */
  readonly localAddress: string;
  readonly localPort: number;
  /** Ends the connection both ways at once (what is unsent may be lost). */
  close(): void;
}

/** A listening TCP socket on the host. */
export interface HostServer {
  /** The port bound (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops accepting; connections already accepted go on. */
  close(): void;
}

/** A UDP socket on the host (the relay of a SOCKS5 UDP ASSOCIATE). */
export interface HostUdp {
  readonly port: number;
  /** Sends one datagram; false when it could not be sent (dropped, as UDP may). */
  send(data: Uint8Array, address: string, port: number): boolean;
  close(): void;
}

export interface Runtime {
  readonly name: "node" | "deno" | "bun";
  readonly args: string[];
  readonly clock: Clock;
  /** Wall-clock ms at clock time 0. */
  readonly epoch: number;
  readonly x25519: X25519;
  wasm(): Promise<WebAssembly.Module>;

  stdout(text: string): void;
  stderr(text: string): void;
  exit(code: number): never;
  env(name: string): string | undefined;
  isRoot(): boolean;

  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  exists(path: string): Promise<boolean>;
  remove(path: string): Promise<void>;
  mkdir(path: string, mode: number): Promise<void>;
  writeFile(path: string, text: string, mode: number): Promise<void>;

  /** Runs a program (no shell); resolves with its exit code and output. */
  run(argv: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Runs a shell command line (wg-quick's hooks), output passed through. */
  shell(command: string): Promise<number>;
  /** Resolves a host name (or literal) for an Endpoint. */
  resolve(host: string, port: number): Promise<Endpoint>;

  openTun(name: string, mtu: number): Tun;
  /** Binds UDP on `port` (0: any). */
  openBind(port: number, maxDatagram: number): Promise<Bind>;
  /** Serves a unix socket at `path`; returns a closer. */
  listenUnix(path: string, accept: (conn: Conn) => void): Promise<() => void>;
  connectUnix(path: string): Promise<Conn>;
  /**
   * Accepts TCP connections on host:port (port 0: any free one); each comes
   * with half-close allowed. Rejects with the system's error (EADDRINUSE...).
   * Optional: `wg up --netstack`'s proxies need it.
   */
  listenTcp?(host: string, port: number, accept: (s: HostStream) => void): Promise<HostServer>;
  /** Opens a TCP connection to host:port (a name is resolved by the host). */
  connectTcp?(host: string, port: number): Promise<HostStream>;
  /** Binds UDP on host:port (port 0: any free one); `receive` gets each datagram. */
  bindUdp?(host: string, port: number, receive: (data: Uint8Array, address: string, port: number) => void): Promise<HostUdp>;
  /** Starts the WebSocket relay (adapters/relay) on this runtime. Optional: `wg relay` needs it. */
  relay?(options: ListenOptions): Promise<RelayServer>;
  /** Calls `handler` on SIGINT and SIGTERM. */
  onSignal(handler: (signal: string) => void): void;
  kill(pid: number, signal: string): boolean;
  pid(): number;
}
