// mac1/mac2, cookie replies (src/cookie.ts) and the handshake rate limiter
// (src/ratelimiter.ts), with an Aead built here on @noble/ciphers and the
// engine's WASM BLAKE2s:
// - mac1 against a transcription of whitepaper 5.4.4 on @noble/hashes; a
//   flipped bit in every byte it covers is refused;
// - mac2: absent, valid, wrong source (address or port), tampered;
// - the cookie round trip and its layout (the reply decrypts here with
//   XChaCha20-Poly1305 under HASH(LABEL_COOKIE || key), mac1 as AAD);
// - replies for a message never sent, for an older message, twice for one
//   mac1, tampered, or from another key are refused;
// - the initiator forgets its cookie after 120 s; the responder's secret
//   expires after 120 s and a new one invalidates old cookies;
// - the rate limiter: burst 5, then 20/s, per source, bounded table,
//   idle entries collected.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { blake2s } from "@noble/hashes/blake2.js";
import type { Aead, NoiseHash } from "../../src/crypto.ts";
import { instantiate } from "../../src/wasm.ts";
import { wasmModule } from "../helpers/net.ts";
import { COOKIE_REFRESH_TIME_MS, CookieChecker, CookieGenerator } from "../../src/cookie.ts";
import { RateLimiter, sourceKey } from "../../src/ratelimiter.ts";
import { nobleX25519 } from "../../src/x25519.ts";

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const text = (s: string) => new TextEncoder().encode(s);
const concat = (a: Uint8Array, b: Uint8Array) => { const o = new Uint8Array(a.length + b.length); o.set(a); o.set(b, a.length); return o; };

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

/** The engine's BLAKE2s (assembly/blake2s.ts), checked here against the transcriptions on @noble/hashes. */
const wasmHash: NoiseHash = instantiate(wasmModule, { maxPeers: 1, maxSlots: 1, batch: 1, cell: 256, aipNodes: 1 });

const SRC4 = Uint8Array.of(192, 0, 2, 7, 0xca, 0x6c); // 192.0.2.7:51820
const SRC4_OTHER_PORT = Uint8Array.of(192, 0, 2, 7, 0xca, 0x6d);
const SRC4_OTHER_IP = Uint8Array.of(192, 0, 2, 8, 0xca, 0x6c);
const SRC6 = Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1, 0xca, 0x6c); // [2001:db8::1]:51820

/** A handshake-shaped message: random content, type byte, zero macs. */
function message(size: 148 | 92, type: number): Uint8Array {
  const m = crypto.getRandomValues(new Uint8Array(size));
  m.set([type, 0, 0, 0]);
  m.fill(0, size - 32);
  return m;
}

function setup() {
  const responder = nobleX25519.generate();
  return {
    pub: responder.publicKey,
    checker: new CookieChecker(responder.publicKey, aead, wasmHash),
    gen: new CookieGenerator(responder.publicKey, aead, wasmHash),
  };
}

/** Gets `gen` a cookie from `checker` for `source` at time `now`. */
function getCookie(checker: CookieChecker, gen: CookieGenerator, source: Uint8Array, now: number): void {
  const m = message(148, 1);
  gen.addMacs(m, now);
  const reply = new Uint8Array(64);
  checker.createReply(m, 77, source, now, reply);
  assert.ok(gen.consumeReply(reply, now));
}

// ---- mac1 ----

for (const size of [148, 92] as const) {
  test(`mac1 of a ${size}-byte message is MAC(HASH(LABEL_MAC1 || key), msg up to mac1) and checks`, () => {
    const { pub, checker, gen } = setup();
    const m = message(size, size === 148 ? 1 : 2);
    gen.addMacs(m, 0);
    const key = blake2s(concat(text("mac1----"), pub));
    assert.is(hex(m.subarray(size - 32, size - 16)), hex(blake2s(m.subarray(0, size - 32), { key, dkLen: 16 })));
    assert.is(hex(m.subarray(size - 16)), "00".repeat(16)); // no cookie: no mac2
    assert.ok(checker.checkMac1(m));
    // a flipped bit anywhere in what mac1 covers, or in mac1, is refused
    for (let i = 0; i < size - 16; i++) {
      const bad = m.slice();
      bad[i] ^= 1 << (i % 8);
      assert.not.ok(checker.checkMac1(bad), `byte ${i}`);
    }
    // mac2 is not covered by mac1
    const b2 = m.slice();
    b2[size - 1] ^= 1;
    assert.ok(checker.checkMac1(b2));
    // another responder's key
    assert.not.ok(setup().checker.checkMac1(m));
    // other lengths
    assert.not.ok(checker.checkMac1(m.subarray(0, size - 1)));
    assert.not.ok(checker.checkMac1(new Uint8Array(64)));
  });
}

