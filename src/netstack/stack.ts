// The userspace TCP/IP stack: IP packets in and out, streams and sockets to
// the application. Sans-IO like the engine: no sockets, no timers, no clock.
//
// How a driver runs it (an adapter between a WireGuard Engine and the stack):
//
//   const stack = new Stack({ addresses: ["10.0.0.2", "fd00::2"], mtu: 1420, dns: ["10.0.0.1"] });
//   stack.onoutput = () => schedulePump();           // the application made something to send
//   // a packet the engine decrypted (Output.packets):
//   stack.input(packet, now); pump(now);
//   // pump: drain until empty, straight into the engine's memory:
//   function pump(now) {
//     let n = 0, len;
//     while (n < engine.batch && (len = stack.outputInto(engine.memory, engine.packetOffset(n), now)) > 0)
//       engine.packetLengths[n++] = len;
//     if (n > 0) send(engine.fromTunnel(n, now));
//     if (n === engine.batch) schedulePump();        // more may be waiting
//     armTimer(stack.nextTimer());                   // re-read after every input, tick and pump
//   }
//   // when that timer fires: stack.tick(now); pump(now);
//
// Promises (connect, ping, resolve) and streams settle in the microtasks
// after the call that moved them (input, tick, output). Nothing is sent
// from inside input or tick: they change state, and output() builds the
// packets, so a driver that feeds a batch of packets before pulling output
// gets one ACK for the batch. `now` is a monotonic clock in ms; it only
// ever moves forward (a smaller value counts as the latest one seen).
import { TcpConn } from "./conn.ts";
import { Resolver, ipLiteral } from "./dns.ts";
import { NetError } from "./errors.ts";
import { ICMP4_ECHO_REPLY, ICMP4_ECHO_REQUEST, ICMP6_ECHO_REPLY, ICMP6_ECHO_REQUEST, IcmpHeader, echoPacket, parseIcmp, portUnreachable } from "./icmp.ts";
import {
  IP_CHECKSUM, IP_FRAGMENT, IP_MALFORMED, IP_OK, IpHeader, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, addrKey, ipHeaderLen, parseIp,
  unicastSource, writeIp,
} from "./ip.ts";
import { storeChecksum } from "./checksum.ts";
import { TcpListener } from "./listener.ts";
import { PENDING, REFUSED, TcpForwarder, type ForwardFlow, type ForwardOptions } from "./forwarder.ts";
import { Pinger } from "./ping.ts";
import { CLOSED, TIME_WAIT, Tcb, type TcbHost, type TcbParent, type TcpConfig } from "./tcb.ts";
import { ACK, RST, SYN, FIN, Segment, TCP_HEADER, checksumOk, parseTcp, seqAdd, seqGt, writeTcp } from "./tcp.ts";
import { UdpHeader, parseUdp } from "./udp.ts";
import { UdpSocket, type UdpHost } from "./udpsocket.ts";
import { formatAddress, parseAddress } from "../ip.ts";

export { TcpConn } from "./conn.ts";
export { TcpListener } from "./listener.ts";
export { TcpForwarder, type ForwardFlow, type ForwardOptions } from "./forwarder.ts";
export { UdpSocket, type UdpMessage } from "./udpsocket.ts";
export { NetError, type NetErrorCode } from "./errors.ts";
export type { TcpState } from "./tcb.ts";

export interface StackOptions {
  /** The stack's own IPv4 and/or IPv6 addresses (the tunnel's Address =). */
  addresses: string[];
  /** The tunnel MTU: the largest IP packet in either direction (default 1420, the engine's). */
  mtu?: number;
  /** Fills an array with random bytes (default crypto.getRandomValues): ISNs, ports, DNS IDs. */
  random?: (bytes: Uint8Array) => void;
  /** DNS servers for resolve() and connect() by name. */
  dns?: string[] | { servers: string[]; timeout?: number; attempts?: number; cacheSize?: number };
  tcp?: {
    /** Send buffer per connection in bytes (default 256 KiB). */
    sendBuffer?: number;
    /** Receive buffer per connection in bytes, the largest window offered (default 256 KiB). */
    receiveBuffer?: number;
    /** Delayed ACK in ms (default 40; 0 acknowledges every segment). */
    delayedAck?: number;
    /** TIME-WAIT in ms (default 4000: 2 MSL shortened from 4 minutes). */
    timeWait?: number;
    /** FIN-WAIT-2 timeout in ms once nothing reads the connection (default 60000). */
    finWait2Timeout?: number;
    /** SYN retransmissions before ETIMEDOUT (default 6: about 127 s). */
    synRetries?: number;
    /** Data retransmissions before ETIMEDOUT (default 12). */
    retries?: number;
    /** RTO bounds in ms (defaults: 1000 initial, 200 min, 60000 max). */
    initialRto?: number;
    minRto?: number;
    maxRto?: number;
    /** Keepalive probes (off by default). */
    keepalive?: { idle: number; interval: number; count: number };
    /** Out-of-order ranges held per connection (default 8). */
    maxOutOfOrder?: number;
  };
  /**
   * TCP connections at once, in any state (default DEFAULT_MAX_CONNECTIONS).
   * At the limit a new SYN takes the place of the oldest half-open
   * connection; with none, the SYN is dropped: established ones never give way.
   */
  maxConnections?: number;
}

