// The Noise_IKpsk2 handshake (src/handshake.ts), with an Aead built here on
// @noble/ciphers and the engine's WASM BLAKE2s:
// - byte-exact agreement with an independent transcription of whitepaper
//   5.4.2-5.4.5 written in this file straight on @noble primitives (fixed
//   keys and ephemerals), with and without a preshared key, hashing with the
//   WASM and with the noble fallback; and a WASM side against a noble side;
// - full handshakes both ways, with and without PSK, keys crosswise equal and
//   usable; nodeX25519 and nobleX25519 peers interoperate;
// - rejections, each leaving every peer's state as it was: replay (same and
//   older timestamp), flood (< 20 ms), unknown static, a flipped bit in every
//   byte of both messages, low-order / zero ephemerals (crafted so that only
//   the zero-DH check stops them), responses with no initiation in flight or
//   the wrong receiver index, a peer whose static-static DH is zero;
// - secrets: H, C and ephemerals wiped after beginSession, and every DH
//   output, ephemeral private key and AEAD key the handshake used is zero
//   afterwards.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { type Aead, type NoiseHash, type X25519, equal, isZero, nobleNoiseHash } from "../../src/crypto.ts";
import {
  HandshakeState, LocalStatic, Noise, PeerHandshake, beginSession, consumeInitiation, consumeResponse, createInitiation,
  createResponse,
} from "../../src/handshake.ts";
import { MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE_SIZE } from "../../src/messages.ts";
import { CookieChecker, CookieGenerator } from "../../src/cookie.ts";
import { tai64n } from "../../src/tai64n.ts";
import { nobleX25519 } from "../../src/x25519.ts";
import { nodeX25519 } from "../../adapters/node-compat/x25519.ts";
import { instantiate } from "../../src/wasm.ts";
import { wasmModule } from "../helpers/net.ts";
import x25519Vectors from "../vectors/x25519.json" with { type: "json" };

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const concat = (...p: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(p.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of p) { out.set(x, o); o += x.length; }
  return out;
};

/** The Aead interface on @noble/ciphers. */
const aead: Aead = {
  seal(key, nonce, ad, plaintext, out) { out.set(chacha20poly1305(key, nonce, ad).encrypt(plaintext)); },
  open(key, nonce, ad, sealed, out) {
    try { out.set(chacha20poly1305(key, nonce, ad).decrypt(sealed)); return true; } catch { return false; }
  },
  xseal(key, nonce, ad, plaintext, out) { out.set(xchacha20poly1305(key, nonce, ad).encrypt(plaintext)); },
  xopen(key, nonce, ad, sealed, out) {
    try { out.set(xchacha20poly1305(key, nonce, ad).decrypt(sealed)); return true; } catch { return false; }
  },
};

/** The engine's BLAKE2s (assembly/blake2s.ts), what the handshakes here hash with unless a test picks the noble fallback. */
const wasmHash: NoiseHash = instantiate(wasmModule, { maxPeers: 1, maxSlots: 1, batch: 1, cell: 256, aipNodes: 1 });
let noiseHash: NoiseHash = wasmHash;
/** A Noise over this X25519 and AEAD (fresh buffers each time, as separate engines have). */
const nz = (dh: X25519, a: Aead = aead): Noise => new Noise(dh, a, noiseHash);
const session = (): Noise => nz(nobleX25519);

/** Everything a peer's handshake holds, to check that a refused message changed nothing. */
function snap(hs: PeerHandshake): string {
  return JSON.stringify([hs.state, hex(hs.hash), hex(hs.chainKey), hex(hs.ephemeralPrivate), hex(hs.remoteEphemeral),
    hs.localIndex, hs.remoteIndex, hex(hs.lastTimestamp), String(hs.lastInitiationConsumedMs), hex(hs.presharedKey)]);
}

interface Side { local: LocalStatic; peer: PeerHandshake; dh: X25519; index: number }
interface World { a: Side; b: Side; find(side: Side): (k: Uint8Array) => PeerHandshake | undefined }

/** Two peers that know each other. */
function world(dhA: X25519 = nobleX25519, dhB: X25519 = nobleX25519, psk: Uint8Array | null = null): World {
  const la = new LocalStatic(dhA.generate().privateKey, dhA);
  const lb = new LocalStatic(dhB.generate().privateKey, dhB);
  const a: Side = { local: la, peer: new PeerHandshake(la, lb.publicKey, psk, dhA), dh: dhA, index: 0x11223344 };
  const b: Side = { local: lb, peer: new PeerHandshake(lb, la.publicKey, psk, dhB), dh: dhB, index: 0xa1b2c3d4 };
  return {
    a, b,
    find: (side) => (k) => (equal(k, side.peer.remoteStatic) ? side.peer : undefined),
  };
}

const WALL = 1700000000000;

