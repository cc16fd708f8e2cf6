// An in-memory network for engines under a virtual clock: datagrams go
// between engines' Outputs and fromNetwork, packets land in per-node tunnels.
import { Engine, type Endpoint, type EngineOptions, type Output } from "../../src/engine.ts";
import { nobleX25519 } from "../../src/x25519.ts";
import { nodeX25519 } from "../../adapters/node-compat/x25519.ts";
import { wasmBytes } from "#engine-wasm";
import type { X25519 } from "../../src/crypto.ts";

export const wasmModule = new WebAssembly.Module(wasmBytes);
export const EPOCH = 1_750_000_000_000;

export interface Datagram {
  from: Endpoint;
  to: Endpoint;
  data: Uint8Array;
  at: number;
}

export class Node {
  readonly tunnel: { data: Uint8Array; at: number }[] = [];
  wake = Infinity;
  constructor(readonly net: Net, readonly name: string, readonly engine: Engine, public ep: Endpoint) {}

  get publicKey(): Uint8Array {
    return this.engine.publicKey!;
  }

  /** Sends IP packets into the tunnel (as if read from TUN). */
  send(...packets: Uint8Array[]): void {
    const e = this.engine;
    for (let i = 0; i < packets.length; i++) {
      e.memory.set(packets[i], e.packetOffset(i));
      e.packetLengths[i] = packets[i].length;
    }
    this.net.take(this, e.fromTunnel(packets.length, this.net.now));
  }

  /** Hands this node a raw datagram, as if from `from`. */
  receive(data: Uint8Array, from: Endpoint): void {
    const e = this.engine;
    e.memory.set(data, e.datagramOffset(0));
    e.datagramLengths[0] = data.length;
    e.datagramFrom[0] = from;
    this.net.take(this, e.fromNetwork(1, this.net.now));
  }
}

export class Net {
  now = 0;
  readonly nodes: Node[] = [];
  /** In flight, not yet delivered. */
  queue: Datagram[] = [];
  /** Every datagram ever sent, for assertions. */
  readonly log: Datagram[] = [];
  /** Return false to lose a datagram. */
  filter: (d: Datagram) => boolean = () => true;

  add(name: string, opts: Partial<EngineOptions> & { privateKey: Uint8Array; port?: number; address?: string; x25519?: X25519 }): Node {
    const engine = new Engine({ wasm: wasmModule, x25519: opts.x25519 ?? nodeX25519, epoch: EPOCH, ...opts });
    engine.set({ privateKey: opts.privateKey, listenPort: opts.port ?? 51820 }, this.now);
    const node = new Node(this, name, engine, { address: opts.address ?? `192.0.2.${this.nodes.length + 1}`, port: opts.port ?? 51820 });
    this.nodes.push(node);
    return node;
  }

  /** Records what a node's engine asked for. */
  take(node: Node, out: Output): void {
    for (let i = 0; i < out.datagrams; i++) {
      const off = out.datagramOff[i];
      const d = { from: node.ep, to: out.datagramTo[i], data: out.datagramBuf[i].slice(off, off + out.datagramLen[i]), at: this.now };
      this.log.push(d);
      if (this.filter(d)) this.queue.push(d);
    }
    for (let i = 0; i < out.packets; i++) {
      const off = out.packetOff[i];
      node.tunnel.push({ data: out.packetBuf[i].slice(off, off + out.packetLen[i]), at: this.now });
    }
    node.wake = out.wake;
  }

  nodeAt(ep: Endpoint): Node | undefined {
    return this.nodes.find((n) => n.ep.address === ep.address && n.ep.port === ep.port);
  }

  /** Delivers everything in flight, and what that provokes, at the current time. */
  flush(limit = 10_000): void {
    while (this.queue.length > 0) {
      if (--limit < 0) throw new Error("network did not settle");
      const d = this.queue.shift()!;
      const node = this.nodeAt(d.to);
      if (node) node.receive(d.data, d.from);
    }
  }

