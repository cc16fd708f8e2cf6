// Unix stream sockets for the UAPI (wg(8) talks to /var/run/wireguard/NAME.sock):
// Bun.listen and Bun.connect. Bun's socket.write takes what the kernel takes
// and says how much; the rest waits here for the drain event.
import type { Conn } from "../ports/host.ts";
import { chmodSync } from "node:fs";
import { Bun, type StreamHandlers, type StreamSocket } from "./bun.ts";

class BunConn implements Conn {
  private unsent: Uint8Array | null = null;
  private closing = false;
  private finished = false;
  private onData: ((chunk: string) => void) | null = null;
  private onEnd: (() => void) | null = null;
  /** Text that came before start(). */
  private early: string[] = [];
  private readonly decoder = new TextDecoder();

  constructor(private readonly socket: StreamSocket<BunConn>) {}

  write(text: string): void {
    if (this.closing || this.finished) return;
    const bytes = new TextEncoder().encode(text);
    if (this.unsent !== null) {
      const both = new Uint8Array(this.unsent.length + bytes.length);
      both.set(this.unsent);
      both.set(bytes, this.unsent.length);
      this.unsent = both;
      return;
    }
    const n = this.socket.write(bytes);
    if (n < bytes.length) this.unsent = bytes.subarray(Math.max(0, n));
  }

  /** Who waits for the unsent bytes to go. */
  private waiting: (() => void)[] = [];

  drained(): Promise<void> {
    if (this.unsent === null || this.finished) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private wake(): void {
    for (const w of this.waiting.splice(0)) w();
  }

  start(data: (chunk: string) => void, end: () => void): void {
    this.onData = data;
    this.onEnd = end;
    for (const t of this.early.splice(0)) data(t);
    if (this.finished) end();
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.unsent === null) this.socket.end();
  }

  /** Handlers for every connection, its BunConn kept in socket.data. */
  static handlers(open: (conn: BunConn) => void): StreamHandlers<BunConn> {
    return {
      open: (s) => { s.data = new BunConn(s); open(s.data); },
      data: (s, d) => s.data.received(d),
      drain: (s) => s.data.drain(),
      end: (s) => { s.data.ended(); s.data.close(); },
      close: (s) => s.data?.ended(),
      error: (s) => s.data?.ended(),
    };
  }

  private received(bytes: Uint8Array): void {
    const text = this.decoder.decode(bytes, { stream: true });
    if (text === "") return;
    if (this.onData) this.onData(text);
    else this.early.push(text);
  }

  private drain(): void {
    if (this.unsent === null) return;
    const n = this.socket.write(this.unsent);
    this.unsent = n >= this.unsent.length ? null : this.unsent.subarray(Math.max(0, n));
    if (this.unsent === null) this.wake();
    if (this.unsent === null && this.closing) this.socket.end();
  }

  private ended(): void {
    if (this.finished) return;
    this.finished = true;
    this.wake();
    this.onEnd?.();
  }
}

/** Serves `path`, owner-only whatever the umask (bound under umask 077, then made 0600); returns a closer. */
export async function listenUnix(path: string, accept: (conn: Conn) => void): Promise<() => void> {
  const old = process.umask(0o077);
  let server;
  try {
    server = Bun.listen<BunConn>({ unix: path, socket: BunConn.handlers(accept) });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  return () => server.stop(true);
}

export async function connectUnix(path: string): Promise<Conn> {
  let conn: BunConn | null = null;
  const socket = await Bun.connect<BunConn>({ unix: path, socket: BunConn.handlers((c) => { conn = c; }) });
  return conn ?? (socket.data as BunConn);
}
