// UDP for Deno: Deno.listenDatagram (deno.json's "unstable": ["net"]).
//
// One dual-stack socket on [::] carries both families: Deno cannot set
// IPV6_V6ONLY, so a second socket on 0.0.0.0 and the same port fails with
// EADDRINUSE. IPv4 peers arrive as ::ffff:a.b.c.d (turned back into
// a.b.c.d here) and are sent to at ::ffff:a.b.c.d. Without IPv6 on the
// host, 0.0.0.0 alone.
//
// Receiving: RECEIVERS receive() calls are outstanding at once; the ones
// that complete in the same turn of the event loop are handed over one by
// one, then `idle` runs once from a microtask, so the device decrypts them
// as one batch. Measured on the 2-core test machine, iperf3 from
// wireguard-go into this interface, megabits per CPU-second of this
// process: 1 outstanding receive 1,020-1,100, 16 1,160-1,250, 64 1,140-1,170.
//
// Sending: with --allow-ffi (which `up` has, for the TUN device) the
// socket's descriptor is looked up once; the datagrams of a batch are queued
// as they come, pointing into the engine's memory, and leave in one
// sendmmsg() when the Device calls flush() (linux/mmsg.ts): no copy, no promise.
// Measured on the 2-core test machine, iperf3 out through this interface
// to wireguard-go, three alternating runs each: sendmmsg 700-930 Mbit/s
// (1,000-1,130 Mbit per CPU-second of this process), one sendto() per
// datagram 730-805 (930-985), Deno's send() 400-550 (750-800).
// When the socket's buffer is full, or without FFI, Deno's send() is used.
// It sends at once when the socket has room, but a send that has to wait
// would read its buffer later, and the engine reuses its memory at the next
// batch (for plaintext, too). So those datagrams are copied into a ring of
// buffers that only ever hold ciphertext, and a send is dropped rather than
// overwrite a slot still queued.
import type { Endpoint, Engine } from "../../src/engine.ts";
import type { Bind } from "../ports/bind.ts";
import { UserError } from "../ports/errors.ts";
import { errnoText } from "../linux/libc.ts";
import { MmsgQueue, probeGso } from "../linux/mmsg.ts";
import { enableGro, UdpRing } from "../linux/udp-ring.ts";
import { sockaddr } from "../linux/sockaddr.ts";
import { libc } from "./libc.ts";

const RECEIVERS = 16;
const RING = 2048;
const BATCH = 256; // datagrams per sendmmsg at most

/** The UDP port could not be bound or set up; the message says why in one line. */
export class BindError extends UserError {}

type Addr = Deno.NetAddr;

export class DenoBind implements Bind {
  port = 0;
  private sock: Deno.DatagramConn | null = null;
  private fd = -1; // the socket's descriptor, once looked for
  private family: 4 | 6 = 6;
  private readonly ring: Uint8Array;
  private readonly slot: number;
  private next = 0;
  private inflight = 0;
  private idleArmed = false;
  private lastTo: Endpoint | null = null;
  private lastAddr: Addr | null = null;
  private lastSockaddr: Uint8Array | null = null; // null: not an address sendto() can take
  private queue: MmsgQueue<bigint> | null = null; // sendmmsg, once the descriptor is known
  sendErrors = 0;
  receiveErrors = 0;
  offloads = "udp-gso off (no sendmmsg without FFI), udp-gro off (no FFI)";
  private gro = false;
  private groRing: UdpRing | null = null;
  private reader: Worker | null = null;

  constructor(private readonly maxDatagram: number) {
    this.slot = (maxDatagram + 63) & ~63;
    this.ring = new Uint8Array(this.slot * RING);
  }

