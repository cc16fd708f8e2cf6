// A queue of datagrams for one sendmmsg(2): the Device sends a batch, then
// calls Bind.flush, and the whole batch leaves in one system call, straight
// from the engine's memory (the engine does not reuse it before the flush).
// node:dgram and Deno's send() take one datagram a call, after a turn of
// the event loop, and may keep a reference for later, which forces a copy;
// this needs neither.
//
// With UDP GSO (Linux 4.18, enableGso), a run of datagrams of one size to
// one endpoint (the last may be shorter) leaves as one message whose iovecs
// are those datagrams, with a UDP_SEGMENT control message of that size: the
// kernel's UDP path then runs once per run instead of once per datagram.
//
// Layouts (x86_64 and aarch64 Linux): struct mmsghdr is a struct msghdr
// (name pointer at 0, namelen at 8, iov pointer at 16, iovlen at 24,
// control at 32/40, flags at 48; 56 bytes) and msg_len at 56, 64 bytes in
// all; struct iovec is base at 0, len at 8; a control message is cmsg_len
// (8 bytes), level, type, then the data, padded to 8 (24 bytes for a u16).
// Each header points once and for all at its own 28-byte sockaddr area and
// its own control area; its iov pointer is the iovec of its first datagram.
import type { Endpoint } from "../../src/engine.ts";
import { EAGAIN, EIO, type Libc, type Pointer } from "./libc.ts";

const HDR = 64, IOV = 16, NAME = 28, CTL = 24;
const MSG_DONTWAIT = 0x40;
const SOL_UDP = 17, UDP_SEGMENT = 103;
/** The kernel's limit on segments of one GSO send (UDP_MAX_SEGMENTS). */
const MAX_SEGMENTS = 64;
/** Payload bytes of one GSO send at most (a UDP datagram's 65507, rounded down). */
const MAX_GSO_BYTES = 65000;

/** Whether the socket takes UDP_SEGMENT (sets its default segment size to 0: none). */
export function probeGso<P extends Pointer>(libc: Libc<P>, fd: number): boolean {
  return libc.setsockopt(fd, SOL_UDP, UDP_SEGMENT, new Uint8Array(4), 4) === 0;
}

export class MmsgQueue<P extends Pointer = Pointer> {
  /** Datagrams queued, not yet sent. */
  count = 0;
  /** Datagrams the kernel refused (other than for a full buffer), skipped. */
  failed = 0;
  /** Datagrams sent. */
  sent = 0;
  /** Runs of equal datagrams to one endpoint go as one UDP_SEGMENT message (enableGso). */
  gso = false;
  /** Messages queued: one per datagram, or per run with GSO. */
  private msgs = 0;
  /** Per message: its first datagram. */
  private readonly first: Int32Array;
  // The open run: its message's segment size, bytes, segments, and endpoint (null: none open).
  private runSize = 0;
  private runBytes = 0;
  private runSegs = 0;
  private runTo: Endpoint | null = null;
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
  private readonly ctlAt: number;
  private lastBuf: Uint8Array | null = null;
  private lastAddr: P;

  constructor(private readonly libc: Libc<P>, readonly fd: number, readonly capacity: number) {
    this.iovAt = capacity * HDR;
    this.nameAt = this.iovAt + capacity * IOV;
    this.ctlAt = (this.nameAt + capacity * NAME + 7) & ~7;
    this.mem = new Uint8Array(this.ctlAt + capacity * CTL);
    this.first = new Int32Array(capacity);
    this.dv = new DataView(this.mem.buffer);
    this.bufs = new Array(capacity).fill(null);
    this.offs = new Int32Array(capacity);
    this.lens = new Int32Array(capacity);
    this.tos = new Array(capacity).fill(null);
    this.base = this.lastAddr = libc.addressOf(this.mem);
    for (let i = 0; i < capacity; i++) {
      const h = i * HDR;
      libc.storePointer(this.dv, h, libc.add(this.base, this.nameAt + i * NAME));
      libc.storePointer(this.dv, h + 32, libc.add(this.base, this.ctlAt + i * CTL));
      const c = this.ctlAt + i * CTL;
      this.dv.setUint32(c, 18, true); // cmsg_len: CMSG_LEN(2)
      this.dv.setInt32(c + 8, SOL_UDP, true);
      this.dv.setInt32(c + 12, UDP_SEGMENT, true);
    }
  }

  /** Sends runs with UDP_SEGMENT from now on (probeGso said the socket takes it). */
  enableGso(): void {
    this.gso = true;
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
    this.bufs[i] = buf;
    this.offs[i] = off;
    this.lens[i] = len;
    this.tos[i] = to;
    if (to === this.runTo && len <= this.runSize && this.runSegs < MAX_SEGMENTS && this.runBytes + len <= MAX_GSO_BYTES) {
      // Joins the open run: one more iovec, and the segment size said.
      const h = (this.msgs - 1) * HDR;
      this.runSegs++;
      this.runBytes += len;
      this.dv.setUint32(h + 24, this.runSegs, true);
      if (this.runSegs === 2) {
        this.dv.setUint16(this.ctlAt + (this.msgs - 1) * CTL + 16, this.runSize, true);
        this.dv.setUint32(h + 40, CTL, true);
      }
      // A shorter datagram ends the run.
      if (len < this.runSize) this.runTo = null;
      return;
    }
    const m = this.msgs++;
    const h = m * HDR;
    this.first[m] = i;
    this.libc.storePointer(this.dv, h + 16, this.libc.add(this.base, v));
    this.dv.setUint32(h + 24, 1, true);
    this.dv.setUint32(h + 28, 0, true);
    this.dv.setUint32(h + 40, 0, true); // no control message for a lone datagram
    this.dv.setUint32(h + 44, 0, true);
    this.mem.set(name, this.nameAt + m * NAME);
    this.dv.setUint32(h + 8, name.length, true);
    if (this.gso) { this.runTo = to; this.runSize = len; this.runBytes = len; this.runSegs = 1; }
  }

  /**
   * Sends what is queued, skipping (and counting) a datagram the kernel
   * refuses. Returns the index of the first one left unsent because the
   * socket's buffer is full: `count` when all went. The caller sends the
   * rest another way (or drops them), then calls clear().
   */
  send(): number {
    const n = this.msgs;
    let done = 0;
    while (done < n) {
      const r = this.libc.sendmmsg(this.fd, this.libc.add(this.base, done * HDR), n - done, MSG_DONTWAIT);
      if (r > 0) {
        this.sent += this.datagramAt(done + r) - this.datagramAt(done);
        done += r;
        continue;
      }
      const e = this.libc.errno();
      if (e === EAGAIN) return this.datagramAt(done);
      if (e === EIO && this.gso && this.datagramAt(done + 1) - this.datagramAt(done) > 1) {
        // A device that cannot segment (no checksum offload): no more GSO; the caller sends these another way.
        this.gso = false;
        return this.datagramAt(done);
      }
      // A per-destination error (ENETUNREACH...): skip that message's datagrams.
      this.failed += this.datagramAt(done + 1) - this.datagramAt(done);
      done++;
    }
    return this.count;
  }

  /** The first datagram of message m (count past the last). */
  private datagramAt(m: number): number {
    return m < this.msgs ? this.first[m] : this.count;
  }

  /** Empties the queue (and lets go of the buffers it referred to). */
  clear(): void {
    for (let i = 0; i < this.count; i++) { this.bufs[i] = null; this.tos[i] = null; }
    this.count = 0;
    this.msgs = 0;
    this.runTo = null;
    this.lastBuf = null;
  }
}