// ---- mac2 and the cookie ----

test("mac2: absent is refused; after the cookie round trip it is valid, and only from that source", () => {
  const { pub, checker, gen } = setup();
  const m = message(148, 1);
  gen.addMacs(m, 1000);
  assert.not.ok(checker.checkMac2(m, SRC4, 1000)); // no secret yet at all
  const reply = new Uint8Array(64);
  checker.createReply(m, 0x01020304, SRC4, 1000, reply);
  assert.not.ok(checker.checkMac2(m, SRC4, 1000)); // mac2 is zeros
  // layout: type 3, receiver, 24-byte nonce, 16-byte cookie + tag
  assert.equal(Array.from(reply.subarray(0, 8)), [3, 0, 0, 0, 4, 3, 2, 1]);
  const cookieKey = blake2s(concat(text("cookie--"), pub));
  const cookie = xchacha20poly1305(cookieKey, reply.subarray(8, 32), m.subarray(116, 132)).decrypt(reply.subarray(32, 64));
  assert.is(cookie.length, 16);
  assert.ok(gen.consumeReply(reply, 1000));
  const m2 = message(148, 1);
  gen.addMacs(m2, 2000);
  assert.is(hex(m2.subarray(132)), hex(blake2s(m2.subarray(0, 132), { key: cookie, dkLen: 16 })));
  assert.ok(checker.checkMac1(m2));
  assert.ok(checker.checkMac2(m2, SRC4, 2000));
  assert.not.ok(checker.checkMac2(m2, SRC4_OTHER_PORT, 2000));
  assert.not.ok(checker.checkMac2(m2, SRC4_OTHER_IP, 2000));
  assert.not.ok(checker.checkMac2(m2, SRC6, 2000));
  for (let i = 0; i < 148; i++) {
    const bad = m2.slice();
    bad[i] ^= 0x80 >> (i % 8);
    assert.not.ok(checker.checkMac2(bad, SRC4, 2000), `byte ${i}`);
  }
  // a response carries mac2 the same way
  const r = message(92, 2);
  gen.addMacs(r, 2000);
  assert.ok(checker.checkMac2(r, SRC4, 2000));
});

test("cookie replies: random nonces, IPv6 sources, bad sources and buffers", () => {
  const { checker, gen } = setup();
  const m = message(92, 2);
  gen.addMacs(m, 0);
  const r1 = new Uint8Array(64), r2 = new Uint8Array(64);
  checker.createReply(m, 9, SRC6, 0, r1);
  checker.createReply(m, 9, SRC6, 0, r2);
  assert.is.not(hex(r1.subarray(8, 32)), hex(r2.subarray(8, 32)));
  assert.is(hex(r1.subarray(0, 8)), hex(r2.subarray(0, 8)));
  assert.ok(gen.consumeReply(r2, 0));
  const next = message(148, 1);
  gen.addMacs(next, 1);
  assert.ok(checker.checkMac2(next, SRC6, 1));
  assert.not.ok(checker.checkMac2(next, SRC6.subarray(0, 6), 1)); // a 6-byte source: other bytes, other cookie
  assert.throws(() => checker.checkMac2(next, new Uint8Array(5), 1), (e: unknown) => e instanceof RangeError);
  assert.throws(() => checker.createReply(next, 1, new Uint8Array(7), 1, new Uint8Array(64)), (e: unknown) => e instanceof RangeError);
  assert.throws(() => checker.createReply(next, 1, SRC4, 1, new Uint8Array(63)), (e: unknown) => e instanceof RangeError);
  assert.throws(() => checker.createReply(new Uint8Array(100), 1, SRC4, 1, new Uint8Array(64)), (e: unknown) => e instanceof RangeError);
  assert.throws(() => gen.addMacs(new Uint8Array(100), 1), (e: unknown) => e instanceof RangeError);
  assert.throws(() => new CookieChecker(new Uint8Array(31), aead, wasmHash), (e: unknown) => e instanceof RangeError);
});

