// A net.Socket stand-in over a connection made of WHATWG streams (a TCP
// connection through the tunnel, or TLS over one): a node:stream Duplex with
// the parts of net.Socket that client libraries use (ioredis, pg, http.Agent,
// undici): "connect" and "ready", connecting/pending/readyState, remote and
// local address, setTimeout (a real idle timer), setNoDelay/setKeepAlive
// (accepted: the userspace stack sends at once and has no keepalive probes),
// ref/unref, destroy (a reset) and end (FIN, reading goes on: half-close).
// Node, Deno and Bun all have node:stream, so this one file serves all three.
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import type { StreamEnd } from "../ports/streams.ts";

/** What the socket needs of a connection: a TcpConn fits, and so does a TlsConn. */
export interface StreamConn extends StreamEnd {
  /** Ends the sending side in order (FIN after what was written). */
  close(): unknown;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly alpn?: string | null;
}

export interface StreamSocketOptions {
  /** As net.Socket's: true keeps the sending side open after the peer's FIN (default false: end() follows it). */
  allowHalfOpen?: boolean;
  /** Where the connection goes, for remoteAddress/remotePort before it is made. */
  host?: string;
  port?: number;
}

/** Merged writes up to this size go out as one chunk (a pipeline of small commands becomes one segment train). */
const MERGE = 64 * 1024;

/** A Duplex over `connection` (a promise: "connect" is emitted once it resolves, "error" if it rejects). */
export class StreamSocket extends Duplex {
  /** As net.Socket's: true until "connect". */
  connecting = true;
  bytesRead = 0;
  private conn: StreamConn | null = null;
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  private readonly ready: Promise<StreamConn>;
  private reading = false;
  private wantRead = false;
  private idleMs = 0;
  private idle: ReturnType<typeof setTimeout> | null = null;
  private readonly target: { host?: string; port?: number };
  private written = 0;

