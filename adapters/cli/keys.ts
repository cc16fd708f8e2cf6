// `wg genkey`, `wg genpsk` and `wg pubkey`, with wg(8)'s output (44
// characters of base64 and a line break) and its rules for reading a key:
// from stdin for pubkey (exactly 44 characters, then only white space or NUL
// bytes), from a file for `set private-key` / `preshared-key` (an empty file
// means "no key").
import { keyFromBase64, keyToBase64 } from "../../src/config.ts";
import { clamp, type X25519 } from "../../src/crypto.ts";
import { UserError } from "../ports/errors.ts";

/** Base64 length of a 32-byte key, with its one '=' of padding. */
export const KEY_BASE64_LENGTH = 44;

/** A key the user handed in could not be read; `message` is what wg prints. */
export class KeyInputError extends UserError {}

/** White space as C's isspace() in the "C" locale. */
export function isCSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r";
}

/**
 * A key from exactly 44 characters of base64, as wg's key_from_base64
 * accepts it (the last character before '=' must leave the unused bits zero).
 * @returns the key, or null when the text is no key
 */
export function strictKeyFromBase64(text: string): Uint8Array | null {
  if (text.length !== KEY_BASE64_LENGTH) return null;
  try {
    return keyFromBase64(text);
  } catch {
    return null;
  }
}

/** A new private key: 32 random bytes, clamped as X25519 (RFC 7748 section 5) and wg genkey do. */
export function genkey(): string {
  return keyToBase64(clamp(crypto.getRandomValues(new Uint8Array(32)))) + "\n";
}

/** A new preshared key: 32 random bytes. */
export function genpsk(): string {
  return keyToBase64(crypto.getRandomValues(new Uint8Array(32))) + "\n";
}

/**
 * `wg pubkey`: the public key of the private key on stdin.
 * @param input all of stdin
 * @returns the public key in base64 and a line break
 * @throws KeyInputError "Key is not the correct length or format" or "Trailing characters found after key"
 */
export function pubkey(input: string, x25519: X25519): string {
  if (input.length < KEY_BASE64_LENGTH) throw new KeyInputError("Key is not the correct length or format");
  for (const c of input.slice(KEY_BASE64_LENGTH)) {
    if (c !== "\0" && !isCSpace(c)) throw new KeyInputError("Trailing characters found after key");
  }
  const key = strictKeyFromBase64(input.slice(0, KEY_BASE64_LENGTH));
  if (!key) throw new KeyInputError("Key is not the correct length or format");
  // X25519 clamps the scalar itself, so an unclamped key gives what wg gives.
  const pub = x25519.publicKey(key);
  key.fill(0);
  return keyToBase64(pub) + "\n";
}

/**
 * A key file for `wg set ... private-key FILE` / `preshared-key FILE`, read
 * as wg reads one: an empty file is the all-zero key (which removes the
 * key); otherwise 44 characters of base64, then nothing but white space.
 * @param text the file's contents
 * @throws KeyInputError with wg's message
 */
export function keyFromFile(text: string): Uint8Array {
  if (text.length === 0) return new Uint8Array(32);
  if (text.length < KEY_BASE64_LENGTH) throw new KeyInputError("Invalid length key in key file");
  for (const c of text.slice(KEY_BASE64_LENGTH)) {
    if (!isCSpace(c)) throw new KeyInputError(`Found trailing character in key file: \`${c}'`);
  }
  const head = text.slice(0, KEY_BASE64_LENGTH);
  const key = strictKeyFromBase64(head);
  if (!key) throw new KeyInputError(`Key is not the correct length or format: \`${head}'`);
  return key;
}
