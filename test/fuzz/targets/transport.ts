// Transport data (type 4) against an established session: decapsulation in
// WASM (index, replay window, ChaCha20-Poly1305, padding, source check) and
// the engine's bookkeeping after it, for datagrams to `a` from its peer `b`.
//
// Input: a mode byte, then the rest.
//   bits 0-1  0: a datagram made of fields: receiver (byte 1 picks a's
//             current index, its other keypair's, one from the input, or a
//             neighbour of the current), counter (8 bytes), payload
//             1: the rest patches a packet b seals now
//             2: byte 1 picks one of the last 16 packets b sealed, the rest patches it
//             3: the rest is the datagram as is
//   bit 2     it comes from a stranger's endpoint instead of b's
// A patch is (offset, xor) byte pairs; an odd last byte t then shortens the
// datagram by t & 127 bytes (t >= 128) or lengthens it with t zeros.
//
// Invariants, per input: nothing escapes fromNetwork; a packet reaches the
// tunnel only for a datagram b sealed, byte for byte, and only the first
// time, as b sealed it; a fresh genuine datagram does; anything not
// delivered is counted exactly once and answered with nothing; the peer's
// endpoint and received bytes move only for what authenticated; and
// afterwards b and a still exchange packets both ways.
import { readU32 } from "../../../src/messages.ts";
import type { Drops } from "../../../src/engine.ts";
import type { Endpoint } from "../../../src/peer.ts";
import { ipv4 } from "../../helpers/net.ts";
import { World, sameEndpoint } from "../world.ts";

const w = new World();
const a = w.add("a", "192.0.2.1", "10.0.0.1");
const b = w.add("b", "192.0.2.2", "10.0.0.2");
w.link(b, a);
if (!w.ping(b, a) || !w.ping(a, b)) throw new Error("no session between a and b to start with");
const STRANGER: Endpoint = { address: "198.51.100.7", port: 4444 };
const peerB = a.engine.peer(b.key.publicKey)!;

interface Sealed { data: Uint8Array; plain: Uint8Array; delivered: boolean }
/** The last packets b sealed for a, and whether a delivered each already. */
const ring: Sealed[] = [];
let seq = 0;

/** A packet b seals for a now (any handshake it needs first is carried out). */
function seal(): Sealed {
  for (let tries = 0; tries < 3; tries++) {
    const plain = ipv4(b.addr, a.addr, 28 + (seq % 80), seq++);
    const r = b.send(plain, w.now);
    if (r.datagrams.length === 1 && r.datagrams[0].data[0] === 4 && sameEndpoint(r.datagrams[0].to, a.ep) && r.packets.length === 0) {
      const s = { data: r.datagrams[0].data, plain, delivered: false };
      ring.push(s);
      if (ring.length > 16) ring.shift();
      return s;
    }
    // A handshake (or a flush it provoked): let it complete, then seal again.
    w.route(b, r);
    a.tunnel.length = 0;
  }
  throw new Error("b cannot seal a packet for a");
}

function patch(m: Uint8Array, p: Uint8Array): Uint8Array {
  let out = m.slice();
  for (let i = 0; i + 1 < p.length; i += 2) out[p[i] % out.length] ^= p[i + 1];
  if (p.length % 2 === 1) {
    const t = p[p.length - 1];
    if (t & 0x80) out = out.subarray(0, Math.max(0, out.length - (t & 0x7f)));
    else { const longer = new Uint8Array(out.length + t); longer.set(out); out = longer; }
  }
  return out;
}