  constructor(connection: Promise<StreamConn>, opts: StreamSocketOptions = {}) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false, decodeStrings: true });
    this.target = { host: opts.host, port: opts.port };
    this.ready = connection;
    connection.then((c) => {
      if (this.destroyed) { c.abort(); return; }
      this.conn = c;
      this.reader = c.readable.getReader();
      this.writer = c.writable.getWriter();
      this.connecting = false;
      this.touch();
      this.emit("connect");
      this.emit("ready");
      if (this.wantRead) this.pump();
    }, (e) => { this.connecting = false; this.destroy(e instanceof Error ? e : new Error(String(e))); });
    // A rejection is reported as "error" above; keep it from also being an unhandled one.
    connection.catch(() => {});
  }

  get pending(): boolean { return this.conn === null; }
  get readyState(): string {
    if (this.connecting) return "opening";
    if (this.destroyed) return "closed";
    const r = this.readable, w = this.writable;
    return r && w ? "open" : r ? "readOnly" : w ? "writeOnly" : "closed";
  }
  get remoteAddress(): string | undefined { return this.conn?.remoteAddress ?? this.target.host; }
  get remotePort(): number | undefined { return this.conn?.remotePort ?? this.target.port; }
  get remoteFamily(): string | undefined { const a = this.remoteAddress; return a === undefined ? undefined : a.includes(":") ? "IPv6" : "IPv4"; }
  get localAddress(): string | undefined { return this.conn?.localAddress; }
  get localPort(): number | undefined { return this.conn?.localPort; }
  get bytesWritten(): number { return this.written; }
  /** The ALPN protocol of a TLS connection under this socket, else false (as a TLSSocket says it). */
  get alpnProtocol(): string | false { return this.conn?.alpn ?? false; }

  address(): { address: string; port: number; family: string } | Record<string, never> {
    const c = this.conn;
    if (!c?.localAddress || c.localPort === undefined) return {};
    return { address: c.localAddress, port: c.localPort, family: c.localAddress.includes(":") ? "IPv6" : "IPv4" };
  }

  /** Emits "timeout" after `ms` without bytes either way (0 turns it off), as net.Socket does; the socket stays open. */
  setTimeout(ms: number, callback?: () => void): this {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`setTimeout: the timeout must be a non-negative number of ms, not ${ms}`);
    this.idleMs = ms;
    if (callback) { if (ms === 0) this.off("timeout", callback); else this.once("timeout", callback); }
    this.touch();
    return this;
  }

  /** Accepted for compatibility: the stack sends what is written at once (no Nagle delay to turn off). */
  setNoDelay(_noDelay?: boolean): this { return this; }
  /** Accepted for compatibility: the stack sends no keepalive probes (WireGuard's PersistentKeepalive keeps paths open). */
  setKeepAlive(_enable?: boolean, _delay?: number): this { return this; }
  /** The tunnel's own timers keep the process alive, not this socket: nothing to change. */
  ref(): this { return this; }
  unref(): this { return this; }

  /** Resets the connection (RST): what destroy() does without an orderly end. */
  resetAndDestroy(): this { this.conn?.abort(); return this.destroy(); }

  override _read(): void {
    this.wantRead = true;
    if (this.conn) this.pump();
  }

  private pump(): void {
    if (this.reading || !this.reader) return;
    this.reading = true;
    const reader = this.reader;
    const step = (): void => {
      reader.read().then(({ value, done }) => {
        if (this.destroyed) return;
        this.touch();
        if (done) { this.reading = false; this.push(null); return; }
        this.bytesRead += value.length;
        // A Buffer, as data listeners expect (chunk.toString(), Buffer.concat); no copy.
        if (this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength))) step();
        else { this.reading = false; this.wantRead = false; }
      }, (e) => { this.reading = false; this.destroy(e instanceof Error ? e : new Error(String(e))); });
    };
    step();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.send(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    // Many small writes (a pipeline of commands) become a few large ones.
    const out: Uint8Array[] = [];
    let batch: Buffer[] = [], size = 0;
    for (const { chunk } of chunks) {
      if (size + chunk.length > MERGE && batch.length) { out.push(Buffer.concat(batch, size)); batch = []; size = 0; }
      batch.push(chunk);
      size += chunk.length;
    }
    if (batch.length) out.push(batch.length === 1 ? batch[0] : Buffer.concat(batch, size));
    let p = Promise.resolve();
    for (const c of out) p = p.then(() => this.writeOne(c));
    p.then(() => cb(), (e) => cb(e));
  }

  private send(chunk: Uint8Array, cb: (e?: Error | null) => void): void {
    this.writeOne(chunk).then(() => cb(), (e) => cb(e));
  }

  private async writeOne(chunk: Uint8Array): Promise<void> {
    if (!this.writer) await this.ready;
    await this.writer!.write(chunk);
    this.written += chunk.length;
    this.touch();
  }

  override _final(cb: (e?: Error | null) => void): void {
    // FIN after what was written; reading goes on until the peer's FIN.
    const end = async () => {
      if (!this.writer) await this.ready;
      await this.writer!.close();
    };
    end().then(() => cb(), (e) => cb(e));
  }

  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    const c = this.conn;
    if (c) {
      // Both ways finished in order: nothing to tear down. Otherwise a reset, as net.Socket's destroy() is.
      const clean = !err && this.readableEnded && this.writableFinished;
      if (!clean) c.abort();
      this.reader?.cancel().catch(() => {});
    }
    cb(err);
  }

  /** Restarts the idle timer (bytes moved). */
  private touch(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    if (this.idleMs > 0 && !this.destroyed) {
      this.idle = setTimeout(() => { this.idle = null; this.emit("timeout"); }, this.idleMs);
      // A socket's idle timer does not hold the process open (net.Socket's does not either).
      (this.idle as { unref?: () => void }).unref?.();
    }
  }
}