test("a cookie reply is taken only for the last mac1 really sent, once", () => {
  const { checker, gen } = setup();
  // nothing sent yet
  const never = message(148, 1);
  const orphan = new Uint8Array(64);
  checker.createReply(never, 1, SRC4, 0, orphan);
  assert.not.ok(gen.consumeReply(orphan, 0));
  // a reply built for a message with the same content but another mac1 (never sent by gen)
  const sent = message(148, 1);
  gen.addMacs(sent, 0);
  const forged = sent.slice();
  forged[116] ^= 1;
  const r0 = new Uint8Array(64);
  checker.createReply(forged, 1, SRC4, 0, r0);
  assert.not.ok(gen.consumeReply(r0, 0));
  // a reply to an older message
  const older = message(148, 1), newer = message(148, 1);
  gen.addMacs(older, 0);
  const rOld = new Uint8Array(64);
  checker.createReply(older, 1, SRC4, 0, rOld);
  gen.addMacs(newer, 0);
  assert.not.ok(gen.consumeReply(rOld, 0));
  // tampered replies
  const rNew = new Uint8Array(64);
  checker.createReply(newer, 1, SRC4, 0, rNew);
  for (let i = 0; i < 64; i++) {
    if (i >= 4 && i < 8) continue; // the receiver field is the caller's lookup key, not authenticated
    const bad = rNew.slice();
    bad[i] ^= 1 << (i % 8);
    assert.not.ok(gen.consumeReply(bad, 0), `byte ${i}`);
  }
  assert.not.ok(gen.consumeReply(rNew.subarray(0, 63), 0));
  // from a responder with another key
  const rOther = new Uint8Array(64);
  setup().checker.createReply(newer, 1, SRC4, 0, rOther);
  assert.not.ok(gen.consumeReply(rOther, 0));
  // the right one, once
  assert.ok(gen.consumeReply(rNew, 0));
  assert.not.ok(gen.consumeReply(rNew, 0));
  const rAgain = new Uint8Array(64);
  checker.createReply(newer, 1, SRC4, 0, rAgain);
  assert.not.ok(gen.consumeReply(rAgain, 0));
});

test("the initiator forgets its cookie 120 s after receiving it", () => {
  const { checker, gen } = setup();
  assert.is(COOKIE_REFRESH_TIME_MS, 120000);
  getCookie(checker, gen, SRC4, 5000);
  const m = message(148, 1);
  gen.addMacs(m, 5000 + 119999);
  assert.is.not(hex(m.subarray(132)), "00".repeat(16));
  gen.addMacs(m, 5000 + 120000);
  assert.is(hex(m.subarray(132)), "00".repeat(16));
  gen.addMacs(m, 5000 + 1000); // forgotten for good, even if the clock were to step back
  assert.is(hex(m.subarray(132)), "00".repeat(16));
});

test("the responder's secret expires after 120 s, and a new secret invalidates old cookies", () => {
  const { checker, gen } = setup();
  getCookie(checker, gen, SRC4, 0);
  const m = message(148, 1);
  gen.addMacs(m, 100);
  assert.ok(checker.checkMac2(m, SRC4, 100));
  assert.ok(checker.checkMac2(m, SRC4, 119999));
  assert.not.ok(checker.checkMac2(m, SRC4, 120000)); // expired
  // a reply at 120 s makes a new secret: the old cookie stays invalid, the new one works
  const m2 = message(148, 1);
  gen.addMacs(m2, 120000); // gen still holds the old cookie (received at 0: forgotten at 120000, so no mac2)
  assert.is(hex(m2.subarray(132)), "00".repeat(16));
  const reply = new Uint8Array(64);
  checker.createReply(m2, 1, SRC4, 120000, reply);
  assert.not.ok(checker.checkMac2(m, SRC4, 120001)); // old mac2, new secret
  assert.ok(gen.consumeReply(reply, 120000));
  const m3 = message(148, 1);
  gen.addMacs(m3, 120001);
  assert.ok(checker.checkMac2(m3, SRC4, 120001));
  assert.is.not(hex(m3.subarray(132)), hex(m.subarray(132)));
  // within the 120 s the secret is kept: a second reply gives the same cookie
  const { checker: c2, gen: g2, pub } = setup();
  const g3 = new CookieGenerator(pub, aead, wasmHash);
  getCookie(c2, g2, SRC4, 0);
  getCookie(c2, g3, SRC4, 60000);
  const a = message(148, 1);
  g2.addMacs(a, 60000);
  const b = a.slice();
  g3.addMacs(b, 60000);
  assert.is(hex(a.subarray(132)), hex(b.subarray(132)));
});

// ---- The rate limiter ----

test("rate limiter: a burst of 5, then 20 per second", () => {
  const rl = new RateLimiter();
  const got = (ip: string, t: number) => rl.allow(ip, t);
  for (let i = 0; i < 5; i++) assert.ok(got("a", 0), `burst ${i}`);
  assert.not.ok(got("a", 0));
  assert.not.ok(got("a", 49));
  assert.ok(got("a", 50));
  assert.not.ok(got("a", 50));
  assert.not.ok(got("a", 99));
  assert.ok(got("a", 100));
  // other sources are not affected
  for (let i = 0; i < 5; i++) assert.ok(got("b", 100));
  assert.not.ok(got("b", 100));
  // idle long enough: a full burst again, never more
  for (let i = 0; i < 5; i++) assert.ok(got("a", 10000), `refill ${i}`);
  assert.not.ok(got("a", 10000));
  // sustained: asking every 10 ms for 10 s gives the burst plus 20/s
  const r2 = new RateLimiter();
  let n = 0;
  for (let t = 0; t <= 10000; t += 10) if (r2.allow("c", t)) n++;
  assert.is(n, 5 + 200);
});

