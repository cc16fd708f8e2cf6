// UDP for Bun: Bun.udpSocket. Bun has no IPV6_V6ONLY option and makes its
// [::] sockets dual-stack (even under net.ipv6.bindv6only=1), so one socket
// takes both families: IPv4 peers appear as ::ffff:a.b.c.d and are given to
// the engine as a.b.c.d. Should a [::] socket ever leave IPv4 free, a second
// one on 0.0.0.0 takes it; with no IPv6 at all, 0.0.0.0 alone.
//
// Sending: Bun sends synchronously, one sendmmsg(2) per call, and sendMany
// puts a whole batch in one call (measured here: 1.7 times the datagrams per
// second of one send each). `send` queues a view of the datagram where it
// lies, in the engine's memory, and the device's `flush` after each batch
// sends the queue with one sendMany: no copy, one system call per batch.
//
// Receiving: Bun calls `data` once per datagram, after a recvmmsg(2) of
// many; a setImmediate after the first of a burst runs once they are all
// delivered, and tells the device to hand the batch to the engine.
import type { Endpoint } from "../../src/engine.ts";
import type { Bind } from "../ports/bind.ts";
import { UserError } from "../ports/errors.ts";
import { errnoText, type Libc } from "../linux/libc.ts";
import { MmsgQueue, probeGso } from "../linux/mmsg.ts";
import { SockaddrCache } from "../linux/sockaddr.ts";
import { Bun, type UdpSocket } from "./bun.ts";
import { loadLibc } from "./libc.ts";

const SOCKET_BUFFER = 4 << 20;
const BATCH = 256; // datagrams per sendmmsg at most
const SOL_SOCKET = 1, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33, SO_MARK = 36;

/** The UDP port could not be bound or set up; the message says why in one line. */
export class BindError extends UserError {}

/** One socket and the datagrams waiting to go out on it. */
class Sender {
  /** [view, port, address, view, port, address, ...] */
  readonly batch: (Uint8Array | number | string)[] = [];
  count = 0;
  /** With UDP offloads: sendmmsg with GSO runs (linux/mmsg.ts) instead of sendMany. */
  queue: MmsgQueue<number> | null = null;
  readonly names: SockaddrCache;
  constructor(readonly socket: UdpSocket, family: 4 | 6) {
    this.names = new SockaddrCache(family);
  }
}

export class BunBind implements Bind {
  port = 0;
  /** The [::] socket (both families), or null without IPv6. */
  private v6: Sender | null = null;
  /** A 0.0.0.0 socket, when [::] does not take IPv4. */
  private v4: Sender | null = null;
  /** Views of the source (the engine's memory) by offset, with the length last sent from there: reused while it matches. */
  private readonly views = new Map<number, Uint8Array>();
  private viewSource: Uint8Array | null = null;
  private idleArmed = false;
  private onDatagram: ((buf: Uint8Array, off: number, len: number, from: Endpoint) => void) | null = null;
  private onIdle: (() => void) | null = null;
  // The last sender seen, as the endpoint object handed to the engine: a burst from one peer allocates nothing.
  private lastAddress = "";
  private lastPort = -1;
  private lastFrom: Endpoint = { address: "", port: 0 };
  sendErrors = 0;
  receiveErrors = 0;
  offloads = "udp-gso off (no libc through bun:ffi)";
  private libc: Libc<number> | null = null;

  /**
   * UDP offloads on: each socket's batches go out through sendmmsg with GSO
   * runs (linux/mmsg.ts) where the kernel takes UDP_SEGMENT; off: sendMany.
   */
  setOffload(on: boolean): void {
    const libc = this.libc;
    if (libc === null) return;
    let granted = on;
    for (const s of this.senders()) {
      s.queue = null;
      if (on && probeGso(libc, s.socket.fd)) {
        s.queue = new MmsgQueue(libc, s.socket.fd, BATCH);
        s.queue.enableGso();
      } else granted = false;
    }
    // GRO would need the socket's reads, and Bun.udpSocket reads it itself (a coalesced 64 KB buffer would reach `data` whole).
    this.offloads = `udp-gso ${granted ? "on" : on ? "off (kernel refused UDP_SEGMENT)" : "off (turned off)"}, udp-gro off (Bun reads its sockets itself)`;
  }

  /** Binds `port` (0: any free port) for both families. Throws BindError with a one-line reason. */
  async open(port: number): Promise<void> {
    const handler = {
      data: (_s: UdpSocket, buf: Uint8Array, p: number, address: string) => this.receive(buf, p, address),
      // ICMP errors (a peer's port closed: ECONNREFUSED) come here; without a
      // handler Bun reports each as an uncaught error and the exit code turns 1.
      error: () => { this.receiveErrors++; },
    };
    const bindOne = (hostname: string, p: number) => Bun.udpSocket({ hostname, port: p, socket: handler });
    try {
      let six: UdpSocket | null = null;
      try {
        six = await bindOne("::", port);
      } catch (e) {
        if (code(e) === "EADDRINUSE" || code(e) === "EACCES") throw e;
        six = null; // no IPv6 here
      }
      this.port = six?.port ?? port;
      try {
        const four = await bindOne("0.0.0.0", this.port);
        this.v4 = new Sender(four, 4);
        this.port = four.port;
      } catch (e) {
        // EADDRINUSE right after our own [::] bind: that socket takes IPv4 too.
        if (six === null || code(e) !== "EADDRINUSE") { six?.close(); throw e; }
      }
      if (six) this.v6 = new Sender(six, 6);
    } catch (e) {
      if (code(e) === "EADDRINUSE") throw new BindError(`UDP port ${port} is in use`);
      if (code(e) === "EACCES") throw new BindError(`UDP port ${port}: permission denied`);
      throw new BindError(`cannot bind UDP port ${port}: ${(e as Error).message}`);
    }
    // Room for bursts (root may exceed net.core.[rw]mem_max, others get what
    // the limit allows), where libc can be had; Bun's defaults otherwise.
    let libc: Libc<number> | null = null;
    try { libc = await loadLibc(); } catch { /* no FFI here */ }
    this.libc = libc;
    for (const s of this.senders()) {
      if (libc === null) break;
      const v = int(SOCKET_BUFFER);
      if (libc.setsockopt(s.socket.fd, SOL_SOCKET, SO_RCVBUFFORCE, v, 4) !== 0) libc.setsockopt(s.socket.fd, SOL_SOCKET, SO_RCVBUF, v, 4);
      if (libc.setsockopt(s.socket.fd, SOL_SOCKET, SO_SNDBUFFORCE, v, 4) !== 0) libc.setsockopt(s.socket.fd, SOL_SOCKET, SO_SNDBUF, v, 4);
    }
  }

