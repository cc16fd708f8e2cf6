// X25519 on node:crypto (OpenSSL; BoringSSL under Bun), synchronous: about
// 15-30 times the speed of the pure-JS fallback.
//
// Node 20 cannot make a KeyObject from raw X25519 bytes, so keys go in
// through JWK. The obvious route, DER with the fixed PKCS#8 /
// SPKI headers in front of the raw bytes, works (it is the fallback below)
// but OpenSSL 3's DER decoder costs ~300 us per private key, ten times a
// whole DH; the JWK path builds the key directly from the raw bytes.
// Measured on the 2-core test machine (Node 20, OpenSSL 3.0; best of 4):
//   diffieHellman on ready KeyObjects           44 us
//   JWK private import                          47 us (OpenSSL derives the public key: a base-point multiply)
//   JWK public import                          8.4 us
//   createPublicKey(private KeyObject)         1.4 us, then export as JWK 0.8 us
//   SPKI DER export of a public key             89 us
//   generateKeyPairSync("x25519")               50 us
//   randomFillSync of 32 bytes                ~4 us a call
// So a key pair costs one import: its public key is the one OpenSSL
// derived, read back through createPublicKey + JWK export, not a second
// multiply (X25519(k, 9) with diffieHellman, 44 us more). Random private
// keys come from a pool filled 1 KiB at a time, each key's bytes zeroed in
// the pool as they are taken.
//
// Never export a key made by generateKeyPairSync: KeyObject.export({ format:
// "jwk" }) on such keys can deadlock Node 20 (ExportJWKEdKey allocates a JS
// string while holding the key's mutex; if that allocation runs a GC that
// destroys the KeyGenJob sharing the mutex, the main thread waits on itself
// forever: reproduced here within 50,000 generate+export). Keys imported
// from JWK have no KeyGenJob: 400,000 import+createPublicKey+export, also
// with a 1 MB young generation to force GCs, ran clean.
import { createPrivateKey, createPublicKey, diffieHellman, randomFillSync, type KeyObject } from "node:crypto";
import { Buffer } from "node:buffer";
import { checkKey, clamp, equal, isZero, wipe, type X25519 } from "../../src/crypto.ts";

const PKCS8_X25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const SPKI_X25519 = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);
/** JWK needs an `x` next to `d`; Node derives the real public key from `d` and ignores this one. */
const PLACEHOLDER_X = Buffer.alloc(32).toString("base64url");
const b64url = (k: Uint8Array): string => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString("base64url");

let jwkWorks = true;

function importPrivate(raw: Uint8Array): KeyObject {
  if (jwkWorks) {
    try {
      return createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: b64url(raw), x: PLACEHOLDER_X }, format: "jwk" });
    } catch {
      jwkWorks = false; // some future Node that insists on a matching x: take the slow road
    }
  }
  const der = new Uint8Array(PKCS8_X25519.length + 32);
  der.set(PKCS8_X25519);
  der.set(raw, PKCS8_X25519.length);
  try {
    return createPrivateKey({ key: Buffer.from(der.buffer), format: "der", type: "pkcs8" });
  } finally {
    wipe(der);
  }
}

function importPublic(raw: Uint8Array, b64: string): KeyObject {
  if (jwkWorks) {
    try {
      return createPublicKey({ key: { kty: "OKP", crv: "X25519", x: b64 }, format: "jwk" });
    } catch {
      // fall through to DER
    }
  }
  const der = new Uint8Array(SPKI_X25519.length + 32);
  der.set(SPKI_X25519);
  der.set(raw, SPKI_X25519.length);
  return createPublicKey({ key: Buffer.from(der.buffer), format: "der", type: "spki" });
}

// Private keys: a short most-recently-used list, matched by constant-time
// comparison against our own copy (so a caller that later wipes or reuses
// its array can never get a stale key). It holds the static key and the
// ephemerals of the handshakes in flight; a miss only costs an import.
// An ephemeral must not outlive its handshake: each entry also remembers
// (weakly) the array it was first seen in, and is dropped, its copy wiped,
// as soon as that array has been wiped or changed (the handshake wipes its
// ephemerals in place) or collected. Node has no way to destroy a KeyObject:
// OpenSSL's copy goes when the garbage collector frees it.
const PRIVATE_SLOTS = 16;
const privCache: { raw: Uint8Array; origin: WeakRef<Uint8Array>; key: KeyObject }[] = [];

function sweepPrivate(): void {
  for (let i = privCache.length - 1; i >= 0; i--) {
    const e = privCache[i], o = e.origin.deref();
    if (o === undefined || !equal(o, e.raw)) {
      wipe(e.raw);
      privCache.splice(i, 1);
    }
  }
}