/** initiator -> initiation -> responder -> response -> initiator, then both sessions. */
function handshake(w: World, i: Side, r: Side, wallMs = WALL, nowMs = 1000) {
  const init = new Uint8Array(MESSAGE_INITIATION_SIZE);
  assert.ok(createInitiation(i.peer, nz(i.dh, aead), i.index, tai64n(wallMs), init));
  assert.is(i.peer.state, HandshakeState.InitiationSent);
  const got = consumeInitiation(r.local, init, nz(r.dh, aead), w.find(r), nowMs);
  assert.is(got, r.peer);
  assert.is(r.peer.state, HandshakeState.InitiationConsumed);
  const resp = new Uint8Array(MESSAGE_RESPONSE_SIZE);
  assert.ok(createResponse(r.peer, nz(r.dh, aead), r.index, resp));
  assert.is(r.peer.state, HandshakeState.ResponseCreated);
  const back = consumeResponse(i.local, resp, nz(i.dh, aead), (idx) => (idx === i.index ? i.peer : undefined));
  assert.is(back, i.peer);
  assert.is(i.peer.state, HandshakeState.ResponseConsumed);
  const si = beginSession(i.peer, session())!, sr = beginSession(r.peer, session())!;
  assert.ok(si && sr);
  return { init, resp, si, sr };
}

function checkSessions(si: NonNullable<ReturnType<typeof beginSession>>, sr: NonNullable<ReturnType<typeof beginSession>>, i: Side, r: Side) {
  assert.is(si.isInitiator, true);
  assert.is(sr.isInitiator, false);
  assert.is(hex(si.sendKey), hex(sr.recvKey));
  assert.is(hex(si.recvKey), hex(sr.sendKey));
  assert.is.not(hex(si.sendKey), hex(si.recvKey));
  assert.is(si.sendKey.length, 32);
  assert.is(si.localIndex, i.index);
  assert.is(si.remoteIndex, r.index);
  assert.is(sr.localIndex, r.index);
  assert.is(sr.remoteIndex, i.index);
  // The keys work: a transport packet (nonce = 4 zero bytes + counter LE) both ways.
  const nonce = new Uint8Array(12);
  nonce[4] = 7;
  const ct = chacha20poly1305(si.sendKey, nonce).encrypt(Uint8Array.of(1, 2, 3));
  assert.equal(Array.from(chacha20poly1305(sr.recvKey, nonce).decrypt(ct)), [1, 2, 3]);
  const ct2 = chacha20poly1305(sr.sendKey, nonce).encrypt(Uint8Array.of(4));
  assert.equal(Array.from(chacha20poly1305(si.recvKey, nonce).decrypt(ct2)), [4]);
}

// ---- An independent transcription of the whitepaper, for exact bytes ----

/** An X25519 whose generate() hands out the given private keys in order (for reproducible transcripts). */
function fixedEphemerals(base: X25519, privs: Uint8Array[]): X25519 {
  let n = 0;
  return {
    generate() {
      const privateKey = privs[n++].slice();
      return { privateKey, publicKey: base.publicKey(privateKey) };
    },
    publicKey: (k) => base.publicKey(k),
    shared: (k, p) => base.shared(k, p),
  };
}

function reference(si: Uint8Array, sr: Uint8Array, ei: Uint8Array, er: Uint8Array, psk: Uint8Array, ts: Uint8Array, senderI: number, senderR: number) {
  const H = (...p: Uint8Array[]) => blake2s(concat(...p));
  const HMAC = (k: Uint8Array, ...p: Uint8Array[]) => nobleHmac(blake2s, k, concat(...p));
  const KDF = (n: number, key: Uint8Array, input: Uint8Array) => {
    const t0 = HMAC(key, input), out: Uint8Array[] = [];
    let prev = new Uint8Array(0);
    for (let i = 1; i <= n; i++) { prev = HMAC(t0, prev, Uint8Array.of(i)); out.push(prev); }
    return out;
  };
  const DH = (k: Uint8Array, p: Uint8Array) => x25519.getSharedSecret(k, p);
  const PUB = (k: Uint8Array) => x25519.getPublicKey(k);
  const AEAD = (k: Uint8Array, pt: Uint8Array, ad: Uint8Array) => chacha20poly1305(k, new Uint8Array(12), ad).encrypt(pt);
  const le32 = (v: number) => Uint8Array.of(v, v >>> 8, v >>> 16, v >>> 24);
  const text = (s: string) => new TextEncoder().encode(s);

  // 5.4.2
  let C: Uint8Array = H(text("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"));
  let h: Uint8Array = H(C, text("WireGuard v1 zx2c4 Jason@zx2c4.com"));
  h = H(h, PUB(sr));
  const eiPub = PUB(ei);
  C = KDF(1, C, eiPub)[0];
  h = H(h, eiPub);
  let k: Uint8Array;
  [C, k] = KDF(2, C, DH(ei, PUB(sr)));
  const encStatic = AEAD(k, PUB(si), h);
  h = H(h, encStatic);
  [C, k] = KDF(2, C, DH(si, PUB(sr)));
  const encTs = AEAD(k, ts, h);
  h = H(h, encTs);
  const initiation = concat(Uint8Array.of(1, 0, 0, 0), le32(senderI), eiPub, encStatic, encTs);
  // 5.4.3
  const erPub = PUB(er);
  C = KDF(1, C, erPub)[0];
  h = H(h, erPub);
  C = KDF(1, C, DH(er, eiPub))[0];
  C = KDF(1, C, DH(er, PUB(si)))[0];
  let tau: Uint8Array;
  [C, tau, k] = KDF(3, C, psk);
  h = H(h, tau);
  const encEmpty = AEAD(k, new Uint8Array(0), h);
  const response = concat(Uint8Array.of(2, 0, 0, 0), le32(senderR), le32(senderI), erPub, encEmpty);
  // 5.4.5
  const [initiatorSend, initiatorRecv] = KDF(2, C, new Uint8Array(0));
  return { initiation, response, initiatorSend, initiatorRecv };
}

