// A Linux TUN device for Deno: opened through Deno.dlopen (linux/tun.ts over
// libc.ts).
//
// The descriptor is non-blocking. A wake-up is one poll() on a Deno FFI
// thread (a `nonblocking` symbol: the event loop keeps running); then the
// main thread read()s packets synchronously until EAGAIN, each straight
// into the engine's memory at packetOffset(i): no copy, no allocation.
// Measured on the 2-core test machine (a UDP flood into the device):
// this poll-then-drain loop read 180-270k packets/s; one `nonblocking`
// read() per packet, the other way Deno offers, 42-79k/s (a thread hop per
// packet). Writes are one write() per packet, from the engine's memory by
// address.
//
// With offloads (linux/offload.ts) each read (a vnet header and a packet or
// a 64 KB super-packet) goes into the engine's offload area instead, and a
// batch of them is split into packet cells in one WASM call; a batch's
// packets are joined into super-packets before they are written.
import type { Engine, Output } from "../../src/engine.ts";
import { MAX_VNET_READ, Offload, VNET_HDR } from "../../src/offload.ts";
import type { Tun } from "../ports/tun.ts";
import { EAGAIN, EINTR, errnoText } from "../linux/libc.ts";
import { openOffloadedTun } from "../linux/offload.ts";
import { TunError } from "../linux/tun.ts";
import { libc } from "./libc.ts";

const EFD_NONBLOCK = 0o4000, EFD_CLOEXEC = 0o2000000;
const POLLIN = 1, POLLERR = 8, POLLHUP = 16, POLLNVAL = 32;
/** Packets read per wake-up at most, so UDP and timers get their turn under a flood. */
const BUDGET = 512;

export class DenoTun implements Tun {
  readonly name: string;
  readonly mtu: number;
  private fd: number;
  private readonly wake: number; // eventfd: written by close() to end the poll
  private readonly pollfds = new Uint8Array(16); // struct pollfd[2]: the device, the eventfd
  private polling: Promise<unknown> | null = null;
  private closed = false;
  private dead = false;
  private budget = 0; // packets this wake-up may still read
  private got = 0; // packets read in this wake-up
  private readable: (() => void) | null = null;
  private gone: (() => void) | null = null;
  // The engine's memory (found once: it never moves) and the last buffer written from.
  private rmem: Uint8Array | null = null;
  private raddr = 0n;
  private wbuf: Uint8Array | null = null;
  private waddr = 0n;
  /** A packet with a vnet header in front, for write() outside a batch. */
  private one: Uint8Array | null = null;
  writeErrors = 0;

  private constructor(fd: number, wake: number, name: string, mtu: number, private readonly vnet: boolean, readonly offloads: string) {
    this.fd = fd;
    this.wake = wake;
    this.name = name;
    this.mtu = mtu;
    const v = new DataView(this.pollfds.buffer);
    v.setInt32(0, fd, true);
    v.setInt16(4, POLLIN, true);
    v.setInt32(8, wake, true);
    v.setInt16(12, POLLIN, true);
  }

