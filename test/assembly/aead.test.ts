// ChaCha20, Poly1305, HChaCha20 and the two AEADs in assembly/aead.ts, called
// straight through the WebAssembly exports, each test run for the SIMD128
// path and again for its scalar twin:
// - the RFC 8439 examples and appendix A vectors (test/vectors/aead.json),
//   draft-irtf-cfrg-xchacha's HChaCha20 and XChaCha20-Poly1305 vectors;
// - randomized comparison with @noble/ciphers for every length 0..300 and a
//   few large ones, at unaligned addresses, checking nothing outside the
//   buffers is written;
// - forgeries (a flipped bit in ciphertext, tag or AD) are refused and leave
//   the ciphertext as it was;
// - the WireGuard transport calls against aead_seal with the nonce built here.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chacha20, chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { poly1305 } from "@noble/ciphers/_poly1305.js";
import { wasmBytes } from "#engine-wasm";
import vectors from "../vectors/aead.json" with { type: "json" };

interface Exports {
  memory: WebAssembly.Memory;
  set_simd(on: number): void;
  chacha20_xor(key: number, nonce: number, counter: number, p: number, len: number): void;
  poly1305_mac(key: number, msg: number, len: number, out: number): void;
  hchacha20(key: number, nonce16: number, out: number): void;
  aead_seal(key: number, nonce: number, ad: number, adLen: number, p: number, len: number, tag: number): void;
  aead_open(key: number, nonce: number, ad: number, adLen: number, p: number, len: number, tag: number): number;
  xaead_seal(key: number, nonce: number, ad: number, adLen: number, p: number, len: number, tag: number): void;
  xaead_open(key: number, nonce: number, ad: number, adLen: number, p: number, len: number, tag: number): number;
  seal_transport(key: number, counter: bigint, p: number, len: number): void;
  open_transport(key: number, counter: bigint, p: number, len: number): number;
}

function instantiate(): Exports {
  const module = new WebAssembly.Module(wasmBytes);
  // Whatever the module imports, a call into it is a failure here.
  const imports: Record<string, Record<string, unknown>> = {};
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.kind !== "function") throw new Error(`unexpected import ${i.module}.${i.name}`);
    (imports[i.module] ??= {})[i.name] = () => { throw new Error(`wasm called ${i.module}.${i.name}`); };
  }
  return new WebAssembly.Instance(module, imports as WebAssembly.Imports).exports as unknown as Exports;
}

const wasm = instantiate();

// Inputs live in pages grown for the test: above the module's static data
// and stack whether or not it exports __heap_base. Fixed slots, each with
// room for an unaligned start (offsets up to 15).
const LARGEST = 65536 + 64;
const BASE = wasm.memory.grow(Math.ceil((LARGEST + 4096) / 65536) + 1) * 65536;
const KEY = BASE, NONCE = BASE + 64, TAG = BASE + 128, AD = BASE + 192, P = BASE + 1024;

const mem = () => new Uint8Array(wasm.memory.buffer);
const put = (at: number, b: Uint8Array) => mem().set(b, at);
const get = (at: number, n: number) => mem().slice(at, at + n);

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};

// A seeded generator (xorshift32), so a failing case can be replayed.
let seed = 0x9e3779b9;
function rand(n: number): number {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}
function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rand(256);
  return b;
}

/** The WireGuard transport nonce: 4 zero bytes, then the counter as u64 little-endian. */
function transportNonce(counter: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, counter, true);
  return n;
}

interface Sealed { ct: Uint8Array; tag: Uint8Array }

/**
 * aead_seal (or xaead_seal) with every input at its own unaligned address;
 * checks the bytes just around the buffers were not written.
 */
function seal(x: boolean, key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, pt: Uint8Array): Sealed {
  const o = rand(16), k = KEY + rand(16), n = NONCE + rand(16), a = AD + rand(16), t = TAG + rand(16);
  const p = P + o;
  const canary = randomBytes(pt.length + 64);
  put(P - 16, canary);
  put(k, key); put(n, nonce); put(a, ad); put(p, pt);
  (x ? wasm.xaead_seal : wasm.aead_seal)(k, n, a, ad.length, p, pt.length, t);
  const ct = get(p, pt.length), tag = get(t, 16);
  assert.equal(get(P - 16, 16 + o), canary.subarray(0, 16 + o), "bytes before p");
  assert.equal(get(p + pt.length, canary.length - 16 - o - pt.length), canary.subarray(16 + o + pt.length), "bytes after p");
  assert.equal(get(k, key.length), key, "key untouched");
  assert.equal(get(a, ad.length), ad, "ad untouched");
  return { ct, tag };
}