for (const [hashName, hashImpl] of [["WASM", wasmHash], ["noble", nobleNoiseHash]] as [string, NoiseHash][]) for (const withPsk of [false, true]) {
  test(`messages and keys are byte-exact with the whitepaper transcription (${withPsk ? "with" : "no"} PSK, ${hashName} BLAKE2s)`, () => {
    noiseHash = hashImpl;
    const si = unhex(x25519Vectors.rfc7748_6_1.alicePrivate), sr = unhex(x25519Vectors.rfc7748_6_1.bobPrivate);
    const ei = new Uint8Array(32).fill(0x41), er = new Uint8Array(32).fill(0x52);
    const psk = withPsk ? new Uint8Array(32).fill(0x99) : null;
    const dhI = fixedEphemerals(nobleX25519, [ei]), dhR = fixedEphemerals(nodeX25519, [er]);
    const li = new LocalStatic(si, dhI), lr = new LocalStatic(sr, dhR);
    const pi = new PeerHandshake(li, lr.publicKey, psk, dhI), pr = new PeerHandshake(lr, li.publicKey, psk, dhR);
    const ts = tai64n(WALL);
    const init = new Uint8Array(148);
    assert.ok(createInitiation(pi, nz(dhI, aead), 0xdeadbeef, ts, init));
    const ref = reference(si, sr, ei, er, psk ?? new Uint8Array(32), ts, 0xdeadbeef, 0x01020304);
    assert.is(hex(init.subarray(0, 116)), hex(ref.initiation));
    assert.is(hex(init.subarray(116)), "00".repeat(32)); // macs are cookie.ts's job
    assert.is(consumeInitiation(lr, init, nz(dhR, aead), (k) => (equal(k, li.publicKey) ? pr : undefined), 0), pr);
    const resp = new Uint8Array(92);
    assert.ok(createResponse(pr, nz(dhR, aead), 0x01020304, resp));
    assert.is(hex(resp.subarray(0, 60)), hex(ref.response));
    assert.is(hex(resp.subarray(60)), "00".repeat(32));
    assert.is(consumeResponse(li, resp, nz(dhI, aead), () => pi), pi);
    const a = beginSession(pi, session())!, b = beginSession(pr, session())!;
    assert.is(hex(a.sendKey), hex(ref.initiatorSend));
    assert.is(hex(a.recvKey), hex(ref.initiatorRecv));
    assert.is(hex(b.recvKey), hex(ref.initiatorSend));
    assert.is(hex(b.sendKey), hex(ref.initiatorRecv));
    noiseHash = wasmHash;
  });
}

test("a side hashing with the WASM and a side hashing with the noble fallback complete handshakes both ways", () => {
  const w = world(nobleX25519, nodeX25519, crypto.getRandomValues(new Uint8Array(32)));
  const wasmSide = (dh: X25519) => new Noise(dh, aead, wasmHash), nobleSide = (dh: X25519) => new Noise(dh, aead, nobleNoiseHash);
  for (const [i, r, ni, nr] of [[w.a, w.b, wasmSide, nobleSide], [w.b, w.a, nobleSide, wasmSide]] as const) {
    const init = new Uint8Array(148), resp = new Uint8Array(92);
    assert.ok(createInitiation(i.peer, ni(i.dh), i.index, tai64n(WALL + (i === w.a ? 0 : 1)), init));
    assert.is(consumeInitiation(r.local, init, nr(r.dh), w.find(r), 1000), r.peer);
    assert.ok(createResponse(r.peer, nr(r.dh), r.index, resp));
    assert.is(consumeResponse(i.local, resp, ni(i.dh), (idx) => (idx === i.index ? i.peer : undefined)), i.peer);
    checkSessions(beginSession(i.peer, ni(i.dh))!, beginSession(r.peer, nr(r.dh))!, i, r);
  }
});

// ---- Full handshakes ----

