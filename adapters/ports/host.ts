// What applications ask of the host they run on, one capability an
// interface. Each host (adapters/node, deno, bun) implements the ones it has
// with its own APIs; the applications (the CLI, the tunnel, the proxies, the
// relay) are written once against them. A function asks for the
// capabilities it uses, never for a runtime by name: `openTunnel` takes an
// EngineHost & Network, `wg up` a Host with `tunDevices`, the relay
// WebSocketServers & UdpSockets & Resolver.
import type { Endpoint } from "../../src/engine.ts";
import type { X25519 } from "../../src/crypto.ts";
import type { Bind } from "./bind.ts";
import type { Tun } from "./tun.ts";
import type { WebSocketServers, WebTransportServers } from "./websocket.ts";
import type { WebSocketLike } from "./websocket-bind.ts";

/** A monotonic clock. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
}

/** What an Engine needs from its host: time, X25519, and the compiled engine.wasm. */
export interface EngineHost {
  readonly clock: Clock;
  /** Wall-clock ms at clock time 0. */
  readonly epoch: number;
  readonly x25519: X25519;
  /** The compiled engine.wasm. */
  wasm(): Promise<WebAssembly.Module>;
}

/** The process's command line, standard streams and environment. */
export interface Stdio {
  readonly args: string[];
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  /**
   * Standard input and output as byte streams, for a connection carried over
   * them ([STDIOTunnel], ssh's ProxyCommand). Call once; nothing else may
   * read stdin or write stdout after.
   */
  stdioStreams?(): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };
  env(name: string): string | undefined;
  /** stdout's permission bits when it is a regular file (`wg genkey > file`); null when it is not, or cannot be known here. */
  stdoutMode?(): number | null;
}

/** Files, by path. */
export interface Files {
  readFile(path: string): Promise<string>;
  exists(path: string): Promise<boolean>;
  remove(path: string): Promise<void>;
  mkdir(path: string, mode: number): Promise<void>;
  /** Writes `text`, creating the file with `mode` (an existing file keeps its own). */
  writeFile(path: string, text: string, mode: number): Promise<void>;
  /** Renames `from` to `to`, replacing it. */
  rename(from: string, to: string): Promise<void>;
  /** A file's (or folder's) permission bits, or null when there is no such file. */
  mode(path: string): Promise<number | null>;
}