/** Counters; drops are counted, never thrown. */
export interface Stats {
  packetsIn: number;
  packetsOut: number;
  /** Not a well-formed IP packet, or a header that does not parse. */
  dropMalformed: number;
  dropChecksum: number;
  dropFragment: number;
  /** An unknown protocol or IPv6 header we do not handle. */
  dropUnsupported: number;
  /** Not addressed to one of our addresses, or from a non-unicast source. */
  dropNotForUs: number;
  /** The control queue (resets, ICMP answers) was full. */
  dropQueueFull: number;
  tcpSegmentsIn: number;
  tcpSegmentsOut: number;
  tcpRetransmits: number;
  tcpFastRetransmits: number;
  tcpTimeouts: number;
  tcpResetsIn: number;
  tcpResetsOut: number;
  tcpOutOfWindow: number;
  tcpOutOfOrder: number;
  tcpOutOfOrderDropped: number;
  /** SYNs dropped: the connection limit with no half-open connection to give way, or a forwarder's backlog full of SYNs waiting for admit. */
  tcpListenDrops: number;
  /** Half-open (SYN-RECEIVED) connections dropped, oldest first, to make room for a newer SYN (a SYN flood's mark). */
  tcpHalfOpenEvicted: number;
  udpIn: number;
  udpOut: number;
  /** Datagrams to a port nobody bound. */
  udpNoPort: number;
  /** Datagrams dropped at a full socket queue. */
  udpDropped: number;
  icmpIn: number;
  icmpOut: number;
}

/** What the stack holds, for tests and monitoring. */
export interface Usage {
  /** TCP connections in any state, TIME-WAIT included. */
  connections: number;
  /** Of those, passive ones still in SYN-RECEIVED. */
  halfOpen: number;
  listeners: number;
  udpSockets: number;
  pings: number;
  dnsQueries: number;
  dnsCache: number;
  /** Packets waiting in the control queue (resets, ICMP). */
  controlQueue: number;
  /** Connections and sockets with something to send. */
  ready: number;
  /** Bytes of TCP buffer storage allocated by live connections. */
  bufferBytes: number;
  /** Datagrams queued in UDP sockets. */
  udpQueued: number;
  /** Bytes of received datagrams waiting to be read in UDP sockets. */
  udpQueuedBytes: number;
}

const DEFAULT_MTU = 1420;
/**
 * TCP connections at once, any state, TIME-WAIT included (4096: each may
 * buffer up to 2 x 256 KiB, so the table, not memory, is what a flood meets first).
 */
export const DEFAULT_MAX_CONNECTIONS = 4096;
/** Half-open connections per listener (511, Node's net and Linux's somaxconn default before 5.4). */
export const DEFAULT_BACKLOG = 511;
/** Packets the control queue holds: resets, ICMP replies and errors, pings. */
const CONTROL_QUEUE = 256;
const EPHEMERAL_LOW = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_LOW;

export class Stack {
  readonly mtu: number;
  /** The stack's addresses, as given. */
  readonly addresses: readonly string[];
  readonly stats: Stats = {
    packetsIn: 0, packetsOut: 0, dropMalformed: 0, dropChecksum: 0, dropFragment: 0, dropUnsupported: 0, dropNotForUs: 0,
    dropQueueFull: 0, tcpSegmentsIn: 0, tcpSegmentsOut: 0, tcpRetransmits: 0, tcpFastRetransmits: 0, tcpTimeouts: 0,
    tcpResetsIn: 0, tcpResetsOut: 0, tcpOutOfWindow: 0, tcpOutOfOrder: 0, tcpOutOfOrderDropped: 0, tcpListenDrops: 0, tcpHalfOpenEvicted: 0,
    udpIn: 0, udpOut: 0, udpNoPort: 0, udpDropped: 0, icmpIn: 0, icmpOut: 0,
  };
  /**
   * Called when the application made something to send (a write, a read
   * that opened the window, connect, close, a datagram, a ping, a query)
   * outside input/tick/output. Schedule a pump; do not call into the stack
   * from inside it.
   */
  onoutput: (() => void) | null = null;

  private readonly v4: Uint8Array[] = [];
  private readonly v6: Uint8Array[] = [];
  private readonly random: (b: Uint8Array) => void;
  private readonly tcpConfig: TcpConfig;
  private readonly maxConnections: number;
  private readonly tcbs = new Map<string, Tcb>();
  /**
   * Passive connections in SYN-RECEIVED, oldest first (a Set keeps insertion
   * order). Ones that opened are dropped lazily as eviction walks past them.
   */
  private readonly halfOpen = new Set<Tcb>();
  private lastTcb: Tcb | null = null;
  private readonly listeners = new Map<number, TcpListener>();
  /** Takes SYNs to addresses that are not ours (forward mode), or null. */
  private forwarder: TcpForwarder<unknown> | null = null;
  private readonly udps = new Map<number, UdpSocket>();
  private readonly readySet = new Set<Tcb | UdpSocket>();
  private ctl: (Uint8Array | undefined)[] = [];
  private ctlHead = 0;
  private readonly pinger: Pinger;
  private readonly resolver: Resolver;
  private clock = 0;
  private depth = 0;
  private ipId: number;
  private readonly scratch: Uint8Array;
  private readonly ip = new IpHeader();
  private readonly seg = new Segment();
  private readonly udpHeader = new UdpHeader();
  private readonly icmpHeader = new IcmpHeader();
  private readonly rnd = new Uint8Array(4);
  private readonly tcpHost: TcbHost;
  private readonly udpHost: UdpHost;