/** aead_open (or xaead_open) likewise; returns validity and what p holds afterwards. */
function open(x: boolean, key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, ct: Uint8Array, tag: Uint8Array): { ok: boolean; out: Uint8Array } {
  const o = rand(16), k = KEY + rand(16), n = NONCE + rand(16), a = AD + rand(16), t = TAG + rand(16);
  const p = P + o;
  const canary = randomBytes(ct.length + 64);
  put(P - 16, canary);
  put(k, key); put(n, nonce); put(a, ad); put(p, ct); put(t, tag);
  const ok = (x ? wasm.xaead_open : wasm.aead_open)(k, n, a, ad.length, p, ct.length, t) === 1;
  assert.equal(get(P - 16, 16 + o), canary.subarray(0, 16 + o), "bytes before p");
  assert.equal(get(p + ct.length, canary.length - 16 - o - ct.length), canary.subarray(16 + o + ct.length), "bytes after p");
  assert.equal(get(t, 16), tag, "tag untouched");
  return { ok, out: get(p, ct.length) };
}

function chachaXor(key: Uint8Array, nonce: Uint8Array, counter: number, data: Uint8Array, o = 0): Uint8Array {
  put(KEY, key); put(NONCE, nonce); put(P + o, data);
  wasm.chacha20_xor(KEY, NONCE, counter, P + o, data.length);
  return get(P + o, data.length);
}

function mac(key: Uint8Array, msg: Uint8Array, o = 0): Uint8Array {
  put(KEY, key); put(P + o, msg);
  wasm.poly1305_mac(KEY, P + o, msg.length, TAG);
  return get(TAG, 16);
}

const LENGTHS = [...Array(301).keys(), 1420, 4096 + 7, 8192, 9408, 9409, 65536 + 3];

