// What the CLI needs from a runtime. Each server adapter (adapters/node,
// adapters/deno, adapters/bun) implements it with its own native APIs; the
// CLI (adapters/cli/) is written once against it.
import type { Endpoint } from "../../src/engine.ts";
import type { X25519 } from "../../src/crypto.ts";
import type { Bind, Clock, Tun } from "../common/device.ts";

/** One connection on a unix socket. */
export interface Conn {
  write(text: string): void;
  /** Calls `data` for each chunk and `end` once. */
  start(data: (chunk: string) => void, end: () => void): void;
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
  /** Calls `handler` on SIGINT and SIGTERM. */
  onSignal(handler: (signal: string) => void): void;
  kill(pid: number, signal: string): boolean;
  pid(): number;
}