  /** @throws RangeError for an invalid address, MTU or option. */
  constructor(opts: StackOptions) {
    if (!opts || !Array.isArray(opts.addresses) || opts.addresses.length === 0) throw new TypeError("Stack needs at least one address");
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    if (!Number.isInteger(this.mtu) || this.mtu < 576 || this.mtu > 65535) throw new RangeError(`invalid MTU ${opts.mtu}`);
    for (const a of opts.addresses) {
      const b = parseAddress(a);
      (b.length === 4 ? this.v4 : this.v6).push(b);
    }
    if (this.v6.length > 0 && this.mtu < 1280) throw new RangeError(`MTU ${this.mtu} is below IPv6's minimum of 1280`);
    this.addresses = [...opts.addresses];
    this.random = opts.random ?? ((b) => { crypto.getRandomValues(b); });
    const t = opts.tcp ?? {};
    const num = (v: number | undefined, d: number, min: number, name: string) => {
      const x = v ?? d;
      if (typeof x !== "number" || !(x >= min) || !Number.isFinite(x)) throw new RangeError(`invalid tcp.${name} ${v}`);
      return x;
    };
    this.tcpConfig = {
      sendBuffer: num(t.sendBuffer, 256 * 1024, 1024, "sendBuffer"),
      receiveBuffer: num(t.receiveBuffer, 256 * 1024, 1024, "receiveBuffer"),
      delayedAck: Math.min(500, num(t.delayedAck, 40, 0, "delayedAck")),
      timeWait: num(t.timeWait, 4000, 0, "timeWait"),
      finWait2Timeout: num(t.finWait2Timeout, 60_000, 0, "finWait2Timeout"),
      synRetries: num(t.synRetries, 6, 0, "synRetries"),
      retries: num(t.retries, 12, 1, "retries"),
      rto: {
        initial: num(t.initialRto, 1000, 1, "initialRto"),
        min: num(t.minRto, 200, 1, "minRto"),
        max: num(t.maxRto, 60_000, 1, "maxRto"),
      },
      keepalive: t.keepalive ? {
        idle: num(t.keepalive.idle, 0, 1, "keepalive.idle"),
        interval: num(t.keepalive.interval, 0, 1, "keepalive.interval"),
        count: num(t.keepalive.count, 0, 1, "keepalive.count"),
      } : null,
      maxOutOfOrder: num(t.maxOutOfOrder, 8, 1, "maxOutOfOrder"),
    };
    if (this.tcpConfig.sendBuffer > 1 << 30 || this.tcpConfig.receiveBuffer > 1 << 30) throw new RangeError("TCP buffers are limited to 1 GiB");
    this.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (!Number.isInteger(this.maxConnections) || this.maxConnections < 1) throw new RangeError(`invalid maxConnections ${opts.maxConnections}`);
    this.scratch = new Uint8Array(this.mtu);
    this.ipId = this.rand32() & 0xffff;
    this.pinger = new Pinger(this.rand32() & 0xffff);
    const stack = this;
    const dns = Array.isArray(opts.dns) ? { servers: opts.dns } : opts.dns ?? { servers: [] };
    this.resolver = new Resolver({
      get now() { return stack.clock; },
      openUdp: () => this.udp(),
      random16: () => this.rand32() & 0xffff,
    }, {
      servers: dns.servers.map((s) => parseAddress(s)),
      timeout: dns.timeout ?? 2000,
      attempts: dns.attempts ?? 4,
      cacheSize: dns.cacheSize ?? 64,
      maxQueries: 32,
    });
    this.tcpHost = {
      counters: this.stats,
      get now() { return stack.clock; },
      ready: (t) => this.wake(t),
      gone: (t) => {
        if (this.tcbs.get(t.key) === t) this.tcbs.delete(t.key);
        this.halfOpen.delete(t);
        this.readySet.delete(t);
        if (this.lastTcb === t) this.lastTcb = null;
      },
      control: (p) => { this.control(p); },
      nextIpId: () => this.nextIpId(),
    };
    this.udpHost = {
      mtu: this.mtu,
      counters: this.stats,
      source: (dst) => this.source(dst),
      ready: (s) => this.wake(s),
      unbind: (s) => { if (this.udps.get(s.port) === s) this.udps.delete(s.port); this.readySet.delete(s); },
      nextIpId: () => this.nextIpId(),
    };
  }

