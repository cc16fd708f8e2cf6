// A Linux TUN device for Bun: /dev/net/tun with IFF_TUN | IFF_NO_PI, set up
// with ioctl through bun:ffi. bun:ffi calls are synchronous, so a blocking
// read would stall the event loop: a Worker (tun-reader.ts) does
// poll()/read() into a shared ring, and the main thread, woken through
// Atomics.waitAsync, copies packets from the ring into the engine's memory
// in batches. Writes are one write() per packet from the main thread,
// straight out of WASM memory at an address found once.
import { ptr } from "bun:ffi";
import type { Engine } from "../../src/engine.ts";
import type { Tun } from "../ports/tun.ts";
import { libc, errno, errnoText, cstr } from "./libc.ts";
import {
  control, dataOffset, lengths, ringBytes, MASK, SLOTS, W, R, STOP, FATAL, MAIN_WAITS, READER_WAITS, DONE, type ReaderStart,
} from "../linux/ring.ts";

const O_RDWR = 2, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001, IFF_NO_PI = 0x1000;
const IFNAMSIZ = 16;
const ENOENT = 2, EPERM = 1, EACCES = 13, EBUSY = 16, EINVAL = 22;

export class TunError extends Error {}

/** Bun's Worker has unref() beyond the web Worker: the reader does not keep the process alive. */
type BunWorker = Worker & { unref(): void };

export class BunTun implements Tun {
  readonly name: string;
  readonly mtu: number;
  private fd: number;
  /** The fd to close once both threads are done with it (fd is -1 from close() on). */
  private readonly rawFd: number;
  private readerFinished = false;
  private readonly slot: number;
  private readonly sab: SharedArrayBuffer;
  private readonly ctrl: Int32Array;
  private readonly lens: Int32Array;
  private readonly views: Uint8Array[] = [];
  private worker: BunWorker | null = null;
  private consumed = 0;
  private memBuf: ArrayBufferLike | null = null;
  private memAddr = 0;
  private readable: (() => void) | null = null;
  private gone: (() => void) | null = null;
  writeErrors = 0;

  private constructor(fd: number, name: string, mtu: number) {
    this.fd = this.rawFd = fd;
    this.name = name;
    this.mtu = mtu;
    this.slot = mtu; // the engine's packet cell has room for mtu bytes: a slot is copied whole
    this.sab = new SharedArrayBuffer(ringBytes(this.slot));
    this.ctrl = control(this.sab);
    this.lens = lengths(this.sab);
    for (let i = 0; i < SLOTS; i++) this.views.push(new Uint8Array(this.sab, dataOffset() + i * this.slot, this.slot));
  }

  /** Creates (or attaches to) TUN interface `name`. Throws TunError with a one-line reason. */
  static open(name: string, mtu: number): BunTun {
    if (new TextEncoder().encode(name).length >= IFNAMSIZ || !/^[A-Za-z0-9_=+.-]+$/.test(name)) {
      throw new TunError(`invalid interface name '${name}': at most 15 of A-Z a-z 0-9 _ = + . -`);
    }
    const fd = libc.open(cstr("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const e = errno();
      if (e === ENOENT) throw new TunError("cannot open /dev/net/tun: no TUN support (load the tun module, or give the container /dev/net/tun)");
      if (e === EACCES || e === EPERM) throw new TunError("cannot open /dev/net/tun: permission denied (run as root, or with CAP_NET_ADMIN)");
      throw new TunError(`cannot open /dev/net/tun: ${errnoText(e)}`);
    }
    // struct ifreq: the name, then ifr_flags (a short) at offset 16.
    const ifr = new Uint8Array(40);
    ifr.set(new TextEncoder().encode(name));
    new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI, true);
    if (libc.ioctl(fd, TUNSETIFF, ifr) < 0) {
      const e = errno();
      libc.close(fd);
      if (e === EPERM) throw new TunError(`cannot create interface '${name}': operation not permitted (run as root, or with CAP_NET_ADMIN)`);
      if (e === EBUSY) throw new TunError(`cannot create interface '${name}': it exists and is busy`);
      if (e === EINVAL) throw new TunError(`cannot create interface '${name}': an interface of another kind has that name`);
      throw new TunError(`cannot create interface '${name}': ${errnoText(e)}`);
    }
    return new BunTun(fd, name, mtu);
  }

  start(readable: () => void): void {
    this.readable = readable;
    const w = new Worker(new URL("./tun-reader.ts", import.meta.url).href) as BunWorker;
    w.addEventListener("message", () => { this.readerFinished = true; });
    w.addEventListener("error", () => this.readerDied());
    w.postMessage({ fd: this.fd, sab: this.sab, slot: this.slot } satisfies ReaderStart);
    w.unref();
    this.worker = w;
    void this.watch();
  }

  /** A reader that died without leaving its loop: done with the fd, and the device is gone. */
  private readerDied(): void {
    if (this.readerFinished) return;
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
      await new Promise((resolve) => setImmediate(resolve));
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
    if (buf.buffer !== this.memBuf) {
      // Packets come from the engine's memory, which never moves: its address is found once.
      this.memBuf = buf.buffer;
      this.memAddr = ptr(buf) - buf.byteOffset;
    }
    if (libc.write(this.fd, this.memAddr + buf.byteOffset + off, len) < 0) this.writeErrors++;
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
    this.worker = null;
  }

  /** One thread is done with the fd; the second to be done closes it. */
  private done(): void {
    if (Atomics.add(this.ctrl, DONE, 1) === 1) libc.close(this.rawFd);
  }
}
