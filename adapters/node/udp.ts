// UDP for Node: node:dgram, one socket per address family on the same port
// (as wireguard-go listens on both). Receiving goes through dgram; sending
// goes out in batches with sendmmsg on the same sockets (mmsg.ts).
import dgram from "node:dgram";
import koffi from "koffi";
import type { Endpoint } from "../../src/engine.ts";
import type { Bind } from "../ports/bind.ts";
import { MmsgBatch } from "./mmsg.ts";

const RING = 2048;

export class BindError extends Error {}

export class NodeBind implements Bind {
  port = 0;
  private v4: dgram.Socket | null = null;
  private v6: dgram.Socket | null = null;
  private batch4: MmsgBatch | null = null;
  private batch6: MmsgBatch | null = null;
  // Fallback when a socket's fd cannot be had: dgram sends after a nextTick
  // and may queue, while the engine reuses its memory at the next batch, so
  // each datagram is copied into a ring of buffers that only hold ciphertext.
  private readonly ring: Buffer[];
  private next = 0;
  private idleArmed = false;
  private srcArr: Uint8Array | null = null;
  private src: Buffer | null = null;
  sendErrors = 0;

  constructor(maxDatagram: number) {
    this.ring = [];
    this.maxDatagram = maxDatagram;
  }
  private readonly maxDatagram: number;

  /** Binds both families on `port` (0: any free port). Throws BindError with a one-line reason. */
  async open(port: number): Promise<void> {
    const bindOne = (type: "udp4" | "udp6", p: number) => new Promise<dgram.Socket>((resolve, reject) => {
      const s = dgram.createSocket({ type, ipv6Only: type === "udp6", recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      s.once("error", reject);
      s.bind(p, type === "udp4" ? "0.0.0.0" : "::", () => { s.removeListener("error", reject); resolve(s); });
    });
    try {
      this.v4 = await bindOne("udp4", port);
      this.port = this.v4.address().port;
      try {
        this.v6 = await bindOne("udp6", this.port);
      } catch (e) {
        // No IPv6 on this host is fine; a taken port is not.
        if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") throw e;
        this.v6 = null;
      }
    } catch (e) {
      this.v4?.close();
      this.v4 = null;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new BindError(`UDP port ${port} is in use`);
      if (code === "EACCES") throw new BindError(`UDP port ${port}: permission denied`);
      throw new BindError(`cannot bind UDP port ${port}: ${(e as Error).message}`);
    }
  }

  /** Sets up sendmmsg on both sockets; without their fds, sends fall back to dgram. */
  private batches(): void {
    const fd4 = this.v4 ? socketFd(this.v4) : -1, fd6 = this.v6 ? socketFd(this.v6) : -1;
    this.batch4 = fd4 >= 0 ? new MmsgBatch(fd4, false, 256) : null;
    this.batch6 = fd6 >= 0 ? new MmsgBatch(fd6, true, 256) : null;
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
    this.batches();
    this.v4?.on("message", onMessage);
    this.v6?.on("message", onMessage);
    const ignore = () => { this.sendErrors++; };
    this.v4?.on("error", ignore);
    this.v6?.on("error", ignore);
  }

  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    const v6 = to.address.includes(":");
    const batch = v6 ? this.batch6 : this.batch4;
    if (batch !== null) { batch.add(buf, off, len, to); return; }
    const s = v6 ? this.v6 : this.v4;
    if (s === null) { this.sendErrors++; return; }
    if (this.ring.length === 0) for (let i = 0; i < RING; i++) this.ring.push(Buffer.allocUnsafeSlow(this.maxDatagram));
    const b = this.ring[this.next];
    this.next = (this.next + 1) % RING;
    if (buf !== this.srcArr) {
      // A Buffer view of the source (the engine's memory), made once, copies without allocating.
      this.srcArr = buf;
      this.src = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.src!.copy(b, 0, off, off + len);
    s.send(b, 0, len, to.port, v6 ? to.address.replace(/^\[|\]$/g, "") : to.address);
  }

  /** Sets SO_MARK on both sockets, so wg-quick's policy rule lets our own datagrams bypass the tunnel. */
  setMark(mark: number): void {
    for (const s of [this.v4, this.v6]) {
      if (s === null) continue;
      const fd = socketFd(s);
      const v = new Int32Array([mark]);
      if (fd < 0 || setsockopt()(fd, SOL_SOCKET, SO_MARK, v, 4) !== 0) {
        throw new BindError(`cannot set fwmark ${mark} on the UDP socket (errno ${koffi.errno()})`);
      }
    }
  }

  flush(): void {
    this.batch4?.flush();
    this.batch6?.flush();
  }

  close(): Promise<void> {
    this.batch4 = this.batch6 = null;
    const one = (s: dgram.Socket | null) => new Promise<void>((r) => (s ? s.close(() => r()) : r()));
    const p = Promise.all([one(this.v4), one(this.v6)]).then(() => {});
    this.v4 = this.v6 = null;
    return p;
  }
}

const SOL_SOCKET = 1, SO_MARK = 36;
let _setsockopt: ((fd: number, level: number, name: number, v: Int32Array, len: number) => number) | null = null;
function setsockopt() {
  _setsockopt ??= koffi.load("libc.so.6").func("int setsockopt(int fd, int level, int name, const void *v, unsigned int len)");
  return _setsockopt!;
}

/** The file descriptor of a bound dgram socket (Node keeps it in its internal state). */
function socketFd(s: dgram.Socket): number {
  const sym = Object.getOwnPropertySymbols(s).find((k) => k.description === "state symbol");
  const state = sym ? (s as unknown as Record<symbol, { handle?: { fd?: number } }>)[sym] : undefined;
  return state?.handle?.fd ?? -1;
}
