// A Linux TUN device for Deno: /dev/net/tun with IFF_TUN | IFF_NO_PI, set up
// with ioctl through Deno.dlopen (libc.ts).
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
import { addressOf, EAGAIN, EINTR, errno, errnoText, libc } from "./libc.ts";

const O_RDWR = 2, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001, IFF_NO_PI = 0x1000;
const IFNAMSIZ = 16;
const EFD_NONBLOCK = 0o4000, EFD_CLOEXEC = 0o2000000;
const POLLIN = 1, POLLERR = 8, POLLHUP = 16, POLLNVAL = 32;
/** Packets read per wake-up at most, so UDP and timers get their turn under a flood. */
const BUDGET = 512;

export class TunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TunError";
  }
}

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
    if (new TextEncoder().encode(name).length >= IFNAMSIZ || !/^[A-Za-z0-9_=+.-]+$/.test(name)) {
      throw new TunError(`invalid interface name '${name}': at most 15 of A-Z a-z 0-9 _ = + . -`);
    }
    const c = libc();
    const fd = c.open(new TextEncoder().encode("/dev/net/tun\0"), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const e = errno();
      if (e === 2 || e === 19) throw new TunError("cannot open /dev/net/tun: no TUN support (load the tun module, or give the container /dev/net/tun)");
      if (e === 13 || e === 1) throw new TunError("cannot open /dev/net/tun: permission denied (run as root, or with CAP_NET_ADMIN)");
      throw new TunError(`cannot open /dev/net/tun: ${errnoText(e)}`);
    }
    const ifr = new Uint8Array(40);
    ifr.set(new TextEncoder().encode(name));
    new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI, true);
    if (c.ioctl(fd, BigInt(TUNSETIFF), ifr) < 0) {
      const e = errno();
      c.close(fd);
      if (e === 1) throw new TunError(`cannot create interface '${name}': operation not permitted (run as root, or with CAP_NET_ADMIN)`);
      if (e === 16) throw new TunError(`cannot create interface '${name}': it exists and is busy`);
      if (e === 22) throw new TunError(`cannot create interface '${name}': an interface of another kind has that name`);
      throw new TunError(`cannot create interface '${name}': ${errnoText(e)}`);
    }
    const wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0) {
      const e = errno();
      c.close(fd);
      throw new TunError(`cannot create an eventfd: ${errnoText(e)}`);
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
    if (mem !== this.rmem) {
      this.rmem = mem;
      this.raddr = addressOf(mem);
    }
    const c = libc(), fd = this.fd, cap = BigInt(this.mtu), lens = engine.packetLengths;
    const want = Math.min(max, this.budget);
    let n = 0, drained = false;
    while (n < want) {
      const r = Number(c.read(fd, this.raddr + BigInt(engine.packetOffset(n)), cap));
      if (r > 0) {
        lens[n++] = r;
        continue;
      }
      const e = r < 0 ? errno() : 0;
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
      this.waddr = addressOf(buf);
    }
    if (libc().write(this.fd, this.waddr + BigInt(off), BigInt(len)) < 0) this.writeErrors++;
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
    if (this.fd >= 0) libc().write(this.wake, addressOf(ONE), 8n);
  }
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
