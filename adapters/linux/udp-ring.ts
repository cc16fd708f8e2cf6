// UDP GRO receives: a reader thread (a worker on Node) takes datagrams off
// the socket with recvmmsg(2), where the kernel has coalesced a run of
// datagrams from one sender into one buffer of up to 64 KB (UDP_GRO,
// Linux 5.0) and says the segment size in a control message; the main
// thread cuts each buffer back into datagrams, into the engine's datagram
// cells. One system call fetches up to VLEN buffers, each maybe
// dozens of datagrams, where a socket read event per datagram was the
// bound before.
//
// The ring is ring.ts's (control words, lengths), with slots laid out as
// the sender's sockaddr (28 bytes) at 0, the segment size (u32, 0: one
// datagram) at 28, the control buffer at 32 and the data at 64.
import type { Endpoint, Engine } from "../../src/engine.ts";
import { formatAddress } from "../../src/ip.ts";
import { EAGAIN, EINTR, type Libc, type Pointer } from "./libc.ts";
import { control, dataOffset, lengths, publish, ringBytes, written, DONE, FATAL, R, READER_WAITS, STOP, W, type PollingLibc } from "./ring.ts";

/** Buffers the reader may run ahead (each up to 64 KB: 8.5 MB, resident as it is used). */
export const UDP_SLOTS = 128;
const DATA_AT = 64, SEG_AT = 28, CTL_AT = 32, CTL_BYTES = 24;
/** The sockaddr, segment size and control message, then 64 KB of data. */
export const UDP_SLOT = DATA_AT + 65536;
const VLEN = 64, HDR = 64, IOV = 16;
const MSG_DONTWAIT = 0x40;
const SOL_UDP = 17, UDP_GRO = 104;
const POLLIN = 0x1, POLLNVAL = 0x20;
const TICK = 100;

/** What a reader thread needs from libc beyond ring.ts's. */
export interface RecvLibc<P extends Pointer = Pointer> extends PollingLibc<P> {
  recvmmsg(fd: number, msgvec: P, vlen: number, flags: number): number;
}

/** Asks the socket for GRO; whether the kernel took it. */
export function enableGro<P extends Pointer>(libc: Libc<P>, fd: number): boolean {
  return libc.setsockopt(fd, SOL_UDP, UDP_GRO, new Uint8Array(new Int32Array([1]).buffer), 4) === 0;
}

export interface UdpReaderStart {
  fd: number;
  sab: SharedArrayBuffer;
}

export function udpRingBytes(): number {
  return ringBytes(UDP_SLOT, UDP_SLOTS);
}

/**
 * The reader thread's loop: recvmmsg into free slots, poll() when the
 * socket is empty, wait when the ring is full. Leaves on STOP (the main
 * thread owns the descriptor and closes it after) or a fatal error.
 */
