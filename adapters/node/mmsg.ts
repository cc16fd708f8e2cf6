// sendmmsg(2) through koffi: a batch of datagrams in one system call, sent
// synchronously straight out of the engine's memory. node:dgram sends one
// datagram per call after a nextTick and may keep a reference for later,
// which forces a copy; this needs neither.
import koffi from "koffi";
import type { Endpoint } from "../../src/engine.ts";

const libc = koffi.load("libc.so.6");
const c_sendmmsg = libc.func("int sendmmsg(int fd, intptr_t msgvec, unsigned int vlen, int flags)");
// memmove(p, p, 0) returns p: the address of a buffer, without a copy.
const c_addr = libc.func("intptr_t memmove(void *dst, void *src, unsigned long n)");

const MSG_DONTWAIT = 0x40;
const MMSGHDR = 64, IOVEC = 16, SOCKADDR = 32; // x86_64 / aarch64 Linux layouts
const AF_INET = 2, AF_INET6 = 10;
const TWO32 = 2 ** 32;

/** The address of a buffer's first byte (ArrayBuffers never move). */
export function addressOf(b: Uint8Array): number {
  return Number(c_addr(b, b, 0));
}

/** One family's queue of datagrams awaiting a sendmmsg. */
export class MmsgBatch {
  private readonly mem: Uint8Array;
  private readonly dv: DataView;
  private readonly base: number;
  private readonly names: Map<string, Uint8Array> = new Map();
  /** Buffers referenced by the queued datagrams (kept alive until the flush). */
  private readonly bufs: Uint8Array[] = [];
  private count = 0;
  private lastBuf: Uint8Array | null = null;
  private lastAddr = 0;
  sent = 0;
  dropped = 0;

  constructor(private readonly fd: number, private readonly v6: boolean, readonly capacity: number) {
    this.mem = new Uint8Array(capacity * (MMSGHDR + IOVEC + SOCKADDR));
    this.dv = new DataView(this.mem.buffer);
    this.base = addressOf(this.mem);
    for (let i = 0; i < capacity; i++) {
      // Each header points at its own iovec and sockaddr, once and for all.
      const h = i * MMSGHDR;
      this.ptr(h, this.base + this.name(i));
      this.dv.setUint32(h + 8, v6 ? 28 : 16, true);
      this.ptr(h + 16, this.base + this.iov(i));
      this.dv.setUint32(h + 24, 1, true);
    }
  }

  private iov(i: number): number { return this.capacity * MMSGHDR + i * IOVEC; }
  private name(i: number): number { return this.capacity * (MMSGHDR + IOVEC) + i * SOCKADDR; }
  private ptr(at: number, p: number): void {
    this.dv.setUint32(at, p % TWO32, true);
    this.dv.setUint32(at + 4, Math.floor(p / TWO32), true);
  }

  /** The sockaddr for an endpoint, built once per address:port (a bounded cache). */
  private sockaddr(to: Endpoint): Uint8Array | null {
    const key = `${to.address}|${to.port}`;
    let s = this.names.get(key);
    if (s) return s;
    s = new Uint8Array(SOCKADDR);
    const dv = new DataView(s.buffer);
    const ip = parseIp(to.address.replace(/^\[|\]$/g, ""), this.v6);
    if (ip === null) return null;
    dv.setUint16(0, this.v6 ? AF_INET6 : AF_INET, true);
    dv.setUint16(2, to.port, false);
    s.set(ip, this.v6 ? 8 : 4);
    if (this.names.size >= 4096) this.names.clear();
    this.names.set(key, s);
    return s;
  }

  add(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    if (this.count === this.capacity) this.flush();
    const sa = this.sockaddr(to);
    if (sa === null) { this.dropped++; return; }
    if (buf !== this.lastBuf) { this.lastBuf = buf; this.lastAddr = addressOf(buf); }
    const i = this.count++;
    this.bufs[i] = buf;
    this.ptr(this.iov(i), this.lastAddr + off);
    this.dv.setUint32(this.iov(i) + 8, len, true);
    this.dv.setUint32(this.iov(i) + 12, 0, true);
    this.mem.set(sa, this.name(i));
  }

  /** Sends what is queued; what the kernel will not take now is dropped, as a full socket buffer drops. */
  flush(): void {
    let done = 0;
    while (done < this.count) {
      const n = c_sendmmsg(this.fd, this.base + done * MMSGHDR, this.count - done, MSG_DONTWAIT);
      if (n <= 0) {
        // EAGAIN (buffer full) or a per-destination error: skip that datagram.
        this.dropped++;
        done++;
        continue;
      }
      done += n;
      this.sent += n;
    }
    this.count = 0;
    this.bufs.length = 0;
    this.lastBuf = null;
  }
}

/** Bytes of an IPv4 (or, for v6, IPv6) literal; null if it is not one. */
function parseIp(s: string, v6: boolean): Uint8Array | null {
  if (!v6) {
    const p = s.split(".");
    if (p.length !== 4) return null;
    const b = new Uint8Array(4);
    for (let i = 0; i < 4; i++) {
      const n = Number(p[i]);
      if (!Number.isInteger(n) || n < 0 || n > 255) return null;
      b[i] = n;
    }
    return b;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]), tail = halves.length === 2 ? groups(halves[1]) : [];
  const fill = 8 - head.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  const all = [...head, ...new Array(fill).fill("0"), ...tail];
  const b = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const n = parseInt(all[i], 16);
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return null;
    b[2 * i] = n >> 8;
    b[2 * i + 1] = n & 0xff;
  }
  return b;
}
