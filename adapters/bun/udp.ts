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
import { Bun, type UdpSocket } from "./bun.ts";
import { loadLibc } from "./libc.ts";

const SOCKET_BUFFER = 4 << 20;
const SOL_SOCKET = 1, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33, SO_MARK = 36;

/** The UDP port could not be bound or set up; the message says why in one line. */
export class BindError extends UserError {}

/** One socket and the datagrams waiting to go out on it. */
class Sender {
  /** [view, port, address, view, port, address, ...] */
  readonly batch: (Uint8Array | number | string)[] = [];
  count = 0;
  constructor(readonly socket: UdpSocket) {}
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
  /** Offloads are linux/udp-bind.ts's, which the host opens instead when they are asked for: here they are off, and why. */
  readonly offloads: string;
  private libc: Libc<number> | null = null;

  constructor(why = "turned off") {
    this.offloads = `udp-gso off (${why}), udp-gro off (${why})`;
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
        this.v4 = new Sender(four);
        this.port = four.port;
      } catch (e) {
        // EADDRINUSE right after our own [::] bind: that socket takes IPv4 too.
        if (six === null || code(e) !== "EADDRINUSE") { six?.close(); throw e; }
      }
      if (six) this.v6 = new Sender(six);
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
    s.batch.push(this.view(buf, off, len), to.port, address);
    s.count++;
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
    if (this.v6 !== null && this.v6.count > 0) this.flushOne(this.v6);
    if (this.v4 !== null && this.v4.count > 0) this.flushOne(this.v4);
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
