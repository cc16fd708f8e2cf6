// ChaCha20 (RFC 8439 sections 2.1-2.4), HChaCha20 (draft-irtf-cfrg-xchacha
// section 2.2) and the ChaCha20 side of the AEAD (RFC 8439 2.6, 2.8), in
// place over linear memory.
//
// Two twins compute the same keystream:
// - SIMD128: four consecutive blocks at once. Vector i holds word i of the
//   four blocks, one block per i32x4 lane, so column and diagonal rounds are
//   plain lane-wise arithmetic; a 4x4 transpose per group of four words puts
//   the bytes back in block order when the keystream is applied.
// - scalar: one block at a time in sixteen locals.
// The scalar twin also serves short tails in SIMD mode, where a quad of blocks
// would waste work.
//
// In the AEAD the SIMD quad also absorbs up to sixteen Poly1305 blocks while
// its rounds run ("stitching"): the MAC's integer multiplies and the vector
// rounds use different execution units, so the CPU overlaps them (about 15%
// faster than two passes on 1420-byte packets). Sealing MACs the ciphertext
// the previous quad wrote. Opening must not decrypt before the tag verified,
// so its quads write the keystream to a buffer while they MAC the ciphertext,
// and the keystream is applied afterwards, only if the tag was good.
//
// Nothing here branches on or indexes by secret data. Scratch state is static
// (no allocator); callers wipe it with chacha_wipe() when a message is done.

import { poly_step1, poly_step2, HIBIT } from "./poly1305";

/** Input state: "expand 32-byte k", key, block counter (word 12), nonce. */
const STATE: usize = memory.data(64, 16);
/** Keystream scratch: one quad of blocks. Bytes 0..31 of block 0 are the Poly1305 key in the AEAD. */
export const KS: usize = memory.data(256, 16);
/** Never written: the "source" when keystream is stored rather than applied. */
const ZERO: usize = memory.data(256, 16);
/**
 * Payload keystream computed while opening, before the tag is known to be
 * good (a multiple of 256 bytes): enough for 9000-byte jumbo frames. Longer
 * payloads (more than 192 + KSBUF_BYTES) are opened in two plain passes.
 */
const KSBUF_BYTES: usize = 9216;
const KSBUF: usize = memory.data(<i32>KSBUF_BYTES, 16);

/**
 * Up to this many bytes, scalar blocks beat a SIMD quad (measured on V8:
 * a quad costs about 2.5 scalar blocks).
 */
const SCALAR_TAIL: usize = 128;

let simd: bool = true;
/** Whether chacha_aead_begin left payload blocks 1..3 in KS (it did if it ran a quad). */
let aeadQuad: bool = false;
/** Bytes of KSBUF holding keystream (0 when chacha_aead_open_mac did not buffer). */
let ksbufUsed: usize = 0;

/** Switches between the SIMD128 path (the default) and the scalar twin. */
export function chacha_set_simd(on: bool): void {
  simd = on;
}

/** Loads the input state: constants, 32-byte key, counter 0 and the 12-byte nonce (RFC 8439 2.3). */
export function chacha_setup(key: usize, nonce: usize): void {
  store<u32>(STATE, 0x61707865, 0);
  store<u32>(STATE, 0x3320646e, 4);
  store<u32>(STATE, 0x79622d32, 8);
  store<u32>(STATE, 0x6b206574, 12);
  store<u64>(STATE, load<u64>(key, 0), 16);
  store<u64>(STATE, load<u64>(key, 8), 24);
  store<u64>(STATE, load<u64>(key, 16), 32);
  store<u64>(STATE, load<u64>(key, 24), 40);
  store<u32>(STATE, 0, 48);
  store<u32>(STATE, load<u32>(nonce, 0), 52);
  store<u64>(STATE, load<u64>(nonce, 4), 56);
}

/** Zeroes the key-dependent scratch: the input state and the keystream buffers. */
export function chacha_wipe(): void {
  zero(STATE, 64);
  zero(KS, 256);
  zero(KSBUF, ksbufUsed);
  ksbufUsed = 0;
}

/** p[0..len] = 0, len a multiple of 16. */
@inline function zero(p: usize, len: usize): void {
  const z = i32x4.splat(0);
  for (let i: usize = 0; i < len; i += 16) v128.store(p + i, z);
}

