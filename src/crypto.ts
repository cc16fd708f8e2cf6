// Interfaces through which the protocol code reaches its primitives, so each
// runtime can hand in its fastest implementation (see adapters/; the engine
// hashes in its WASM, src/wasm.ts). Also the Noise helpers (HASH, MAC, HMAC,
// KDF) over BLAKE2s on @noble/hashes: the portable NoiseHash, and what code
// outside the handshake's hot path (constants, tests, tools) uses.
import { blake2s } from "@noble/hashes/blake2.js";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";

/** ChaCha20-Poly1305 (RFC 8439) and XChaCha20-Poly1305, writing into caller buffers. */
export interface Aead {
  /** Encrypts `plaintext` into `out` (plaintext.length + 16 bytes: ciphertext then tag). `nonce` is 12 bytes. */
  seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  /** Verifies and decrypts `sealed` (ciphertext then 16-byte tag) into `out` (sealed.length - 16 bytes). False if the tag is wrong; `out` is then untouched. */
  open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
  /** XChaCha20-Poly1305 seal, `nonce` is 24 bytes. */
  xseal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  /** XChaCha20-Poly1305 open, `nonce` is 24 bytes. */
  xopen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
}

/**
 * The whitepaper's HASH, MAC and KDF (5.4, "Symbols and Functions") over
 * BLAKE2s, writing into caller buffers so a handshake allocates nothing.
 * Each call is one Noise step (the engine's is one crossing into its WASM).
 * Outputs may be the same arrays as inputs: every input is read first.
 */
export interface NoiseHash {
  /** out[0..32] := HASH(a || b), BLAKE2s-256. */
  hash(a: Uint8Array, b: Uint8Array, out: Uint8Array): void;
  /** out[0..16] := MAC(key, msg): keyed BLAKE2s-128 (RFC 7693 keyed mode, not HMAC), key 1..32 bytes. */
  mac(key: Uint8Array, msg: Uint8Array, out: Uint8Array): void;
  /**
   * KDF_n(key, input) over HMAC-BLAKE2s, n being 1, 2 or 3 as t2 and t3 are
   * given: t1 := tau1, t2 := tau2, t3 := tau3 (32 bytes each). key at most 64 bytes.
   */
  kdf(key: Uint8Array, input: Uint8Array, t1: Uint8Array, t2?: Uint8Array, t3?: Uint8Array): void;
}

// ---- Noise helpers over BLAKE2s (whitepaper 5.4, "Symbols and Functions") ----

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The Noise protocol name: HASH(CONSTRUCTION) is the initial chaining key. */
export const CONSTRUCTION: Uint8Array = utf8("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
/** WireGuard's Noise prologue, mixed into the initial hash. */
export const IDENTIFIER: Uint8Array = utf8("WireGuard v1 zx2c4 Jason@zx2c4.com");
/** The mac1 key is HASH(LABEL_MAC1 || responder's static public key) (whitepaper 5.4.4). */
export const LABEL_MAC1: Uint8Array = utf8("mac1----");
/** The cookie-reply key is HASH(LABEL_COOKIE || static public key) (whitepaper 5.4.7). */
export const LABEL_COOKIE: Uint8Array = utf8("cookie--");

/** BLAKE2s-256 of the concatenation of `parts`: the whitepaper's HASH. Returns 32 new bytes. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Keyed BLAKE2s with a 16-byte output (RFC 7693 keyed mode, not HMAC): the whitepaper's MAC. Key is 1..32 bytes. */
export function mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create({ key, dkLen: 16 });
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC-BLAKE2s (RFC 2104 over BLAKE2s-256): the whitepaper's HMAC. Returns 32 new bytes. */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = nobleHmac.create(blake2s, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

const ONE = Uint8Array.of(1), TWO = Uint8Array.of(2), THREE = Uint8Array.of(3);

// KDF_n(key, input), whitepaper 5.4: tau0 := HMAC(key, input); tau1 := HMAC(tau0, 0x1);
// tau_i := HMAC(tau0, tau_{i-1} || i). This is HKDF (RFC 5869) with the key as salt.

/** KDF1(key, input): tau1. */
export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, ONE);
  wipe(t0);
  return t1;
}