/** Other programs, signals, and who this process is. */
export interface Processes {
  /** Runs a program (no shell); resolves with its exit code and output (127: not found). */
  run(argv: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Runs a shell command line (wg-quick's hooks), output passed through; resolves with its status. */
  shell(command: string): Promise<number>;
  /**
   * Calls `handler` on SIGINT, SIGTERM and SIGHUP (a closed terminal; ssh
   * ends its ProxyCommand so): each is a request to take things down cleanly.
   */
  onSignal(handler: (signal: string) => void): void;
  /** Sends `signal` to `pid`; false when that failed. */
  kill(pid: number, signal: string): boolean;
  pid(): number;
  isRoot(): boolean;
}

/** Host names. */
export interface Resolver {
  /** Resolves a host name (or literal) for an Endpoint: one address. */
  resolve(host: string, port: number): Promise<Endpoint>;
  /** Every address a name has (A and AAAA, the hosts file too), as text; [] when none. */
  resolveAll(name: string): Promise<string[]>;
}

/** The WireGuard port: UDP sockets that carry the engine's datagrams. */
export interface Network extends Resolver {
  /** Binds UDP on `port` (0: any) for both families; `offload`: the bind may take UDP GSO/GRO (Bind.setOffload). */
  openBind(port: number, maxDatagram: number, opts?: { offload?: boolean }): Promise<Bind>;
}

/** One connection on a unix socket. */
export interface Conn {
  write(text: string): void;
  /**
   * Resolves once what was written has gone to the kernel (at once if it
   * has, or the connection is closed): a long answer is made as fast as the
   * reader takes it, not held in memory.
   */
  drained(): Promise<void>;
  /** Calls `data` for each chunk and `end` once. */
  start(data: (chunk: string) => void, end: () => void): void;
  close(): void;
}

/** Unix stream sockets (the UAPI's /var/run/wireguard/NAME.sock). */
export interface UnixSockets {
  /**
   * Serves a unix socket at `path`, created readable and writable by its
   * owner only (0600) whatever the umask: the UAPI hands out the private key.
   * Returns a closer.
   */
  listenUnix(path: string, accept: (conn: Conn) => void): Promise<() => void>;
  connectUnix(path: string): Promise<Conn>;
}

/**
 * A TCP connection as WHATWG streams, so that code over it (the proxies of
 * `wg up --netstack`, the edge gateway's outbound flows) is the same on
 * every platform. Closing the writable sends FIN and reading goes on
 * (half-close); close() ends both.
 */
export interface TcpStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /** Tears the connection down at once (what is unsent may be lost). */
  close(): void | Promise<void>;
}

/** A TCP connection on the host, with its addresses. */
export interface HostStream extends TcpStream {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Our side's address and port. */
  readonly localAddress: string;
  readonly localPort: number;
  close(): void;
}

/** A listening TCP socket on the host. */
export interface HostServer {
  /** The port bound (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops accepting; connections already accepted go on. */
  close(): void;
}

/** TCP on the host: what the proxies of `wg up --netstack` listen and connect with. */
export interface TcpSockets {
  /**
   * Accepts TCP connections on host:port (port 0: any free one); each comes
   * with half-close allowed. Rejects with the system's error (EADDRINUSE...).
   */
  listenTcp(host: string, port: number, accept: (s: HostStream) => void): Promise<HostServer>;
  /** Opens a TCP connection to host:port (a name is resolved by the host). */
  connectTcp(host: string, port: number): Promise<HostStream>;
}

/** A UDP socket on the host (a SOCKS5 UDP ASSOCIATE's relay, a relay client's upstream socket). */
export interface HostUdp {
  readonly port: number;
  /** Sends one datagram; false when it could not be sent (dropped, as UDP may). */
  send(data: Uint8Array, address: string, port: number): boolean;
  close(): void;
}

/** UDP sockets on the host, other than the WireGuard port. */
export interface UdpSockets {
  /**
   * Binds UDP on host:port (port 0: any free one); `receive` gets each
   * datagram. `receiveBuffer` asks the kernel for that many bytes of
   * buffering, where the host can set it.
   */
  bindUdp(host: string, port: number, receive: (data: Uint8Array, address: string, port: number) => void,
    options?: { receiveBuffer?: number }): Promise<HostUdp>;
}

/** WebSocket clients (`wg up --relay`): the platform's WebSocket, or a package's with its API. */
export interface WebSocketClients {
  /** The constructor, loaded on first use (Node's comes from the ws package). */
  webSocketClient(): Promise<WebSocketLike>;
}

/** TUN devices. */
export interface TunDevices {
  /**
   * Creates (or attaches to) TUN interface `name`; rejects with a one-line
   * UserError. With `offload`, asks the kernel for TSO/USO (linux/offload.ts);
   * the engine it runs with must then be made with EngineOptions.offload.
   */
  openTun(name: string, mtu: number, opts?: { offload?: boolean }): Promise<Tun>;
}

/** A host that may have TUN devices (Linux, with its FFI). A host that never has them leaves this out. */
export interface TunSupport {
  /**
   * Loads what opening a TUN device needs (the FFI, libc); rejects with a
   * one-line UserError saying why this host has none (NoTunError,
   * MissingPackageError). Nothing native is loaded before this is called.
   */
  tunDevices(): Promise<TunDevices>;
}

/**
 * Everything the `wg` command can use. The optional capabilities are what a
 * host may lack; code that needs one checks for it and says what is missing.
 */
export interface Host extends EngineHost, Stdio, Files, Processes, Network, UnixSockets,
  Partial<TunSupport>, Partial<TcpSockets>, Partial<UdpSockets>, Partial<WebSocketServers>, Partial<WebTransportServers>, Partial<WebSocketClients> {
  /** How a user runs the CLI here ("npx wg", "deno run -A wg.ts", "bun wg"), for hints in messages. */
  readonly command: string;
  /** The runtime and its version ("Node 20.20.2"), for `wg --version`. */
  readonly label: string;
  /** Resolves once all that stdout and stderr were given is written (before the process exits). */
  drained(): Promise<void>;
}

/** What a server runtime's host (Node, Deno, Bun) has: all of Host but WebTransport, which only some have. */
export type ServerHost = Host & TunSupport & TcpSockets & UdpSockets & WebSocketServers;
