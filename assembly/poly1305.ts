// Poly1305 (RFC 8439 section 2.5) with five 26-bit limbs in u64 arithmetic.
//
// WebAssembly multiplies 64 x 64 -> 64 bits only (no high half), so limbs
// must keep every product and every sum of products below 2^64: with 26-bit
// limbs a product is below 2^55.5 even with the reduction's factor 5 and
// limbs a bit over 26 bits between blocks, which leaves room to sum the ten
// products of a two-block step (h + m1) * r^2 + m2 * r.
// The accumulator h is reduced modulo p = 2^130 - 5 partially after each
// step and fully, in constant time, at the end.
//
// State lives in static memory between calls (one message at a time);
// poly_finish wipes it.

const M26: u64 = 0x3ffffff;

/** r in 26-bit limbs (already clamped), 5 x u64. */
const R: usize = memory.data(40, 8);
/** r^2 mod p in 26-bit limbs (partly reduced), 5 x u64: two blocks per step. */
const R2: usize = memory.data(40, 8);
/** Accumulator h, 5 x u64. */
const H: usize = memory.data(40, 8);
/** s, the second half of the key, 16 bytes. */
const S: usize = memory.data(16, 8);
/** One zero-padded block. */
const BUF: usize = memory.data(16, 16);

/** The 2^128 bit of a full 16-byte block, in limb 4. */
export const HIBIT: u64 = 1 << 24;

/** Starts a MAC with the 32-byte one-time key r || s (RFC 8439 2.5). */
export function poly_init(key: usize): void {
  // clamp(r): r &= 0x0ffffffc0ffffffc0ffffffc0fffffff
  const lo = load<u64>(key, 0) & 0x0ffffffc0fffffff;
  const hi = load<u64>(key, 8) & 0x0ffffffc0ffffffc;
  store<u64>(R, lo & M26, 0);
  store<u64>(R, (lo >> 26) & M26, 8);
  store<u64>(R, ((lo >> 52) | (hi << 12)) & M26, 16);
  store<u64>(R, (hi >> 14) & M26, 24);
  store<u64>(R, hi >> 40, 32);
  square_r();
  store<u64>(S, load<u64>(key, 16), 0);
  store<u64>(S, load<u64>(key, 24), 8);
  store<u64>(H, 0, 0);
  store<u64>(H, 0, 8);
  store<u64>(H, 0, 16);
  store<u64>(H, 0, 24);
  store<u64>(H, 0, 32);
}

/** R2 = r * r mod p, by the same schoolbook product and carries as a block. */
function square_r(): void {
  const r0 = load<u64>(R, 0), r1 = load<u64>(R, 8), r2 = load<u64>(R, 16), r3 = load<u64>(R, 24), r4 = load<u64>(R, 32);
  const s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  let d0 = r0 * r0 + r1 * s4 + r2 * s3 + r3 * s2 + r4 * s1;
  let d1 = r0 * r1 + r1 * r0 + r2 * s4 + r3 * s3 + r4 * s2;
  let d2 = r0 * r2 + r1 * r1 + r2 * r0 + r3 * s4 + r4 * s3;
  let d3 = r0 * r3 + r1 * r2 + r2 * r1 + r3 * r0 + r4 * s4;
  let d4 = r0 * r4 + r1 * r3 + r2 * r2 + r3 * r1 + r4 * r0;
  d1 += d0 >> 26; d0 &= M26;
  d2 += d1 >> 26; d1 &= M26;
  d3 += d2 >> 26; d2 &= M26;
  d4 += d3 >> 26; d3 &= M26;
  d0 += (d4 >> 26) * 5; d4 &= M26;
  d1 += d0 >> 26; d0 &= M26;
  store<u64>(R2, d0, 0);
  store<u64>(R2, d1, 8);
  store<u64>(R2, d2, 16);
  store<u64>(R2, d3, 24);
  store<u64>(R2, d4, 32);
}

// The block steps keep h in memory (H) rather than in locals, so that the
// ChaCha20 quad can inline them between its vector rounds (see chacha20.ts):
// the integer multiplies of Poly1305 then overlap the SIMD rounds.

/** Splits a 16-byte block into 26-bit limbs and adds it to h (with the 2^128 bit hibit in limb 4). */
@inline function add_block(m: usize, hibit: u64): void {
  const lo = load<u64>(m, 0), hi = load<u64>(m, 8);
  store<u64>(H, load<u64>(H, 0) + (lo & M26), 0);
  store<u64>(H, load<u64>(H, 8) + ((lo >> 26) & M26), 8);
  store<u64>(H, load<u64>(H, 16) + (((lo >> 52) | (hi << 12)) & M26), 16);
  store<u64>(H, load<u64>(H, 24) + ((hi >> 14) & M26), 24);
  store<u64>(H, load<u64>(H, 32) + ((hi >> 40) | hibit), 32);
}

