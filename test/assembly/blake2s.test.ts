// BLAKE2s, HMAC-BLAKE2s and the Noise KDF in assembly/blake2s.ts, called
// straight through the WebAssembly exports:
// - RFC 7693 appendix B ("abc") and the appendix E self-test's grand hash
//   (keyed and unkeyed, digest lengths 16/20/28/32, inputs 0..1024);
// - the BLAKE2 reference keyed KATs (test/vectors/blake2s.json);
// - HMAC-BLAKE2s and KDF1/2/3 against wireguard-go's kdf_test.go vectors;
// - properties against @noble/hashes (fast-check): every output length
//   1..32, keys 0..32 bytes, inputs of random length at unaligned addresses,
//   both halves of HASH(a || b), HMAC keys of any length and the KDF's n;
//   nothing outside the output is written, and outputs may overlap inputs;
// - out-of-range lengths and n write nothing;
// - no secret is left behind: after a KDF, neither tau0 nor the HMAC key
//   pads are anywhere in memory.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { blake2s as nobleBlake2s } from "@noble/hashes/blake2.js";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";
import { instantiate } from "../helpers/wasm.ts";
import { params } from "../helpers/prop.ts";
import vectors from "../vectors/blake2s.json" with { type: "json" };
import kdfVectors from "../vectors/kdf.json" with { type: "json" };

interface Blake2sExports {
  blake2s(out: number, outLen: number, key: number, keyLen: number, p: number, len: number): void;
  hmac_blake2s(out: number, key: number, keyLen: number, p: number, len: number): void;
  noise_hash(out: number, a: number, aLen: number, b: number, bLen: number): void;
  noise_kdf(n: number, out: number, key: number, keyLen: number, p: number, len: number): void;
}

const wasm = instantiate<Blake2sExports>();
// Test data in pages grown here, above the module's static data and stack.
const BASE = wasm.memory.grow(2) * 65536;
const OUT = BASE, KEY = BASE + 256, A = BASE + 512, B = BASE + 4096, END = BASE + 8192;

const mem = () => new Uint8Array(wasm.memory.buffer);
const put = (at: number, b: Uint8Array) => mem().set(b, at);
const get = (at: number, n: number) => mem().slice(at, at + n);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const seq = (n: number) => Uint8Array.from({ length: n }, (_, i) => i & 0xff);

/** BLAKE2s through the export, key and input placed at the given offsets (for unaligned starts). */
function b2s(outLen: number, key: Uint8Array, input: Uint8Array, ko = 0, io = 0): Uint8Array {
  put(KEY + ko, key);
  put(A + io, input);
  wasm.blake2s(OUT, outLen, KEY + ko, key.length, A + io, input.length);
  return get(OUT, outLen);
}

const nobleHash = (key: Uint8Array, input: Uint8Array, dkLen: number) =>
  nobleBlake2s(input, key.length > 0 ? { key, dkLen } : { dkLen });
const hmac = (k: Uint8Array, ...p: Uint8Array[]) => { const h = nobleHmac.create(nobleBlake2s, k); for (const x of p) h.update(x); return h.digest(); };

test("BLAKE2s-256('abc') is RFC 7693 appendix B", () => {
  assert.is(hex(b2s(32, new Uint8Array(0), new TextEncoder().encode("abc"))), vectors.abc);
});

// RFC 7693 appendix E: inputs from a Fibonacci-style generator.
function selftestSeq(len: number, s: number): Uint8Array {
  const out = new Uint8Array(len);
  let a = Math.imul(0xdead4bad, s) >>> 0, b = 1;
  for (let i = 0; i < len; i++) {
    const t = (a + b) >>> 0;
    a = b;
    b = t;
    out[i] = t >>> 24;
  }
  return out;
}

test("RFC 7693 appendix E self-test: the grand hash of every keyed and unkeyed digest", () => {
  const all: number[] = [];
  for (const outlen of [16, 20, 28, 32]) {
    for (const inlen of [0, 3, 64, 65, 255, 1024]) {
      const input = selftestSeq(inlen, inlen);
      all.push(...b2s(outlen, new Uint8Array(0), input));
      all.push(...b2s(outlen, selftestSeq(outlen, outlen), input));
    }
  }
  assert.is(hex(b2s(32, new Uint8Array(0), Uint8Array.from(all))), vectors.selftestGrand);
});

test("the BLAKE2 reference keyed KATs (key 00..1f)", () => {
  for (const v of vectors.keyedKat) assert.is(hex(b2s(32, seq(32), seq(v.len))), v.hash, `length ${v.len}`);
});

