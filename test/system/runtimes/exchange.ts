// The program every runtime runs: two engines, an in-memory exchange of their
// Outputs under a virtual clock, one IPv4 packet a -> b through a handshake
// and its reply b -> a. Runtime-agnostic (no I/O, no node: imports); each
// entry in this folder only loads engine.wasm its own way and prints
// exchange()'s result. Keys are fixed so that every runtime reports the same
// status as Node does for the same program.
import { Engine, type Endpoint, type Output } from "../../../src/engine.ts";
import { nobleX25519 } from "../../../src/x25519.ts";
import { keyHex as hex } from "../../../src/config.ts";
import { sha256 } from "@noble/hashes/sha2.js";

export const EPOCH = 1_750_000_000_000;
const A = { address: "192.0.2.1", port: 51820 }, B = { address: "192.0.2.2", port: 51821 };

/** What a runtime reports; everything but `runtime` and `wasm` must equal Node's own run. */
export interface Result {
  runtime: string;
  /** How the runtime got its WebAssembly.Module. */
  wasm: string;
  /** a's packet arrived at b byte for byte, and b's reply at a. */
  delivered: boolean;
  replied: boolean;
  /** SHA-256 (hex) of what each tunnel received. */
  request: string;
  reply: string;
  /** Datagrams on the wire by message type (1 initiation, 2 response, 4 transport). */
  wire: Record<string, number>;
  a: PeerSummary;
  b: PeerSummary;
}

export interface PeerSummary {
  publicKey: string;
  peer: string;
  endpoint: string;
  lastHandshakeTime: number;
  rxBytes: number;
  txBytes: number;
  drops: number;
}

/** An IPv4 UDP packet of `size` bytes from src to dst; payload bytes count up from `seq`. */
export function ipv4(src: string, dst: string, size: number, seq: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[2] = size >> 8; p[3] = size & 0xff;
  p[8] = 64; p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  for (let i = 20; i < size; i++) p[i] = (seq + i) & 0xff;
  return p;
}

export const REQUEST = ipv4("10.0.0.1", "10.0.0.2", 84, 1);
export const REPLY = ipv4("10.0.0.2", "10.0.0.1", 60, 7);

function key(fill: number): Uint8Array {
  const k = new Uint8Array(32).fill(fill);
  k[0] &= 248; k[31] = (k[31] & 127) | 64;
  return k;
}

interface Node {
  engine: Engine;
  ep: Endpoint;
  tunnel: Uint8Array[];
}

/**
 * Runs the exchange on `wasm`.
 * @param wasm the compiled engine.wasm
 * @param runtime labels the result: which runtime ran it
 * @param how labels the result: how that runtime got `wasm`
 * @returns the result; `delivered` and `replied` say whether it worked
 */
export function exchange(wasm: WebAssembly.Module, runtime: string, how: string): Result {
  const now = 1000;
  const wire: Record<string, number> = {};
  const queue: { to: Endpoint; from: Endpoint; data: Uint8Array }[] = [];
  const make = (priv: Uint8Array, ep: Endpoint): Node => {
    const engine = new Engine({ wasm, x25519: nobleX25519, epoch: EPOCH });
    engine.set({ privateKey: priv, listenPort: ep.port }, now);
    return { engine, ep, tunnel: [] };
  };
  const a = make(key(0x11), A), b = make(key(0x22), B);
  const take = (node: Node, out: Output) => {
    for (let i = 0; i < out.datagrams; i++) {
      const off = out.datagramOff[i], data = out.datagramBuf[i].slice(off, off + out.datagramLen[i]);
      wire[data[0]] = (wire[data[0]] ?? 0) + 1;
      queue.push({ to: out.datagramTo[i], from: node.ep, data });
    }
    for (let i = 0; i < out.packets; i++) {
      const off = out.packetOff[i];
      node.tunnel.push(out.packetBuf[i].slice(off, off + out.packetLen[i]));
    }
  };
  const flush = () => {
    for (let limit = 100; queue.length > 0; limit--) {
      if (limit === 0) throw new Error("the exchange did not settle");
      const d = queue.shift()!;
      const node = d.to.port === A.port ? a : b, e = node.engine;
      e.memory.set(d.data, e.datagramOffset(0));
      e.datagramLengths[0] = d.data.length;
      e.datagramFrom[0] = d.from;
      take(node, e.fromNetwork(1, now));
    }
  };
  const send = (node: Node, pkt: Uint8Array) => {
    const e = node.engine;
    e.memory.set(pkt, e.packetOffset(0));
    e.packetLengths[0] = pkt.length;
    take(node, e.fromTunnel(1, now));
    flush();
  };

  take(a, a.engine.set({ peers: [{ publicKey: b.engine.publicKey!, endpoint: B, allowedIps: ["10.0.0.2/32"] }] }, now));
  take(b, b.engine.set({ peers: [{ publicKey: a.engine.publicKey!, endpoint: A, allowedIps: ["10.0.0.1/32"] }] }, now));
  send(a, REQUEST);
  const delivered = b.tunnel.length === 1 && same(b.tunnel[0], REQUEST);
  send(b, REPLY);
  const replied = a.tunnel.length === 1 && same(a.tunnel[0], REPLY);

  const summary = (n: Node): PeerSummary => {
    const s = n.engine.status(), p = s.peers[0];
    return {
      publicKey: hex(s.publicKey!), peer: hex(p.publicKey),
      endpoint: p.endpoint ? `${p.endpoint.address}:${p.endpoint.port}` : "",
      lastHandshakeTime: p.lastHandshakeTime, rxBytes: p.rxBytes, txBytes: p.txBytes,
      drops: Object.values(n.engine.drops).reduce((x, y) => x + y, 0),
    };
  };
  return {
    runtime, wasm: how, delivered, replied,
    request: hex(sha256(b.tunnel[0] ?? new Uint8Array(0))),
    reply: hex(sha256(a.tunnel[0] ?? new Uint8Array(0))),
    wire, a: summary(a), b: summary(b),
  };
}

function same(x: Uint8Array, y: Uint8Array): boolean {
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
