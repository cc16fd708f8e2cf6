// Engines for the protocol fuzz targets (handshake, transport): fixed keys,
// a virtual clock, and datagrams routed between them by hand. A target
// builds its world once at load; an input then costs only what it exercises.
// Keys are fixed so that seeds captured from one world (a genuine exchange)
// mean the same in the next, and the clock of a target starts a day in, so
// a captured initiation is always older than any the engines have accepted.
import { Engine, type EngineOptions, type Endpoint, type Output } from "../../src/engine.ts";
import { clamp, hash } from "../../src/crypto.ts";
import { EPOCH, ipv4, nodeX25519, wasmModule } from "../helpers/net.ts";

export { EPOCH, nodeX25519 as dh };

/** Where a target's clock starts (ms): after any time a seed was captured at. */
export const START = 86_400_000;

/** A key pair fixed by its name. */
export function fixedKey(name: string): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const privateKey = clamp(hash(new TextEncoder().encode(`wg-js fuzz key ${name}`)));
  return { privateKey, publicKey: nodeX25519.publicKey(privateKey) };
}

export interface Sent { to: Endpoint; data: Uint8Array }
/** What one engine call produced, copied out of its reused Output. */
export interface Result { datagrams: Sent[]; packets: Uint8Array[] }

export function collect(out: Output): Result {
  const datagrams: Sent[] = [], packets: Uint8Array[] = [];
  for (let i = 0; i < out.datagrams; i++) {
    const off = out.datagramOff[i];
    datagrams.push({ to: out.datagramTo[i], data: out.datagramBuf[i].slice(off, off + out.datagramLen[i]) });
  }
  for (let i = 0; i < out.packets; i++) packets.push(out.packetBuf[i].slice(out.packetOff[i], out.packetOff[i] + out.packetLen[i]));
  return { datagrams, packets };
}

export const sameEndpoint = (x: Endpoint, y: Endpoint): boolean => x.address === y.address && x.port === y.port;

export class Host {
  /** Packets this host's engine delivered to its tunnel while routed by the world. */
  readonly tunnel: Uint8Array[] = [];
  constructor(readonly name: string, readonly engine: Engine, readonly ep: Endpoint, readonly addr: string,
    readonly key: { privateKey: Uint8Array; publicKey: Uint8Array }) {}

  /** Hands the engine one datagram (at most maxDatagram bytes, as an adapter's receive buffer holds). */
  receive(data: Uint8Array, from: Endpoint, now: number): Result {
    const e = this.engine;
    const d = data.length > e.maxDatagram ? data.subarray(0, e.maxDatagram) : data;
    e.memory.set(d, e.datagramOffset(0));
    e.datagramLengths[0] = d.length;
    e.datagramFrom[0] = from;
    return collect(e.fromNetwork(1, now));
  }

  /** Hands the engine one IP packet from its tunnel. */
  send(packet: Uint8Array, now: number): Result {
    const e = this.engine;
    e.memory.set(packet, e.packetOffset(0));
    e.packetLengths[0] = packet.length;
    return collect(e.fromTunnel(1, now));
  }

  tick(now: number): Result {
    return collect(this.engine.tick(now));
  }
}

export class World {
  now = START;
  readonly hosts: Host[] = [];
  /** Datagrams to an endpoint no host has (a peer the target plays itself). */
  onStray: (from: Host, d: Sent) => void = () => {};
  private seq = 0;

  add(name: string, address: string, addr: string, opts: Partial<EngineOptions> = {}): Host {
    const key = fixedKey(name);
    const engine = new Engine({ wasm: wasmModule, x25519: nodeX25519, epoch: EPOCH, ...opts });
    engine.set({ privateKey: key.privateKey, listenPort: 51820 }, this.now);
    const h = new Host(name, engine, { address, port: 51820 }, addr, key);
    this.hosts.push(h);
    return h;
  }

  /** Makes x and y peers of each other (each routes the other's tunnel address to it). */
  link(x: Host, y: Host): void {
    this.route(x, collect(x.engine.set({ peers: [{ publicKey: y.key.publicKey, endpoint: y.ep, allowedIps: [`${y.addr}/32`] }] }, this.now)));
    this.route(y, collect(y.engine.set({ peers: [{ publicKey: x.key.publicKey, endpoint: x.ep, allowedIps: [`${x.addr}/32`] }] }, this.now)));
  }

  /** Delivers what `from` produced, and everything that provokes, until nothing is in flight. */
  route(from: Host, out: Result): void {
    const queue: [Host, Result][] = [[from, out]];
    for (let n = 0; queue.length > 0; n++) {
      if (n > 10_000) throw new Error("the engines did not settle");
      const [h, r] = queue.shift()!;
      h.tunnel.push(...r.packets);
      for (const d of r.datagrams) {
        const to = this.hosts.find((x) => sameEndpoint(x.ep, d.to));
        if (to) queue.push([to, to.receive(d.data, h.ep, this.now)]);
        else this.onStray(h, d);
      }
    }
  }

  /** Moves the clock on, running every host's timers. */
  advance(ms: number): void {
    this.now += ms;
    for (const h of this.hosts) this.route(h, h.tick(this.now));
  }

  /**
   * Whether a packet from x reaches y's tunnel, given up to `patience` ms of
   * timers (handshakes, retries, cookies) to get there; the packet is queued
   * by x while it has no session, as any would be.
   */
  ping(x: Host, y: Host, patience = 120_000): boolean {
    const p = ipv4(x.addr, y.addr, 60, this.seq++);
    y.tunnel.length = 0;
    this.route(x, x.send(p, this.now));
    for (let waited = 0; ; waited += 1000) {
      if (y.tunnel.some((q) => q.length === p.length && q.every((b, i) => b === p[i]))) { y.tunnel.length = 0; return true; }
      if (waited >= patience) return false;
      this.advance(1000);
    }
  }
}
