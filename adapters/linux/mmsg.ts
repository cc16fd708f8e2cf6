// A queue of datagrams for one sendmmsg(2): the Device sends a batch, then
// calls Bind.flush, and the whole batch leaves in one system call, straight
// from the engine's memory (the engine does not reuse it before the flush).
// node:dgram and Deno's send() take one datagram a call, after a turn of
// the event loop, and may keep a reference for later, which forces a copy;
// this needs neither.
//
// Layouts (x86_64 and aarch64 Linux): struct mmsghdr is a struct msghdr
// (name pointer at 0, namelen at 8, iov pointer at 16, iovlen at 24,
// control at 32/40, flags at 48; 56 bytes) and msg_len at 56, 64 bytes in
// all; struct iovec is base at 0, len at 8. Each header points once and for
// all at its own iovec and its own 28-byte sockaddr area; queueing a
// datagram fills in the iovec and copies the destination's sockaddr.
import type { Endpoint } from "../../src/engine.ts";
import { EAGAIN, type Libc, type Pointer } from "./libc.ts";

const HDR = 64, IOV = 16, NAME = 28;
const MSG_DONTWAIT = 0x40;

export class MmsgQueue<P extends Pointer = Pointer> {
  /** Datagrams queued, not yet sent. */
  count = 0;
  /** Datagrams the kernel refused (other than for a full buffer), skipped. */
  failed = 0;
  /** Datagrams sent. */
  sent = 0;
  /** What each queued datagram is, for a caller that has to send the rest another way. */
  readonly bufs: (Uint8Array | null)[];
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  readonly tos: (Endpoint | null)[];
  private readonly mem: Uint8Array;
  private readonly dv: DataView;
  private readonly base: P;
  private readonly iovAt: number;
  private readonly nameAt: number;
  private lastBuf: Uint8Array | null = null;
  private lastAddr: P;

  constructor(private readonly libc: Libc<P>, private readonly fd: number, readonly capacity: number) {
    this.iovAt = capacity * HDR;
    this.nameAt = this.iovAt + capacity * IOV;
    this.mem = new Uint8Array(this.nameAt + capacity * NAME);
    this.dv = new DataView(this.mem.buffer);
    this.bufs = new Array(capacity).fill(null);
    this.offs = new Int32Array(capacity);
    this.lens = new Int32Array(capacity);
    this.tos = new Array(capacity).fill(null);
    this.base = this.lastAddr = libc.addressOf(this.mem);
    for (let i = 0; i < capacity; i++) {
      const h = i * HDR;
      libc.storePointer(this.dv, h, libc.add(this.base, this.nameAt + i * NAME));
      libc.storePointer(this.dv, h + 16, libc.add(this.base, this.iovAt + i * IOV));
      this.dv.setUint32(h + 24, 1, true);
    }
  }

  /**
   * Queues `len` bytes of `buf` at `off` for `to`, whose sockaddr (16 or 28
   * bytes) is `name`. The caller sends when count reaches capacity.
   */
  add(buf: Uint8Array, off: number, len: number, to: Endpoint, name: Uint8Array): void {
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.lastAddr = this.libc.addressOf(buf);
    }
    const i = this.count++;
    const v = this.iovAt + i * IOV;
    this.libc.storePointer(this.dv, v, this.libc.add(this.lastAddr, off));
    this.dv.setUint32(v + 8, len, true);
    this.dv.setUint32(v + 12, 0, true);
    this.mem.set(name, this.nameAt + i * NAME);
    this.dv.setUint32(i * HDR + 8, name.length, true);
    this.bufs[i] = buf;
    this.offs[i] = off;
    this.lens[i] = len;
    this.tos[i] = to;
  }

  /**
   * Sends what is queued, skipping (and counting) a datagram the kernel
   * refuses. Returns the index of the first one left unsent because the
   * socket's buffer is full: `count` when all went. The caller sends the
   * rest another way (or drops them), then calls clear().
   */
  send(): number {
    const n = this.count;
    let done = 0;
    while (done < n) {
      const r = this.libc.sendmmsg(this.fd, this.libc.add(this.base, done * HDR), n - done, MSG_DONTWAIT);
      if (r > 0) { done += r; this.sent += r; continue; }
      if (this.libc.errno() === EAGAIN) return done;
      // A per-destination error (ENETUNREACH...): skip that datagram.
      this.failed++;
      done++;
    }
    return n;
  }

  /** Empties the queue (and lets go of the buffers it referred to). */
  clear(): void {
    for (let i = 0; i < this.count; i++) { this.bufs[i] = null; this.tos[i] = null; }
    this.count = 0;
    this.lastBuf = null;
  }
}
