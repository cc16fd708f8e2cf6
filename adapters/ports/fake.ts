// In-memory fakes of the two ports, as wireguard-go's tuntest and bindtest:
// a Tun whose packets are injected and collected by the test (and which can
// answer pings), and a pair of Binds joined by an in-memory wire. A whole
// Device pair runs on them without root, sockets or a TUN device, on every
// runtime.
import type { Endpoint, Engine } from "../../src/engine.ts";
import { formatAddress, parseAddress } from "../../src/ip.ts";
import { echoPacket, IcmpHeader, parseIcmp, ICMP4_ECHO_REPLY, ICMP4_ECHO_REQUEST, ICMP6_ECHO_REPLY, ICMP6_ECHO_REQUEST } from "../../src/netstack/icmp.ts";
import { IP_OK, IpHeader, parseIp, PROTO_ICMP, PROTO_ICMPV6 } from "../../src/netstack/ip.ts";
import type { Bind } from "./bind.ts";
import type { Tun } from "./tun.ts";

/** An echo request (ICMP or ICMPv6 by the addresses' family) from `src` to `dst`, with `size` bytes of payload. */
export function pingPacket(src: string, dst: string, seq: number, size = 56, id = 0x7767): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (seq + i) & 0xff;
  return echoPacket(parseAddress(src), parseAddress(dst), false, id, seq, data, 0, size, seq);
}

/** An IP packet's parts a test looks at; null when it is not a valid IP packet. */
export function describePacket(p: Uint8Array): { src: string; dst: string; protocol: number; echo: "request" | "reply" | null; seq: number } | null {
  const h = new IpHeader();
  if (parseIp(p, h) !== IP_OK) return null;
  const src = formatAddress(p.slice(h.srcOff, h.srcOff + h.alen)), dst = formatAddress(p.slice(h.dstOff, h.dstOff + h.alen));
  let echo: "request" | "reply" | null = null, seq = 0;
  if (h.proto === PROTO_ICMP || h.proto === PROTO_ICMPV6) {
    const m = new IcmpHeader();
    if (parseIcmp(p, h.payloadOff, h.payloadLen, h.srcOff, h.dstOff, h.alen, m)) {
      if (m.type === ICMP4_ECHO_REQUEST || m.type === ICMP6_ECHO_REQUEST) echo = "request";
      if (m.type === ICMP4_ECHO_REPLY || m.type === ICMP6_ECHO_REPLY) echo = "reply";
      seq = m.seq;
    }
  }
  return { src, dst, protocol: h.proto, echo, seq };
}

export interface FakeTunOptions {
  name?: string;
  /** Default 1420. */
  mtu?: number;
  /** This side's tunnel addresses: an echo request to one of them is answered (as a host's kernel would). */
  addresses?: string[];
}

/** A Tun in memory: inject() is what applications send into the tunnel; `written` is what the device delivered. */
export class FakeTun implements Tun {
  readonly name: string;
  readonly mtu: number;
  /** Every packet the device wrote into the tunnel, in order (copies). */
  readonly written: Uint8Array[] = [];
  /** Called with each packet the device writes, after it is kept in `written`. */
  onwrite: ((packet: Uint8Array) => void) | null = null;
  /** Echo requests this Tun answered. */
  answered = 0;
  closed = false;
  private readonly queue: Uint8Array[] = [];
  private readonly addresses: Set<string>;
  private readable: (() => void) | null = null;
  private gone: (() => void) | null = null;
  private queued = false;

  constructor(opts: FakeTunOptions = {}) {
    this.name = opts.name ?? "fake0";
    this.mtu = opts.mtu ?? 1420;
    this.addresses = new Set((opts.addresses ?? []).map((a) => formatAddress(parseAddress(a))));
  }

  /** Queues one IP packet into the tunnel, as if an application on this side sent it. */
  inject(packet: Uint8Array): void {
    if (packet.length > this.mtu) throw new RangeError(`packet of ${packet.length} bytes exceeds the MTU ${this.mtu}`);
    this.queue.push(packet.slice());
    this.schedule();
  }