  /** Creates (or attaches to) TUN interface `name`, with offloads if asked and granted. Throws TunError with a one-line reason. */
  static open(name: string, mtu: number, offload = false): DenoTun {
    const c = libc();
    const t = openOffloadedTun(c, name, offload);
    const fd = t.fd;
    const wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0) {
      const e = c.errno();
      c.close(fd);
      throw new TunError(`cannot create an eventfd: ${errnoText(c, e)}`);
    }
    return new DenoTun(fd, wake, name, mtu, t.vnet, t.text);
  }

  start(readable: () => void): void {
    this.readable = readable;
    this.polling = this.loop();
  }

  private async loop(): Promise<void> {
    const c = libc(), v = new DataView(this.pollfds.buffer);
    try {
      while (!this.closed && !this.dead) {
        await c.poll(this.pollfds, 2n, -1);
        if (this.closed) break;
        const revents = v.getInt16(6, true);
        if (revents & POLLNVAL) { this.die(); break; }
        this.budget = BUDGET;
        this.got = 0;
        this.readable!();
        // An error or hang-up that read() did not report would poll() forever.
        if (revents & (POLLERR | POLLHUP) && this.got === 0) this.die();
      }
    } finally {
      c.close(this.fd);
      c.close(this.wake);
      this.fd = -1;
    }
  }

  private die(): void {
    if (this.dead) return;
    this.dead = true;
    if (!this.closed) this.gone?.();
  }

  onGone(gone: () => void): void {
    this.gone = gone;
  }

  read(engine: Engine, max: number): number {
    if (this.closed || this.dead) return 0;
    const mem = engine.memory;
    const c = libc();
    if (mem !== this.rmem) {
      this.rmem = mem;
      this.raddr = c.addressOf(mem);
    }
    if (this.vnet) return this.readSplit(engine, max);
    const fd = this.fd, cap = this.mtu, lens = engine.packetLengths;
    const want = Math.min(max, this.budget);
    let n = 0, drained = false;
    while (n < want) {
      const r = c.read(fd, this.raddr + BigInt(engine.packetOffset(n)), cap);
      if (r > 0) {
        lens[n++] = r;
        continue;
      }
      const e = r < 0 ? c.errno() : 0;
      if (e === EINTR) continue;
      // EBADFD once the interface is deleted; 0 bytes never comes from a TUN device.
      if (e !== EAGAIN) this.die();
      drained = true;
      break;
    }
    // Drained: the next call returns 0 without a system call, and the loop polls again.
    this.budget = drained ? 0 : this.budget - n;
    this.got += n;
    return n;
  }

  /**
   * Reads into the offload area and splits a batch there into up to `max`
   * packet cells. A read whose segments do not fit this batch stays staged
   * for the next (the cells a read needs are known only once it is read).
   */
  private readSplit(engine: Engine, max: number): number {
    const o = engine.offload;
    if (o === null) throw new Error("a TUN device with offloads needs an engine made with offload: true");
    if (o.pending) return o.split(engine.packetLengths, max);
    const c = libc(), fd = this.fd, mem = engine.memory;
    const want = this.budget;
    let reads = 0, drained = false, carryAt = -1, carryLen = 0, carryCells = 0;
    while (reads < want && o.stagedCells < max && o.fits(MAX_VNET_READ, 0, max)) {
      const at = o.stageAt + o.stagedBytes;
      const r = c.read(fd, this.raddr + BigInt(at), MAX_VNET_READ);
      if (r > 0) {
        reads++;
        const cells = Offload.cellsFor(mem, at, r);
        if (o.fits(r, cells, max)) { o.staged(r, cells); continue; }
        carryAt = at; carryLen = r; carryCells = cells;
        break;
      }
      const e = r < 0 ? c.errno() : 0;
      if (e === EINTR) continue;
      if (e !== EAGAIN) this.die();
      drained = true;
      break;
    }
    this.budget = drained ? 0 : this.budget - reads;
    this.got += reads;
    let n = o.split(engine.packetLengths, max);
    if (carryAt >= 0) {
      // First in the next batch (nothing is pending: a read alone over `max` cells ends the loop above).
      mem.copyWithin(o.stageAt, carryAt, carryAt + carryLen);
      o.staged(carryLen, carryCells);
      if (n === 0) n = o.split(engine.packetLengths, max);
    }
    return n;
  }

  /** With offloads: the Output's packets joined where they can be (src/offload.ts), one write each. */
  writeOutput(engine: Engine, out: Output): void {
    const o = this.vnet ? engine.offload : null;
    const m = o === null ? -1 : o.coalesce(out);
    if (m < 0) {
      for (let i = 0; i < out.packets; i++) this.write(out.packetBuf[i], out.packetOff[i], out.packetLen[i]);
      return;
    }
    if (this.fd < 0 || this.dead) return;
    const mem = engine.memory;
    if (mem !== this.wbuf) {
      this.wbuf = mem;
      this.waddr = libc().addressOf(mem);
    }
    const r = o!.results, c = libc();
    for (let i = 0; i < m; i++) if (c.write(this.fd, this.waddr + BigInt(r[2 * i]), r[2 * i + 1]) < 0) this.writeErrors++;
  }

  write(buf: Uint8Array, off: number, len: number): void {
    if (this.fd < 0 || this.dead) return;
    if (this.vnet) {
      // Outside a batch (rare): a copy behind a header of zeros, no offload asked.
      if (len > MAX_VNET_READ - VNET_HDR) { this.writeErrors++; return; }
      const one = this.one ??= new Uint8Array(MAX_VNET_READ);
      one.set(buf.subarray(off, off + len), VNET_HDR);
      buf = one; off = 0; len += VNET_HDR;
    }
    if (buf !== this.wbuf) {
      // Packets come from the engine's memory, which never moves: find its address once.
      this.wbuf = buf;
      this.waddr = libc().addressOf(buf);
    }
    if (libc().write(this.fd, this.waddr + BigInt(off), len) < 0) this.writeErrors++;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.polling === null) {
      libc().close(this.fd);
      libc().close(this.wake);
      this.fd = -1;
      return;
    }
    // Wake the poll(); the loop closes both descriptors once it has returned
    // (unless it has ended already, the device gone).
    if (this.fd >= 0) libc().write(this.wake, libc().addressOf(ONE), 8);
  }
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