for (const [name, dhA, dhB] of [
  ["noble/noble", nobleX25519, nobleX25519], ["node/node", nodeX25519, nodeX25519],
  ["node initiator, noble responder", nodeX25519, nobleX25519], ["noble initiator, node responder", nobleX25519, nodeX25519],
] as [string, X25519, X25519][]) {
  for (const psk of [null, crypto.getRandomValues(new Uint8Array(32))]) {
    test(`full handshake both ways, ${name}, ${psk ? "with" : "no"} PSK`, () => {
      const w = world(dhA, dhB, psk);
      const first = handshake(w, w.a, w.b, WALL, 1000);
      checkSessions(first.si, first.sr, w.a, w.b);
      assert.equal(Array.from(first.init.subarray(0, 4)), [1, 0, 0, 0]);
      assert.equal(Array.from(first.init.subarray(4, 8)), [0x44, 0x33, 0x22, 0x11]);
      assert.equal(Array.from(first.resp.subarray(0, 12)), [2, 0, 0, 0, 0xd4, 0xc3, 0xb2, 0xa1, 0x44, 0x33, 0x22, 0x11]);
      // now B initiates (its own timestamps; A has seen none from B yet)
      const second = handshake(w, w.b, w.a, WALL + 5000, 6000);
      checkSessions(second.si, second.sr, w.b, w.a);
      // and A again: a later timestamp, fresh keys
      const third = handshake(w, w.a, w.b, WALL + 10000, 11000);
      checkSessions(third.si, third.sr, w.a, w.b);
      assert.is.not(hex(third.si.sendKey), hex(first.si.sendKey));
      assert.is.not(hex(third.si.sendKey), hex(second.sr.sendKey));
    });
  }
}

test("a PSK mismatch fails at the response, and the initiator's state is kept", () => {
  const w = world(nobleX25519, nobleX25519, new Uint8Array(32).fill(1));
  w.b.peer.presharedKey.set(new Uint8Array(32).fill(2));
  const init = new Uint8Array(148);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), init));
  // the PSK is only mixed in at the response: the initiation is accepted
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), w.find(w.b), 0), w.b.peer);
  const resp = new Uint8Array(92);
  assert.ok(createResponse(w.b.peer, nz(w.b.dh, aead), w.b.index, resp));
  const before = snap(w.a.peer);
  assert.is(consumeResponse(w.a.local, resp, nz(w.a.dh, aead), () => w.a.peer), null);
  assert.is(snap(w.a.peer), before);
});

// ---- Replay and flood ----

test("a replayed initiation (same timestamp) is refused and changes nothing", () => {
  const w = world();
  const init = new Uint8Array(148);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), init));
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), w.find(w.b), 1000), w.b.peer);
  const before = snap(w.b.peer);
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), w.find(w.b), 5000), null);
  assert.is(snap(w.b.peer), before);
  // a new initiation (new ephemeral) with the same timestamp is a replay too
  const again = new Uint8Array(148);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), again));
  assert.is(consumeInitiation(w.b.local, again, nz(w.b.dh, aead), w.find(w.b), 5000), null);
  assert.is(snap(w.b.peer), before);
  // within the same 2^24 ns whitening step: still the same timestamp
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL + 16), again));
  assert.is(consumeInitiation(w.b.local, again, nz(w.b.dh, aead), w.find(w.b), 5000), null);
  // one step later it is newer
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL + 17), again));
  assert.is(consumeInitiation(w.b.local, again, nz(w.b.dh, aead), w.find(w.b), 5000), w.b.peer);
  assert.is(hex(w.b.peer.lastTimestamp), hex(tai64n(WALL + 17)));
});

test("an initiation with an older timestamp is refused", () => {
  const w = world();
  const newer = new Uint8Array(148), older = new Uint8Array(148);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL - 60000), older));
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), newer));
  assert.is(consumeInitiation(w.b.local, newer, nz(w.b.dh, aead), w.find(w.b), 1000), w.b.peer);
  const before = snap(w.b.peer);
  assert.is(consumeInitiation(w.b.local, older, nz(w.b.dh, aead), w.find(w.b), 2000), null);
  assert.is(snap(w.b.peer), before);
});

test("initiations less than 20 ms after the last one consumed are refused (flood)", () => {
  const w = world();
  const make = (wall: number) => {
    const m = new Uint8Array(148);
    assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(wall), m));
    return m;
  };
  assert.is(consumeInitiation(w.b.local, make(WALL), nz(w.b.dh, aead), w.find(w.b), 1000), w.b.peer);
  assert.is(w.b.peer.lastInitiationConsumedMs, 1000);
  const before = snap(w.b.peer);
  assert.is(consumeInitiation(w.b.local, make(WALL + 1000), nz(w.b.dh, aead), w.find(w.b), 1019), null);
  assert.is(snap(w.b.peer), before);
  assert.is(consumeInitiation(w.b.local, make(WALL + 2000), nz(w.b.dh, aead), w.find(w.b), 1000), null);
  assert.is(consumeInitiation(w.b.local, make(WALL + 3000), nz(w.b.dh, aead), w.find(w.b), 1020), w.b.peer);
  assert.is(w.b.peer.lastInitiationConsumedMs, 1020);
});

// ---- Who is asking ----

