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
import type { Engine } from "../../src/engine.ts";
import type { Tun } from "../ports/tun.ts";
import { EAGAIN, EINTR, errnoText } from "../linux/libc.ts";
import { openTunFd, TunError } from "../linux/tun.ts";
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
  writeErrors = 0;

  private constructor(fd: number, wake: number, name: string, mtu: number) {
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

  /** Creates (or attaches to) TUN interface `name`. Throws TunError with a one-line reason. */
  static open(name: string, mtu: number): DenoTun {
    const c = libc();
    const fd = openTunFd(c, name);
    const wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0) {
      const e = c.errno();
      c.close(fd);
      throw new TunError(`cannot create an eventfd: ${errnoText(c, e)}`);
    }
    return new DenoTun(fd, wake, name, mtu);
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

  write(buf: Uint8Array, off: number, len: number): void {
    if (this.fd < 0 || this.dead) return;
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
