// Handshake initiations, responses and cookie replies against real engines
// (src/engine.ts, handshake.ts, cookie.ts): `a` at rest and `c` always under
// load (every handshake message needs a mac2, so cookies and the rate
// limiter are in play), both peers of a real engine `b` and of `d`, a peer
// this target plays itself so that the engines have initiations in flight
// for responses and cookie replies to answer.
//
// Input: a mode byte, then the rest.
//   bits 0-1  0: the rest is a raw datagram; 1, 2, 3: the rest patches a
//             genuine initiation (as b), response (as d, to the engine's
//             initiation in flight) or cookie reply (as d, to the same)
//   bit 2     to a, or to c
//   bits 3-5  raw: which source endpoint it comes from
//   bit 6     patch after mac1/mac2 instead of recomputing them over the patch
// A patch is (offset, xor) byte pairs; no pairs is the genuine message. So
// the fuzzer gets past mac1 (and mac2 once c handed out a cookie) and into
// the Noise code, and knows what it changed.
//
// Invariants, per input: nothing escapes fromNetwork; no packet reaches the
// tunnel; exactly one thing is counted (a drop, a completed handshake or a
// cookie reply sent), except a genuine cookie reply, which is taken silently;
// a handshake completes only for a message whose authenticated bytes are the
// genuine ones; the answer is a response (to an initiation that completed),
// transport (after a response that completed), a cookie reply (under load,
// to an initiation or response) or nothing; and afterwards b and the engine
// still exchange packets both ways.
import { CookieChecker, CookieGenerator } from "../../../src/cookie.ts";
import { LocalStatic, Noise, PeerHandshake, consumeInitiation, createInitiation, createResponse } from "../../../src/handshake.ts";
import { tai64n } from "../../../src/tai64n.ts";
import { readU32 } from "../../../src/messages.ts";
import type { Drops } from "../../../src/engine.ts";
import type { Endpoint } from "../../../src/peer.ts";
import { ipv4 } from "../../helpers/net.ts";
import { EPOCH, type Host, type Result, World, collect, dh, fixedKey, sameEndpoint } from "../world.ts";

const w = new World();
const a = w.add("a", "192.0.2.1", "10.0.0.1");
const c = w.add("c", "192.0.2.3", "10.0.0.3", { underLoadBacklog: 1 });
const b = w.add("b", "192.0.2.2", "10.0.0.2");
w.link(b, a);
w.link(b, c);
const D = fixedKey("d"), D_EP: Endpoint = { address: "192.0.2.4", port: 51820 };
const aead = b.engine.wasm;
/** The handshake of b and d as this target plays them, on b's engine's WASM (its AEAD and BLAKE2s). */
const noise = new Noise(dh, aead, aead);
const dLocal = new LocalStatic(D.privateKey, dh), bLocal = new LocalStatic(b.key.privateKey, dh);
/** Raw datagrams' sources: b, d, strangers (IPv4, IPv6), and an address that is no IP (a relay's name). */
const SOURCES: Endpoint[] = [b.ep, D_EP, { address: "198.51.100.7", port: 4444 }, { address: "2001:db8::7", port: 51820 }, { address: "relay", port: 0 }];

interface Under {
  host: Host;
  /** b's side of initiations made by this target. */
  asB: PeerHandshake;
  bMacs: CookieGenerator;
  /** d's side: responses and cookie replies to the engine's initiation in flight. */
  asD: PeerHandshake;
  dMacs: CookieGenerator;
  dCookies: CookieChecker;
  /** An initiation as b, kept while the engine completes no handshake (so its timestamp is still news). */
  init: Uint8Array | null;
  initAt: number;
  /** The engine's last initiation to d, and the response made to it. */
  initToD: Uint8Array | null;
  response: Uint8Array | null;
  responseFor: Uint8Array | null;
  /** A response of ours completed a session with d: the next template needs a fresh initiation. */
  dSession: boolean;
}

