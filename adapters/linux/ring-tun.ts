// A TUN device read by a reader thread (Node and Bun): the thread blocks in
// poll()/read() and fills the shared ring (ring.ts); this side, on the main
// thread, is woken through Atomics.waitAsync and copies packets from the
// ring into the engine's memory in batches. Writes are one write() per
// packet from the main thread, straight out of WASM memory at an address
// found once. A blocking read must stay off the main thread: Node's reads
// through libuv's thread pool top out near 20k packets/s, a read() loop in a
// worker read more than 117k/s.
//
// With offloads (a vnet header on every packet, linux/offload.ts) a slot
// holds a whole 64 KB read: reads are staged in the engine's offload area
// and split there into packet cells in one WASM call per batch, and a
// batch's packets are joined into super-packets before they are written.
import type { Engine, Output } from "../../src/engine.ts";
import { MAX_VNET_READ, Offload, VNET_HDR } from "../../src/offload.ts";
import type { Tun } from "../ports/tun.ts";
import type { Libc, Pointer } from "./libc.ts";
import {
  control, dataOffset, lengths, ringBytes, written, DONE, FATAL, R, READER_WAITS, SLOTS, STOP, W, type ReaderStart,
} from "./ring.ts";

/** Slots of a ring with offloads: 256 x 64 KB (the pages of a slot are resident only once a read has filled them). */
const VNET_SLOTS = 256;
const VNET_SLOT = (MAX_VNET_READ + 63) & ~63;
/** A read is copied out of its slot through the smallest of these views that holds it (no view made per packet). */
const VIEW_SIZES = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, VNET_SLOT];

/** The reader thread, as the host started it. */
export interface ReaderThread {
  /** Calls `died` if the thread ends without leaving its loop (it crashed). */
  onDied(died: () => void): void;
}

/** What a host gives the ring: how to start its reader thread, and how to let I/O in between batches. */
export interface ReaderHost {
  /** Starts a thread running linux/ring.ts's runReader with `start` (over its own libc binding). */
  spawn(start: ReaderStart): ReaderThread;
  /** Resolves after the event loop has run its I/O once (setImmediate). */
  yieldToIo(): Promise<void>;
}

export class RingTun<P extends Pointer> implements Tun {
  writeErrors = 0;
  private fd: number;
  private readonly slot: number;
  private readonly slots: number;
  private readonly mask: number;
  private readonly sab: SharedArrayBuffer;
  private readonly bytes: Uint8Array;
  private readonly ctrl: Int32Array;
  private readonly lens: Int32Array;
  /** Per slot: the whole slot; with offloads, views of VIEW_SIZES bytes. */
  private readonly views: Uint8Array[][] = [];
  /** A packet with a vnet header in front, for write() outside a batch. */
  private one: Uint8Array | null = null;
  private consumed = 0;
  private readerFinished = false;
  private memBuf: ArrayBufferLike | null = null;
  private memAddr: P | null = null;
  private readable: (() => void) | null = null;
  private gone: (() => void) | null = null;

  /**
   * @param fd the TUN device's descriptor (linux/tun.ts's openTunFd, or linux/offload.ts's)
   * @param mtu without offloads a slot holds exactly this much: the engine's packet cell has room for mtu bytes, no more
   * @param vnet the device puts a vnet header before each packet (the engine needs EngineOptions.offload)
   * @param offloads the offloads line for the log
   */
  constructor(private readonly libc: Libc<P>, private readonly rawFd: number, readonly name: string, readonly mtu: number,
    private readonly host: ReaderHost, private readonly vnet = false, readonly offloads?: string) {
    this.fd = rawFd;
    this.slot = vnet ? VNET_SLOT : mtu;
    this.slots = vnet ? VNET_SLOTS : SLOTS;
    this.mask = this.slots - 1;
    this.sab = new SharedArrayBuffer(ringBytes(this.slot, this.slots));
    this.bytes = new Uint8Array(this.sab);
    this.ctrl = control(this.sab);
    this.lens = lengths(this.sab, this.slots);
    const at = dataOffset(this.slots);
    for (let i = 0; i < this.slots; i++) {
      const start = at + i * this.slot;
      this.views.push(vnet ? VIEW_SIZES.map((n) => new Uint8Array(this.sab, start, n)) : [new Uint8Array(this.sab, start, this.slot)]);
    }
  }

  start(readable: () => void): void {
    this.readable = readable;
    this.host.spawn({ fd: this.fd, sab: this.sab, slot: this.slot, slots: this.slots }).onDied(() => this.readerDied());
    void this.watch();
  }

  /** A reader that died without leaving its loop: done with the fd, and the device is gone. */
  private readerDied(): void {
    if (this.readerFinished || Atomics.load(this.ctrl, DONE) >= 2) return;
    this.readerFinished = true;
    if (Atomics.load(this.ctrl, FATAL) === 0) Atomics.store(this.ctrl, FATAL, -2);
    Atomics.notify(this.ctrl, W);
    this.done();
  }