test("KDF1/KDF2/KDF3 and HMAC-BLAKE2s match wireguard-go's kdf_test.go vectors", () => {
  for (const v of kdfVectors.vectors) {
    const key = unhex(v.key), input = unhex(v.input);
    put(KEY, key);
    put(A, input);
    for (const n of [1, 2, 3]) {
      wasm.noise_kdf(n, OUT, KEY, key.length, A, input.length);
      assert.is(hex(get(OUT, 32 * n)), [v.t0, v.t1, v.t2].slice(0, n).join(""), `KDF${n}`);
    }
    wasm.hmac_blake2s(OUT, KEY, key.length, A, input.length);
    assert.is(hex(get(OUT, 32)), hex(hmac(key, input)));
  }
});

test("property: BLAKE2s of any output length, key and input equals @noble/hashes, writing only its output", () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 32 }), fc.uint8Array({ maxLength: 32 }), fc.uint8Array({ maxLength: 600 }),
    fc.nat(15), fc.nat(15),
    (outLen, key, input, ko, io) => {
      mem().fill(0xa5, OUT, OUT + 64);
      const got = b2s(outLen, key, input, ko, io);
      assert.is(hex(got), hex(nobleHash(key, input, outLen)));
      assert.ok(get(OUT + outLen, 64 - outLen).every((x) => x === 0xa5), "wrote past its output");
    }), params(300, 0x2b2b));
});

test("property: noise_hash is HASH(a || b), at any split, with the output over its input", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
    const want = hex(nobleBlake2s(Uint8Array.from([...a, ...b])));
    put(A, a);
    put(B, b);
    wasm.noise_hash(OUT, A, a.length, B, b.length);
    assert.is(hex(get(OUT, 32)), want);
    // out over a (mixHash writes h over h)
    wasm.noise_hash(A, A, a.length, B, b.length);
    assert.is(hex(get(A, 32)), want);
  }), params(200, 0x4a54));
});

test("property: HMAC-BLAKE2s (keys of any length) and KDF_n equal @noble/hashes, with the output over the key", () => {
  fc.assert(fc.property(
    fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 65, maxLength: 200 }) }), fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 3 }),
    (key, input, n) => {
      put(KEY, key);
      put(A, input);
      wasm.hmac_blake2s(OUT, KEY, key.length, A, input.length);
      assert.is(hex(get(OUT, 32)), hex(hmac(key, input)));
      const t0 = hmac(key, input), t1 = hmac(t0, Uint8Array.of(1)), t2 = hmac(t0, t1, Uint8Array.of(2));
      const want = hex(Uint8Array.from([...t1, ...t2, ...hmac(t0, t2, Uint8Array.of(3))].slice(0, 32 * n)));
      mem().fill(0xa5, OUT, OUT + 128);
      wasm.noise_kdf(n, OUT, KEY, key.length, A, input.length);
      assert.is(hex(get(OUT, 32 * n)), want);
      assert.ok(get(OUT + 32 * n, 128 - 32 * n).every((x) => x === 0xa5), "wrote past its outputs");
      // c := KDF(c, input): the output over the key
      wasm.noise_kdf(n, KEY, KEY, key.length, A, input.length);
      assert.is(hex(get(KEY, 32 * n)), want);
    }), params(200, 0x6b64));
});

test("out-of-range arguments write nothing", () => {
  mem().fill(0xa5, OUT, OUT + 128);
  put(KEY, seq(64));
  wasm.blake2s(OUT, 0, 0, 0, A, 10);
  wasm.blake2s(OUT, 33, 0, 0, A, 10);
  wasm.blake2s(OUT, 32, KEY, 33, A, 10);
  wasm.noise_kdf(0, OUT, KEY, 32, A, 10);
  wasm.noise_kdf(4, OUT, KEY, 32, A, 10);
  assert.ok(get(OUT, 128).every((x) => x === 0xa5));
});

test("noise_kdf leaves neither tau0 nor the key's pads in memory", () => {
  const key = seq(32).map((x) => x ^ 0x5a), input = seq(48);
  put(KEY, key);
  put(A, input);
  wasm.noise_kdf(3, OUT, KEY, 32, A, input.length);
  const t0 = hmac(key, input);
  const ipad = Uint8Array.from([...key, ...new Uint8Array(32)], (x) => x ^ 0x36);
  const opad = Uint8Array.from([...key, ...new Uint8Array(32)], (x) => x ^ 0x5c);
  const m = mem().subarray(0, BASE); // the module's own memory: statics and stack
  const found = (needle: Uint8Array) => {
    outer: for (let i = 0; i + needle.length <= m.length; i++) {
      for (let j = 0; j < needle.length; j++) if (m[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };
  assert.not.ok(found(t0), "tau0 left behind");
  assert.not.ok(found(ipad.subarray(0, 32)), "key ^ ipad left behind");
  assert.not.ok(found(opad.subarray(0, 32)), "key ^ opad left behind");
  assert.ok(END < wasm.memory.buffer.byteLength);
});

test.run();
