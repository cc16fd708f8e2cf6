// The primitives under the handshake, against published vectors:
// - BLAKE2s: RFC 7693 appendix B ("abc") and the appendix E self-test
//   (keyed and unkeyed, digest lengths 16/20/28/32, inputs 0..1024, one grand hash);
// - HMAC-BLAKE2s / KDF1..3: wireguard-go device/kdf_test.go (test/vectors/kdf.json);
// - the Noise constants: HASH(CONSTRUCTION), HASH(HASH(CONSTRUCTION) || IDENTIFIER);
// - X25519, for nobleX25519 and nodeX25519 alike: RFC 7748 5.2 (both vectors,
//   1 and 1,000 iterations), 6.1 (Alice and Bob), Wycheproof cases, and every
//   low-order public key encoding giving null (test/vectors/x25519.json);
// - TAI64N layout, whitening and ordering.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { blake2s } from "@noble/hashes/blake2.js";
import {
  CONSTRUCTION, IDENTIFIER, INITIAL_CHAIN_KEY, INITIAL_HASH, LABEL_COOKIE, LABEL_MAC1, clamp, equal, hash, hmac, isZero,
  kdf1, kdf2, kdf3, mac, wipe, type X25519,
} from "../../src/crypto.ts";
import { nobleX25519 } from "../../src/x25519.ts";
import { _cachedPrivateKeys, nodeX25519 } from "../../adapters/node-compat/x25519.ts";
import { TAI64N_WHITENER, compareTai64n, tai64n } from "../../src/tai64n.ts";
import x25519Vectors from "../vectors/x25519.json" with { type: "json" };
import kdfVectors from "../vectors/kdf.json" with { type: "json" };

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---- BLAKE2s ----

