// A Linux TUN device for Node: /dev/net/tun with IFF_TUN | IFF_NO_PI, set up
// with ioctl through koffi (libc). Node cannot poll a TUN fd, and reads
// through libuv's thread pool top out near 20k packets/s, so a worker thread
// blocks in poll()/read() and fills a shared ring; the main thread copies
// packets from the ring into the engine's memory in batches. Writes are one
// write() per packet from the main thread, straight out of WASM memory.
import { Worker } from "node:worker_threads";
import { createRequire } from "node:module";
import koffi from "koffi";
import type { Engine } from "../../src/engine.ts";
import type { Tun } from "../ports/tun.ts";

const O_RDWR = 2, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001, IFF_NO_PI = 0x1000;
const IFNAMSIZ = 16;
const RING = 1024; // packets the reader may run ahead of the main thread (a power of two)

const libc = koffi.load("libc.so.6");
const c_open = libc.func("int open(const char *path, int flags)");
const c_ioctl = libc.func("int ioctl(int fd, unsigned long req, void *arg)");
const c_close = libc.func("int close(int fd)");
const c_write = libc.func("long write(int fd, intptr_t buf, unsigned long n)");
// memmove(p, p, 0) returns p: the address of a buffer, without a copy.
const c_addr = libc.func("intptr_t memmove(void *dst, void *src, unsigned long n)");
const c_strerror = libc.func("const char *strerror(int errnum)");

export class TunError extends Error {}

function errnoText(): string {
  const e = koffi.errno();
  return `${c_strerror(e)} (errno ${e})`;
}

// The reader thread's program. Control words: [0] packets written, [1] packets
// consumed, [2] stop flag, [3] fatal errno.
const READER = `
const { workerData } = require("node:worker_threads");
const koffi = require(workerData.koffi);
const libc = koffi.load("libc.so.6");
const read = libc.func("long read(int fd, void *buf, unsigned long n)");
const poll = libc.func("int poll(void *fds, unsigned long n, int timeout)");
const { fd, sab, slots, slot, dataOff } = workerData;
const ctrl = new Int32Array(sab, 0, 8);
const lens = new Int32Array(sab, 32, slots);
const views = [];
for (let i = 0; i < slots; i++) views.push(new Uint8Array(sab, dataOff + i * slot, slot));
const pfd = new Uint8Array(8);
new DataView(pfd.buffer).setInt32(0, fd, true);
new DataView(pfd.buffer).setInt16(4, 1, true); // POLLIN
let w = 0;
while (Atomics.load(ctrl, 2) === 0) {
  const r = Atomics.load(ctrl, 1);
  if (((w - r) | 0) >= slots) { Atomics.wait(ctrl, 1, r, 100); continue; }
  const i = w & (slots - 1);
  const n = read(fd, views[i], slot);
  if (n > 0) {
    lens[i] = n;
    w = (w + 1) | 0; // the counters live in an Int32Array: they wrap, differences stay right
    Atomics.store(ctrl, 0, w);
    Atomics.notify(ctrl, 0);
    continue;
  }
  const e = koffi.errno();
  if (n < 0 && e !== 11 && e !== 4) { Atomics.store(ctrl, 3, e); Atomics.notify(ctrl, 0); break; }
  poll(pfd, 1, 100);
}
`;

export class NodeTun implements Tun {
  readonly name: string;
  readonly mtu: number;
  private fd: number;
  private readonly sab: SharedArrayBuffer;
  private readonly ctrl: Int32Array;
  private readonly lens: Int32Array;
  private readonly views: Uint8Array[] = [];
  private worker: Worker | null = null;
  private consumed = 0;
  private memAddr = 0;
  private memBuf: ArrayBufferLike | null = null;
  private readable: (() => void) | null = null;
  private gone: (() => void) | null = null;
  writeErrors = 0;

  private constructor(fd: number, name: string, mtu: number) {
    this.fd = fd;
    this.name = name;
    this.mtu = mtu;
    const slot = mtu; // exactly: the engine's cell has room for mtu bytes, no more
    const dataOff = (32 + RING * 4 + 63) & ~63;
    this.sab = new SharedArrayBuffer(dataOff + RING * slot);
    this.ctrl = new Int32Array(this.sab, 0, 8);
    this.lens = new Int32Array(this.sab, 32, RING);
    for (let i = 0; i < RING; i++) this.views.push(new Uint8Array(this.sab, dataOff + i * slot, slot));
    this.slot = slot;
    this.dataOff = dataOff;
  }
  private readonly slot: number;
  private readonly dataOff: number;