function privateKeyObject(raw: Uint8Array): KeyObject {
  sweepPrivate();
  let hit = -1;
  for (let i = 0; i < privCache.length; i++) if (equal(privCache[i].raw, raw) && hit < 0) hit = i;
  if (hit >= 0) {
    const e = privCache[hit];
    if (hit > 0) { privCache.splice(hit, 1); privCache.unshift(e); }
    return e.key;
  }
  const key = importPrivate(raw);
  privCache.unshift({ raw: raw.slice(), origin: new WeakRef(raw), key });
  if (privCache.length > PRIVATE_SLOTS) wipe(privCache.pop()!.raw);
  return key;
}

let derivedWorks = true;

/** The public key of a private KeyObject: the one OpenSSL derived at import, or X25519(k, 9) where it cannot be read back. */
function publicOf(priv: KeyObject): Uint8Array | null {
  if (derivedWorks) {
    try {
      const x = createPublicKey(priv).export({ format: "jwk" }).x;
      if (typeof x === "string") {
        const b = Buffer.from(x, "base64url");
        if (b.length === 32) return new Uint8Array(b); // a copy: b is a slice of Buffer's shared pool
      }
    } catch {
      // fall through
    }
    derivedWorks = false; // a runtime that will not: one multiply more
  }
  return dh(priv, publicKeyObject(BASE_POINT));
}

// Private keys to come, 32 at a time: one randomFillSync per 32 keys.
const POOL = new Uint8Array(32 * 32);
let poolAt = POOL.length;

function randomPrivateKey(): Uint8Array {
  if (poolAt === POOL.length) { randomFillSync(POOL); poolAt = 0; }
  const k = clamp(POOL.slice(poolAt, poolAt + 32));
  POOL.fill(0, poolAt, poolAt + 32);
  poolAt += 32;
  return k;
}

/** Internal, for tests: how many private keys are cached now (after dropping those whose arrays were wiped). */
export function _cachedPrivateKeys(): number {
  sweepPrivate();
  return privCache.length;
}

// Public keys are not secret: a Map keyed by their base64url text, oldest
// dropped first (Map iterates in insertion order; a hit moves to the end).
const PUBLIC_SLOTS = 256;
const pubCache = new Map<string, KeyObject>();

function publicKeyObject(raw: Uint8Array): KeyObject {
  const b64 = b64url(raw);
  let key = pubCache.get(b64);
  if (key !== undefined) {
    pubCache.delete(b64);
  } else {
    key = importPublic(raw, b64);
    if (pubCache.size >= PUBLIC_SLOTS) pubCache.delete(pubCache.keys().next().value!);
  }
  pubCache.set(b64, key);
  return key;
}

const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

/** DH into a fresh Uint8Array, or null when OpenSSL refuses (all-zero result) or the result is zero. */
function dh(priv: KeyObject, pub: KeyObject): Uint8Array | null {
  let b: Buffer;
  try {
    b = diffieHellman({ privateKey: priv, publicKey: pub });
  } catch {
    return null; // OpenSSL fails the derivation when the result is all zeros
  }
  // The Buffer has memory of its own (checked: never a slice of a shared pool): hand it over as a plain Uint8Array.
  let s: Uint8Array;
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) s = new Uint8Array(b.buffer);
  else { s = new Uint8Array(b); b.fill(0); }
  if (s.length !== 32 || isZero(s)) {
    wipe(s);
    return null;
  }
  return s;
}

/**
 * X25519 on node:crypto. Same contract as the portable nobleX25519.
 * @throws TypeError / RangeError for keys that are not 32-byte Uint8Arrays.
 * @example
 * const a = nodeX25519.generate(), b = nodeX25519.generate();
 * nodeX25519.shared(a.privateKey, b.publicKey); // === shared(b.privateKey, a.publicKey)
 */
export const nodeX25519: X25519 = {
  generate() {
    const privateKey = randomPrivateKey();
    return { privateKey, publicKey: nodeX25519.publicKey(privateKey) };
  },

  publicKey(privateKey) {
    checkKey(privateKey, "privateKey");
    const pub = publicOf(privateKeyObject(privateKey));
    if (pub === null) throw new Error("x25519: could not compute the public key");
    return pub;
  },

  shared(privateKey, publicKey) {
    checkKey(privateKey, "privateKey");
    checkKey(publicKey, "publicKey");
    return dh(privateKeyObject(privateKey), publicKeyObject(publicKey));
  },
};