const unders: Under[] = [a, c].map((host) => ({
  host,
  asB: new PeerHandshake(bLocal, host.key.publicKey, null, dh),
  bMacs: new CookieGenerator(host.key.publicKey, aead, aead),
  asD: new PeerHandshake(dLocal, host.key.publicKey, null, dh),
  dMacs: new CookieGenerator(host.key.publicKey, aead, aead),
  dCookies: new CookieChecker(D.publicKey, aead, aead),
  init: null, initAt: -1, initToD: null, response: null, responseFor: null, dSession: false,
}));

w.onStray = (from, d) => {
  const u = unders.find((x) => x.host === from);
  if (u && sameEndpoint(d.to, D_EP) && d.data.length === 148 && d.data[0] === 1) u.initToD = d.data;
};

function addD(u: Under): void {
  w.route(u.host, collect(u.host.engine.set({ peers: [{ publicKey: D.publicKey, endpoint: D_EP, allowedIps: ["10.9.0.0/24"] }] }, w.now)));
}

for (const u of unders) {
  addD(u);
  if (!w.ping(b, u.host) || !w.ping(u.host, b)) throw new Error(`no session between b and ${u.host.name} to start with`);
}

/** Makes the engine start a new handshake with d: d again as a new peer, and a packet for it. */
function freshInitToD(u: Under): Uint8Array {
  u.host.engine.set({ peers: [{ publicKey: D.publicKey, remove: true }] }, w.now);
  addD(u);
  u.initToD = null;
  u.dSession = false;
  w.route(u.host, u.host.send(ipv4(u.host.addr, "10.9.0.1"), w.now));
  if (u.initToD === null) throw new Error(`${u.host.name} sent no initiation for a packet to a new peer`);
  return u.initToD;
}

let index = 1;

function initiation(u: Under): Uint8Array {
  // Two DHs to make one: made again only once the engine has completed a
  // handshake, which may have been with a newer timestamp.
  if (u.init === null || u.initAt !== u.host.engine.handshakes.completed) {
    u.init = new Uint8Array(148);
    if (!createInitiation(u.asB, noise, index++, tai64n(EPOCH + w.now), u.init)) throw new Error("createInitiation failed");
    u.initAt = u.host.engine.handshakes.completed;
  }
  return u.init.slice();
}

function response(u: Under): Uint8Array {
  const init = u.initToD === null || u.dSession ? freshInitToD(u) : u.initToD;
  if (u.responseFor !== init) {
    u.asD.lastTimestamp = new Uint8Array(12);
    u.asD.lastInitiationConsumedMs = -Infinity;
    if (consumeInitiation(dLocal, init, noise, () => u.asD, w.now) === null) throw new Error(`d cannot consume ${u.host.name}'s genuine initiation`);
    const r = new Uint8Array(92);
    if (!createResponse(u.asD, noise, index++, r)) throw new Error("createResponse failed");
    u.response = r;
    u.responseFor = init;
  }
  return u.response!.slice();
}

function cookieReply(u: Under): Uint8Array {
  const init = u.initToD === null || u.dSession ? freshInitToD(u) : u.initToD;
  const r = new Uint8Array(64);
  u.dCookies.createReply(init, readU32(init, 4), Uint8Array.of(192, 0, 2, 1, 0xca, 0x6c), w.now, r);
  return r;
}

function patch(m: Uint8Array, p: Uint8Array): Uint8Array {
  const out = m.slice();
  for (let i = 0; i + 1 < p.length; i += 2) out[p[i] % out.length] ^= p[i + 1];
  return out;
}

const same = (x: Uint8Array, y: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (x[i] !== y[i]) return false;
  return true;
};

const total = (d: Drops): number => Object.values(d).reduce((s, v) => s + v, 0);