/** KDF2(key, input): [tau1, tau2]. */
export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, ONE);
  const t2 = hmac(t0, t1, TWO);
  wipe(t0);
  return [t1, t2];
}

/** KDF3(key, input): [tau1, tau2, tau3]. */
export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, ONE);
  const t2 = hmac(t0, t1, TWO);
  const t3 = hmac(t0, t2, THREE);
  wipe(t0);
  return [t1, t2, t3];
}

/**
 * NoiseHash on @noble/hashes: pure JavaScript, runs everywhere. The portable
 * fallback to the engine's WASM (src/wasm.ts), and the reference its tests
 * compare against.
 */
export const nobleNoiseHash: NoiseHash = {
  hash(a, b, out) {
    const h = hash(a, b);
    out.set(h);
    wipe(h);
  },
  mac(key, msg, out) {
    const m = mac(key, msg);
    out.set(m);
    wipe(m);
  },
  kdf(key, input, t1, t2, t3) {
    const t = t3 ? kdf3(key, input) : t2 ? kdf2(key, input) : [kdf1(key, input)];
    t1.set(t[0]);
    if (t2) t2.set(t[1]);
    if (t3) t3.set(t[2]);
    for (const x of t) wipe(x);
  },
};

// crypto.getRandomValues costs a few microseconds a call whatever the size
// (about 4 us on Node 20): values that are unpredictable but not secret
// (receiver indices, timer jitter) come from a pool filled 1 KiB at a time.
const pool = new Uint32Array(256);
let poolAt = pool.length;

/** A random 32-bit value for what must be unpredictable but is not a secret (never a key). */
export function randomU32(): number {
  if (poolAt === pool.length) { crypto.getRandomValues(pool); poolAt = 0; }
  const v = pool[poolAt];
  pool[poolAt++] = 0;
  return v;
}

/** Constant-time (for equal lengths) comparison. Different lengths are unequal; the length is not secret. */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Whether every byte is zero, in time that depends only on the length. */
export function isZero(a: Uint8Array): boolean {
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i];
  return d === 0;
}

/** Overwrites `a` with zeros. (Best effort: a JS engine may have copied it elsewhere.) */
export function wipe(a: Uint8Array): void {
  a.fill(0);
}

/** Ci := HASH(CONSTRUCTION), the initial chaining key (whitepaper 5.4.2). Shared: never write to it. */
export const INITIAL_CHAIN_KEY: Uint8Array = hash(CONSTRUCTION);
/** Hi := HASH(Ci || IDENTIFIER), the initial hash (whitepaper 5.4.2). Shared: never write to it. */
export const INITIAL_HASH: Uint8Array = hash(INITIAL_CHAIN_KEY, IDENTIFIER);

// ---- Diffie-Hellman ----

/** X25519 (RFC 7748), synchronous. Keys are 32 bytes. */
export interface X25519 {
  /** A new random private key (clamped) and its public key. */
  generate(): { privateKey: Uint8Array; publicKey: Uint8Array };
  publicKey(privateKey: Uint8Array): Uint8Array;
  /** The shared secret, or null when it is all zeros (low-order point): callers must abort. */
  shared(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null;
}

/** Clamps a 32-byte X25519 scalar in place (RFC 7748 section 5, decodeScalar25519). */
export function clamp(k: Uint8Array): Uint8Array {
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}

/** Throws TypeError/RangeError unless `k` is a 32-byte Uint8Array. */
export function checkKey(k: unknown, name: string): asserts k is Uint8Array {
  if (!(k instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  if (k.length !== 32) throw new RangeError(`${name} must be 32 bytes, got ${k.length}`);
}
