// UDP for Node: node:dgram, one socket per address family on the same port
// (as wireguard-go listens on both). Receiving goes through dgram; sending
// goes out in batches with one sendmmsg per family (linux/mmsg.ts, through
// koffi), straight from the engine's memory. Measured under load on the
// 2-core test machine: up 310 -> 410 Mbit/s, down 415-550 -> 500-770
// against dgram's send. Without koffi (or off Linux) dgram sends each
// datagram from a copy.
import dgram from "node:dgram";
import { Worker } from "node:worker_threads";
import type { Endpoint, Engine } from "../../src/engine.ts";
import type { Bind } from "../ports/bind.ts";
import { UserError } from "../ports/errors.ts";
import type { Libc } from "../linux/libc.ts";
import { MmsgQueue, probeGso } from "../linux/mmsg.ts";
import { SockaddrCache } from "../linux/sockaddr.ts";
import { enableGro, UdpRing } from "../linux/udp-ring.ts";
import { loadLibc } from "./libc.ts";

const RING = 2048;
const BATCH = 256; // datagrams per sendmmsg at most
const SOL_SOCKET = 1, SO_MARK = 36;

/** The UDP port could not be bound or set up; the message says why in one line. */
export class BindError extends UserError {}

/** One family's socket and its sendmmsg queue. */
class Family {
  queue: MmsgQueue<number> | null = null;
  /** With UDP GRO: the reader thread's ring, which receives instead of dgram. */
  ring: UdpRing | null = null;
  readonly names: SockaddrCache;
  constructor(readonly socket: dgram.Socket, readonly family: 4 | 6) {
    this.names = new SockaddrCache(family);
  }
}

export class NodeBind implements Bind {
  port = 0;
  sendErrors = 0;
  offloads = "udp-gso off (no sendmmsg)";
  private v4: Family | null = null;
  private v6: Family | null = null;
  private libc: Libc<number> | null = null;
  // Without sendmmsg, dgram sends after a nextTick and may queue, while the
  // engine reuses its memory at the next batch: each datagram is copied into
  // a ring of buffers that only hold ciphertext.
  private readonly ring: Buffer[] = [];
  private next = 0;
  private idleArmed = false;
  private gro = false;
  private srcArr: Uint8Array | null = null;
  private src: Buffer | null = null;

  constructor(private readonly maxDatagram: number) {}