  /** Binds `port` (0: any free port) on [::], or on 0.0.0.0 without IPv6. Throws BindError with a one-line reason. */
  open(port: number): void {
    if (typeof Deno.listenDatagram !== "function") {
      throw new BindError(`Deno.listenDatagram is unavailable: run with --unstable-net (or "unstable": ["net"] in deno.json)`);
    }
    const listen = (hostname: string) => Deno.listenDatagram({ transport: "udp", hostname, port });
    try {
      try {
        this.sock = listen("::");
      } catch (e) {
        if (e instanceof Deno.errors.AddrInUse || e instanceof Deno.errors.NotCapable) throw e;
        this.sock = listen("0.0.0.0"); // no IPv6 here
        this.family = 4;
      }
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse) throw new BindError(`UDP port ${port} is in use`);
      if (e instanceof Deno.errors.PermissionDenied) throw new BindError(`UDP port ${port}: permission denied`);
      if (e instanceof Deno.errors.NotCapable) throw e;
      throw new BindError(`cannot bind UDP port ${port}: ${(e as Error).message}`);
    }
    this.port = (this.sock.addr as Addr).port;
    this.tune();
  }

  /**
   * 4 MiB socket buffers (up to net.core.rmem_max / wmem_max), as the Node
   * adapter asks for: with Linux's default 208 KiB, a burst from the peer
   * overflows the receive buffer while the engine decrypts the last one
   * (measured: 52,000 receive-buffer drops in 8 s of iperf3, and TCP
   * retransmitting each). Needs the descriptor, so --allow-ffi and a
   * libc.so.6; without them the defaults stay, and Deno's send is used.
   */
  private tune(): void {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return;
    let c;
    try {
      c = libc();
    } catch {
      return; // no libc.so.6 to load (musl, another OS)
    }
    const fd = this.socketFd();
    if (fd < 0) return;
    const v = new Uint8Array(new Int32Array([SOCKET_BUFFER]).buffer);
    c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, v, 4);
    c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, v, 4);
    this.queue = new MmsgQueue(c, fd, BATCH);
  }

  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    const runIdle = () => {
      this.idleArmed = false;
      idle();
    };
    const receiver = async (sock: Deno.DatagramConn) => {
      // One byte more than the engine takes, so an oversized datagram shows as one.
      const buf = new Uint8Array(this.maxDatagram + 1);
      let from: Endpoint = { address: "", port: 0 };
      while (this.sock === sock) {
        let got: [Uint8Array, Deno.Addr];
        try {
          got = await sock.receive(buf);
        } catch {
          if (this.sock !== sock) return; // closed
          this.receiveErrors++;
          await new Promise((r) => setTimeout(r, 10)); // not a busy loop if the error persists
          continue;
        }
        const [d, a] = got;
        let address = (a as Addr).hostname;
        if (address.startsWith("::ffff:") && address.includes(".")) address = address.slice(7);
        const port = (a as Addr).port;
        // The same sender as last time keeps its Endpoint object.
        if (address !== from.address || port !== from.port) from = { address, port };
        datagram(d, 0, d.length, from);
        if (!this.idleArmed) {
          this.idleArmed = true;
          queueMicrotask(runIdle);
        }
      }
    };
    if (this.gro && this.queue !== null) {
      if (this.startGro(idle)) return;
      this.offloads = this.offloads.replace("udp-gro on", "udp-gro off (kernel refused UDP_GRO)");
    }
    for (let i = 0; i < RECEIVERS; i++) void receiver(this.sock!);
  }

  private readonly sent = () => { this.inflight--; };
  private readonly failed = () => { this.inflight--; this.sendErrors++; };

  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    if (this.sock === null) { this.sendErrors++; return; }
    if (to !== this.lastTo) this.lookUp(to);
    if (this.lastAddr === null) { this.sendErrors++; return; }
    const q = this.queue, sa = this.lastSockaddr;
    if (q !== null && sa !== null) {
      q.add(buf, off, len, to, sa);
      if (q.count === q.capacity) this.flush();
      return;
    }
    this.sendLater(buf, off, len, this.lastAddr);
  }

  /** GSO sends where the kernel takes UDP_SEGMENT; GRO receives (a reader Worker with recvmmsg), begun by start(). */
  setOffload(on: boolean): void {
    const q = this.queue;
    if (q === null) return;
    q.gso = false;
    if (on && probeGso(libc(), q.fd)) q.enableGso();
    this.gro = on;
    this.offloads = `udp-gso ${q.gso ? "on" : on ? "off (kernel refused UDP_SEGMENT)" : "off (turned off)"}, udp-gro ${on ? "on" : "off (turned off)"}`;
  }

  /** Receives through a reader Worker (linux/udp-ring.ts) if the socket takes UDP_GRO; Deno's receive() is not called then. */
  private startGro(ready: () => void): boolean {
    const fd = this.socketFd();
    if (fd < 0 || !enableGro(libc(), fd)) return false;
    const ring = this.groRing = new UdpRing(this.family === 6);
    const file = import.meta.url.endsWith(".ts") ? "./udp-reader.ts" : "./udp-reader.js";
    const w = new Worker(new URL(file, import.meta.url).href, { type: "module" });
    w.onerror = () => ring.died();
    w.postMessage({ fd, sab: ring.sab });
    void ring.watch(ready, () => new Promise((resolve) => setTimeout(resolve, 0)));
    this.reader = w;
    return true;
  }

  /** With GRO: datagrams from the reader's ring, straight into the engine's cells. */
  readBatch(engine: Engine, first: number, max: number): number {
    return this.groRing === null ? 0 : this.groRing.read(engine, first, max);
  }

  /** Sends the datagrams queued since the last flush: one sendmmsg. */
  flush(): void {
    const q = this.queue;
    if (q === null || q.count === 0) return;
    const before = q.failed;
    const sent = q.send();
    this.sendErrors += q.failed - before;
    // The socket's buffer is full: Deno's send waits for room.
    for (let i = sent; i < q.count; i++) {
      const to = q.tos[i]!;
      this.sendLater(q.bufs[i]!, q.offs[i], q.lens[i], { transport: "udp", hostname: to.address.replace(/^\[|\]$/g, ""), port: to.port });
    }
    q.clear();
  }

  /** Deno's send, from a copy in the ring. */
  private sendLater(buf: Uint8Array, off: number, len: number, addr: Addr): void {
    if (this.inflight >= RING || len > this.slot) { this.sendErrors++; return; }
    const at = this.next * this.slot;
    this.next = (this.next + 1) % RING;
    const b = this.ring.subarray(at, at + len);
    b.set(buf.subarray(off, off + len));
    this.inflight++;
    this.sock!.send(b, addr).then(this.sent, this.failed);
  }

  /** Deno's address and the sockaddr for `to`, kept for the next send to the same endpoint. */
  private lookUp(to: Endpoint): void {
    this.lastTo = to;
    const hostname = to.address.replace(/^\[|\]$/g, "");
    if (this.family === 4 && hostname.includes(":")) {
      this.lastAddr = this.lastSockaddr = null;
      return;
    }
    this.lastAddr = { transport: "udp", hostname, port: to.port };
    // Null for a scoped or odd address: Deno's send parses it.
    this.lastSockaddr = sockaddr(to, this.family);
  }

  /**
   * Sets SO_MARK on the socket, so wg-quick's policy rule lets our own
   * datagrams bypass the tunnel. Deno does not expose a socket's descriptor:
   * it is found among the process's descriptors as the UDP socket bound to
   * our port (getsockname). Needs --allow-ffi and CAP_NET_ADMIN.
   */
  setMark(mark: number): void {
    const fd = this.socketFd();
    if (fd < 0) throw new BindError(`cannot set fwmark ${mark}: the UDP socket's descriptor was not found`);
    const v = new Uint8Array(4);
    new DataView(v.buffer).setUint32(0, mark, true);
    if (libc().setsockopt(fd, SOL_SOCKET, SO_MARK, v, 4) !== 0) {
      throw new BindError(`cannot set fwmark ${mark} on the UDP socket: ${errnoText(libc(), libc().errno())}`);
    }
  }

  /** The descriptor of our socket: a SOCK_DGRAM of our family bound to our port. */
  private socketFd(): number {
    if (this.sock === null) return -1;
    if (this.fd >= 0) return this.fd;
    const c = libc();
    const sa = new Uint8Array(128), salen = new Uint32Array(1), opt = new Int32Array(1), optlen = new Uint32Array(1);
    const want = this.family === 6 ? AF_INET6 : AF_INET;
    for (let fd = 3; fd < 65536; fd++) {
      salen[0] = sa.length;
      if (c.getsockname(fd, sa, new Uint8Array(salen.buffer)) !== 0) {
        if (c.errno() === EBADF && fd > 1024) break; // past the last descriptor, most likely
        continue;
      }
      const family = sa[0] | (sa[1] << 8), port = (sa[2] << 8) | sa[3];
      if (family !== want || port !== this.port) continue;
      optlen[0] = 4;
      if (c.getsockopt(fd, SOL_SOCKET, SO_TYPE, new Uint8Array(opt.buffer), new Uint8Array(optlen.buffer)) !== 0) continue;
      if (opt[0] === SOCK_DGRAM) return (this.fd = fd);
    }
    return -1;
  }

  async close(): Promise<void> {
    this.queue?.clear();
    this.queue = null;
    // The reader leaves before its descriptor is closed (and maybe reused).
    if (this.groRing !== null) { await this.groRing.stop(); this.reader?.terminate(); this.groRing = null; }
    const s = this.sock;
    this.sock = null;
    this.fd = -1;
    try { s?.close(); } catch { /* already closed */ }
  }
}

const SOCKET_BUFFER = 4 << 20;
const SOL_SOCKET = 1, SO_TYPE = 3, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_MARK = 36, SOCK_DGRAM = 2, AF_INET = 2, AF_INET6 = 10, EBADF = 9;