  // ---- the driver's side ---------------------------------------------------------

  /** The latest time given to the stack (ms). */
  get now(): number {
    return this.clock;
  }

  /**
   * A packet from the tunnel. Anything malformed, corrupt or not for us is
   * counted in `stats` and dropped; this never throws for a packet's content.
   * The packet is not kept (payloads are copied), so the caller may reuse it.
   */
  input(packet: Uint8Array, now: number): void {
    if (!(packet instanceof Uint8Array)) throw new TypeError("Stack.input takes a Uint8Array");
    this.setClock(now);
    this.depth++;
    try {
      this.dispatch(packet);
    } finally {
      this.depth--;
    }
  }

  /**
   * Writes the next packet to send into buf at off (room for `mtu` bytes
   * needed) and returns its length, or 0 when nothing is waiting. Pass `now`
   * (else the latest time seen is used: it timestamps RTT samples and arms
   * retransmission timers).
   */
  outputInto(buf: Uint8Array, off = 0, now?: number): number {
    if (buf.length - off < this.mtu) throw new RangeError(`outputInto needs ${this.mtu} bytes of room`);
    if (now !== undefined) this.setClock(now);
    this.depth++;
    try {
      if (this.ctlHead < this.ctl.length) {
        const p = this.ctl[this.ctlHead]!;
        this.ctl[this.ctlHead++] = undefined;
        if (this.ctlHead === this.ctl.length) { this.ctl = []; this.ctlHead = 0; }
        buf.set(p, off);
        this.stats.packetsOut++;
        return p.length;
      }
      for (const e of this.readySet) {
        this.readySet.delete(e);
        const n = e.emit(buf, off, this.clock);
        if (n > 0) {
          this.readySet.add(e); // to the back: connections take turns
          this.stats.packetsOut++;
          return n;
        }
      }
      return 0;
    } finally {
      this.depth--;
    }
  }

  /** The next packet to send as a new array, or null. See outputInto. */
  output(now?: number): Uint8Array | null {
    const n = this.outputInto(this.scratch, 0, now);
    return n > 0 ? this.scratch.slice(0, n) : null;
  }

  /** When tick wants to run next (ms, same clock as `now`), or Infinity. */
  nextTimer(): number {
    let d = this.resolver.deadline();
    for (const t of this.tcbs.values()) {
      const x = t.deadline();
      if (x < d) d = x;
    }
    return Math.min(d, this.pinger.deadline());
  }

  /** Runs the timers due at `now`: retransmissions, probes, delayed ACKs, TIME-WAIT, ping and DNS timeouts. */
  tick(now: number): void {
    this.setClock(now);
    now = this.clock;
    this.depth++;
    try {
      for (const t of this.tcbs.values()) {
        if (t.deadline() > now) continue;
        t.tick(now);
        if (t.state !== CLOSED) this.readySet.add(t);
      }
      this.pinger.tick(now);
      this.resolver.tick(now);
    } finally {
      this.depth--;
    }
  }

  // ---- the application's side ------------------------------------------------------

  /**
   * Opens a TCP connection to host:port; host is an IPv4/IPv6 literal or a
   * name resolved with the configured DNS servers (each address is tried in
   * turn). Resolves when the connection is ESTABLISHED; rejects with NetError
   * ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EMFILE, ENOTFOUND...
   * @throws RangeError (as a rejection) for a bad port.
   */
  async connect(host: string, port: number, opts: { localPort?: number } = {}): Promise<TcpConn> {
    checkPort(port, "port");
    if (opts.localPort !== undefined) checkPort(opts.localPort, "localPort");
    const literal = ipLiteral(host);
    const targets = literal ? [literal] : (await this.resolve(host)).map((a) => parseAddress(a));
    let last: unknown = null;
    for (const dst of targets) {
      try {
        return await this.open(dst, port, opts.localPort);
      } catch (e) {
        last = e;
        if (!(e instanceof NetError) || !["ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH"].includes(e.code)) throw e;
      }
    }
    throw last;
  }

  private open(dst: Uint8Array, port: number, localPort: number | undefined): Promise<TcpConn> {
    const src = this.source(dst);
    if (!src) return Promise.reject(new NetError("ENETUNREACH", `no local address for ${formatAddress(dst)}`));
    if (this.tcbs.size >= this.maxConnections) return Promise.reject(new NetError("EMFILE", "too many TCP connections"));
    const lport = localPort ?? this.ephemeralTcp(src, dst, port);
    const key = tcbKey(src, 0, dst, 0, src.length, lport, port);
    if (lport < 0 || this.tcbs.has(key)) return Promise.reject(new NetError("EADDRINUSE", "no free local port for that destination"));
    const t = new Tcb(this.tcpHost, this.tcpConfig, key, src, lport, dst.slice(), port, this.rand32(), this.mtu, false);
    this.tcbs.set(key, t);
    return new Promise<TcpConn>((resolve, reject) => {
      t.parent = { opened: (tcb) => resolve(new TcpConn(tcb)), failed: (_t, err) => reject(err) };
      t.connect(this.clock);
    });
  }