function fields(rest: Uint8Array): Uint8Array {
  const sel = rest[0] ?? 0, counter = rest.subarray(1, 9), payload = rest.subarray(9);
  const cur = peerB.current ?? peerB.next ?? peerB.previous;
  const other = peerB.previous ?? peerB.next ?? cur;
  let index = 0;
  switch (sel & 3) {
    case 0: index = cur?.localIndex ?? 0; break;
    case 1: index = other?.localIndex ?? 0; break;
    case 2: index = payload.length >= 4 ? readU32(payload, 0) : 0; break;
    case 3: index = ((cur?.localIndex ?? 0) ^ (sel >> 2)) >>> 0; break;
  }
  const m = new Uint8Array(16 + payload.length);
  m[0] = 4;
  m[4] = index; m[5] = index >>> 8; m[6] = index >>> 16; m[7] = index >>> 24;
  m.set(counter, 8);
  m.set(payload, 16);
  return m;
}

const total = (d: Drops): number => Object.values(d).reduce((s, v) => s + v, 0);
const equalBytes = (x: Uint8Array, y: Uint8Array): boolean => x.length === y.length && x.every((v, i) => v === y[i]);

export function fuzz(data: Uint8Array): void {
  if (data.length === 0) return;
  const mode = data[0], kind = mode & 3, rest = data.subarray(1);
  const from = mode & 4 ? STRANGER : b.ep;
  w.advance(10); // sessions age: rekeys and expiry come by on a long run
  let msg: Uint8Array, fresh: Sealed | null = null;
  if (kind === 0) msg = fields(rest);
  else if (kind === 1) { fresh = seal(); msg = patch(fresh.data, rest); }
  else if (kind === 2) msg = ring.length === 0 ? patch(seal().data, rest.subarray(1)) : patch(ring[(rest[0] ?? 0) % ring.length].data, rest.subarray(1));
  else msg = rest;
  if (msg.length > a.engine.maxDatagram) msg = msg.subarray(0, a.engine.maxDatagram);

  const e = a.engine, drops = { ...e.drops }, before = total(e.drops), rx = peerB.rxBytes, endpoint = peerB.endpoint;
  const r = a.receive(msg, from, w.now);
  for (const [k, v] of Object.entries(e.drops)) {
    if (!Number.isInteger(v) || v < drops[k as keyof Drops]) throw new Error(`drop counter ${k} went from ${drops[k as keyof Drops]} to ${v}`);
  }
  const dDrops = total(e.drops) - before;
  const what = `mode ${mode}, ${msg.length} bytes`;
  const match = ring.find((s) => equalBytes(s.data, msg));

  if (r.packets.length > 1) throw new Error(`${what}: one datagram delivered ${r.packets.length} packets`);
  if (r.packets.length === 1) {
    if (!match) throw new Error(`${what}: a datagram b never sealed was delivered`);
    if (match.delivered) throw new Error(`${what}: a replayed datagram was delivered again`);
    if (!equalBytes(r.packets[0], match.plain)) throw new Error(`${what}: delivered other bytes than b sealed`);
    match.delivered = true;
    if (dDrops !== 0) throw new Error(`${what}: delivered and counted as a drop`);
    if (peerB.rxBytes - rx !== msg.length) throw new Error(`${what}: rx_bytes moved by ${peerB.rxBytes - rx}, not ${msg.length}`);
    if (r.datagrams.some((d) => !sameEndpoint(d.to, from) || (d.data[0] !== 1 && d.data[0] !== 4))) throw new Error(`${what}: an answer other than a handshake or transport to its peer`);
  } else {
    if (fresh !== null && equalBytes(msg, fresh.data)) throw new Error(`${what}: a fresh genuine datagram was not delivered`);
    if (dDrops !== 1) throw new Error(`${what}: not delivered, counted ${dDrops} times`);
    if (r.datagrams.length > 0) throw new Error(`${what}: refused, yet ${r.datagrams.length} datagrams sent in answer`);
    if (peerB.rxBytes !== rx) throw new Error(`${what}: rx_bytes moved for a datagram that was not delivered`);
    if (peerB.endpoint !== endpoint) throw new Error(`${what}: the peer roamed to the source of a datagram that was not delivered`);
  }

  if (!w.ping(b, a) || !w.ping(a, b)) throw new Error(`${what}: the session between a and b no longer carries packets`);
}