test("BLAKE2s-256('abc') is RFC 7693 appendix B", () => {
  assert.is(hex(hash(ascii("abc"))), "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  // hash() of several parts is the hash of their concatenation
  assert.is(hex(hash(ascii("a"), ascii(""), ascii("bc"))), "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
});

// RFC 7693 appendix E: deterministic inputs from a Fibonacci generator.
function selftestSeq(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let a = Math.imul(0xdead4bad, seed) >>> 0, b = 1;
  for (let i = 0; i < len; i++) {
    const t = (a + b) >>> 0;
    a = b;
    b = t;
    out[i] = t >>> 24;
  }
  return out;
}

test("BLAKE2s RFC 7693 appendix E self-test (grand hash), and hash()/mac() agree with it", () => {
  const grand = blake2s.create({ dkLen: 32 });
  let checkedHash = 0, checkedMac = 0;
  for (const outlen of [16, 20, 28, 32]) {
    for (const inlen of [0, 3, 64, 65, 255, 1024]) {
      const input = selftestSeq(inlen, inlen);
      const unkeyed = blake2s(input, { dkLen: outlen });
      grand.update(unkeyed);
      const key = selftestSeq(outlen, outlen);
      const keyed = blake2s(input, { dkLen: outlen, key });
      grand.update(keyed);
      if (outlen === 32) { assert.is(hex(hash(input)), hex(unkeyed)); checkedHash++; }
      if (outlen === 16) { assert.is(hex(mac(key, input)), hex(keyed)); checkedMac++; }
    }
  }
  assert.is(hex(grand.digest()), "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe");
  assert.is(checkedHash, 6);
  assert.is(checkedMac, 6);
});

test("mac() is keyed BLAKE2s-128, not HMAC, and of the concatenated parts", () => {
  const key = new Uint8Array(32).fill(7);
  const m = mac(key, ascii("hello "), ascii("world"));
  assert.is(m.length, 16);
  assert.is(hex(m), hex(blake2s(ascii("hello world"), { key, dkLen: 16 })));
  assert.is.not(hex(m), hex(hmac(key, ascii("hello world")).subarray(0, 16)));
});

// ---- HMAC-BLAKE2s and the KDF ----

test("KDF1/KDF2/KDF3 match wireguard-go's kdf_test.go vectors", () => {
  assert.is(kdfVectors.vectors.length, 3);
  for (const v of kdfVectors.vectors) {
    const key = unhex(v.key), input = unhex(v.input);
    const [a, b, c] = kdf3(key, input);
    assert.is(hex(a), v.t0);
    assert.is(hex(b), v.t1);
    assert.is(hex(c), v.t2);
    const [d, e] = kdf2(key, input);
    assert.is(hex(d), v.t0);
    assert.is(hex(e), v.t1);
    assert.is(hex(kdf1(key, input)), v.t0);
  }
});

test("HMAC-BLAKE2s is RFC 2104 over BLAKE2s-256 (built by hand here)", () => {
  for (const keyLen of [0, 16, 32, 64, 65, 100]) {
    const key = selftestSeq(keyLen, keyLen + 1);
    const msg = selftestSeq(77, 3);
    const k0 = new Uint8Array(64);
    k0.set(keyLen > 64 ? blake2s(key) : key);
    const ipad = k0.map((x) => x ^ 0x36), opad = k0.map((x) => x ^ 0x5c);
    const expected = blake2s(new Uint8Array([...opad, ...blake2s(new Uint8Array([...ipad, ...msg]))]));
    assert.is(hex(hmac(key, msg.subarray(0, 10), msg.subarray(10))), hex(expected), `key length ${keyLen}`);
  }
});

// ---- Noise constants ----

test("the Noise constants and the precomputed initial chaining key and hash", () => {
  assert.is(new TextDecoder().decode(CONSTRUCTION), "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
  assert.is(new TextDecoder().decode(IDENTIFIER), "WireGuard v1 zx2c4 Jason@zx2c4.com");
  assert.is(new TextDecoder().decode(LABEL_MAC1), "mac1----");
  assert.is(new TextDecoder().decode(LABEL_COOKIE), "cookie--");
  assert.is(hex(INITIAL_CHAIN_KEY), "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
  assert.is(hex(INITIAL_HASH), "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
  assert.is(hex(hash(CONSTRUCTION)), "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
  assert.is(hex(hash(hash(CONSTRUCTION), IDENTIFIER)), "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
});

test("equal, isZero, wipe, clamp", () => {
  assert.ok(equal(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)));
  assert.not.ok(equal(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4)));
  assert.not.ok(equal(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2)));
  assert.ok(equal(new Uint8Array(0), new Uint8Array(0)));
  for (let i = 0; i < 32; i++) {
    const a = new Uint8Array(32), b = new Uint8Array(32);
    b[i] = 0x80;
    assert.not.ok(equal(a, b), `byte ${i}`);
    assert.not.ok(isZero(b), `byte ${i}`);
  }
  assert.ok(isZero(new Uint8Array(32)));
  assert.ok(isZero(new Uint8Array(0)));
  const w = Uint8Array.of(9, 9, 9);
  wipe(w);
  assert.equal(Array.from(w), [0, 0, 0]);
  assert.equal(Array.from(clamp(new Uint8Array(32).fill(0xff))).filter((_, i) => i === 0 || i === 31), [0xf8, 0x7f]);
  assert.equal(Array.from(clamp(new Uint8Array(32))).filter((_, i) => i === 0 || i === 31), [0, 0x40]);
});

// ---- X25519, for both implementations ----

const impls: [string, X25519][] = [["nobleX25519", nobleX25519], ["nodeX25519", nodeX25519]];

for (const [name, dh] of impls) {
  test(`${name}: RFC 7748 5.2 single vectors`, () => {
    for (const v of x25519Vectors.rfc7748_5_2) {
      assert.is(hex(dh.shared(unhex(v.scalar), unhex(v.u))!), v.out);
    }
  });

  test(`${name}: RFC 7748 5.2 iterated, 1 and 1,000 times`, () => {
    const it = x25519Vectors.rfc7748_5_2_iterated;
    let k = unhex(it.start), u = unhex(it.start);
    for (let i = 1; i <= 1000; i++) {
      const r = dh.shared(k, u)!;
      u = k;
      k = r;
      if (i === 1) assert.is(hex(k), it.after1);
    }
    assert.is(hex(k), it.after1000);
  });

  test(`${name}: RFC 7748 6.1 Alice and Bob`, () => {
    const v = x25519Vectors.rfc7748_6_1;
    assert.is(hex(dh.publicKey(unhex(v.alicePrivate))), v.alicePublic);
    assert.is(hex(dh.publicKey(unhex(v.bobPrivate))), v.bobPublic);
    assert.is(hex(dh.shared(unhex(v.alicePrivate), unhex(v.bobPublic))!), v.shared);
    assert.is(hex(dh.shared(unhex(v.bobPrivate), unhex(v.alicePublic))!), v.shared);
  });

  test(`${name}: Wycheproof valid, twist and non-canonical cases compute per RFC 7748`, () => {
    assert.is(x25519Vectors.wycheproofValid.length, 7);
    for (const v of x25519Vectors.wycheproofValid) {
      assert.is(hex(dh.shared(unhex(v.private), unhex(v.public))!), v.shared, `tcId ${v.tcId}`);
    }
  });

  test(`${name}: every low-order public key encoding gives null`, () => {
    const { privateKey } = dh.generate();
    assert.is(x25519Vectors.lowOrder.length, 14);
    for (const v of x25519Vectors.lowOrder) {
      assert.is(dh.shared(privateKey, unhex(v.public)), null, v.name);
      assert.is(dh.shared(unhex(x25519Vectors.rfc7748_6_1.alicePrivate), unhex(v.public)), null, v.name);
    }
    assert.is(x25519Vectors.wycheproofZeroShared.length, 16);
    for (const v of x25519Vectors.wycheproofZeroShared) {
      assert.is(dh.shared(unhex(v.private), unhex(v.public)), null, `tcId ${v.tcId}`);
    }
  });

  test(`${name}: generate gives a clamped key and its public key; shared agrees both ways`, () => {
    const a = dh.generate(), b = dh.generate();
    assert.is(a.privateKey.length, 32);
    assert.is(a.privateKey[0] & 7, 0);
    assert.is(a.privateKey[31] & 0xc0, 0x40);
    assert.is(hex(a.publicKey), hex(dh.publicKey(a.privateKey)));
    assert.is.not(hex(a.privateKey), hex(b.privateKey));
    const s1 = dh.shared(a.privateKey, b.publicKey)!, s2 = dh.shared(b.privateKey, a.publicKey)!;
    assert.is(s1.length, 32);
    assert.is(hex(s1), hex(s2));
    // a wiped private key (as the handshake leaves it) is a different key, never a cached stale one
    const priv = a.privateKey.slice();
    wipe(a.privateKey);
    assert.is.not(hex(dh.shared(a.privateKey, b.publicKey)!), hex(s1));
    assert.is(hex(dh.shared(priv, b.publicKey)!), hex(s1));
  });

  test(`${name}: bad input types and lengths throw`, () => {
    const k = new Uint8Array(32);
    assert.throws(() => dh.shared(new Uint8Array(31), k), (e: unknown) => e instanceof RangeError);
    assert.throws(() => dh.shared(k, new Uint8Array(33)), (e: unknown) => e instanceof RangeError);
    assert.throws(() => dh.publicKey([1, 2, 3] as unknown as Uint8Array), (e: unknown) => e instanceof TypeError);
  });
}

test("nobleX25519 and nodeX25519 agree on random keys", () => {
  for (let i = 0; i < 20; i++) {
    const a = nobleX25519.generate(), b = nodeX25519.generate();
    assert.is(hex(nodeX25519.publicKey(a.privateKey)), hex(a.publicKey));
    assert.is(hex(nobleX25519.publicKey(b.privateKey)), hex(b.publicKey));
    assert.is(hex(nobleX25519.shared(a.privateKey, b.publicKey)!), hex(nodeX25519.shared(b.privateKey, a.publicKey)!));
  }
});

test("nodeX25519 keeps no private key after its array has been wiped (ephemerals die with the handshake)", () => {
  const keys = Array.from({ length: 16 }, () => nodeX25519.generate());
  assert.is(_cachedPrivateKeys(), 16); // the cache holds 16: exactly these
  const peer = nobleX25519.generate().publicKey;
  const before = keys.map((k) => hex(nodeX25519.shared(k.privateKey, peer)!));
  for (let i = 0; i < 5; i++) wipe(keys[i].privateKey);
  assert.is(_cachedPrivateKeys(), 11);
  assert.is(hex(nodeX25519.shared(keys[10].privateKey, peer)!), before[10]);
  assert.is(_cachedPrivateKeys(), 11);
  // a changed (not wiped) array is dropped too, and the new content is a new key
  keys[6].privateKey[3] ^= 1;
  assert.is(_cachedPrivateKeys(), 10);
  assert.is.not(hex(nodeX25519.shared(keys[6].privateKey, peer)!), before[6]);
  assert.is(_cachedPrivateKeys(), 11);
  for (const k of keys) wipe(k.privateKey);
  assert.is(_cachedPrivateKeys(), 0);
});

// ---- TAI64N ----

test("tai64n: layout is big-endian seconds + 2^62 + 10, then whitened nanoseconds", () => {
  // 2021-01-01T00:00:00.500Z = 1609459200 s; 0x5fee6600 + 10 = 0x5fee660a
  const t = tai64n(1609459200500);
  assert.is(t.length, 12);
  // 500 ms = 500,000,000 ns = 0x1dcd6500, rounded down to a multiple of 2^24: 0x1d000000
  assert.is(hex(t), "400000005fee660a1d000000");
  assert.is(hex(tai64n(0)), "400000000000000a00000000");
  // a carry out of the low 32 bits of the seconds
  assert.is(hex(tai64n((0x100000000 - 10) * 1000)), "400000010000000000000000");
  // the year 1969
  assert.is(hex(tai64n(-1000)), "400000000000000900000000");
  // into a caller buffer at an offset
  const buf = new Uint8Array(20);
  const view = buf.subarray(4, 16);
  assert.is(tai64n(1609459200500, view), view);
  assert.is(hex(buf), "00000000" + "400000005fee660a1d000000" + "00000000");
  assert.throws(() => tai64n(NaN), (e: unknown) => e instanceof RangeError);
  assert.throws(() => tai64n(0, new Uint8Array(11)), (e: unknown) => e instanceof RangeError);
});

test("tai64n: whitening hides the time within 2^24 ns", () => {
  assert.is(TAI64N_WHITENER, 16777216);
  const base = 1700000000000;
  // 0..16 ms are all in the first 2^24 ns step (16.777 ms)
  for (let ms = 0; ms <= 16; ms++) assert.is(hex(tai64n(base + ms).subarray(8)), "00000000", `${ms} ms`);
  assert.is(hex(tai64n(base + 17).subarray(8)), "01000000");
  assert.is(hex(tai64n(base + 999).subarray(8)), "3b000000"); // 999,000,000 ns -> 59 * 2^24
  for (let ms = 0; ms < 1000; ms += 7) {
    const ns = new DataView(tai64n(base + ms).buffer).getUint32(8);
    assert.is(ns % TAI64N_WHITENER, 0);
    assert.ok(ns <= ms * 1e6 && ms * 1e6 - ns < TAI64N_WHITENER);
  }
});

test("compareTai64n orders by time", () => {
  const a = tai64n(1700000000000), b = tai64n(1700000000020), c = tai64n(1700000001000), d = tai64n(1700000000005);
  assert.is(compareTai64n(a, b), -1);
  assert.is(compareTai64n(b, a), 1);
  assert.is(compareTai64n(a, a.slice()), 0);
  assert.is(compareTai64n(a, d), 0); // same whitened step
  assert.is(compareTai64n(b, c), -1);
  assert.is(compareTai64n(c, b), 1);
  assert.is(compareTai64n(new Uint8Array(12), a), -1);
  // the seconds outrank the nanoseconds
  assert.is(compareTai64n(tai64n(1700000001000), tai64n(1700000000999)), 1);
});

test.run();