/** One block: h = (h + block) * r mod p, partly reduced. */
@inline export function poly_step1(m: usize, hibit: u64): void {
  add_block(m, hibit);
  const r0 = load<u64>(R, 0), r1 = load<u64>(R, 8), r2 = load<u64>(R, 16), r3 = load<u64>(R, 24), r4 = load<u64>(R, 32);
  // 2^130 = 5 (mod p): a product landing at limb 5 + i folds back into limb i times 5.
  const s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  const h0 = load<u64>(H, 0), h1 = load<u64>(H, 8), h2 = load<u64>(H, 16), h3 = load<u64>(H, 24), h4 = load<u64>(H, 32);
  reduce(
    h0 * r0 + h1 * s4 + h2 * s3 + h3 * s2 + h4 * s1,
    h0 * r1 + h1 * r0 + h2 * s4 + h3 * s3 + h4 * s2,
    h0 * r2 + h1 * r1 + h2 * r0 + h3 * s4 + h4 * s3,
    h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s4,
    h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0);
}

/**
 * Two full blocks at once by Horner's rule two terms at a time:
 * h = (h + m1) * r^2 + m2 * r. Twice the products, one carry pass, and the
 * two halves independent of each other.
 */
@inline export function poly_step2(m: usize): void {
  add_block(m, HIBIT);
  const lo = load<u64>(m, 16), hi = load<u64>(m, 24);
  const a0 = lo & M26;
  const a1 = (lo >> 26) & M26;
  const a2 = ((lo >> 52) | (hi << 12)) & M26;
  const a3 = (hi >> 14) & M26;
  const a4 = (hi >> 40) | HIBIT;
  const r0 = load<u64>(R, 0), r1 = load<u64>(R, 8), r2 = load<u64>(R, 16), r3 = load<u64>(R, 24), r4 = load<u64>(R, 32);
  const s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  const q0 = load<u64>(R2, 0), q1 = load<u64>(R2, 8), q2 = load<u64>(R2, 16), q3 = load<u64>(R2, 24), q4 = load<u64>(R2, 32);
  const t1 = q1 * 5, t2 = q2 * 5, t3 = q3 * 5, t4 = q4 * 5;
  const h0 = load<u64>(H, 0), h1 = load<u64>(H, 8), h2 = load<u64>(H, 16), h3 = load<u64>(H, 24), h4 = load<u64>(H, 32);
  reduce(
    h0 * q0 + h1 * t4 + h2 * t3 + h3 * t2 + h4 * t1 + a0 * r0 + a1 * s4 + a2 * s3 + a3 * s2 + a4 * s1,
    h0 * q1 + h1 * q0 + h2 * t4 + h3 * t3 + h4 * t2 + a0 * r1 + a1 * r0 + a2 * s4 + a3 * s3 + a4 * s2,
    h0 * q2 + h1 * q1 + h2 * q0 + h3 * t4 + h4 * t3 + a0 * r2 + a1 * r1 + a2 * r0 + a3 * s4 + a4 * s3,
    h0 * q3 + h1 * q2 + h2 * q1 + h3 * q0 + h4 * t4 + a0 * r3 + a1 * r2 + a2 * r1 + a3 * r0 + a4 * s4,
    h0 * q4 + h1 * q3 + h2 * q2 + h3 * q1 + h4 * q0 + a0 * r4 + a1 * r3 + a2 * r2 + a3 * r1 + a4 * r0);
}

/**
 * Partial reduction of a product d0..d4 into H: two carry chains side by
 * side, 0->1->2->3 and 3->4->0->1 (2^130 = 5 mod p). The limbs of h (and of
 * r^2) end below 2^26 + 2^10, so with a block added they stay below 2^27.1,
 * every product is below 2^27.1 * 5 * 2^26.01 < 2^55.5 and a sum of ten
 * below 2^59: no u64 ever overflows.
 */
@inline function reduce(d0: u64, d1: u64, d2: u64, d3: u64, d4: u64): void {
  let h0 = d0 & M26; d1 += d0 >> 26;
  let h3 = d3 & M26; d4 += d3 >> 26;
  let h1 = d1 & M26; d2 += d1 >> 26;
  const h4 = d4 & M26; h0 += (d4 >> 26) * 5;
  const h2 = d2 & M26; h3 += d2 >> 26;
  h1 += h0 >> 26; h0 &= M26;
  store<u64>(H, h0, 0);
  store<u64>(H, h1, 8);
  store<u64>(H, h2, 16);
  store<u64>(H, h3 & M26, 24);
  store<u64>(H, h4 + (h3 >> 26), 32);
}

