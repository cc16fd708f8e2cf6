// A UDP Bind made entirely over libc: a dual-stack socket (IPv4 alone where
// there is no IPv6) opened and bound through the FFI, sends through
// mmsg.ts (with GSO where the kernel takes UDP_SEGMENT), receives through a
// reader thread's recvmmsg (udp-ring.ts, with GRO where it takes
// UDP_GRO). For a host whose own UDP sockets read themselves and cannot be
// paused (Bun), so that GRO's coalesced buffers reach only this code.
import type { Endpoint, Engine } from "../../src/engine.ts";
import type { Bind } from "../ports/bind.ts";
import { UserError } from "../ports/errors.ts";
import { EACCES, EADDRINUSE, errnoText, type Pointer } from "./libc.ts";
import { MmsgQueue, probeGso } from "./mmsg.ts";
import { AF_INET, AF_INET6, SockaddrCache } from "./sockaddr.ts";
import { enableGro, UdpRing, type RecvLibc, type UdpReaderStart } from "./udp-ring.ts";

const SOCK_DGRAM = 2, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33, SO_MARK = 36;
const IPPROTO_IPV6 = 41, IPV6_V6ONLY = 26;
const SOCKET_BUFFER = 4 << 20;
const BATCH = 256;

/** The few socket calls this needs beyond the reader's. */
export interface SocketLibc<P extends Pointer = Pointer> extends RecvLibc<P> {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint8Array): number;
}

/** What the host gives: how to start the reader thread, and how to let I/O in between batches. */
export interface UdpReaderHost {
  spawn(start: UdpReaderStart, died: () => void): void;
  yieldToIo(): Promise<void>;
}

/** The UDP port could not be bound or set up; the message says why in one line. */
export class UdpBindError extends UserError {}

const int = (v: number) => new Uint8Array(new Int32Array([v]).buffer);

export class LinuxUdpBind<P extends Pointer> implements Bind {
  port = 0;
  sendErrors = 0;
  offloads = "udp-gso off, udp-gro off";
  private fd = -1;
  private readonly family: 4 | 6;
  private readonly queue: MmsgQueue<P>;
  private readonly names: SockaddrCache;
  private readonly ring: UdpRing;
  private started = false;

  /**
   * Binds UDP `port` (0: any free one) for both families.
   * @throws UdpBindError with a one-line reason
   */
  constructor(private readonly libc: SocketLibc<P>, port: number, private readonly host: UdpReaderHost) {
    let fd = libc.socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    this.family = fd >= 0 ? 6 : 4;
    if (fd < 0) fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new UdpBindError(`cannot open a UDP socket: ${errnoText(libc, libc.errno())}`);
    const sa = new Uint8Array(this.family === 6 ? 28 : 16);
    sa[0] = this.family === 6 ? AF_INET6 : AF_INET;
    sa[2] = port >> 8;
    sa[3] = port & 0xff;
    if (this.family === 6) libc.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, int(0), 4);
    if (libc.bind(fd, sa, sa.length) !== 0) {
      const e = libc.errno();
      libc.close(fd);
      if (e === EADDRINUSE) throw new UdpBindError(`UDP port ${port} is in use`);
      if (e === EACCES) throw new UdpBindError(`UDP port ${port}: permission denied`);
      throw new UdpBindError(`cannot bind UDP port ${port}: ${errnoText(libc, e)}`);
    }
    const len = new Uint8Array(new Uint32Array([sa.length]).buffer);
    libc.getsockname(fd, sa, len);
    this.port = (sa[2] << 8) | sa[3];
    // Room for bursts: root may pass net.core.[rw]mem_max.
    if (libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, int(SOCKET_BUFFER), 4) !== 0) libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, int(SOCKET_BUFFER), 4);
    if (libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, int(SOCKET_BUFFER), 4) !== 0) libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, int(SOCKET_BUFFER), 4);
    this.fd = fd;
    this.queue = new MmsgQueue(libc, fd, BATCH);
    this.names = new SockaddrCache(this.family);
    this.ring = new UdpRing(this.family === 6);
  }

  /** GSO sends and GRO receives where the kernel takes them (receiving is recvmmsg's either way). */
  setOffload(on: boolean): void {
    this.queue.gso = false;
    const gso = on && probeGso(this.libc, this.fd);
    if (gso) this.queue.enableGso();
    // GRO stays on once asked: the reader may already hold coalesced buffers, which it cuts either way.
    const gro = on && enableGro(this.libc, this.fd);
    const why = on ? "kernel refused" : "turned off";
    this.offloads = `udp-gso ${gso ? "on" : `off (${why})`}, udp-gro ${gro ? "on" : `off (${why})`}`;
  }

  start(_datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    if (this.started || this.fd < 0) return;
    this.started = true;
    this.host.spawn({ fd: this.fd, sab: this.ring.sab }, () => this.ring.died());
    void this.ring.watch(idle, this.host.yieldToIo);
  }

  readBatch(engine: Engine, first: number, max: number): number {
    return this.ring.read(engine, first, max);
  }

  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    if (this.fd < 0) return;
    const name = this.names.get(to);
    if (name === null) { this.sendErrors++; return; }
    this.queue.add(buf, off, len, to, name);
    if (this.queue.count === this.queue.capacity) this.flush();
  }

  /** One sendmmsg; what a full socket buffer will not take now is dropped, as the kernel would drop it. */
  flush(): void {
    const q = this.queue;
    if (q.count === 0) return;
    const before = q.failed;
    const sent = q.send();
    this.sendErrors += q.failed - before + (q.count - sent);
    q.clear();
  }

  /** Sets SO_MARK, so wg-quick's policy rule lets our own datagrams bypass the tunnel. */
  setMark(mark: number): void {
    if (this.libc.setsockopt(this.fd, SOL_SOCKET, SO_MARK, int(mark), 4) !== 0) {
      throw new UdpBindError(`cannot set fwmark ${mark} on the UDP socket: ${errnoText(this.libc, this.libc.errno())}`);
    }
  }

  async close(): Promise<void> {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    this.queue.clear();
    // The reader leaves before the descriptor is closed (and maybe reused).
    if (this.started) await this.ring.stop();
    this.libc.close(fd);
  }
}
