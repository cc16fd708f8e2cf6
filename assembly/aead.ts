// ChaCha20-Poly1305 (RFC 8439 2.8), XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha)
// and the WireGuard transport AEAD, over pointers into linear memory.
//
// Every operation works in place: p holds the plaintext on the way in and
// the ciphertext on the way out (or the reverse). Nothing is allocated; the
// scratch state is static and wiped before each call returns, so one call
// runs at a time (as a WebAssembly instance is single-threaded anyway).
//
// Opening verifies the tag in constant time first and decrypts only when it
// matches; a forged message leaves p exactly as it was.

import {
  chacha_set_simd, chacha_setup, chacha_stream, chacha_aead_begin, chacha_aead_seal,
  chacha_aead_open_mac, chacha_aead_open_xor, chacha_wipe, hchacha20_block, KS,
} from "./chacha20";
import { poly_init, poly_padded, poly_message, poly_lengths, poly_finish } from "./poly1305";

/** The tag computed while opening. */
const TAG: usize = memory.data(16, 16);
/** A 12-byte nonce built here: XChaCha20's 0^4 || nonce[16..24], WireGuard's 0^4 || counter. */
const NONCE: usize = memory.data(16, 16);
/** The HChaCha20 subkey of XChaCha20. */
const SUBKEY: usize = memory.data(32, 16);

/** Switches ChaCha20 between the SIMD128 path (default on) and the scalar twin; for tests. */
export function set_simd(on: bool): void {
  chacha_set_simd(on);
}

/** ChaCha20 (RFC 8439 2.4): p[0..len] ^= keystream(key, 12-byte nonce, from block `counter`). */
export function chacha20_xor(key: usize, nonce: usize, counter: u32, p: usize, len: usize): void {
  chacha_setup(key, nonce);
  chacha_stream(counter, p, len);
  chacha_wipe();
}

/** One-shot Poly1305 (RFC 8439 2.5): out[0..16] = MAC(32-byte one-time key, msg[0..len]). */
export function poly1305_mac(key: usize, msg: usize, len: usize, out: usize): void {
  poly_init(key);
  poly_message(msg, len);
  poly_finish(out);
}

/** HChaCha20 (draft-irtf-cfrg-xchacha 2.2): out[0..32] = subkey(key, 16-byte nonce). */
export function hchacha20(key: usize, nonce16: usize, out: usize): void {
  hchacha20_block(key, nonce16, out);
}

/**
 * Keystream block 0 and the one-time Poly1305 key from it (RFC 8439 2.6),
 * taken before the payload's keystream can reuse the scratch; then the AD
 * and its padding (2.8).
 */
@inline function begin(key: usize, nonce: usize, ad: usize, adLen: usize, len: usize): void {
  chacha_setup(key, nonce);
  chacha_aead_begin(len);
  poly_init(KS);
  poly_padded(ad, adLen);
}

/** The rest of the RFC 8439 2.8 MAC: ciphertext c[0..len] but the first done bytes, padding, lengths. */
@inline function mac_rest(adLen: usize, c: usize, len: usize, done: usize, out: usize): void {
  poly_padded(c + done, len - done);
  poly_lengths(<u64>adLen, <u64>len);
  poly_finish(out);
}

/** 16-byte comparison in constant time: OR of the XORs, one test at the end. */
@inline function equal16(a: usize, b: usize): bool {
  const d = (load<u64>(a, 0) ^ load<u64>(b, 0)) | (load<u64>(a, 8) ^ load<u64>(b, 8));
  return d == 0;
}

/**
 * AEAD_CHACHA20_POLY1305 encryption (RFC 8439 2.8): p[0..len] becomes the
 * ciphertext, tag[0..16] the tag over ad[0..adLen] and the ciphertext.
 */
export function aead_seal(key: usize, nonce: usize, ad: usize, adLen: usize, p: usize, len: usize, tag: usize): void {
  begin(key, nonce, ad, adLen, len);
  const done = chacha_aead_seal(p, len);
  mac_rest(adLen, p, len, done, tag);
  chacha_wipe();
}

/**
 * AEAD_CHACHA20_POLY1305 decryption: checks tag[0..16] against ad and the
 * ciphertext p[0..len] in constant time; only if it matches, decrypts p in
 * place. Returns whether it matched.
 */
export function aead_open(key: usize, nonce: usize, ad: usize, adLen: usize, p: usize, len: usize, tag: usize): bool {
  begin(key, nonce, ad, adLen, len);
  const done = chacha_aead_open_mac(p, len);
  mac_rest(adLen, p, len, done, TAG);
  const ok = equal16(TAG, tag);
  if (ok) chacha_aead_open_xor(p, len);
  store<u64>(TAG, 0, 0);
  store<u64>(TAG, 0, 8);
  chacha_wipe();
  return ok;
}

/** XChaCha20 key and nonce: SUBKEY = HChaCha20(key, nonce[0..16]), NONCE = 0^4 || nonce[16..24]. */
@inline function xnonce(key: usize, nonce: usize): void {
  hchacha20_block(key, nonce, SUBKEY);
  store<u32>(NONCE, 0, 0);
  store<u64>(NONCE, load<u64>(nonce, 16), 4);
}

@inline function wipe_subkey(): void {
  v128.store(SUBKEY, i32x4.splat(0), 0);
  v128.store(SUBKEY, i32x4.splat(0), 16);
}

/** XChaCha20-Poly1305 encryption (draft-irtf-cfrg-xchacha 2): as aead_seal with a 24-byte nonce. */
export function xaead_seal(key: usize, nonce: usize, ad: usize, adLen: usize, p: usize, len: usize, tag: usize): void {
  xnonce(key, nonce);
  aead_seal(SUBKEY, NONCE, ad, adLen, p, len, tag);
  wipe_subkey();
}

/** XChaCha20-Poly1305 decryption: as aead_open with a 24-byte nonce. */
export function xaead_open(key: usize, nonce: usize, ad: usize, adLen: usize, p: usize, len: usize, tag: usize): bool {
  xnonce(key, nonce);
  const ok = aead_open(SUBKEY, NONCE, ad, adLen, p, len, tag);
  wipe_subkey();
  return ok;
}

/** WireGuard's transport nonce: 32 zero bits, then the 64-bit counter little-endian. */
@inline function transport_nonce(counter: u64): void {
  store<u32>(NONCE, 0, 0);
  store<u64>(NONCE, counter, 4);
}

/**
 * WireGuard transport data encryption: p[0..len] in place, no AD, the
 * 16-byte tag written at p + len (the buffer must hold len + 16 bytes).
 */
export function seal_transport(key: usize, counter: u64, p: usize, len: usize): void {
  transport_nonce(counter);
  aead_seal(key, NONCE, 0, 0, p, len, p + len);
}

/**
 * WireGuard transport data decryption: p[0..len] is the ciphertext (len
 * excludes the tag, which is read at p + len). Decrypts in place only if the
 * tag is valid; returns validity.
 */
export function open_transport(key: usize, counter: u64, p: usize, len: usize): bool {
  transport_nonce(counter);
  return aead_open(key, NONCE, 0, 0, p, len, p + len);
}