/**
 * Absorbs n 16-byte blocks from m: h = (h + block + hibit) * r mod p, partly
 * reduced. hibit is HIBIT for full blocks, 0 for the padded last block of a
 * one-shot MAC (which carries its own 0x01 byte).
 */
export function poly_blocks(m: usize, n: usize, hibit: u64): void {
  const end = m + (n << 4);
  if (hibit != 0) {
    for (; m + 32 <= end; m += 32) poly_step2(m);
  }
  for (; m < end; m += 16) poly_step1(m, hibit);
}

/** Zeroes BUF, copies m[0..len] (len < 16) into it. */
@inline function pad(m: usize, len: usize): void {
  store<u64>(BUF, 0, 0);
  store<u64>(BUF, 0, 8);
  for (let i: usize = 0; i < len; i++) store<u8>(BUF + i, load<u8>(m + i));
}

/**
 * Absorbs m[0..len] as the AEAD does (RFC 8439 2.8): full blocks, then the
 * rest zero-padded to a full 16-byte block (pad16).
 */
export function poly_padded(m: usize, len: usize): void {
  poly_blocks(m, len >> 4, HIBIT);
  const rest = len & 15;
  if (rest != 0) {
    pad(m + len - rest, rest);
    poly_blocks(BUF, 1, HIBIT);
  }
}

/** Absorbs the whole message of a one-shot MAC: the last partial block gets its 0x01 byte and no 2^128 bit. */
export function poly_message(m: usize, len: usize): void {
  poly_blocks(m, len >> 4, HIBIT);
  const rest = len & 15;
  if (rest != 0) {
    pad(m + len - rest, rest);
    store<u8>(BUF + rest, 1);
    poly_blocks(BUF, 1, 0);
  }
}

/** Absorbs the AEAD's final block: both lengths as 64-bit little-endian integers. */
export function poly_lengths(adLen: u64, len: u64): void {
  store<u64>(BUF, adLen, 0);
  store<u64>(BUF, len, 8);
  poly_blocks(BUF, 1, HIBIT);
}

/**
 * tag = (h mod p) + s mod 2^128, written to out (16 bytes); then wipes the
 * state. The final reduction is branch-free: compute g = h + 5 - 2^130 and
 * keep it when it does not borrow, that is when h >= p.
 */
export function poly_finish(out: usize): void {
  let h0 = load<u64>(H, 0), h1 = load<u64>(H, 8), h2 = load<u64>(H, 16), h3 = load<u64>(H, 24), h4 = load<u64>(H, 32);
  // Full carry, twice round the ring: afterwards every limb is below 2^26
  // and h < 2^130.
  for (let i = 0; i < 2; i++) {
    h1 += h0 >> 26; h0 &= M26;
    h2 += h1 >> 26; h1 &= M26;
    h3 += h2 >> 26; h2 &= M26;
    h4 += h3 >> 26; h3 &= M26;
    h0 += (h4 >> 26) * 5; h4 &= M26;
  }
  h1 += h0 >> 26; h0 &= M26;
  // g = h + 5 - 2^130
  let g0 = h0 + 5;
  let g1 = h1 + (g0 >> 26); g0 &= M26;
  let g2 = h2 + (g1 >> 26); g1 &= M26;
  let g3 = h3 + (g2 >> 26); g2 &= M26;
  const g4 = h4 + (g3 >> 26) - (1 << 26); g3 &= M26;
  // take g (mask all ones) when g4 did not go negative
  const mask = (g4 >> 63) - 1;
  h0 = (h0 & ~mask) | (g0 & mask);
  h1 = (h1 & ~mask) | (g1 & mask);
  h2 = (h2 & ~mask) | (g2 & mask);
  h3 = (h3 & ~mask) | (g3 & mask);
  h4 = (h4 & ~mask) | (g4 & mask & M26);
  // h mod 2^128 as two u64, plus s
  const lo = h0 | (h1 << 26) | (h2 << 52);
  const hi = (h2 >> 12) | (h3 << 14) | (h4 << 40);
  const s0 = load<u64>(S, 0);
  const t0 = lo + s0;
  // carry out of the low half, from bits alone (no comparison)
  const c = ((lo & s0) | ((lo | s0) & ~t0)) >> 63;
  store<u64>(out, t0, 0);
  store<u64>(out, hi + load<u64>(S, 8) + c, 8);
  poly_wipe();
}

/** Zeroes r, s, h and the block buffer. */
export function poly_wipe(): void {
  for (let i: usize = 0; i < 40; i += 8) {
    store<u64>(R + i, 0);
    store<u64>(R2 + i, 0);
    store<u64>(H + i, 0);
  }
  store<u64>(S, 0, 0);
  store<u64>(S, 0, 8);
  store<u64>(BUF, 0, 0);
  store<u64>(BUF, 0, 8);
}