  /**
   * Accepts TCP connections on `port` (every local address); onConnection
   * gets each once it is ESTABLISHED (in a microtask). `backlog` caps
   * connections in SYN-RECEIVED (default DEFAULT_BACKLOG); a SYN beyond it
   * takes the place of the listener's oldest half-open connection, as a
   * SYN backlog does, so a flood cannot starve a later legitimate client.
   * @throws NetError EADDRINUSE when the port already listens; RangeError for a bad port.
   */
  listen(port: number, onConnection: (conn: TcpConn) => void, opts: { backlog?: number } = {}): TcpListener {
    checkPort(port, "port");
    if (typeof onConnection !== "function") throw new TypeError("listen needs an onConnection callback");
    if (this.listeners.has(port)) throw new NetError("EADDRINUSE", `TCP port ${port} is already listening`);
    const backlog = opts.backlog ?? DEFAULT_BACKLOG;
    if (!Number.isInteger(backlog) || backlog < 1) throw new RangeError(`invalid backlog ${opts.backlog}`);
    const l = new TcpListener((x) => this.unlisten(x), port, onConnection, backlog);
    this.listeners.set(port, l);
    return l;
  }

  /**
   * Forward mode, for a gateway: accepts TCP connections to ANY address and
   * port that is not the stack's own, as if it were that host. Each
   * connection's local side is the destination the peer asked for (so
   * `conn.localAddress`/`localPort` say where to forward it, and replies
   * carry that source); onConnection gets it once ESTABLISHED (in a
   * microtask), with the token `admit` gave (forwarder.ts). The stack's own
   * addresses are untouched: listen() serves them, and a SYN to one of them
   * without a listener is reset as before. Only TCP is forwarded: other
   * packets to foreign addresses still count as dropNotForUs. maxConnections
   * applies. Closing the returned forwarder ends forward mode (established
   * connections stay, half-open ones are reset).
   * @throws NetError EADDRINUSE when forward mode is already on; RangeError for a bad backlog
   * @example stack.forward((conn) => relay(conn, conn.localAddress, conn.localPort));
   */
  forward<T = true>(onConnection: (conn: TcpConn, token: T) => void, opts: ForwardOptions<T> = {}): TcpForwarder<T> {
    if (typeof onConnection !== "function") throw new TypeError("forward needs an onConnection callback");
    if (this.forwarder && !this.forwarder.closed) throw new NetError("EADDRINUSE", "forward mode is already on");
    const f = new TcpForwarder<T>((x) => this.unforward(x), onConnection, opts);
    this.forwarder = f as unknown as TcpForwarder<unknown>;
    return f;
  }

  private unforward(f: unknown): void {
    if (this.forwarder === f) this.forwarder = null;
    for (const t of [...this.tcbs.values()]) if (t.parent === f) t.abort();
  }

  private unlisten(l: TcpListener): void {
    if (this.listeners.get(l.port) === l) this.listeners.delete(l.port);
    for (const t of [...this.tcbs.values()]) if (t.parent === l) t.abort();
  }

  /**
   * A UDP socket bound to `port` (every local address), or to a random free
   * port when omitted or 0.
   * @throws NetError EADDRINUSE when the port is taken; RangeError for a bad port.
   */
  udp(port = 0): UdpSocket {
    if (port !== 0) checkPort(port, "port");
    if (port === 0) {
      const start = this.rand32() % EPHEMERAL_COUNT;
      for (let i = 0; i < EPHEMERAL_COUNT && port === 0; i++) {
        const p = EPHEMERAL_LOW + ((start + i) % EPHEMERAL_COUNT);
        if (!this.udps.has(p)) port = p;
      }
      if (port === 0) throw new NetError("EMFILE", "no free UDP port");
    } else if (this.udps.has(port)) throw new NetError("EADDRINUSE", `UDP port ${port} is taken`);
    const s = new UdpSocket(this.udpHost, port);
    this.udps.set(port, s);
    return s;
  }

  /**
   * Sends an ICMP or ICMPv6 echo request to `address` at time `now` and
   * resolves with the round-trip time in ms when the matching reply comes;
   * rejects with ETIMEDOUT after `timeout` ms (default 5000).
   */
  ping(address: string, now: number, opts: { timeout?: number; size?: number } = {}): Promise<number> {
    let dst: Uint8Array;
    try { dst = parseAddress(address); } catch (e) { return Promise.reject(e); }
    this.setClock(now);
    const src = this.source(dst);
    if (!src) return Promise.reject(new NetError("ENETUNREACH", `no local address for ${address}`));
    const size = opts.size ?? 56, timeout = opts.timeout ?? 5000;
    const max = this.mtu - ipHeaderLen(dst.length) - 8;
    if (!Number.isInteger(size) || size < 0 || size > max) return Promise.reject(new RangeError(`invalid ping size ${opts.size}`));
    const seq = this.pinger.take();
    if (seq < 0) return Promise.reject(new NetError("EMFILE", "too many pings in flight"));
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = i & 0xff;
    if (!this.control(echoPacket(src, dst, false, this.pinger.id, seq, data, 0, size, this.nextIpId()))) {
      return Promise.reject(new NetError("EMFILE", "the control queue is full"));
    }
    this.stats.icmpOut++;
    this.notify();
    return this.pinger.wait(seq, dst, this.clock, timeout);
  }