test("an initiation from an unknown static key is refused", () => {
  const w = world();
  const stranger = world(); // its a knows some other b
  const init = new Uint8Array(148);
  // stranger.a addresses w.b (right mac1 key and static encryption), but w.b does not know it
  const toB = new PeerHandshake(stranger.a.local, w.b.local.publicKey, null, nobleX25519);
  assert.ok(createInitiation(toB, nz(nobleX25519, aead), 5, tai64n(WALL), init));
  const before = snap(w.b.peer);
  let asked: Uint8Array | null = null;
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), (k) => { asked = k.slice(); return undefined; }, 1000), null);
  assert.is(hex(asked!), hex(stranger.a.local.publicKey)); // the static did decrypt: the lookup said no
  // a lookup that answers with the wrong peer is not believed either
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), () => w.b.peer, 1000), null);
  assert.is(snap(w.b.peer), before);
  // and an initiation meant for someone else does not decrypt at all
  const forOther = new Uint8Array(148);
  assert.ok(createInitiation(stranger.a.peer, nz(nobleX25519, aead), 5, tai64n(WALL), forOther));
  asked = null;
  assert.is(consumeInitiation(w.b.local, forOther, nz(w.b.dh, aead), (k) => { asked = k; return w.b.peer; }, 1000), null);
  assert.is(asked, null);
  assert.is(snap(w.b.peer), before);
});

// ---- Tampering ----

test("a flipped bit in any byte of the initiation: consumeInitiation refuses all but the sender field, which only mac1 covers", () => {
  const w = world();
  const init = new Uint8Array(148);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), init));
  const before = snap(w.b.peer);
  for (let i = 0; i < 116; i++) {
    for (const bit of [0x01, 0x80]) {
      const m = init.slice();
      m[i] ^= bit;
      const r = consumeInitiation(w.b.local, m, nz(w.b.dh, aead), w.find(w.b), 1000);
      if (i >= 4 && i < 8) {
        assert.is(r, w.b.peer, `byte ${i}`);
        assert.is(w.b.peer.remoteIndex, (w.a.index ^ (bit << ((i - 4) * 8))) >>> 0);
        w.b.peer = new PeerHandshake(w.b.local, w.a.local.publicKey, null, w.b.dh); // fresh replay record
        continue;
      }
      assert.is(r, null, `byte ${i} bit ${bit}`);
      assert.is(snap(w.b.peer), before, `byte ${i}`);
    }
  }
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), w.find(w.b), 1000), w.b.peer);
  // wrong lengths
  assert.is(consumeInitiation(w.b.local, init.subarray(0, 147), nz(w.b.dh, aead), w.find(w.b), 5000), null);
  assert.is(consumeInitiation(w.b.local, concat(init, Uint8Array.of(0)), nz(w.b.dh, aead), w.find(w.b), 5000), null);
});

test("a flipped bit in any byte of the response: consumeResponse refuses all but the sender field, which only mac1 covers", () => {
  const w = world();
  const init = new Uint8Array(148), resp = new Uint8Array(92);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), init));
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), w.find(w.b), 1000), w.b.peer);
  assert.ok(createResponse(w.b.peer, nz(w.b.dh, aead), w.b.index, resp));
  const before = snap(w.a.peer);
  const find = (idx: number) => (idx === w.a.index ? w.a.peer : undefined);
  for (let i = 0; i < 60; i++) {
    if (i >= 4 && i < 8) continue; // sender: below
    for (const bit of [0x01, 0x80]) {
      const m = resp.slice();
      m[i] ^= bit;
      assert.is(consumeResponse(w.a.local, m, nz(w.a.dh, aead), find), null, `byte ${i} bit ${bit}`);
      assert.is(snap(w.a.peer), before, `byte ${i}`);
    }
  }
  const m = resp.slice();
  m[5] ^= 1;
  const saved = snap(w.a.peer);
  assert.is(consumeResponse(w.a.local, m, nz(w.a.dh, aead), find), w.a.peer);
  assert.is(w.a.peer.remoteIndex, (w.b.index ^ 0x100) >>> 0);
  assert.is.not(snap(w.a.peer), saved);
});

test("the full receive path (mac1, mac2 under load, then the handshake) refuses a flipped bit in every byte of both messages", () => {
  const w = world();
  const source = Uint8Array.of(192, 0, 2, 1, 0xca, 0x6c);
  const checkerB = new CookieChecker(w.b.local.publicKey, aead, nobleNoiseHash), genA = new CookieGenerator(w.b.local.publicKey, aead, nobleNoiseHash);
  const checkerA = new CookieChecker(w.a.local.publicKey, aead, nobleNoiseHash), genB = new CookieGenerator(w.a.local.publicKey, aead, nobleNoiseHash);
  // A gets a cookie from B (B under load), and B one from A, so mac2 is checked too.
  const first = new Uint8Array(148);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), first));
  genA.addMacs(first, 0);
  const reply = new Uint8Array(64);
  checkerB.createReply(first, w.a.index, source, 0, reply);
  assert.ok(genA.consumeReply(reply, 0));
  const init = new Uint8Array(148);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL + 1000), init));
  genA.addMacs(init, 10);
  const recvInit = (m: Uint8Array) =>
    checkerB.checkMac1(m) && checkerB.checkMac2(m, source, 10)
      ? consumeInitiation(w.b.local, m, nz(w.b.dh, aead), w.find(w.b), 1000) : null;
  const beforeB = snap(w.b.peer), beforeA = snap(w.a.peer);
  for (let i = 0; i < 148; i++) {
    const m = init.slice();
    m[i] ^= 1 << (i % 8);
    assert.is(recvInit(m), null, `initiation byte ${i}`);
    assert.is(snap(w.b.peer), beforeB);
    assert.is(snap(w.a.peer), beforeA);
  }
  assert.is(recvInit(init), w.b.peer);
  const resp = new Uint8Array(92);
  assert.ok(createResponse(w.b.peer, nz(w.b.dh, aead), w.b.index, resp));
  genB.addMacs(resp, 10);
  const r2 = new Uint8Array(64);
  checkerA.createReply(resp, w.b.index, source, 10, r2);
  assert.ok(genB.consumeReply(r2, 10));
  genB.addMacs(resp, 11);
  const recvResp = (m: Uint8Array) =>
    checkerA.checkMac1(m) && checkerA.checkMac2(m, source, 11)
      ? consumeResponse(w.a.local, m, nz(w.a.dh, aead), (idx) => (idx === w.a.index ? w.a.peer : undefined)) : null;
  const beforeA2 = snap(w.a.peer), beforeB2 = snap(w.b.peer);
  for (let i = 0; i < 92; i++) {
    const m = resp.slice();
    m[i] ^= 0x80 >> (i % 8);
    assert.is(recvResp(m), null, `response byte ${i}`);
    assert.is(snap(w.a.peer), beforeA2);
    assert.is(snap(w.b.peer), beforeB2);
  }
  assert.is(recvResp(resp), w.a.peer);
  checkSessions(beginSession(w.a.peer, session())!, beginSession(w.b.peer, session())!, w.a, w.b);
});

