// X25519 for Deno, synchronous (the engine's handshake cannot await
// WebCrypto). Deno's own APIs have no synchronous X25519 outside node:crypto,
// so this calls a C library through Deno.dlopen when --allow-ffi is granted,
// and falls back to @noble/curves (src/x25519.ts) otherwise.
//
// Measured on the 2-core test machine (Deno 2.9, one shared secret per op):
//   libsodium crypto_scalarmult           34,000/s   (one FFI call)
//   OpenSSL 3 libcrypto EVP_PKEY_derive   18,000/s   (key import, derive, free: 8 FFI calls)
//   node:crypto diffieHellman, ready keys 22,000/s   (not used: no node: imports here)
//   @noble/curves                          3,400/s
// The first library that loads wins, in that order.
import { checkKey, clamp, isZero, wipe, type X25519 } from "../../src/crypto.ts";
import { nobleX25519 } from "../../src/x25519.ts";

type Raw = {
  /** X25519(k, u) into out; false when the result is all zeros. */
  shared(out: Uint8Array, k: Uint8Array, u: Uint8Array): boolean;
  base(out: Uint8Array, k: Uint8Array): boolean;
};

const SODIUM_NAMES = ["libsodium.so.23", "libsodium.so.26", "libsodium.so"];
const CRYPTO_NAMES = ["libcrypto.so.3", "libcrypto.so"];

function sodium(): Raw | null {
  for (const name of SODIUM_NAMES) {
    let lib;
    try {
      lib = Deno.dlopen(name, {
        sodium_init: { parameters: [], result: "i32" },
        crypto_scalarmult: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
        crypto_scalarmult_base: { parameters: ["buffer", "buffer"], result: "i32" },
      });
    } catch {
      continue;
    }
    const s = lib.symbols;
    if (s.sodium_init() < 0) { lib.close(); continue; }
    return {
      // crypto_scalarmult returns -1 for an all-zero result (a low-order point).
      shared: (out, k, u) => s.crypto_scalarmult(out, k, u) === 0,
      base: (out, k) => s.crypto_scalarmult_base(out, k) === 0,
    };
  }
  return null;
}

const NID_X25519 = 1034;

function openssl(): Raw | null {
  for (const name of CRYPTO_NAMES) {
    let lib;
    try {
      lib = Deno.dlopen(name, {
        EVP_PKEY_new_raw_private_key: { parameters: ["i32", "pointer", "buffer", "usize"], result: "pointer" },
        EVP_PKEY_new_raw_public_key: { parameters: ["i32", "pointer", "buffer", "usize"], result: "pointer" },
        EVP_PKEY_get_raw_public_key: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
        EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
        EVP_PKEY_derive_init: { parameters: ["pointer"], result: "i32" },
        EVP_PKEY_derive_set_peer: { parameters: ["pointer", "pointer"], result: "i32" },
        EVP_PKEY_derive: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
        EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
        EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
      });
    } catch {
      continue;
    }
    const s = lib.symbols;
    const len = new BigUint64Array(1), lenBytes = new Uint8Array(len.buffer);
    return {
      shared(out, k, u) {
        // OpenSSL frees (and clears) its copy of the private key with the EVP_PKEY.
        const priv = s.EVP_PKEY_new_raw_private_key(NID_X25519, null, k, 32n);
        const pub = s.EVP_PKEY_new_raw_public_key(NID_X25519, null, u, 32n);
        const ctx = priv === null ? null : s.EVP_PKEY_CTX_new(priv, null);
        len[0] = 32n;
        // derive fails when the result is all zeros.
        const ok = ctx !== null && pub !== null && s.EVP_PKEY_derive_init(ctx) === 1 &&
          s.EVP_PKEY_derive_set_peer(ctx, pub) === 1 && s.EVP_PKEY_derive(ctx, out, lenBytes) === 1 && len[0] === 32n;
        if (ctx !== null) s.EVP_PKEY_CTX_free(ctx);
        if (pub !== null) s.EVP_PKEY_free(pub);
        if (priv !== null) s.EVP_PKEY_free(priv);
        return ok;
      },
      base(out, k) {
        const priv = s.EVP_PKEY_new_raw_private_key(NID_X25519, null, k, 32n);
        if (priv === null) return false;
        len[0] = 32n;
        const ok = s.EVP_PKEY_get_raw_public_key(priv, out, lenBytes) === 1 && len[0] === 32n;
        s.EVP_PKEY_free(priv);
        return ok;
      },
    };
  }
  return null;
}

let raw: Raw | null | undefined;
let chosen = "@noble/curves";

/** The native implementation, chosen on first use; null: use noble. Never prompts for a permission. */
function native(): Raw | null {
  if (raw !== undefined) return raw;
  raw = null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return raw;
  raw = sodium();
  if (raw) { chosen = "libsodium"; return raw; }
  raw = openssl();
  if (raw) chosen = "OpenSSL libcrypto";
  return raw;
}

/** Which implementation denoX25519 uses (after its first call): "libsodium", "OpenSSL libcrypto" or "@noble/curves". */
export function x25519Implementation(): string {
  native();
  return chosen;
}

/**
 * X25519 for Deno: libsodium or OpenSSL through FFI, else @noble/curves.
 * Same contract as nobleX25519: `shared` returns null when the result would
 * be all zeros (a low-order public key).
 * @throws TypeError / RangeError for keys that are not 32-byte Uint8Arrays.
 * @example
 * const a = denoX25519.generate(), b = denoX25519.generate();
 * denoX25519.shared(a.privateKey, b.publicKey); // === shared(b.privateKey, a.publicKey)
 */
export const denoX25519: X25519 = {
  generate() {
    const privateKey = clamp(crypto.getRandomValues(new Uint8Array(32)));
    return { privateKey, publicKey: denoX25519.publicKey(privateKey) };
  },

  publicKey(privateKey) {
    checkKey(privateKey, "privateKey");
    const r = native();
    if (r === null) return nobleX25519.publicKey(privateKey);
    const out = new Uint8Array(32);
    if (!r.base(out, privateKey)) throw new Error("x25519: could not compute the public key");
    return out;
  },

  shared(privateKey, publicKey) {
    checkKey(privateKey, "privateKey");
    checkKey(publicKey, "publicKey");
    const r = native();
    if (r === null) return nobleX25519.shared(privateKey, publicKey);
    const out = new Uint8Array(32);
    if (!r.shared(out, privateKey, publicKey) || isZero(out)) {
      wipe(out);
      return null;
    }
    return out;
  },
};