// ---------------------------------------------------------------------------
// Scalar twin

/**
 * One block (RFC 8439 2.3) for `counter` with the current key and nonce:
 * dst[0..64] = src[0..64] ^ keystream. dst may equal src; src = ZERO stores
 * the raw keystream.
 */
function block(counter: u32, dst: usize, src: usize): void {
  let x0 = load<u32>(STATE, 0), x1 = load<u32>(STATE, 4), x2 = load<u32>(STATE, 8), x3 = load<u32>(STATE, 12);
  let x4 = load<u32>(STATE, 16), x5 = load<u32>(STATE, 20), x6 = load<u32>(STATE, 24), x7 = load<u32>(STATE, 28);
  let x8 = load<u32>(STATE, 32), x9 = load<u32>(STATE, 36), x10 = load<u32>(STATE, 40), x11 = load<u32>(STATE, 44);
  let x12 = counter, x13 = load<u32>(STATE, 52), x14 = load<u32>(STATE, 56), x15 = load<u32>(STATE, 60);
  for (let i = 0; i < 10; i++) {
    // column round: QUARTERROUND(0,4,8,12) (1,5,9,13) (2,6,10,14) (3,7,11,15)
    x0 += x4; x12 = rotl<u32>(x12 ^ x0, 16); x8 += x12; x4 = rotl<u32>(x4 ^ x8, 12);
    x0 += x4; x12 = rotl<u32>(x12 ^ x0, 8); x8 += x12; x4 = rotl<u32>(x4 ^ x8, 7);
    x1 += x5; x13 = rotl<u32>(x13 ^ x1, 16); x9 += x13; x5 = rotl<u32>(x5 ^ x9, 12);
    x1 += x5; x13 = rotl<u32>(x13 ^ x1, 8); x9 += x13; x5 = rotl<u32>(x5 ^ x9, 7);
    x2 += x6; x14 = rotl<u32>(x14 ^ x2, 16); x10 += x14; x6 = rotl<u32>(x6 ^ x10, 12);
    x2 += x6; x14 = rotl<u32>(x14 ^ x2, 8); x10 += x14; x6 = rotl<u32>(x6 ^ x10, 7);
    x3 += x7; x15 = rotl<u32>(x15 ^ x3, 16); x11 += x15; x7 = rotl<u32>(x7 ^ x11, 12);
    x3 += x7; x15 = rotl<u32>(x15 ^ x3, 8); x11 += x15; x7 = rotl<u32>(x7 ^ x11, 7);
    // diagonal round: QUARTERROUND(0,5,10,15) (1,6,11,12) (2,7,8,13) (3,4,9,14)
    x0 += x5; x15 = rotl<u32>(x15 ^ x0, 16); x10 += x15; x5 = rotl<u32>(x5 ^ x10, 12);
    x0 += x5; x15 = rotl<u32>(x15 ^ x0, 8); x10 += x15; x5 = rotl<u32>(x5 ^ x10, 7);
    x1 += x6; x12 = rotl<u32>(x12 ^ x1, 16); x11 += x12; x6 = rotl<u32>(x6 ^ x11, 12);
    x1 += x6; x12 = rotl<u32>(x12 ^ x1, 8); x11 += x12; x6 = rotl<u32>(x6 ^ x11, 7);
    x2 += x7; x13 = rotl<u32>(x13 ^ x2, 16); x8 += x13; x7 = rotl<u32>(x7 ^ x8, 12);
    x2 += x7; x13 = rotl<u32>(x13 ^ x2, 8); x8 += x13; x7 = rotl<u32>(x7 ^ x8, 7);
    x3 += x4; x14 = rotl<u32>(x14 ^ x3, 16); x9 += x14; x4 = rotl<u32>(x4 ^ x9, 12);
    x3 += x4; x14 = rotl<u32>(x14 ^ x3, 8); x9 += x14; x4 = rotl<u32>(x4 ^ x9, 7);
  }
  // The block is the rounds' output plus the input state, little-endian.
  store<u32>(dst, load<u32>(src, 0) ^ (x0 + load<u32>(STATE, 0)), 0);
  store<u32>(dst, load<u32>(src, 4) ^ (x1 + load<u32>(STATE, 4)), 4);
  store<u32>(dst, load<u32>(src, 8) ^ (x2 + load<u32>(STATE, 8)), 8);
  store<u32>(dst, load<u32>(src, 12) ^ (x3 + load<u32>(STATE, 12)), 12);
  store<u32>(dst, load<u32>(src, 16) ^ (x4 + load<u32>(STATE, 16)), 16);
  store<u32>(dst, load<u32>(src, 20) ^ (x5 + load<u32>(STATE, 20)), 20);
  store<u32>(dst, load<u32>(src, 24) ^ (x6 + load<u32>(STATE, 24)), 24);
  store<u32>(dst, load<u32>(src, 28) ^ (x7 + load<u32>(STATE, 28)), 28);
  store<u32>(dst, load<u32>(src, 32) ^ (x8 + load<u32>(STATE, 32)), 32);
  store<u32>(dst, load<u32>(src, 36) ^ (x9 + load<u32>(STATE, 36)), 36);
  store<u32>(dst, load<u32>(src, 40) ^ (x10 + load<u32>(STATE, 40)), 40);
  store<u32>(dst, load<u32>(src, 44) ^ (x11 + load<u32>(STATE, 44)), 44);
  store<u32>(dst, load<u32>(src, 48) ^ (x12 + counter), 48);
  store<u32>(dst, load<u32>(src, 52) ^ (x13 + load<u32>(STATE, 52)), 52);
  store<u32>(dst, load<u32>(src, 56) ^ (x14 + load<u32>(STATE, 56)), 56);
  store<u32>(dst, load<u32>(src, 60) ^ (x15 + load<u32>(STATE, 60)), 60);
}