// ---- Low-order points ----

/** Plays an attacker: its "ephemeral public key" is a low-order point, and it takes every DH with its ephemeral to be zero (which is what such a DH gives). */
function lowOrderEphemeral(base: X25519, point: Uint8Array): X25519 {
  const marker = new Uint8Array(32).fill(0xee);
  return {
    generate: () => ({ privateKey: marker.slice(), publicKey: point.slice() }),
    publicKey: (k) => base.publicKey(k),
    shared: (k, p) => (equal(k, marker) ? new Uint8Array(32) : base.shared(k, p)),
  };
}

/** A DH that gives the zeros instead of null, as an implementation without the check would. */
function noZeroCheck(base: X25519): X25519 {
  return {
    generate: () => base.generate(),
    publicKey: (k) => base.publicKey(k),
    shared: (k, p) => base.shared(k, p) ?? new Uint8Array(32),
  };
}

for (const [name, dh] of [["nobleX25519", nobleX25519], ["nodeX25519", nodeX25519]] as [string, X25519][]) {
  test(`${name}: initiations with a low-order or zero ephemeral are refused (only the zero-DH check stops them)`, () => {
    for (const v of x25519Vectors.lowOrder) {
      const w = world(dh, dh);
      const evil = lowOrderEphemeral(dh, unhex(v.public));
      const init = new Uint8Array(148);
      assert.ok(createInitiation(w.a.peer, nz(evil, aead), w.a.index, tai64n(WALL), init), v.name);
      assert.is(hex(init.subarray(8, 40)), v.public);
      const before = snap(w.b.peer);
      assert.is(consumeInitiation(w.b.local, init, nz(dh, aead), w.find(w.b), 1000), null, v.name);
      assert.is(snap(w.b.peer), before);
      // without the check, the forged message would have been accepted
      assert.is(consumeInitiation(w.b.local, init, nz(noZeroCheck(dh), aead), w.find(w.b), 1000), w.b.peer, v.name);
    }
  });

  test(`${name}: responses with a low-order or zero ephemeral are refused`, () => {
    for (const v of x25519Vectors.lowOrder) {
      const w = world(dh, dh);
      const init = new Uint8Array(148), resp = new Uint8Array(92);
      assert.ok(createInitiation(w.a.peer, nz(dh, aead), w.a.index, tai64n(WALL), init));
      assert.is(consumeInitiation(w.b.local, init, nz(dh, aead), w.find(w.b), 1000), w.b.peer);
      const evil = lowOrderEphemeral(dh, unhex(v.public));
      assert.ok(createResponse(w.b.peer, nz(noZeroCheck(evil), aead), w.b.index, resp), v.name);
      const before = snap(w.a.peer);
      const find = () => w.a.peer;
      assert.is(consumeResponse(w.a.local, resp, nz(dh, aead), find), null, v.name);
      assert.is(snap(w.a.peer), before);
      assert.is(consumeResponse(w.a.local, resp, nz(noZeroCheck(dh), aead), find), w.a.peer, v.name);
    }
  });
}

test("createResponse refuses (state untouched) when the initiator's ephemeral gives a zero DH", () => {
  const w = world();
  const init = new Uint8Array(148);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), init));
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), w.find(w.b), 1000), w.b.peer);
  w.b.peer.remoteEphemeral.set(unhex(x25519Vectors.lowOrder[2].public)); // as if the check had been skipped
  const before = snap(w.b.peer);
  assert.not.ok(createResponse(w.b.peer, nz(w.b.dh, aead), w.b.index, new Uint8Array(92)));
  assert.is(snap(w.b.peer), before);
});