test("rate limiter: a full table of busy sources never refuses a new one; the least recently used gives way", () => {
  const rl = new RateLimiter(3);
  assert.ok(rl.allow("10.0.0.1", 0));
  assert.ok(rl.allow("10.0.0.2", 0));
  assert.ok(rl.allow("10.0.0.3", 0));
  assert.is(rl.size, 3);
  // .1 spends its burst; .2 and .3 are used later, so .1 is the least recently used... until it asks again.
  for (let i = 0; i < 4; i++) rl.allow("10.0.0.1", 10);
  assert.not.ok(rl.allow("10.0.0.1", 10), ".1 is out of tokens");
  rl.allow("10.0.0.2", 20);
  rl.allow("10.0.0.3", 30);
  assert.ok(rl.allow("10.0.0.4", 40), "a new source while the table is full of busy ones");
  assert.is(rl.size, 3);
  assert.is(rl.evicted, 1);
  // .1 was the one that gave way: it comes back as a new source, with a fresh burst.
  assert.ok(rl.allow("10.0.0.1", 50));
  assert.is(rl.evicted, 2);
  assert.throws(() => new RateLimiter(0), (e: unknown) => e instanceof RangeError);
  assert.throws(() => new RateLimiter(1.5), (e: unknown) => e instanceof RangeError);
});

test("rate limiter: the lockout of a /64 is gone: its addresses share one bucket, and a flood of them leaves room for others", () => {
  const rl = new RateLimiter(4096);
  // One holder of fd00:bad::/64 asks from 10,000 of its addresses, a cookie round trip each, 20 times a second.
  let allowed = 0;
  for (let t = 0; t < 2000; t += 50) {
    for (let i = 0; i < 250; i++) if (rl.allow(`fd00:bad::${(t * 5 + i).toString(16)}`, t)) allowed++;
  }
  assert.is(rl.size, 1, "one bucket for the whole /64");
  assert.is(allowed, 5 + 39, "its burst, then 20 a second, however many addresses it uses");
  // Another /64, an IPv4 peer and an IPv4-mapped one are each their own source, served at once.
  assert.ok(rl.allow("fd00:beef::1", 2000));
  assert.ok(rl.allow("192.0.2.7", 2000));
  assert.ok(rl.allow("::ffff:192.0.2.8", 2000));
  assert.is(sourceKey("::ffff:192.0.2.8"), "192.0.2.8");
  assert.is(sourceKey("[fd00:bad::1:2]"), "fd000bad00000000::/64");
  // 4096 IPv4 sources keep the table full and busy; a legitimate peer is still let in every time it comes.
  const full = new RateLimiter(4096);
  let refused = 0;
  for (let t = 0; t < 3000; t += 100) {
    for (let i = 0; i < 4096; i++) full.allow(`10.${i >> 8}.${i & 255}.1`, t);
    if (!full.allow("198.51.100.9", t)) refused++;
  }
  assert.is(refused, 0);
  assert.is(full.size, 4096);
});

test("rate limiter: idle entries are collected, explicitly and lazily", () => {
  const rl = new RateLimiter();
  for (let i = 0; i < 100; i++) rl.allow(`10.0.0.${i}`, 0);
  assert.is(rl.size, 100);
  rl.allow("10.0.0.1", 600);
  rl.collect(999);
  assert.is(rl.size, 100);
  rl.collect(1000);
  assert.is(rl.size, 1); // only 10.0.0.1, used at 600
  rl.collect(1600);
  assert.is(rl.size, 0);
  // lazily: every allow() forgets what has been idle a second, oldest first
  for (let i = 0; i < 50; i++) rl.allow(`10.1.0.${i}`, 2000);
  assert.is(rl.size, 50);
  rl.allow("10.2.0.1", 2999);
  assert.is(rl.size, 51);
  rl.allow("10.2.0.1", 3000); // the 50 idle since 2000 go
  assert.is(rl.size, 1);
  // a collected source starts over with a full burst
  for (let i = 0; i < 5; i++) assert.ok(rl.allow("10.1.0.0", 3999));
  assert.not.ok(rl.allow("10.1.0.0", 3999));
});

test.run();