  /**
   * Resolves a name with the configured DNS servers: A and AAAA records for
   * the families the stack has addresses of (or `family`), IPv4 first. An IP
   * literal resolves to itself.
   */
  async resolve(name: string, opts: { family?: 4 | 6 } = {}): Promise<string[]> {
    const literal = ipLiteral(name);
    if (literal) return [formatAddress(literal)];
    const families: (4 | 6)[] = opts.family ? [opts.family] : [];
    if (!opts.family) {
      if (this.v4.length) families.push(4);
      if (this.v6.length) families.push(6);
    }
    const p = this.resolver.resolve(name, families);
    this.notify();
    return p;
  }

  /** What the stack holds right now. */
  usage(): Usage {
    let bufferBytes = 0, udpQueued = 0, udpQueuedBytes = 0, halfOpen = 0;
    for (const t of this.tcbs.values()) bufferBytes += t.allocated;
    for (const t of this.halfOpen) if (t.parent !== null && t.state !== CLOSED) halfOpen++;
    for (const s of this.udps.values()) { udpQueued += s.queued; udpQueuedBytes += s.queuedBytes; }
    return {
      connections: this.tcbs.size,
      halfOpen,
      listeners: this.listeners.size,
      udpSockets: this.udps.size,
      pings: this.pinger.inFlight,
      dnsQueries: this.resolver.inFlight,
      dnsCache: this.resolver.cached,
      controlQueue: this.ctl.length - this.ctlHead,
      ready: this.readySet.size,
      bufferBytes,
      udpQueued,
      udpQueuedBytes,
    };
  }

  // ---- inside ------------------------------------------------------------------------

  private setClock(now: number): void {
    if (typeof now !== "number" || !Number.isFinite(now)) throw new RangeError(`invalid time ${now}`);
    if (now > this.clock) this.clock = now;
  }

  private rand32(): number {
    this.random(this.rnd);
    const r = this.rnd;
    return ((r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]) >>> 0;
  }

  private nextIpId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  /** Something has output: remember it, and tell the driver unless it is inside a call that it will follow with a pump. */
  private wake(e: Tcb | UdpSocket): void {
    this.readySet.add(e);
    this.notify();
  }

  private notify(): void {
    if (this.depth === 0) this.onoutput?.();
  }

  /** Queues a finished packet; false (counted) when the queue is full. */
  private control(p: Uint8Array): boolean {
    if (this.ctl.length - this.ctlHead >= CONTROL_QUEUE) {
      this.stats.dropQueueFull++;
      return false;
    }
    this.ctl.push(p);
    this.notify();
    return true;
  }

  /** Our address of dst's family. */
  private source(dst: Uint8Array): Uint8Array | null {
    const list = dst.length === 4 ? this.v4 : this.v6;
    return list.length > 0 ? list[0] : null;
  }

  private isLocal(p: Uint8Array, off: number, alen: number): boolean {
    const list = alen === 4 ? this.v4 : this.v6;
    outer: for (const a of list) {
      for (let i = 0; i < alen; i++) if (a[i] !== p[off + i]) continue outer;
      return true;
    }
    return false;
  }

  private ephemeralTcp(src: Uint8Array, dst: Uint8Array, port: number): number {
    const start = this.rand32() % EPHEMERAL_COUNT;
    for (let i = 0; i < EPHEMERAL_COUNT; i++) {
      const p = EPHEMERAL_LOW + ((start + i) % EPHEMERAL_COUNT);
      if (!this.listeners.has(p) && !this.tcbs.has(tcbKey(src, 0, dst, 0, src.length, p, port))) return p;
    }
    return -1;
  }

  private dispatch(p: Uint8Array): void {
    const s = this.stats, h = this.ip;
    s.packetsIn++;
    const r = parseIp(p, h);
    if (r !== IP_OK) {
      if (r === IP_CHECKSUM) s.dropChecksum++;
      else if (r === IP_FRAGMENT) s.dropFragment++;
      else if (r === IP_MALFORMED) s.dropMalformed++;
      else s.dropUnsupported++;
      return;
    }
    if (!unicastSource(p, h.srcOff, h.alen)) { s.dropNotForUs++; return; }
    if (!this.isLocal(p, h.dstOff, h.alen)) {
      // Forward mode takes TCP to any unicast address; the rest is not for us.
      if (this.forwarder !== null && h.proto === PROTO_TCP && unicastSource(p, h.dstOff, h.alen)) this.tcpInput(p, h, true);
      else s.dropNotForUs++;
      return;
    }
    if (h.proto === PROTO_TCP) this.tcpInput(p, h, false);
    else if (h.proto === PROTO_UDP) this.udpInput(p, h);
    else if ((h.proto === PROTO_ICMP && h.version === 4) || (h.proto === PROTO_ICMPV6 && h.version === 6)) this.icmpInput(p, h);
    else s.dropUnsupported++;
  }