test("a peer whose static-static DH is zero can never handshake", () => {
  const low = unhex(x25519Vectors.lowOrder[3].public);
  const b = new LocalStatic(nobleX25519.generate().privateKey, nobleX25519);
  const hs = new PeerHandshake(b, low, null, nobleX25519);
  assert.is(hs.precomputedStaticStatic, null);
  // we cannot initiate to it
  const before = snap(hs);
  const out = new Uint8Array(148);
  assert.not.ok(createInitiation(hs, nz(nobleX25519, aead), 9, tai64n(WALL), out));
  assert.is(snap(hs), before);
  assert.is(hs.state, HandshakeState.None);
  // and an initiation claiming that key (forged: whoever sends it knows the static-static DH is zero) is refused
  const forger: X25519 = {
    generate: () => nobleX25519.generate(),
    publicKey: (k) => (k[0] === 0x77 ? low.slice() : nobleX25519.publicKey(k)),
    // its fake static (0x77...) "knows" every DH with it is zero; clamped ephemerals never start with 0x77
    shared: (k, p) => (k[0] === 0x77 ? new Uint8Array(32) : nobleX25519.shared(k, p)),
  };
  const evilLocal = new LocalStatic(new Uint8Array(32).fill(0x77), forger);
  assert.is(hex(evilLocal.publicKey), hex(low));
  const evilPeer = new PeerHandshake(evilLocal, b.publicKey, null, forger);
  assert.ok(createInitiation(evilPeer, nz(forger, aead), 9, tai64n(WALL), out));
  let found = false;
  assert.is(consumeInitiation(b, out, nz(nobleX25519, aead), (k) => { found = equal(k, low); return hs; }, 1000), null);
  assert.ok(found); // the static decrypted to the low-order key; the zero static-static stopped it
  assert.is(snap(hs), before);
});

// ---- Responses out of place ----

test("a response when no initiation is in flight is refused", () => {
  const w = world();
  const first = handshake(w, w.a, w.b);
  checkSessions(first.si, first.sr, w.a, w.b);
  // A is back in None: the same response again
  const before = snap(w.a.peer);
  assert.is(consumeResponse(w.a.local, first.resp, nz(w.a.dh, aead), () => w.a.peer), null);
  assert.is(snap(w.a.peer), before);
  // a peer that never sent anything
  const fresh = new PeerHandshake(w.a.local, w.b.local.publicKey, null, w.a.dh);
  assert.is(consumeResponse(w.a.local, first.resp, nz(w.a.dh, aead), () => fresh), null);
  // a peer that consumed an initiation rather than sending one
  const w2 = world();
  const init = new Uint8Array(148);
  assert.ok(createInitiation(w2.a.peer, nz(w2.a.dh, aead), w2.a.index, tai64n(WALL), init));
  assert.is(consumeInitiation(w2.b.local, init, nz(w2.b.dh, aead), w2.find(w2.b), 0), w2.b.peer);
  const resp = new Uint8Array(92);
  assert.ok(createResponse(w2.b.peer, nz(w2.b.dh, aead), w2.b.index, resp));
  assert.is(consumeResponse(w2.b.local, resp, nz(w2.b.dh, aead), () => w2.b.peer), null);
  assert.is(w2.b.peer.state, HandshakeState.ResponseCreated);
  // createResponse needs InitiationConsumed
  assert.not.ok(createResponse(w2.a.peer, nz(w2.a.dh, aead), 1, new Uint8Array(92)));
  assert.is(w2.a.peer.state, HandshakeState.InitiationSent);
  // beginSession needs a finished handshake
  assert.is(beginSession(w2.a.peer, session()), null);
  assert.is(w2.a.peer.state, HandshakeState.InitiationSent);
});

test("a response with the wrong receiver index is refused", () => {
  const w = world();
  const init = new Uint8Array(148), resp = new Uint8Array(92);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), w.a.index, tai64n(WALL), init));
  assert.is(consumeInitiation(w.b.local, init, nz(w.b.dh, aead), w.find(w.b), 0), w.b.peer);
  w.b.peer.remoteIndex = 0x0badf00d; // B answers to an index A never used
  assert.ok(createResponse(w.b.peer, nz(w.b.dh, aead), w.b.index, resp));
  const before = snap(w.a.peer);
  const asked: number[] = [];
  assert.is(consumeResponse(w.a.local, resp, nz(w.a.dh, aead), (i) => { asked.push(i); return i === w.a.index ? w.a.peer : undefined; }), null);
  assert.equal(asked, [0x0badf00d]);
  // even if the lookup hands back the peer, its index must match
  assert.is(consumeResponse(w.a.local, resp, nz(w.a.dh, aead), () => w.a.peer), null);
  assert.is(snap(w.a.peer), before);
});

test("a new initiation supersedes the one in flight: the old response no longer fits", () => {
  const w = world();
  const i1 = new Uint8Array(148), i2 = new Uint8Array(148), r1 = new Uint8Array(92);
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), 1, tai64n(WALL), i1));
  assert.is(consumeInitiation(w.b.local, i1, nz(w.b.dh, aead), w.find(w.b), 0), w.b.peer);
  assert.ok(createResponse(w.b.peer, nz(w.b.dh, aead), 2, r1));
  assert.ok(createInitiation(w.a.peer, nz(w.a.dh, aead), 1, tai64n(WALL + 5000), i2)); // same index, new ephemeral
  assert.is(consumeResponse(w.a.local, r1, nz(w.a.dh, aead), () => w.a.peer), null);
  assert.is(w.a.peer.state, HandshakeState.InitiationSent);
});

