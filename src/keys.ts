// Keys as text, for code that writes configs: a new private or preshared
// key and a private key's public key, in the base64 of wg(8) and wg-quick(8)
// files (what `wg genkey`, `wg genpsk` and `wg pubkey` print, without the
// line break).
import { keyFromBase64, keyToBase64 } from "./config.ts";
import { clamp, wipe, type X25519 } from "./crypto.ts";
import { nobleX25519 } from "./x25519.ts";

/**
 * A new private key: 32 random bytes, clamped as X25519 wants them (RFC 7748 section 5).
 * @example const key = generatePrivateKey(); // "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
 */
export function generatePrivateKey(): string {
  const k = clamp(crypto.getRandomValues(new Uint8Array(32)));
  const text = keyToBase64(k);
  wipe(k);
  return text;
}

/** A new preshared key: 32 random bytes. */
export function generatePresharedKey(): string {
  const k = crypto.getRandomValues(new Uint8Array(32));
  const text = keyToBase64(k);
  wipe(k);
  return text;
}

/**
 * The public key of a private key, both in base64.
 * @param x25519 default: @noble/curves (one key is quick enough anywhere)
 * @throws RangeError when `privateKey` is not 44 characters of base64 for 32 bytes
 * @example publicKeyOf(generatePrivateKey())
 */
export function publicKeyOf(privateKey: string, x25519: X25519 = nobleX25519): string {
  const k = keyFromBase64(privateKey);
  const pub = keyToBase64(x25519.publicKey(k));
  wipe(k);
  return pub;
}