  /** `forwarded`: to a foreign address, taken by forward mode (the forwarder stands in for the listener). */
  private tcpInput(p: Uint8Array, h: IpHeader, forwarded: boolean): void {
    const s = this.seg, st = this.stats;
    if (!parseTcp(p, h.payloadOff, h.payloadLen, s) || s.srcPort === 0 || s.dstPort === 0) { st.dropMalformed++; return; }
    if (!checksumOk(p, h.srcOff, h.dstOff, h.alen, h.payloadOff, h.payloadLen)) { st.dropChecksum++; return; }
    st.tcpSegmentsIn++;
    // The last connection hit first: a bulk flow skips building the key.
    let t: Tcb | undefined = this.lastTcb ?? undefined, key = "";
    if (!t || t.state === CLOSED || !sameTuple(t, p, h, s)) {
      key = tcbKey(p, h.dstOff, p, h.srcOff, h.alen, s.dstPort, s.srcPort);
      t = this.tcbs.get(key);
      this.lastTcb = t ?? null;
    }
    const l = forwarded ? this.forwarder : this.listeners.get(s.dstPort);
    // RFC 9293 3.10.7.4 / RFC 1122 4.2.2.13: a new SYN beyond the old connection's sequence space may reopen from TIME-WAIT.
    if (t && t.state === TIME_WAIT && l && (s.flags & (SYN | ACK | RST)) === SYN && seqGt(s.seq, t.rcvNxt)) {
      t.terminate(null);
      t = undefined;
    }
    if (!t && key === "") key = tcbKey(p, h.dstOff, p, h.srcOff, h.alen, s.dstPort, s.srcPort);
    if (t) {
      this.lastTcb = t;
      t.input(s, p, this.clock);
      if (t.state !== CLOSED) this.readySet.add(t);
      return;
    }
    // RFC 9293 3.10.7.1 and 3.10.7.2: no connection. Resets are ignored; a
    // listener answers an ACK with a reset, takes a SYN, and drops the rest.
    if ((s.flags & RST) !== 0) return;
    if (l && !l.closed && (s.flags & ACK) === 0) {
      if ((s.flags & SYN) === 0) return;
      if (l instanceof TcpForwarder) { this.forwardSyn(l, key, p, h, s); return; }
      if (!this.room(l)) { st.tcpListenDrops++; return; }
      const n = this.passiveTcb(key, p, h, s);
      n.parent = l;
      l.halfOpen++;
      this.halfOpen.add(n);
      n.accept(s, this.clock);
      return;
    }
    this.resetFor(p, h, s);
  }

  /**
   * Room for one more half-open connection of `parent`: at its backlog its
   * oldest half-open connection gives way, and at the connection limit the
   * oldest half-open one of any parent does. False when nothing may give way.
   */
  private room(parent: TcpListener | TcpForwarder<unknown>): boolean {
    if (parent.halfOpen >= parent.backlog && !this.evictHalfOpen(parent)) return false;
    return this.tcbs.size < this.maxConnections || this.evictHalfOpen(null);
  }

  /** Ends the oldest half-open connection (of `parent`, or of any); false when there is none. */
  private evictHalfOpen(parent: TcbParent | null): boolean {
    for (const t of this.halfOpen) {
      if (t.parent === null || t.state === CLOSED) { this.halfOpen.delete(t); continue; }
      if (parent !== null && t.parent !== parent) continue;
      this.halfOpen.delete(t);
      this.stats.tcpHalfOpenEvicted++;
      // No reset: under a flood the source is likely forged; a real client's ACK meets a reset later.
      t.terminate(new NetError("ECONNABORTED", "half-open connection gave way to a newer SYN"));
      return true;
    }
    return false;
  }

  /** A TCB in LISTEN's place for the SYN in p (the caller sets its parent and accepts). */
  private passiveTcb(key: string, p: Uint8Array, h: IpHeader, s: Segment): Tcb {
    const local = p.slice(h.dstOff, h.dstOff + h.alen), remote = p.slice(h.srcOff, h.srcOff + h.alen);
    const n = new Tcb(this.tcpHost, this.tcpConfig, key, local, s.dstPort, remote, s.srcPort, this.rand32(), this.mtu, true);
    this.tcbs.set(key, n);
    return n;
  }

  /**
   * A SYN in forward mode: asks the forwarder (forwarder.ts), holding a copy
   * of the SYN while it decides, then refuses it with a reset or opens the
   * connection as a listener would.
   */
  private forwardSyn(f: TcpForwarder<unknown>, key: string, p: Uint8Array, h: IpHeader, s: Segment): void {
    const st = this.stats;
    let held: Uint8Array | null = null;
    const d = f.decide(key, () => f.halfOpen > 0 && this.evictHalfOpen(f), () => {
      held = p.slice(0, h.payloadOff + h.payloadLen);
      return {
        localAddress: formatAddress(p.subarray(h.dstOff, h.dstOff + h.alen)), localPort: s.dstPort,
        remoteAddress: formatAddress(p.subarray(h.srcOff, h.srcOff + h.alen)), remotePort: s.srcPort,
      };
    }, () => {
      // The answer came: the held SYN again (not counted twice), then a pump for what it caused.
      if (held === null || this.forwarder !== f) return;
      st.packetsIn--;
      st.tcpSegmentsIn--;
      this.input(held, this.clock);
      this.notify();
    });
    if (d === PENDING) return;
    if (d === "full") { st.tcpListenDrops++; return; }
    if (d === REFUSED) { this.resetFor(p, h, s); return; }
    if (!this.room(f)) { st.tcpListenDrops++; f.release(d.token); return; }
    const n = this.passiveTcb(key, p, h, s);
    n.parent = f;
    f.adopt(n, d.token);
    this.halfOpen.add(n);
    n.accept(s, this.clock);
  }