// ---------------------------------------------------------------------------
// SIMD128 twin

// Rotations left within each 32-bit lane. WebAssembly has no vector rotate:
// 16 and 8 move whole bytes (one byte swizzle with a constant pattern, which
// V8 turns into a single pshufb; measured 8% faster here than i8x16.shuffle,
// which it lowers to pshuflw + pshufhw for 16), 12 and 7 take shift, shift, or.
@inline function rotl16(x: v128): v128 {
  return i8x16.swizzle(x, v128(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
}
@inline function rotl8(x: v128): v128 {
  return i8x16.swizzle(x, v128(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14));
}
@inline function rotl12(x: v128): v128 {
  return v128.or(i32x4.shl(x, 12), i32x4.shr_u(x, 20));
}
@inline function rotl7(x: v128): v128 {
  return v128.or(i32x4.shl(x, 7), i32x4.shr_u(x, 25));
}

/**
 * Transposes words w..w+3 of four blocks (a, b, c, d: one vector per word,
 * one lane per block) into block order and applies them:
 * dst[64j .. 64j+16] = src[64j ..] ^ (a[j], b[j], c[j], d[j]) for j = 0..3.
 */
@inline function apply4(dst: usize, src: usize, a: v128, b: v128, c: v128, d: v128): void {
  const t0 = i32x4.shuffle(a, b, 0, 4, 1, 5); // a0 b0 a1 b1
  const t1 = i32x4.shuffle(a, b, 2, 6, 3, 7); // a2 b2 a3 b3
  const t2 = i32x4.shuffle(c, d, 0, 4, 1, 5); // c0 d0 c1 d1
  const t3 = i32x4.shuffle(c, d, 2, 6, 3, 7); // c2 d2 c3 d3
  v128.store(dst, v128.xor(v128.load(src, 0, 1), i64x2.shuffle(t0, t2, 0, 2)), 0, 1);
  v128.store(dst, v128.xor(v128.load(src, 64, 1), i64x2.shuffle(t0, t2, 1, 3)), 64, 1);
  v128.store(dst, v128.xor(v128.load(src, 128, 1), i64x2.shuffle(t1, t3, 0, 2)), 128, 1);
  v128.store(dst, v128.xor(v128.load(src, 192, 1), i64x2.shuffle(t1, t3, 1, 3)), 192, 1);
}

/**
 * Four blocks, counters counter..counter+3 (mod 2^32, as RFC 8439's 32-bit
 * counter): dst[0..256] = src[0..256] ^ keystream. dst may equal src.
 * Meanwhile absorbs the full Poly1305 blocks mac[0 .. macEnd - mac] (at most
 * 256 bytes, which must not overlap dst) into the MAC in progress.
 */
export function chacha_quad(counter: u32, dst: usize, src: usize, mac: usize, macEnd: usize): void {
  const ctr = i32x4.add(i32x4.splat(counter), i32x4(0, 1, 2, 3));
  let x0 = v128.load32_splat(STATE, 0), x1 = v128.load32_splat(STATE, 4);
  let x2 = v128.load32_splat(STATE, 8), x3 = v128.load32_splat(STATE, 12);
  let x4 = v128.load32_splat(STATE, 16), x5 = v128.load32_splat(STATE, 20);
  let x6 = v128.load32_splat(STATE, 24), x7 = v128.load32_splat(STATE, 28);
  let x8 = v128.load32_splat(STATE, 32), x9 = v128.load32_splat(STATE, 36);
  let x10 = v128.load32_splat(STATE, 40), x11 = v128.load32_splat(STATE, 44);
  let x12 = ctr, x13 = v128.load32_splat(STATE, 52);
  let x14 = v128.load32_splat(STATE, 56), x15 = v128.load32_splat(STATE, 60);
  for (let i = 0; i < 10; i++) {
    // column round, the four quarter rounds interleaved step by step
    x0 = i32x4.add(x0, x4); x1 = i32x4.add(x1, x5); x2 = i32x4.add(x2, x6); x3 = i32x4.add(x3, x7);
    x12 = rotl16(v128.xor(x12, x0)); x13 = rotl16(v128.xor(x13, x1)); x14 = rotl16(v128.xor(x14, x2)); x15 = rotl16(v128.xor(x15, x3));
    x8 = i32x4.add(x8, x12); x9 = i32x4.add(x9, x13); x10 = i32x4.add(x10, x14); x11 = i32x4.add(x11, x15);
    x4 = rotl12(v128.xor(x4, x8)); x5 = rotl12(v128.xor(x5, x9)); x6 = rotl12(v128.xor(x6, x10)); x7 = rotl12(v128.xor(x7, x11));
    x0 = i32x4.add(x0, x4); x1 = i32x4.add(x1, x5); x2 = i32x4.add(x2, x6); x3 = i32x4.add(x3, x7);
    x12 = rotl8(v128.xor(x12, x0)); x13 = rotl8(v128.xor(x13, x1)); x14 = rotl8(v128.xor(x14, x2)); x15 = rotl8(v128.xor(x15, x3));
    x8 = i32x4.add(x8, x12); x9 = i32x4.add(x9, x13); x10 = i32x4.add(x10, x14); x11 = i32x4.add(x11, x15);
    x4 = rotl7(v128.xor(x4, x8)); x5 = rotl7(v128.xor(x5, x9)); x6 = rotl7(v128.xor(x6, x10)); x7 = rotl7(v128.xor(x7, x11));
    // diagonal round: (0,5,10,15) (1,6,11,12) (2,7,8,13) (3,4,9,14)
    x0 = i32x4.add(x0, x5); x1 = i32x4.add(x1, x6); x2 = i32x4.add(x2, x7); x3 = i32x4.add(x3, x4);
    x15 = rotl16(v128.xor(x15, x0)); x12 = rotl16(v128.xor(x12, x1)); x13 = rotl16(v128.xor(x13, x2)); x14 = rotl16(v128.xor(x14, x3));
    x10 = i32x4.add(x10, x15); x11 = i32x4.add(x11, x12); x8 = i32x4.add(x8, x13); x9 = i32x4.add(x9, x14);
    x5 = rotl12(v128.xor(x5, x10)); x6 = rotl12(v128.xor(x6, x11)); x7 = rotl12(v128.xor(x7, x8)); x4 = rotl12(v128.xor(x4, x9));
    x0 = i32x4.add(x0, x5); x1 = i32x4.add(x1, x6); x2 = i32x4.add(x2, x7); x3 = i32x4.add(x3, x4);
    x15 = rotl8(v128.xor(x15, x0)); x12 = rotl8(v128.xor(x12, x1)); x13 = rotl8(v128.xor(x13, x2)); x14 = rotl8(v128.xor(x14, x3));
    x10 = i32x4.add(x10, x15); x11 = i32x4.add(x11, x12); x8 = i32x4.add(x8, x13); x9 = i32x4.add(x9, x14);
    x5 = rotl7(v128.xor(x5, x10)); x6 = rotl7(v128.xor(x6, x11)); x7 = rotl7(v128.xor(x7, x8)); x4 = rotl7(v128.xor(x4, x9));
    // two MAC blocks per double round: sixteen fit in the first eight
    if (macEnd - mac >= 32) {
      poly_step2(mac);
      mac += 32;
    } else if (mac < macEnd) {
      poly_step1(mac, HIBIT);
      mac += 16;
    }
  }
  apply4(dst, src,
    i32x4.add(x0, v128.load32_splat(STATE, 0)), i32x4.add(x1, v128.load32_splat(STATE, 4)),
    i32x4.add(x2, v128.load32_splat(STATE, 8)), i32x4.add(x3, v128.load32_splat(STATE, 12)));
  apply4(dst + 16, src + 16,
    i32x4.add(x4, v128.load32_splat(STATE, 16)), i32x4.add(x5, v128.load32_splat(STATE, 20)),
    i32x4.add(x6, v128.load32_splat(STATE, 24)), i32x4.add(x7, v128.load32_splat(STATE, 28)));
  apply4(dst + 32, src + 32,
    i32x4.add(x8, v128.load32_splat(STATE, 32)), i32x4.add(x9, v128.load32_splat(STATE, 36)),
    i32x4.add(x10, v128.load32_splat(STATE, 40)), i32x4.add(x11, v128.load32_splat(STATE, 44)));
  apply4(dst + 48, src + 48,
    i32x4.add(x12, ctr), i32x4.add(x13, v128.load32_splat(STATE, 52)),
    i32x4.add(x14, v128.load32_splat(STATE, 56)), i32x4.add(x15, v128.load32_splat(STATE, 60)));
}

// ---------------------------------------------------------------------------
// Streams

/** p[0..len] ^= k[0..len]: sixteen bytes at a time, then eight, then bytewise. */
@inline function xor_into(p: usize, k: usize, len: usize): void {
  let i: usize = 0;
  for (; i + 16 <= len; i += 16) v128.store(p + i, v128.xor(v128.load(p + i), v128.load(k + i)));
  for (; i + 8 <= len; i += 8) store<u64>(p + i, load<u64>(p + i) ^ load<u64>(k + i));
  for (; i < len; i++) store<u8>(p + i, load<u8>(p + i) ^ load<u8>(k + i));
}

/**
 * ChaCha20 encryption (RFC 8439 2.4) of p[0..len] in place, keystream blocks
 * counter, counter+1, ... with the key and nonce loaded by chacha_setup.
 * Uses (and leaves keystream in) KS for a partial tail.
 */
export function chacha_stream(counter: u32, p: usize, len: usize): void {
  if (simd) {
    while (len >= 256) {
      chacha_quad(counter, p, p, 0, 0);
      counter += 4; p += 256; len -= 256;
    }
    if (len > SCALAR_TAIL) {
      chacha_quad(counter, KS, ZERO, 0, 0);
      xor_into(p, KS, len);
      return;
    }
  }
  while (len >= 64) {
    block(counter, p, p);
    counter += 1; p += 64; len -= 64;
  }
  if (len != 0) {
    block(counter, KS, ZERO);
    xor_into(p, KS, len);
  }
}

/**
 * AEAD start (RFC 8439 2.6 and 2.8) for a payload of len bytes: keystream
 * block 0 into KS, whose first 32 bytes are the one-time Poly1305 key. Unless
 * the payload fits one scalar block, the SIMD twin computes blocks 0..3
 * together and keeps 1..3 in KS for chacha_aead_xor.
 */
export function chacha_aead_begin(len: usize): void {
  aeadQuad = simd && len > 64;
  if (aeadQuad) chacha_quad(0, KS, ZERO, 0, 0);
  else block(0, KS, ZERO);
}

/** AEAD payload encryption in place: counter 1 onwards, after chacha_aead_begin(len). */
function aead_xor(p: usize, len: usize): void {
  if (!aeadQuad) {
    chacha_stream(1, p, len);
    return;
  }
  // Blocks 1..3 are already in KS.
  const first = len < 192 ? len : 192;
  xor_into(p, KS + 64, first);
  if (len > 192) chacha_stream(4, p + 192, len - 192);
}

/**
 * Sealing, after chacha_aead_begin(len) and poly_init: encrypts the payload
 * p[0..len] in place (blocks 1, 2, ...) and absorbs the ciphertext into
 * Poly1305 where it can stitch it into the SIMD quads: each quad absorbs
 * what the step before it wrote. Returns how many leading bytes of p it
 * absorbed (whole blocks); the caller absorbs the rest.
 */
export function chacha_aead_seal(p: usize, len: usize): usize {
  if (!aeadQuad || len <= 192) {
    aead_xor(p, len);
    return 0;
  }
  xor_into(p, KS + 64, 192);
  const end = p + len;
  let mac = p, pos = p + 192, counter: u32 = 4;
  while (end - pos >= 256) {
    chacha_quad(counter, pos, pos, mac, pos);
    mac = pos; pos += 256; counter += 4;
  }
  const rest = end - pos;
  if (rest > SCALAR_TAIL) {
    chacha_quad(counter, KS, ZERO, mac, pos);
    mac = pos;
    xor_into(pos, KS, rest);
  } else if (rest != 0) {
    chacha_stream(counter, pos, rest);
  }
  return mac - p;
}

/**
 * Opening, first half, after chacha_aead_begin(len) and poly_init: absorbs
 * the ciphertext p[0..len] into Poly1305, stitched into SIMD quads that
 * compute the payload keystream into KSBUF meanwhile. p is not touched: the
 * keystream is applied by chacha_aead_open_xor only once the tag verified.
 * Returns how many leading bytes of p it absorbed; the caller absorbs the rest.
 */
export function chacha_aead_open_mac(p: usize, len: usize): usize {
  if (!aeadQuad || len <= 192 || len - 192 > KSBUF_BYTES) return 0;
  const end = p + len, need = len - 192;
  let mac = p, off: usize = 0, counter: u32 = 4;
  while (off < need) {
    let macEnd = mac + 256;
    if (macEnd > end) macEnd = end - ((end - mac) & 15); // whole blocks only
    chacha_quad(counter, KSBUF + off, ZERO, mac, macEnd);
    mac = macEnd; off += 256; counter += 4;
  }
  ksbufUsed = off;
  return mac - p;
}

/** Opening, second half, once the tag verified: decrypts p[0..len] in place. */
export function chacha_aead_open_xor(p: usize, len: usize): void {
  if (ksbufUsed == 0) {
    aead_xor(p, len);
    return;
  }
  xor_into(p, KS + 64, 192);
  xor_into(p + 192, KSBUF, len - 192);
}

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha 2.2): the state is the ChaCha20 state
 * with the 16-byte nonce in words 12..15; the subkey is words 0..3 and 12..15
 * after the 20 rounds, without the final addition. Computed as one scalar
 * block with the input words then subtracted again. out gets 32 bytes.
 */
export function hchacha20_block(key: usize, nonce16: usize, out: usize): void {
  chacha_setup(key, nonce16 + 4); // words 13..15 = nonce16[4..16]
  const w12 = load<u32>(nonce16);
  block(w12, KS, ZERO);
  store<u32>(out, load<u32>(KS, 0) - 0x61707865, 0);
  store<u32>(out, load<u32>(KS, 4) - 0x3320646e, 4);
  store<u32>(out, load<u32>(KS, 8) - 0x79622d32, 8);
  store<u32>(out, load<u32>(KS, 12) - 0x6b206574, 12);
  store<u32>(out, load<u32>(KS, 48) - w12, 16);
  store<u32>(out, load<u32>(KS, 52) - load<u32>(STATE, 52), 20);
  store<u32>(out, load<u32>(KS, 56) - load<u32>(STATE, 56), 24);
  store<u32>(out, load<u32>(KS, 60) - load<u32>(STATE, 60), 28);
  chacha_wipe();
}