  /** Moves the clock forward by ms, running every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.now + ms;
    this.flush();
    for (;;) {
      let next = Infinity, who: Node | null = null;
      for (const n of this.nodes) if (n.wake < next) { next = n.wake; who = n; }
      if (who === null || next > end) break;
      this.now = Math.max(this.now, next);
      this.take(who, who.engine.tick(this.now));
      this.flush();
    }
    this.now = end;
    for (const n of this.nodes) this.take(n, n.engine.tick(this.now));
    this.flush();
  }

  /** Datagrams in the log of a message type, optionally from a node. */
  sent(type: number, from?: Node, since = -Infinity): Datagram[] {
    return this.log.filter((d) => d.data[0] === type && d.at >= since && (!from || (d.from.address === from.ep.address && d.from.port === from.ep.port)));
  }
}

/** Two peers that know each other; a is 10.0.0.1 / fd00::1, b is 10.0.0.2 / fd00::2. */
export function pair(opts: { psk?: Uint8Array; keepalive?: number; x25519?: X25519; aOpts?: Partial<EngineOptions>; bOpts?: Partial<EngineOptions> } = {}): { net: Net; a: Node; b: Node } {
  const net = new Net();
  const x = opts.x25519 ?? nodeX25519;
  const ka = x.generate(), kb = x.generate();
  const a = net.add("a", { privateKey: ka.privateKey, x25519: x, ...opts.aOpts });
  const b = net.add("b", { privateKey: kb.privateKey, x25519: x, ...opts.bOpts });
  net.take(a, a.engine.set({
    peers: [{ publicKey: kb.publicKey, endpoint: b.ep, allowedIps: ["10.0.0.2/32", "fd00::2/128"], presharedKey: opts.psk, persistentKeepalive: opts.keepalive }],
  }, net.now));
  net.take(b, b.engine.set({
    peers: [{ publicKey: ka.publicKey, endpoint: a.ep, allowedIps: ["10.0.0.1/32", "fd00::1/128"], presharedKey: opts.psk }],
  }, net.now));
  return { net, a, b };
}

/** A pair whose handshake both finished: one packet each way went through (a's initiation, b's response, a's data). */
export function established(opts: Parameters<typeof pair>[0] = {}): { net: Net; a: Node; b: Node } {
  const p = pair(opts);
  const { net, a, b } = p;
  a.send(ipv4("10.0.0.1", "10.0.0.2", 100, 1));
  net.flush();
  b.send(ipv4("10.0.0.2", "10.0.0.1", 100, 2));
  net.flush();
  if (b.tunnel.length !== 1 || a.tunnel.length !== 1) throw new Error("the pair's first packets did not get through");
  return p;
}

export { nobleX25519, nodeX25519 };

// ---- packet builders ----

/** An IPv4 UDP-ish packet from src to dst with `size` total bytes; payload bytes = seq. */
export function ipv4(src: string, dst: string, size = 84, seq = 0): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[2] = size >> 8; p[3] = size & 0xff;
  p[8] = 64; p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  for (let i = 20; i < size; i++) p[i] = (seq + i) & 0xff;
  return p;
}

/** An IPv6 packet of `size` total bytes between two addresses of fd00::/64 given by their last byte. */
export function ipv6(srcLast: number, dstLast: number, size = 104, seq = 0): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x60;
  const payload = size - 40;
  p[4] = payload >> 8; p[5] = payload & 0xff;
  p[6] = 17; p[7] = 64;
  p[8] = 0xfd; p[23] = srcLast;
  p[24] = 0xfd; p[39] = dstLast;
  for (let i = 40; i < size; i++) p[i] = (seq + i) & 0xff;
  return p;
}

export function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function u32le(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

export function u64le(b: Uint8Array, off: number): bigint {
  return BigInt(u32le(b, off)) | (BigInt(u32le(b, off + 4)) << 32n);
}

export function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
}