  private schedule(): void {
    if (this.queued || this.readable === null || this.queue.length === 0) return;
    this.queued = true;
    queueMicrotask(() => { this.queued = false; this.readable?.(); });
  }

  /** The interface disappears (as a deleted TUN device does). */
  remove(): void {
    this.gone?.();
  }

  start(readable: () => void): void {
    this.readable = readable;
    this.schedule();
  }

  read(engine: Engine, max: number): number {
    let n = 0;
    while (n < max && this.queue.length > 0) {
      const p = this.queue.shift()!;
      engine.memory.set(p, engine.packetOffset(n));
      engine.packetLengths[n++] = p.length;
    }
    return n;
  }

  write(buf: Uint8Array, off: number, len: number): void {
    if (this.closed) return;
    const p = buf.slice(off, off + len);
    this.written.push(p);
    this.onwrite?.(p);
    const d = describePacket(p);
    if (d?.echo === "request" && this.addresses.has(d.dst)) {
      // The reply goes back into the tunnel, from the address that was pinged.
      const h = new IpHeader();
      parseIp(p, h);
      const m = new IcmpHeader();
      parseIcmp(p, h.payloadOff, h.payloadLen, h.srcOff, h.dstOff, h.alen, m);
      this.answered++;
      this.inject(echoPacket(parseAddress(d.dst), parseAddress(d.src), true, m.id, m.seq, p, m.dataOff, m.dataLen, m.seq));
    }
  }

  onGone(gone: () => void): void {
    this.gone = gone;
  }

  close(): void {
    this.closed = true;
    this.readable = null;
  }
}

/** Where each end of a bindPair() is, as the other end sees it. */
export const FAKE_ENDPOINTS: readonly [Endpoint, Endpoint] = [
  Object.freeze({ address: "192.0.2.1", port: 51820 }),
  Object.freeze({ address: "192.0.2.2", port: 51821 }),
];

/** One end of an in-memory wire: what it sends arrives at the other end (in a later microtask), from its endpoint. */
export class FakeBind implements Bind {
  readonly port: number;
  /** Datagrams sent, received, and dropped by `drop`. */
  sent = 0;
  received = 0;
  dropped = 0;
  /** Decides, for each datagram sent, whether the wire loses it (default: never). */
  drop: ((datagram: Uint8Array) => boolean) | null = null;
  peer: FakeBind | null = null;
  closed = false;
  private onDatagram: ((buf: Uint8Array, off: number, len: number, from: Endpoint) => void) | null = null;
  private onIdle: (() => void) | null = null;
  private readonly inbox: Uint8Array[] = [];
  private queued = false;

  constructor(readonly endpoint: Endpoint) {
    this.port = endpoint.port;
  }

  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    this.onDatagram = datagram;
    this.onIdle = idle;
  }

  send(buf: Uint8Array, off: number, len: number, _to: Endpoint): void {
    if (this.closed) return;
    const d = buf.slice(off, off + len);
    this.sent++;
    if (this.drop?.(d)) { this.dropped++; return; }
    this.peer?.deliver(d);
  }

  private deliver(d: Uint8Array): void {
    if (this.closed) return;
    this.inbox.push(d);
    if (this.queued) return;
    this.queued = true;
    // A burst: every datagram of this turn, then idle once, as a socket's receive callbacks go.
    queueMicrotask(() => {
      this.queued = false;
      const from = this.peer!.endpoint;
      for (const m of this.inbox.splice(0)) {
        this.received++;
        this.onDatagram?.(m, 0, m.length, from);
      }
      this.onIdle?.();
    });
  }

  close(): void {
    this.closed = true;
    this.onDatagram = this.onIdle = null;
  }
}

/** Two binds joined by an in-memory wire: [a, b], at FAKE_ENDPOINTS[0] and [1]. */
export function bindPair(): [FakeBind, FakeBind] {
  const a = new FakeBind(FAKE_ENDPOINTS[0]), b = new FakeBind(FAKE_ENDPOINTS[1]);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
