// A TUN device read by a reader thread (Node and Bun): the thread blocks in
// poll()/read() and fills the shared ring (ring.ts); this side, on the main
// thread, is woken through Atomics.waitAsync and copies packets from the
// ring into the engine's memory in batches. Writes are one write() per
// packet from the main thread, straight out of WASM memory at an address
// found once. A blocking read must stay off the main thread: Node's reads
// through libuv's thread pool top out near 20k packets/s, a read() loop in a
// worker read more than 117k/s.
import type { Engine } from "../../src/engine.ts";
import type { Tun } from "../ports/tun.ts";
import type { Libc, Pointer } from "./libc.ts";
import {
  control, dataOffset, lengths, ringBytes, DONE, FATAL, MAIN_WAITS, MASK, R, READER_WAITS, SLOTS, STOP, W, type ReaderStart,
} from "./ring.ts";

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
  private readonly sab: SharedArrayBuffer;
  private readonly ctrl: Int32Array;
  private readonly lens: Int32Array;
  private readonly views: Uint8Array[] = [];
  private consumed = 0;
  private readerFinished = false;
  private memBuf: ArrayBufferLike | null = null;
  private memAddr: P | null = null;
  private readable: (() => void) | null = null;
  private gone: (() => void) | null = null;

  /**
   * @param fd the TUN device's descriptor (linux/tun.ts's openTunFd)
   * @param mtu a slot holds exactly this much: the engine's packet cell has room for mtu bytes, no more
   */
  constructor(private readonly libc: Libc<P>, private readonly rawFd: number, readonly name: string, readonly mtu: number,
    private readonly host: ReaderHost) {
    this.fd = rawFd;
    this.slot = mtu;
    this.sab = new SharedArrayBuffer(ringBytes(this.slot));
    this.ctrl = control(this.sab);
    this.lens = lengths(this.sab);
    for (let i = 0; i < SLOTS; i++) this.views.push(new Uint8Array(this.sab, dataOffset() + i * this.slot, this.slot));
  }

  start(readable: () => void): void {
    this.readable = readable;
    this.host.spawn({ fd: this.fd, sab: this.sab, slot: this.slot }).onDied(() => this.readerDied());
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
      const w = Atomics.load(ctrl, W);
      if (w === this.consumed) {
        Atomics.store(ctrl, MAIN_WAITS, 1);
        const r = Atomics.waitAsync(ctrl, W, w);
        if (r.async) await r.value;
        continue;
      }
      this.readable?.();
      // A macrotask between batches: UDP receives and timers get their turn.
      await this.host.yieldToIo();
    }
  }

  onGone(gone: () => void): void {
    this.gone = gone;
  }

  read(engine: Engine, max: number): number {
    let n = (Atomics.load(this.ctrl, W) - this.consumed) | 0;
    if (n > max) n = max;
    if (n <= 0) return 0;
    const mem = engine.memory;
    for (let i = 0; i < n; i++) {
      const s = (this.consumed + i) & MASK;
      // The whole slot is copied: no view to allocate per packet.
      mem.set(this.views[s], engine.packetOffset(i));
      engine.packetLengths[i] = this.lens[s];
    }
    this.consumed = (this.consumed + n) | 0;
    Atomics.store(this.ctrl, R, this.consumed);
    if (Atomics.load(this.ctrl, READER_WAITS) !== 0) {
      Atomics.store(this.ctrl, READER_WAITS, 0);
      Atomics.notify(this.ctrl, R);
    }
    return n;
  }

  write(buf: Uint8Array, off: number, len: number): void {
    if (this.fd < 0 || len === 0) return;
    if (buf.buffer !== this.memBuf || this.memAddr === null) {
      // Packets come from the engine's memory, which never moves: its address is found once.
      this.memBuf = buf.buffer;
      this.memAddr = this.libc.add(this.libc.addressOf(buf), -buf.byteOffset);
    }
    if (this.libc.write(this.fd, this.libc.add(this.memAddr, buf.byteOffset + off), len) < 0) this.writeErrors++;
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