export function runUdpReader<P extends Pointer>(libc: RecvLibc<P>, { fd, sab }: UdpReaderStart): void {
  const ctrl = control(sab), lens = lengths(sab, UDP_SLOTS), mask = UDP_SLOTS - 1;
  const data = dataOffset(UDP_SLOTS);
  const base = libc.add(libc.addressOf(new Uint8Array(sab)), data);
  const sv = new DataView(sab);
  const hdrs = new Uint8Array(VLEN * (HDR + IOV));
  const hv = new DataView(hdrs.buffer);
  const hbase = libc.addressOf(hdrs);
  for (let j = 0; j < VLEN; j++) {
    libc.storePointer(hv, j * HDR + 16, libc.add(hbase, VLEN * HDR + j * IOV));
    hv.setUint32(j * HDR + 24, 1, true);
    hv.setUint32(VLEN * HDR + j * IOV + 8, 65536, true);
  }
  const pfd = new Uint8Array(8);
  const pv = new DataView(pfd.buffer);
  pv.setInt32(0, fd, true);
  pv.setInt16(4, POLLIN, true);
  let w = Atomics.load(ctrl, W);
  while (Atomics.load(ctrl, STOP) === 0) {
    const r = Atomics.load(ctrl, R);
    const free = UDP_SLOTS - ((w - r) | 0);
    if (free <= 0) {
      Atomics.store(ctrl, READER_WAITS, 1);
      Atomics.wait(ctrl, R, r, TICK);
      continue;
    }
    const i = w & mask;
    const k = Math.min(free, VLEN, UDP_SLOTS - i);
    for (let j = 0; j < k; j++) {
      const slot = libc.add(base, (i + j) * UDP_SLOT);
      const h = j * HDR;
      libc.storePointer(hv, h, slot);
      hv.setUint32(h + 8, 28, true);
      libc.storePointer(hv, h + 32, libc.add(slot, CTL_AT));
      hv.setUint32(h + 40, CTL_BYTES, true);
      hv.setUint32(h + 44, 0, true);
      libc.storePointer(hv, VLEN * HDR + j * IOV, libc.add(slot, DATA_AT));
    }
    const n = libc.recvmmsg(fd, hbase, k, MSG_DONTWAIT);
    if (n > 0) {
      for (let j = 0; j < n; j++) {
        const at = data + (i + j) * UDP_SLOT;
        lens[i + j] = hv.getUint32(j * HDR + 56, true);
        let seg = 0;
        if (hv.getUint32(j * HDR + 40, true) >= 20 && sv.getInt32(at + CTL_AT + 8, true) === SOL_UDP &&
          sv.getInt32(at + CTL_AT + 12, true) === UDP_GRO) seg = sv.getInt32(at + CTL_AT + 16, true);
        sv.setUint32(at + SEG_AT, seg, true);
      }
      w = (w + n) | 0;
      publish(ctrl, w);
      continue;
    }
    const e = libc.errno();
    if (n < 0 && e !== EAGAIN && e !== EINTR) {
      // ICMP errors of earlier sends (ECONNREFUSED...) come back here: not fatal.
      if (e === 9 /* EBADF */) { Atomics.store(ctrl, FATAL, e); break; }
      continue;
    }
    pv.setInt16(6, 0, true);
    if (libc.poll(pfd, 1, TICK) > 0 && (pv.getInt16(6, true) & POLLNVAL) !== 0) { Atomics.store(ctrl, FATAL, -1); break; }
  }
  Atomics.add(ctrl, DONE, 1);
  Atomics.notify(ctrl, DONE);
}

/** A buffer is copied out of its slot through the smallest of these views that holds it (no view made per datagram). */
const VIEW_SIZES = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

/**
 * The main thread's side: wakes `ready` when buffers are waiting, and cuts
 * them into the engine's datagram cells: a buffer is copied once into the
 * engine's UDP stage (src/offload.ts), and each datagram from there into
 * its cell with copyWithin, so nothing is allocated per datagram.
 */
export class UdpRing {
  readonly sab = new SharedArrayBuffer(udpRingBytes());
  private readonly ctrl = control(this.sab);
  private readonly lens = lengths(this.sab, UDP_SLOTS);
  private readonly sv = new DataView(this.sab);
  private readonly bytes = new Uint8Array(this.sab);
  private readonly data = dataOffset(UDP_SLOTS);
  private consumed = 0;
  /** Where in the slot being cut the next datagram starts (0: a fresh slot). */
  private segOff = 0;
  /** Per slot: views of its data of VIEW_SIZES bytes. */
  private readonly views: Uint8Array[][] = [];
  private stopped = false;
  // The last sender, as the endpoint object handed to the engine: a run from one peer allocates nothing.
  private readonly lastKey = new Uint32Array(6);
  private lastFrom: Endpoint = { address: "", port: 0 };
  private readonly a4 = new Uint8Array(4);
  private readonly a16 = new Uint8Array(16);
  /** Buffers from a sender of an unknown family (or empty), dropped. */
  dropped = 0;

  constructor(private readonly mapped: boolean) {
    for (let i = 0; i < UDP_SLOTS; i++) {
      const at = this.data + i * UDP_SLOT + DATA_AT;
      this.views.push(VIEW_SIZES.map((n) => new Uint8Array(this.sab, at, n)));
    }
  }

  /** Calls `ready` (then waits for `yieldToIo`) whenever the reader has published buffers, until stop(). */
  async watch(ready: () => void, yieldToIo: () => Promise<void>): Promise<void> {
    const ctrl = this.ctrl;
    while (!this.stopped && Atomics.load(ctrl, FATAL) === 0) {
      if (Atomics.load(ctrl, W) === this.consumed) { await written(ctrl, this.consumed); continue; }
      ready();
      await yieldToIo();
    }
  }

