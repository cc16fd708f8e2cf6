// X25519 on @noble/curves: pure JavaScript, synchronous, runs everywhere.
// The portable fallback; adapters hand in something faster where the
// runtime has it (adapters/node/x25519.ts).
import { x25519 } from "@noble/curves/ed25519.js";
import { checkKey, clamp, isZero, wipe, type X25519 } from "./crypto.ts";

/**
 * X25519 over @noble/curves.
 * `shared` returns null for every public key whose result would be all
 * zeros (the low-order points, in any encoding): noble rejects those before
 * the ladder, and the result is checked for zero as well.
 * @throws TypeError / RangeError for keys that are not 32-byte Uint8Arrays.
 * @example
 * const a = nobleX25519.generate(), b = nobleX25519.generate();
 * nobleX25519.shared(a.privateKey, b.publicKey); // === shared(b.privateKey, a.publicKey)
 */
export const nobleX25519: X25519 = {
  generate() {
    const privateKey = clamp(crypto.getRandomValues(new Uint8Array(32)));
    return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
  },

  publicKey(privateKey) {
    checkKey(privateKey, "privateKey");
    return x25519.getPublicKey(privateKey);
  },

  shared(privateKey, publicKey) {
    checkKey(privateKey, "privateKey");
    checkKey(publicKey, "publicKey");
    let s: Uint8Array;
    try {
      s = x25519.getSharedSecret(privateKey, publicKey);
    } catch {
      return null; // the lengths are checked above: this is a low-order point
    }
    if (isZero(s)) {
      wipe(s);
      return null;
    }
    return s;
  },
};