for (const simd of [true, false]) {
  const mode = simd ? "simd" : "scalar";
  const on = () => wasm.set_simd(simd ? 1 : 0);

  test(`${mode}: ChaCha20, RFC 8439 2.4.2, A.1 and A.2`, () => {
    on();
    for (const v of vectors.chacha20) {
      const ct = chachaXor(hex(v.key), hex(v.nonce), v.counter, hex(v.plaintext));
      assert.is(toHex(ct), v.ciphertext, v.name);
      assert.is(toHex(chachaXor(hex(v.key), hex(v.nonce), v.counter, ct, 3)), v.plaintext, v.name + " (back)");
    }
  });

  test(`${mode}: Poly1305, RFC 8439 2.5.2 and A.3 (incl. the wrap around 2^130 - 5)`, () => {
    on();
    for (const v of vectors.poly1305) assert.is(toHex(mac(hex(v.key), hex(v.msg))), v.tag, v.name);
  });

  test(`${mode}: ChaCha20-Poly1305, RFC 8439 2.8.2 and A.5`, () => {
    on();
    for (const v of vectors.aead) {
      const key = hex(v.key), nonce = hex(v.nonce), ad = hex(v.ad);
      const { ct, tag } = seal(false, key, nonce, ad, hex(v.plaintext));
      assert.is(toHex(ct), v.ciphertext, v.name + " ciphertext");
      assert.is(toHex(tag), v.tag, v.name + " tag");
      const { ok, out } = open(false, key, nonce, ad, hex(v.ciphertext), hex(v.tag));
      assert.ok(ok, v.name + " opens");
      assert.is(toHex(out), v.plaintext, v.name + " plaintext");
    }
  });

  test(`${mode}: HChaCha20 and XChaCha20-Poly1305, draft-irtf-cfrg-xchacha 2.2.1 and A.3.1`, () => {
    on();
    for (const v of vectors.hchacha20) {
      put(KEY, hex(v.key)); put(NONCE, hex(v.nonce));
      wasm.hchacha20(KEY, NONCE, TAG);
      assert.is(toHex(get(TAG, 32)), v.subkey, v.name);
    }
    for (const v of vectors.xaead) {
      const key = hex(v.key), nonce = hex(v.nonce), ad = hex(v.ad);
      const { ct, tag } = seal(true, key, nonce, ad, hex(v.plaintext));
      assert.is(toHex(ct), v.ciphertext, v.name + " ciphertext");
      assert.is(toHex(tag), v.tag, v.name + " tag");
      const { ok, out } = open(true, key, nonce, ad, ct, tag);
      assert.ok(ok, v.name + " opens");
      assert.is(toHex(out), v.plaintext, v.name + " plaintext");
    }
  });

  test(`${mode}: ChaCha20 and Poly1305 match @noble/ciphers, lengths 0..300 and large`, () => {
    on();
    for (const len of LENGTHS) {
      const key = randomBytes(32), nonce = randomBytes(12), data = randomBytes(len);
      const counter = rand(1 << 30);
      assert.equal(chachaXor(key, nonce, counter, data, rand(16)), chacha20(key, nonce, data, undefined, counter), `chacha20 ${len}`);
      assert.equal(mac(key, data, rand(16)), poly1305(data, key), `poly1305 ${len}`);
    }
  });

  test(`${mode}: aead_seal/aead_open match @noble/ciphers, lengths 0..300 and large, unaligned`, () => {
    on();
    for (const len of LENGTHS) {
      const key = randomBytes(32), nonce = randomBytes(12), ad = randomBytes(len % 3 === 0 ? 0 : rand(40));
      const pt = randomBytes(len);
      const expect = chacha20poly1305(key, nonce, ad).encrypt(pt);
      const { ct, tag } = seal(false, key, nonce, ad, pt);
      assert.equal(concat(ct, tag), expect, `seal ${len}`);
      const { ok, out } = open(false, key, nonce, ad, ct, tag);
      assert.ok(ok, `open ${len}`);
      assert.equal(out, pt, `plaintext ${len}`);
    }
  });

  test(`${mode}: xaead_seal/xaead_open match @noble/ciphers`, () => {
    on();
    for (const len of [0, 1, 15, 16, 17, 63, 64, 65, 191, 192, 193, 255, 256, 257, 300, 1420, 9409]) {
      const key = randomBytes(32), nonce = randomBytes(24), ad = randomBytes(rand(40)), pt = randomBytes(len);
      const expect = xchacha20poly1305(key, nonce, ad).encrypt(pt);
      const { ct, tag } = seal(true, key, nonce, ad, pt);
      assert.equal(concat(ct, tag), expect, `xseal ${len}`);
      const { ok, out } = open(true, key, nonce, ad, ct, tag);
      assert.ok(ok, `xopen ${len}`);
      assert.equal(out, pt, `xplaintext ${len}`);
    }
  });

  test(`${mode}: a flipped bit in ciphertext, tag or AD is refused and leaves p untouched`, () => {
    on();
    for (const x of [false, true]) {
      for (const len of [0, 1, 16, 63, 64, 65, 200, 1420, 5000, 9409]) {
        const key = randomBytes(32), nonce = randomBytes(x ? 24 : 12), ad = randomBytes(1 + rand(32));
        const pt = randomBytes(len);
        const { ct, tag } = seal(x, key, nonce, ad, pt);
        const flip = (b: Uint8Array) => {
          const c = b.slice();
          c[rand(c.length)] ^= 1 << rand(8);
          return c;
        };
        const tries: [string, Uint8Array, Uint8Array, Uint8Array][] = [
          ["tag", ct, flip(tag), ad],
          ["ad", ct, tag, flip(ad)],
          ["shorter ad", ct, tag, ad.subarray(1)],
        ];
        if (len > 0) tries.push(["ciphertext", flip(ct), tag, ad]);
        for (const [what, c, t, a] of tries) {
          const { ok, out } = open(x, key, nonce, a, c, t);
          assert.not.ok(ok, `${x ? "x" : ""}aead ${len}: ${what} flipped yet accepted`);
          assert.equal(out, c, `${x ? "x" : ""}aead ${len}: ${what} flipped and p changed`);
        }
        assert.ok(open(x, key, nonce, ad, ct, tag).ok, "the original still opens");
      }
    }
  });

  test(`${mode}: no keystream or one-time key is left in the module's own memory`, () => {
    on();
    const contains = (hay: Uint8Array, needle: Uint8Array) => {
      outer: for (let i = 0; i + needle.length <= hay.length; i++) {
        for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
        return true;
      }
      return false;
    };
    for (const len of [40, 100, 1420, 9409]) {
      const key = randomBytes(32), nonce = randomBytes(12), pt = randomBytes(len);
      const { ct, tag } = seal(false, key, nonce, new Uint8Array(0), pt);
      open(false, key, nonce, new Uint8Array(0), ct, tag.map((b) => b ^ 1)); // forged: keystream made, never used
      open(false, key, nonce, new Uint8Array(0), ct, tag);
      const otk = chacha20(key, nonce, new Uint8Array(32), undefined, 0);
      const ks = ct.map((b, i) => b ^ pt[i]);
      const needles = [otk.subarray(0, 16), otk.subarray(16, 32)];
      for (let i = 0; i + 16 <= len; i += 48) needles.push(ks.subarray(i, i + 16));
      const own = get(0, BASE); // static data, scratch and stack: everything below the test's pages
      for (const n of needles) assert.not.ok(contains(own, n), `${len}: secret bytes left behind`);
    }
  });

  test(`${mode}: seal_transport/open_transport are aead_seal/open with nonce 0^4 || counter (LE)`, () => {
    on();
    const counters = [0n, 1n, 2n ** 32n + 5n, 2n ** 64n - 2n ** 13n - 1n];
    for (const counter of counters) {
      for (const len of [0, 1, 16, 64, 100, 1420]) {
        const key = randomBytes(32), pt = randomBytes(len);
        const byHand = seal(false, key, transportNonce(counter), new Uint8Array(0), pt);
        put(KEY, key); put(P + 1, pt);
        wasm.seal_transport(KEY, counter, P + 1, len);
        const wire = get(P + 1, len + 16);
        assert.equal(wire, concat(byHand.ct, byHand.tag), `seal_transport ${counter} ${len}`);
        assert.equal(wire, chacha20poly1305(key, transportNonce(counter)).encrypt(pt), `noble ${counter} ${len}`);

        assert.is(wasm.open_transport(KEY, counter ^ 1n, P + 1, len), 0, "another counter refused");
        assert.equal(get(P + 1, len + 16), wire, "refused: p untouched");
        assert.is(wasm.open_transport(KEY, counter, P + 1, len), 1, `open_transport ${counter} ${len}`);
        assert.equal(get(P + 1, len), pt, "plaintext back");
      }
    }
  });
}

test.run();