  /**
   * Writes up to `max` datagrams at engine.datagramOffset(first + i), with
   * their lengths and senders; returns how many. The engine must have been
   * made with EngineOptions.offload (its UDP stage).
   */
  read(engine: Engine, first: number, max: number): number {
    const o = engine.offload;
    if (o === null) throw new Error("UDP GRO receives need an engine made with offload: true");
    const ctrl = this.ctrl, mem = engine.memory, lens = this.lens, stage = o.udpStageAt;
    // Another ring may have used the stage since a slot was left half cut: it is copied again then.
    let staged = false;
    let i = 0;
    while (i < max) {
      if (this.consumed === Atomics.load(ctrl, W)) break;
      const s = this.consumed & (UDP_SLOTS - 1);
      const at = this.data + s * UDP_SLOT;
      const len = lens[s];
      let seg = this.sv.getUint32(at + SEG_AT, true);
      if (seg === 0 || seg > len) seg = len;
      if (this.segOff === 0) {
        if (this.sender(at) === null || len === 0) {
          this.dropped++;
          this.next();
          continue;
        }
        if (seg > engine.maxDatagram) {
          // Counted as the engine counts a datagram too big for it (Device's Port does the same).
          engine.drops.malformed += Math.ceil(len / seg);
          this.next();
          continue;
        }
        staged = false;
      }
      if (!staged) {
        let v = 0;
        while (VIEW_SIZES[v] < len) v++;
        mem.set(this.views[s][v], stage);
        staged = true;
      }
      const d = first + i, l = Math.min(seg, len - this.segOff);
      mem.copyWithin(engine.datagramOffset(d), stage + this.segOff, stage + this.segOff + l);
      engine.datagramLengths[d] = l;
      engine.datagramFrom[d] = this.lastFrom;
      i++;
      this.segOff += seg;
      if (this.segOff >= len) this.next();
    }
    return i;
  }

  private next(): void {
    this.segOff = 0;
    this.consumed = (this.consumed + 1) | 0;
    Atomics.store(this.ctrl, R, this.consumed);
    if (Atomics.load(this.ctrl, READER_WAITS) !== 0) {
      Atomics.store(this.ctrl, READER_WAITS, 0);
      Atomics.notify(this.ctrl, R);
    }
  }

  /** The sender of the slot at `at`, as lastFrom (the same object while it does not change); null for an unknown family. */
  private sender(at: number): Endpoint | null {
    const sv = this.sv, k = this.lastKey, b = this.bytes;
    const family = sv.getUint16(at, true);
    // sockaddr_in: family, port, address in 8 bytes; sockaddr_in6: family, port, flow label, address in 24.
    const words = family === 2 ? 2 : 6;
    let same = this.lastFrom.port !== 0;
    for (let j = 0; j < words; j++) {
      const v = sv.getUint32(at + j * 4, true);
      if (v !== k[j]) { same = false; k[j] = v; }
    }
    if (same) return this.lastFrom;
    const port = sv.getUint16(at + 2, false);
    let address: string;
    if (family === 2) {
      for (let j = 0; j < 4; j++) this.a4[j] = b[at + 4 + j];
      address = formatAddress(this.a4);
    } else if (family === 10) {
      const a = this.a16;
      for (let j = 0; j < 16; j++) a[j] = b[at + 8 + j];
      // An IPv4 peer on a dual-stack socket: the engine knows it by its IPv4 address.
      let v4 = this.mapped && a[10] === 0xff && a[11] === 0xff;
      for (let j = 0; v4 && j < 10; j++) if (a[j] !== 0) v4 = false;
      if (v4) {
        for (let j = 0; j < 4; j++) this.a4[j] = a[12 + j];
        address = formatAddress(this.a4);
      } else address = formatAddress(a);
    } else {
      this.lastFrom = { address: "", port: 0 };
      return null;
    }
    this.lastFrom = { address, port };
    return this.lastFrom;
  }

  /** Stops the reader; resolves once it has left its loop (the caller may close the descriptor then). */
  async stop(): Promise<void> {
    this.stopped = true;
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.notify(this.ctrl, R);
    Atomics.notify(this.ctrl, W);
    // Timers, not Atomics.waitAsync: a pending waitAsync keeps no event loop alive, and the process
    // would end with this unsettled. The reader sees STOP within its poll's 100 ms.
    for (let t = 0; t < 100 && Atomics.load(this.ctrl, DONE) === 0; t++) await new Promise((r) => setTimeout(r, 5));
  }

  /** The reader died: nothing more will come. */
  died(): void {
    if (Atomics.load(this.ctrl, FATAL) === 0) Atomics.store(this.ctrl, FATAL, -2);
    Atomics.store(this.ctrl, DONE, 1);
    Atomics.notify(this.ctrl, W);
    Atomics.notify(this.ctrl, DONE);
  }
}
