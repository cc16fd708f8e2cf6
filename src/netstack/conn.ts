// A TCP connection as the application sees it: a ReadableStream and a
// WritableStream over a TCB's buffers.
//
// Backpressure both ways: the readable pulls (highWaterMark 0), so bytes
// wait in the TCB's bounded receive buffer until the application reads, and
// the window the peer sees is that buffer's free space. A write copies what
// fits into the bounded send buffer and its promise resolves only when the
// whole chunk is in; until then the writer's `ready` stays pending. The
// stream's own queue holds what the application writes without awaiting
// write() or `ready` (standard WritableStream semantics).
//
// Everything here moves when the stack's driver calls input/tick/output:
// promises resolve in the microtasks after those calls.
import { NetError } from "./errors.ts";
import { CLOSED, type Tcb, type TcbEvents, type TcpState } from "./tcb.ts";
import { formatAddress } from "../ip.ts";

/** The largest chunk a read returns. */
const READ_CHUNK = 65536;

interface PendingWrite {
  chunk: Uint8Array;
  off: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class TcpConn implements TcbEvents {
  /** Bytes from the peer; done after its FIN, errored (NetError) on reset or timeout. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer (Uint8Array chunks). close() sends FIN after them; abort() resets. */
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves when the connection reaches CLOSED cleanly; rejects with the NetError that ended it otherwise. */
  readonly closed: Promise<void>;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;

  private readonly tcb: Tcb;
  private readWake: (() => void) | null = null;
  private readDone = false;
  private pending: PendingWrite | null = null;
  private writeCtl: WritableStreamDefaultController | null = null;
  private resolveClosed!: () => void;
  private rejectClosed!: (e: NetError) => void;

  /** @internal Made by the stack when a connection opens. */
  constructor(tcb: Tcb) {
    this.tcb = tcb;
    this.localAddress = formatAddress(tcb.local);
    this.localPort = tcb.localPort;
    this.remoteAddress = formatAddress(tcb.remote);
    this.remotePort = tcb.remotePort;
    this.closed = new Promise<void>((resolve, reject) => { this.resolveClosed = resolve; this.rejectClosed = reject; });
    this.closed.catch(() => {}); // a rejection nobody awaits is not an unhandled one
    this.readable = new ReadableStream<Uint8Array>({
      pull: (c) => {
        if (this.deliver(c)) return;
        return new Promise<void>((resolve) => {
          this.readWake = () => {
            if (!this.deliver(c)) return;
            this.readWake = null;
            resolve();
          };
        });
      },
      cancel: () => {
        this.readDone = true;
        this.readWake = null;
        this.tcb.shutdownRead();
      },
    }, { highWaterMark: 0 });
    this.writable = new WritableStream<Uint8Array>({
      start: (c) => { this.writeCtl = c; },
      write: (chunk) => this.write(chunk),
      close: () => {
        if (this.tcb.error) throw this.tcb.error;
        this.tcb.close();
      },
      abort: () => { this.tcb.abort(); },
    }, { highWaterMark: 1 });
    tcb.events = this;
  }

  /** The RFC 9293 state name, e.g. "ESTABLISHED". */
  get state(): TcpState {
    return this.tcb.stateName;
  }

  /**
   * Closes the sending side: FIN after everything already written. Reading
   * goes on until the peer's FIN. With the writable unlocked this waits for
   * queued writes; with a writer held, call writer.close() instead (or this
   * after the last write resolved). Never rejects; `closed` tells how it ended.
   */
  async close(): Promise<void> {
    if (!this.writable.locked) {
      try { await this.writable.close(); } catch { /* already closed or failed: `closed` says how */ }
    } else this.tcb.close();
  }

  /** Resets the connection at once: RST to the peer, both streams fail with ECONNABORTED. */
  abort(): void {
    this.tcb.abort();
  }

  /** Moves bytes, EOF or an error to the readable; false when there is nothing yet. */
  private deliver(c: ReadableStreamDefaultController<Uint8Array>): boolean {
    if (this.readDone) return true;
    const t = this.tcb;
    if (t.error) { this.readDone = true; c.error(t.error); return true; }
    const chunk = t.read(READ_CHUNK);
    if (chunk) { c.enqueue(chunk); return true; }
    if (t.eof || t.state === CLOSED) { this.readDone = true; c.close(); return true; }
    return false;
  }

  private write(chunk: Uint8Array): void | Promise<void> {
    if (!(chunk instanceof Uint8Array)) throw new TypeError("TcpConn.writable takes Uint8Array chunks");
    const t = this.tcb;
    if (t.error) throw t.error;
    if (!t.canWrite) throw new NetError("EPIPE", "the sending side is closed");
    const off = t.write(chunk, 0);
    if (off === chunk.length) return;
    return new Promise<void>((resolve, reject) => { this.pending = { chunk, off, resolve, reject }; });
  }

  // ---- TcbEvents (internal: the TCB calls these) -----------------------------------

  /** @internal */
  onReadable(): void {
    this.readWake?.();
  }

  /** @internal */
  onWritable(): void {
    const p = this.pending;
    if (!p) return;
    p.off += this.tcb.write(p.chunk, p.off);
    if (p.off === p.chunk.length) {
      this.pending = null;
      p.resolve();
    }
  }

  /** @internal */
  onClosed(err: NetError | null): void {
    const p = this.pending;
    this.pending = null;
    if (err) {
      p?.reject(err);
      this.writeCtl?.error(err);
      this.rejectClosed(err);
    } else {
      p?.reject(new NetError("EPIPE", "the connection closed"));
      this.resolveClosed();
    }
    this.readWake?.();
  }
}