  /** Binds both families on `port` (0: any free port). Throws BindError with a one-line reason. */
  async open(port: number): Promise<void> {
    const bindOne = (type: "udp4" | "udp6", p: number) => new Promise<dgram.Socket>((resolve, reject) => {
      const s = dgram.createSocket({ type, ipv6Only: type === "udp6", recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      s.once("error", reject);
      s.bind(p, type === "udp4" ? "0.0.0.0" : "::", () => { s.removeListener("error", reject); resolve(s); });
    });
    try {
      this.v4 = new Family(await bindOne("udp4", port), 4);
      this.port = this.v4.socket.address().port;
      try {
        this.v6 = new Family(await bindOne("udp6", this.port), 6);
      } catch (e) {
        // No IPv6 on this host is fine; a taken port is not.
        if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") throw e;
        this.v6 = null;
      }
    } catch (e) {
      this.v4?.socket.close();
      this.v4 = null;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new BindError(`UDP port ${port} is in use`);
      if (code === "EACCES") throw new BindError(`UDP port ${port}: permission denied`);
      throw new BindError(`cannot bind UDP port ${port}: ${(e as Error).message}`);
    }
    // sendmmsg where libc can be had; dgram's send otherwise.
    this.libc = await loadLibc().catch(() => null);
    for (const f of this.families()) {
      const fd = socketFd(f.socket);
      if (this.libc !== null && fd >= 0) f.queue = new MmsgQueue(this.libc, fd, BATCH);
    }
  }

  /**
   * GSO sends on each family's socket where the kernel takes UDP_SEGMENT,
   * and GRO receives (a reader thread with recvmmsg, linux/udp-ring.ts)
   * where it takes UDP_GRO; start() begins them.
   */
  setOffload(on: boolean): void {
    const qs = this.families().map((f) => f.queue).filter((q): q is MmsgQueue<number> => q !== null);
    if (qs.length === 0) return;
    let granted = on;
    for (const q of qs) {
      q.gso = false;
      if (on && probeGso(this.libc!, q.fd)) q.enableGso();
      else granted = false;
    }
    this.gro = on;
    const gso = granted ? "on" : on ? "off (kernel refused UDP_SEGMENT)" : "off (turned off)";
    this.offloads = `udp-gso ${gso}, udp-gro ${on ? "on" : "off (turned off)"}`;
  }

  /** Receives through a reader thread on each socket that takes UDP_GRO; says whether all did. */
  private startGro(ready: () => void): boolean {
    let all = true;
    for (const f of this.families()) {
      const fd = socketFd(f.socket), handle = socketHandle(f.socket);
      if (this.libc === null || fd < 0 || handle === null || !enableGro(this.libc, fd)) { all = false; continue; }
      // dgram stops reading the socket; the reader thread takes over.
      handle.recvStop();
      const ring = f.ring = new UdpRing(false);
      const w = new Worker(new URL("./udp-reader.js", import.meta.url), { workerData: { fd, sab: ring.sab } });
      w.unref();
      w.on("error", () => ring.died());
      void ring.watch(ready, () => new Promise((resolve) => setImmediate(resolve)));
    }
    return all;
  }

  /** With GRO: datagrams from the reader threads' rings, straight into the engine's cells. */
  readBatch(engine: Engine, first: number, max: number): number {
    let n = 0;
    for (const f of this.families()) if (f.ring !== null && n < max) n += f.ring.read(engine, first + n, max - n);
    return n;
  }

  private families(): Family[] {
    return [this.v4, this.v6].filter((f): f is Family => f !== null);
  }

  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      // rinfo has address and port: it serves as the endpoint as it is.
      datagram(msg, 0, msg.length, rinfo);
      if (!this.idleArmed) {
        this.idleArmed = true;
        setImmediate(() => { this.idleArmed = false; idle(); });
      }
    };
    if (this.gro && !this.startGro(idle)) this.offloads = this.offloads.replace("udp-gro on", "udp-gro off (kernel refused UDP_GRO)");
    const ignore = () => { this.sendErrors++; };
    for (const f of this.families()) {
      f.socket.on("message", onMessage);
      f.socket.on("error", ignore);
    }
  }

  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    const f = to.address.includes(":") ? this.v6 : this.v4;
    if (f === null) { this.sendErrors++; return; }
    const q = f.queue;
    if (q !== null) {
      const name = f.names.get(to);
      if (name === null) { this.sendErrors++; return; }
      q.add(buf, off, len, to, name);
      if (q.count === q.capacity) this.flushOne(f);
      return;
    }
    this.sendCopy(f, buf, off, len, to);
  }

  /** dgram's send, from a copy in the ring. */
  private sendCopy(f: Family, buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    if (this.ring.length === 0) for (let i = 0; i < RING; i++) this.ring.push(Buffer.allocUnsafeSlow(this.maxDatagram));
    const b = this.ring[this.next];
    this.next = (this.next + 1) % RING;
    if (buf !== this.srcArr) {
      // A Buffer view of the source (the engine's memory), made once, copies without allocating.
      this.srcArr = buf;
      this.src = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.src!.copy(b, 0, off, off + len);
    f.socket.send(b, 0, len, to.port, f.family === 6 ? to.address.replace(/^\[|\]$/g, "") : to.address);
  }

  /** Sets SO_MARK on both sockets, so wg-quick's policy rule lets our own datagrams bypass the tunnel. */
  setMark(mark: number): void {
    for (const f of this.families()) {
      const fd = socketFd(f.socket);
      const v = new Uint8Array(new Int32Array([mark]).buffer);
      if (this.libc === null) throw new BindError(`cannot set fwmark ${mark} on the UDP socket: needs libc through koffi`);
      if (fd < 0 || this.libc.setsockopt(fd, SOL_SOCKET, SO_MARK, v, 4) !== 0) {
        throw new BindError(`cannot set fwmark ${mark} on the UDP socket (errno ${this.libc.errno()})`);
      }
    }
  }

  flush(): void {
    if (this.v4 !== null && this.v4.queue !== null && this.v4.queue.count > 0) this.flushOne(this.v4);
    if (this.v6 !== null && this.v6.queue !== null && this.v6.queue.count > 0) this.flushOne(this.v6);
  }

  /** One sendmmsg; what the kernel will not take now (a full buffer) goes through dgram, which waits for room. */
  private flushOne(f: Family): void {
    const q = f.queue!;
    const before = q.failed;
    const sent = q.send();
    this.sendErrors += q.failed - before;
    for (let i = sent; i < q.count; i++) this.sendCopy(f, q.bufs[i]!, q.offs[i], q.lens[i], q.tos[i]!);
    q.clear();
  }

  async close(): Promise<void> {
    for (const f of this.families()) {
      f.queue = null;
      // The reader thread leaves before its descriptor is closed (and maybe reused).
      if (f.ring !== null) await f.ring.stop();
    }
    const one = (f: Family | null) => new Promise<void>((r) => (f ? f.socket.close(() => r()) : r()));
    const p = Promise.all([one(this.v4), one(this.v6)]).then(() => {});
    this.v4 = this.v6 = null;
    return p;
  }
}

/** The libuv handle of a bound dgram socket (Node keeps it in its internal state). */
function socketHandle(s: dgram.Socket): { fd?: number; recvStop(): number } | null {
  const sym = Object.getOwnPropertySymbols(s).find((k) => k.description === "state symbol");
  const state = sym ? (s as unknown as Record<symbol, { handle?: { fd?: number; recvStop?(): number } }>)[sym] : undefined;
  const h = state?.handle;
  return h && typeof h.recvStop === "function" ? h as { fd?: number; recvStop(): number } : null;
}

/** The file descriptor of a bound dgram socket. */
function socketFd(s: dgram.Socket): number {
  return socketHandle(s)?.fd ?? -1;
}