  /** Creates (or attaches to) TUN interface `name`. Throws TunError with a one-line reason. */
  static open(name: string, mtu: number): NodeTun {
    if (Buffer.byteLength(name) >= IFNAMSIZ || !/^[A-Za-z0-9_=+.-]+$/.test(name)) {
      throw new TunError(`invalid interface name '${name}': at most 15 of A-Z a-z 0-9 _ = + . -`);
    }
    const fd = c_open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const e = koffi.errno();
      if (e === 2) throw new TunError("cannot open /dev/net/tun: no TUN support (load the tun module, or give the container /dev/net/tun)");
      if (e === 13 || e === 1) throw new TunError("cannot open /dev/net/tun: permission denied (run as root, or with CAP_NET_ADMIN)");
      throw new TunError(`cannot open /dev/net/tun: ${errnoText()}`);
    }
    const ifr = new Uint8Array(40);
    ifr.set(new TextEncoder().encode(name));
    new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI, true);
    if (c_ioctl(fd, TUNSETIFF, ifr) < 0) {
      const e = koffi.errno(), text = errnoText();
      c_close(fd);
      if (e === 1) throw new TunError(`cannot create interface '${name}': operation not permitted (run as root, or with CAP_NET_ADMIN)`);
      if (e === 16) throw new TunError(`cannot create interface '${name}': it exists and is busy`);
      if (e === 22) throw new TunError(`cannot create interface '${name}': an interface of another kind has that name`);
      throw new TunError(`cannot create interface '${name}': ${text}`);
    }
    return new NodeTun(fd, name, mtu);
  }

  start(readable: () => void): void {
    this.readable = readable;
    const koffiPath = createRequire(import.meta.url).resolve("koffi");
    this.worker = new Worker(READER, {
      eval: true,
      workerData: { koffi: koffiPath, fd: this.fd, sab: this.sab, slots: RING, slot: this.slot, dataOff: this.dataOff },
    });
    this.worker.unref();
    this.worker.on("error", () => {});
    void this.watch();
  }

  /** Wakes the main thread when the reader has published packets. */
  private async watch(): Promise<void> {
    while (this.fd >= 0) {
      const w = Atomics.load(this.ctrl, 0);
      if (w === this.consumed) {
        const r = Atomics.waitAsync(this.ctrl, 0, w);
        if (r.async) await r.value;
        if (this.ctrl[3] !== 0) { this.gone?.(); return; }
        continue;
      }
      this.readable?.();
      // Yield a macrotask so sends queued by this batch go out before the next.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  onGone(gone: () => void): void {
    this.gone = gone;
  }

  read(engine: Engine, max: number): number {
    const w = Atomics.load(this.ctrl, 0);
    const n = Math.min((w - this.consumed) | 0, max);
    const mem = engine.memory;
    for (let i = 0; i < n; i++) {
      const s = (this.consumed + i) & (RING - 1);
      const len = this.lens[s];
      // The whole slot (mtu bytes) is copied: no view to allocate per packet.
      mem.set(this.views[s], engine.packetOffset(i));
      engine.packetLengths[i] = len;
    }
    if (n > 0) {
      this.consumed = (this.consumed + n) | 0;
      Atomics.store(this.ctrl, 1, this.consumed);
      Atomics.notify(this.ctrl, 1);
    }
    return n;
  }

  write(buf: Uint8Array, off: number, len: number): void {
    if (this.fd < 0) return;
    if (buf.buffer !== this.memBuf) {
      // Packets come from the engine's memory, which never moves: find its address once.
      this.memBuf = buf.buffer;
      this.memAddr = Number(c_addr(buf, buf, 0)) - buf.byteOffset;
    }
    if (c_write(this.fd, this.memAddr + buf.byteOffset + off, len) < 0) this.writeErrors++;
  }

  close(): void {
    if (this.fd < 0) return;
    Atomics.store(this.ctrl, 2, 1);
    Atomics.notify(this.ctrl, 1);
    const fd = this.fd;
    this.fd = -1;
    // The reader leaves poll() within 100 ms; close the fd after it has gone.
    const w = this.worker;
    if (w) w.once("exit", () => c_close(fd));
    else c_close(fd);
    this.worker = null;
  }
}