// ---- Secrets ----

test("beginSession wipes H, C and the ephemerals and resets the state; every intermediate secret is zero afterwards", () => {
  const generated: Uint8Array[] = [], dhOutputs: Uint8Array[] = [], aeadKeys: Uint8Array[] = [];
  const spy = (base: X25519): X25519 => ({
    generate() { const k = base.generate(); generated.push(k.privateKey); return k; },
    publicKey: (k) => base.publicKey(k),
    shared(k, p) { const s = base.shared(k, p); if (s) dhOutputs.push(s); return s; },
  });
  const spyAead: Aead = {
    seal(k, n, ad, p, o) { aeadKeys.push(k); aead.seal(k, n, ad, p, o); },
    open(k, n, ad, s, o) { aeadKeys.push(k); return aead.open(k, n, ad, s, o); },
    xseal: aead.xseal, xopen: aead.xopen,
  };
  const dhA = spy(nobleX25519), dhB = spy(nodeX25519);
  const w = world(dhA, dhB, crypto.getRandomValues(new Uint8Array(32)));
  const staticStatic = [w.a.peer.precomputedStaticStatic!, w.b.peer.precomputedStaticStatic!];
  generated.length = 0;
  dhOutputs.length = 0;
  const init = new Uint8Array(148), resp = new Uint8Array(92);
  assert.ok(createInitiation(w.a.peer, nz(dhA, spyAead), w.a.index, tai64n(WALL), init));
  assert.not.ok(isZero(w.a.peer.ephemeralPrivate));
  assert.not.ok(isZero(w.a.peer.hash));
  assert.is(consumeInitiation(w.b.local, init, nz(dhB, spyAead), w.find(w.b), 0), w.b.peer);
  assert.not.ok(isZero(w.b.peer.remoteEphemeral));
  assert.ok(createResponse(w.b.peer, nz(dhB, spyAead), w.b.index, resp));
  assert.is(consumeResponse(w.a.local, resp, nz(dhA, spyAead), () => w.a.peer), w.a.peer);
  assert.ok(isZero(w.a.peer.ephemeralPrivate)); // not needed after the response
  const si = beginSession(w.a.peer, session())!, sr = beginSession(w.b.peer, session())!;
  checkSessions(si, sr, w.a, w.b);
  for (const hs of [w.a.peer, w.b.peer]) {
    assert.ok(isZero(hs.hash));
    assert.ok(isZero(hs.chainKey));
    assert.ok(isZero(hs.ephemeralPrivate));
    assert.ok(isZero(hs.remoteEphemeral));
    assert.is(hs.state, HandshakeState.None);
    assert.is(hs.localIndex, 0);
  }
  assert.is(generated.length, 2);
  assert.is(dhOutputs.length, 6); // es, ee, se on both sides (ss is precomputed)
  assert.is(aeadKeys.length, 6); // static, timestamp, empty: sealed and opened
  for (const s of [...generated, ...dhOutputs, ...aeadKeys]) assert.ok(isZero(s), hex(s));
  // what must survive: the static keys, the static-static DH, the PSK, the replay record
  assert.not.ok(isZero(w.a.local.privateKey));
  for (const s of staticStatic) assert.not.ok(isZero(s));
  assert.not.ok(isZero(w.a.peer.presharedKey));
  assert.not.ok(isZero(w.b.peer.lastTimestamp));
});

test("constructors copy their keys and check them", () => {
  const k = nobleX25519.generate();
  const local = new LocalStatic(k.privateKey, nobleX25519);
  assert.is(hex(local.publicKey), hex(k.publicKey));
  const other = nobleX25519.generate().publicKey, psk = new Uint8Array(32).fill(3);
  const hs = new PeerHandshake(local, other, psk, nobleX25519);
  k.privateKey.fill(0);
  other.fill(0);
  psk.fill(0);
  assert.not.ok(isZero(local.privateKey));
  assert.not.ok(isZero(hs.remoteStatic));
  assert.is(hex(hs.presharedKey), "03".repeat(32));
  assert.is(hex(new PeerHandshake(local, hs.remoteStatic, null, nobleX25519).presharedKey), "00".repeat(32));
  assert.is(hs.lastInitiationConsumedMs, -Infinity);
  assert.is(hex(hs.lastTimestamp), "00".repeat(12));
  assert.throws(() => new LocalStatic(new Uint8Array(31), nobleX25519), (e: unknown) => e instanceof RangeError);
  assert.throws(() => new PeerHandshake(local, new Uint8Array(32), new Uint8Array(16), nobleX25519), (e: unknown) => e instanceof RangeError);
  assert.throws(() => createInitiation(hs, nz(nobleX25519, aead), 1, tai64n(WALL), new Uint8Array(100)), (e: unknown) => e instanceof RangeError);
});

test.run();