  /** Wakes the device whenever the reader has published packets. */
  private async watch(): Promise<void> {
    const ctrl = this.ctrl;
    while (this.fd >= 0) {
      if (Atomics.load(ctrl, FATAL) !== 0) { this.gone?.(); return; }
      if (Atomics.load(ctrl, W) === this.consumed) { await written(ctrl, this.consumed); continue; }
      this.readable?.();
      // A macrotask between batches: UDP receives and timers get their turn.
      await this.host.yieldToIo();
    }
  }

  onGone(gone: () => void): void {
    this.gone = gone;
  }

  read(engine: Engine, max: number): number {
    if (this.vnet) return this.readSplit(engine, max);
    let n = (Atomics.load(this.ctrl, W) - this.consumed) | 0;
    if (n > max) n = max;
    if (n <= 0) return 0;
    const mem = engine.memory;
    for (let i = 0; i < n; i++) {
      const s = (this.consumed + i) & this.mask;
      // The whole slot is copied: no view to allocate per packet.
      mem.set(this.views[s][0], engine.packetOffset(i));
      engine.packetLengths[i] = this.lens[s];
    }
    this.consume(n);
    return n;
  }

  /** Stages reads (vnet header and packet or super-packet) and splits them into up to `max` packet cells. */
  private readSplit(engine: Engine, max: number): number {
    const off = engine.offload;
    if (off === null) throw new Error("a TUN device with offloads needs an engine made with offload: true");
    if (off.pending) {
      // The rest of a super-packet that had more segments than cells; its slot goes once it is all split.
      const n = off.split(engine.packetLengths, max);
      if (!off.pending) this.consume(1);
      return n;
    }
    const avail = (Atomics.load(this.ctrl, W) - this.consumed) | 0;
    const mem = engine.memory;
    let taken = 0;
    while (taken < avail) {
      const s = (this.consumed + taken) & this.mask;
      const len = this.lens[s];
      let v = 0;
      while (VIEW_SIZES[v] < len) v++;
      const cells = Offload.cellsFor(this.bytes, this.views[s][0].byteOffset, len);
      if (!off.fits(VIEW_SIZES[v], cells, max)) break;
      mem.set(this.views[s][v], off.stageAt + off.stagedBytes);
      off.staged(len, cells);
      taken++;
    }
    if (taken === 0) return 0;
    const n = off.split(engine.packetLengths, max);
    this.consume(off.pending ? taken - 1 : taken);
    return n;
  }

  /** Gives n slots back to the reader. */
  private consume(n: number): void {
    if (n === 0) return;
    this.consumed = (this.consumed + n) | 0;
    Atomics.store(this.ctrl, R, this.consumed);
    if (Atomics.load(this.ctrl, READER_WAITS) !== 0) {
      Atomics.store(this.ctrl, READER_WAITS, 0);
      Atomics.notify(this.ctrl, R);
    }
  }

  write(buf: Uint8Array, off: number, len: number): void {
    if (this.fd < 0 || len === 0) return;
    if (this.vnet) {
      // Outside a batch (rare): a copy behind a header of zeros, no offload asked.
      if (len > MAX_VNET_READ - VNET_HDR) { this.writeErrors++; return; }
      const one = this.one ??= new Uint8Array(MAX_VNET_READ);
      one.set(buf.subarray(off, off + len), VNET_HDR);
      buf = one; off = 0; len += VNET_HDR;
    }
    if (this.libc.write(this.fd, this.libc.add(this.addressOf(buf), buf.byteOffset + off), len) < 0) this.writeErrors++;
  }

  /** With offloads: the Output's packets joined where they can be (src/offload.ts), one write each. */
  writeOutput(engine: Engine, out: Output): void {
    const o = this.vnet ? engine.offload : null;
    const m = o === null ? -1 : o.coalesce(out);
    if (m < 0) {
      for (let i = 0; i < out.packets; i++) this.write(out.packetBuf[i], out.packetOff[i], out.packetLen[i]);
      return;
    }
    if (this.fd < 0) return;
    const base = this.addressOf(engine.memory), r = o!.results;
    for (let i = 0; i < m; i++) {
      if (this.libc.write(this.fd, this.libc.add(base, engine.memory.byteOffset + r[2 * i]), r[2 * i + 1]) < 0) this.writeErrors++;
    }
  }

  /** The address of byte 0 of buf's ArrayBuffer. Packets come from the engine's memory, which never moves: found once. */
  private addressOf(buf: Uint8Array): P {
    if (buf.buffer !== this.memBuf || this.memAddr === null) {
      this.memBuf = buf.buffer;
      this.memAddr = this.libc.add(this.libc.addressOf(buf), -buf.byteOffset);
    }
    return this.memAddr;
  }

  close(): void {
    if (this.fd < 0) return;
    this.fd = -1;
    this.readable = null;
    this.gone = null;
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.notify(this.ctrl, R);
    Atomics.notify(this.ctrl, W); // ends watch()'s wait
    this.done();
  }

  /** One thread is done with the fd; the second to be done closes it. */
  private done(): void {
    if (Atomics.add(this.ctrl, DONE, 1) === 1) this.libc.close(this.rawFd);
  }
}