  private senders(): Sender[] {
    return [this.v6, this.v4].filter((s): s is Sender => s !== null);
  }

  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    this.onDatagram = datagram;
    this.onIdle = idle;
  }

  private receive(buf: Uint8Array, port: number, address: string): void {
    if (this.onDatagram === null) return;
    if (address !== this.lastAddress || port !== this.lastPort) {
      this.lastAddress = address;
      this.lastPort = port;
      // An IPv4 peer on the [::] socket: the engine knows it by its IPv4 address.
      const plain = address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
      this.lastFrom = { address: plain, port };
    }
    this.onDatagram(buf, 0, buf.length, this.lastFrom);
    if (!this.idleArmed) {
      this.idleArmed = true;
      setImmediate(this.idle);
    }
  }

  private readonly idle = (): void => {
    this.idleArmed = false;
    this.onIdle?.();
  };

  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    let address = to.address;
    if (address.charCodeAt(0) === 91 /* [ */) address = address.slice(1, -1);
    const s = address.includes(":") ? this.v6 : this.v4 ?? this.v6;
    if (s === null) { this.sendErrors++; return; }
    const q = s.queue;
    if (q !== null) {
      const name = s.names.get(to);
      if (name === null) { this.sendErrors++; return; }
      q.add(buf, off, len, to, name);
      if (q.count === q.capacity) this.flushQueue(s, q);
      return;
    }
    s.batch.push(this.view(buf, off, len), to.port, address);
    s.count++;
  }

  /** One sendmmsg; what the kernel will not take now goes through sendMany. */
  private flushQueue(s: Sender, q: MmsgQueue<number>): void {
    const before = q.failed;
    const sent = q.send();
    this.sendErrors += q.failed - before;
    for (let i = sent; i < q.count; i++) {
      const to = q.tos[i]!;
      let address = to.address;
      if (address.charCodeAt(0) === 91 /* [ */) address = address.slice(1, -1);
      s.batch.push(q.bufs[i]!.subarray(q.offs[i], q.offs[i] + q.lens[i]), to.port, address);
      s.count++;
    }
    q.clear();
    if (s.count > 0) this.flushOne(s);
  }

  /** Bytes off..off+len of buf as a Uint8Array, allocating only when the source or the length changes. */
  private view(buf: Uint8Array, off: number, len: number): Uint8Array {
    if (off === 0 && len === buf.length) return buf;
    if (buf !== this.viewSource) {
      this.viewSource = buf;
      this.views.clear();
    }
    let v = this.views.get(off);
    if (v === undefined || v.length !== len) {
      v = buf.subarray(off, off + len);
      this.views.set(off, v);
    }
    return v;
  }

  /** Sends what `send` queued: the device calls this after each batch, before the engine reuses its memory. */
  flush(): void {
    for (const s of this.senders()) {
      if (s.queue !== null && s.queue.count > 0) this.flushQueue(s, s.queue);
      else if (s.count > 0) this.flushOne(s);
    }
  }

  private flushOne(s: Sender): void {
    const n = s.count;
    let sent = 0;
    try {
      sent = s.socket.sendMany(s.batch);
    } catch {
      // One unreachable destination (ENETUNREACH) fails the whole call: one
      // by one, so that datagrams to other peers still go.
      sent = 0;
      const b = s.batch;
      for (let i = 0; i < b.length; i += 3) {
        try {
          if (s.socket.send(b[i] as Uint8Array, b[i + 1] as number, b[i + 2] as string)) sent++;
        } catch {
          // lost, as UDP may lose it
        }
      }
    }
    if (sent < n) this.sendErrors += n - sent;
    s.batch.length = 0;
    s.count = 0;
  }

  /** Sets SO_MARK on the sockets, so wg-quick's policy rule lets our own datagrams bypass the tunnel. */
  setMark(mark: number): void {
    const libc = this.libc;
    if (libc === null) throw new BindError(`cannot set fwmark ${mark} on the UDP socket: no libc through bun:ffi here`);
    for (const s of this.senders()) {
      if (libc.setsockopt(s.socket.fd, SOL_SOCKET, SO_MARK, int(mark), 4) !== 0) {
        throw new BindError(`cannot set fwmark ${mark} on the UDP socket: ${errnoText(libc, libc.errno())}`);
      }
    }
  }

  close(): void {
    this.flush();
    for (const s of this.senders()) s.socket.close();
    this.v4 = this.v6 = null;
    this.onDatagram = this.onIdle = null;
  }
}

function code(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

/** A C int in native (little-endian) byte order, for setsockopt. */
function int(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}