  /** RFC 9293 3.10.7.1: the reset answering a segment for no connection. */
  private resetFor(p: Uint8Array, h: IpHeader, s: Segment): void {
    const local = p.subarray(h.dstOff, h.dstOff + h.alen), remote = p.subarray(h.srcOff, h.srcOff + h.alen);
    const ihl = ipHeaderLen(h.alen), r = new Uint8Array(ihl + TCP_HEADER);
    writeIp(r, 0, local, remote, PROTO_TCP, TCP_HEADER, this.nextIpId());
    if ((s.flags & ACK) !== 0) writeTcp(r, ihl, s.dstPort, s.srcPort, s.ack, 0, RST, 0);
    else {
      const len = s.dataLen + (s.flags & SYN ? 1 : 0) + (s.flags & FIN ? 1 : 0);
      writeTcp(r, ihl, s.dstPort, s.srcPort, 0, seqAdd(s.seq, len), RST | ACK, 0);
    }
    storeChecksum(r, ihl, TCP_HEADER, local, remote, PROTO_TCP, 16);
    if (this.control(r)) this.stats.tcpResetsOut++;
  }

  private udpInput(p: Uint8Array, h: IpHeader): void {
    const u = this.udpHeader, st = this.stats;
    if (!parseUdp(p, h.payloadOff, h.payloadLen, h.srcOff, h.dstOff, h.alen, u)) { st.dropMalformed++; return; }
    st.udpIn++;
    const sock = this.udps.get(u.dstPort);
    if (!sock) {
      // RFC 1122 4.1.3.1: port unreachable.
      st.udpNoPort++;
      const local = p.subarray(h.dstOff, h.dstOff + h.alen), remote = p.subarray(h.srcOff, h.srcOff + h.alen);
      const end = h.payloadOff + h.payloadLen;
      if (this.control(portUnreachable(local, remote, p.subarray(0, end), h.payloadOff, this.mtu, this.nextIpId()))) st.icmpOut++;
      return;
    }
    sock.receive(p.subarray(u.dataOff, u.dataOff + u.dataLen), p.subarray(h.srcOff, h.srcOff + h.alen), u.srcPort);
  }

  private icmpInput(p: Uint8Array, h: IpHeader): void {
    const m = this.icmpHeader, st = this.stats;
    if (!parseIcmp(p, h.payloadOff, h.payloadLen, h.srcOff, h.dstOff, h.alen, m)) { st.dropMalformed++; return; }
    st.icmpIn++;
    const v4 = h.version === 4;
    if (m.code === 0 && m.type === (v4 ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST)) {
      // Echo: the same identifier, sequence number and data back (RFC 792, RFC 4443 4.2).
      if (ipHeaderLen(h.alen) + 8 + m.dataLen > this.mtu) return;
      const local = p.subarray(h.dstOff, h.dstOff + h.alen), remote = p.subarray(h.srcOff, h.srcOff + h.alen);
      if (this.control(echoPacket(local, remote, true, m.id, m.seq, p, m.dataOff, m.dataLen, this.nextIpId()))) st.icmpOut++;
      return;
    }
    if (m.code === 0 && m.type === (v4 ? ICMP4_ECHO_REPLY : ICMP6_ECHO_REPLY) && m.id === this.pinger.id) {
      this.pinger.reply(m.seq, p, h.srcOff, h.alen, this.clock);
    }
    // Other ICMP (errors, NDP, ...) is counted and ignored.
  }
}

/** Connection key: local address and port, remote address and port. */
function tcbKey(l: Uint8Array, lOff: number, r: Uint8Array, rOff: number, alen: number, lport: number, rport: number): string {
  return `${addrKey(l, lOff, alen)}|${lport}|${addrKey(r, rOff, alen)}|${rport}`;
}

/** Whether the segment in p (parsed into h and s) belongs to t's connection. */
function sameTuple(t: Tcb, p: Uint8Array, h: IpHeader, s: Segment): boolean {
  if (t.localPort !== s.dstPort || t.remotePort !== s.srcPort || t.local.length !== h.alen) return false;
  const l = t.local, r = t.remote;
  for (let i = 0; i < h.alen; i++) if (l[i] !== p[h.dstOff + i] || r[i] !== p[h.srcOff + i]) return false;
  return true;
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`invalid ${what} ${port}`);
}