export function fuzz(data: Uint8Array): void {
  if (data.length === 0) return;
  const mode = data[0], kind = mode & 3, u = unders[(mode >> 2) & 1], rest = data.subarray(1);
  const late = (mode & 0x40) !== 0;
  const e = u.host.engine;
  w.advance(30); // past the 20 ms flood guard and the 16.8 ms timestamp grain, running the timers on the way
  let msg: Uint8Array, from: Endpoint, genuine: Uint8Array | null = null;
  let macs: CookieGenerator | null = null;
  if (kind === 0) {
    msg = rest;
    from = SOURCES[((mode >> 3) & 7) % SOURCES.length];
  } else {
    const t = kind === 1 ? initiation(u) : kind === 2 ? response(u) : cookieReply(u);
    macs = kind === 1 ? u.bMacs : kind === 2 ? u.dMacs : null;
    from = kind === 1 ? b.ep : D_EP;
    if (macs === null) msg = patch(t, rest);
    else if (late) { macs.addMacs(t, w.now); msg = patch(t, rest); }
    else { msg = patch(t, rest); macs.addMacs(msg, w.now); }
    genuine = t;
  }

  const drops = { ...e.drops }, before = total(e.drops), completed = e.handshakes.completed, cookies = e.handshakes.cookieReplies;
  const r: Result = u.host.receive(msg, from, w.now);
  for (const [k, v] of Object.entries(e.drops)) {
    if (!Number.isInteger(v) || v < drops[k as keyof Drops]) throw new Error(`drop counter ${k} went from ${drops[k as keyof Drops]} to ${v}`);
  }
  const dDrops = total(e.drops) - before, dDone = e.handshakes.completed - completed, dCookie = e.handshakes.cookieReplies - cookies;
  const type = msg.length >= 4 ? readU32(msg, 0) : 0;
  const what = `${u.host.name}, mode ${mode}, ${msg.length}-byte type ${type}`;

  if (r.packets.length > 0) throw new Error(`${what}: a handshake message put a packet into the tunnel`);
  const effects = dDrops + dDone + dCookie;
  if (effects === 0) {
    // Only a cookie reply is taken without a count, and only the genuine one.
    if (kind !== 3 || !same(msg, genuine!, 0, 64)) throw new Error(`${what}: refused without a count`);
  } else if (effects !== 1) throw new Error(`${what}: counted ${effects} times (drops ${dDrops}, completed ${dDone}, cookie replies ${dCookie})`);
  const answer = r.datagrams;
  if (answer.some((d) => !sameEndpoint(d.to, from))) throw new Error(`${what}: answered somewhere else than its source`);
  if (dCookie === 1) {
    if (!e.underLoad(w.now)) throw new Error(`${what}: a cookie reply while not under load`);
    if (!((type === 1 && msg.length === 148) || (type === 2 && msg.length === 92))) throw new Error(`${what}: a cookie reply to no initiation or response`);
    if (answer.length !== 1 || answer[0].data.length !== 64 || readU32(answer[0].data, 0) !== 3 || readU32(answer[0].data, 4) !== readU32(msg, 4)) {
      throw new Error(`${what}: a cookie reply counted but ${answer.length} datagrams sent`);
    }
    // The sender takes it, as b's engine would: later messages carry its mac2.
    macs?.consumeReply(answer[0].data, w.now);
  } else if (dDone === 1) {
    // The AEAD and the transcript cover these; the sender index and (recomputed) macs do not.
    const covered = type === 1 ? (late ? (e.underLoad(w.now) ? 148 : 132) : 116) : (late ? (e.underLoad(w.now) ? 92 : 76) : 60);
    if (genuine === null || kind === 3 || !same(msg, genuine, 0, 4) || !same(msg, genuine, 8, covered)) {
      throw new Error(`${what}: a handshake completed for a message that is not the genuine one`);
    }
    if (type === 1) {
      if (answer.length !== 1 || answer[0].data.length !== 92 || readU32(answer[0].data, 0) !== 2 || readU32(answer[0].data, 8) !== readU32(msg, 4)) {
        throw new Error(`${what}: an initiation completed without one response to it`);
      }
    } else {
      if (answer.length === 0 || answer.some((d) => d.data[0] !== 4)) throw new Error(`${what}: a response completed without transport to confirm it`);
      u.dSession = true;
    }
  } else if (answer.length > 0) throw new Error(`${what}: refused, yet ${answer.length} datagrams sent in answer`);

  if (!w.ping(b, u.host) || !w.ping(u.host, b)) throw new Error(`${what}: the genuine session between b and ${u.host.name} no longer carries packets`);
}
