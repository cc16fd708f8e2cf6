// BLAKE2s (RFC 7693), HMAC-BLAKE2s (RFC 2104) and the Noise KDF over it
// (whitepaper 5.4, "Symbols and Functions"), over pointers into linear memory.
//
// The exports are shaped like the handshake's steps, so JS crosses in once
// per step: noise_hash is a whole mixHash (HASH(a || b)), noise_kdf a whole
// KDF1/2/3 over a chaining key and an input. blake2s is the general keyed or
// unkeyed hash of any output length (the whitepaper's MAC is its 16-byte
// keyed form).
//
// State is static (no allocator), one computation at a time (an instance is
// single-threaded), and every export wipes it before returning: no key, pad
// or intermediate tau is left in memory. Nothing branches on secret data.

const IV0: u32 = 0x6a09e667, IV1: u32 = 0xbb67ae85, IV2: u32 = 0x3c6ef372, IV3: u32 = 0xa54ff53a;
const IV4: u32 = 0x510e527f, IV5: u32 = 0x9b05688c, IV6: u32 = 0x1f83d9ab, IV7: u32 = 0x5be0cd19;

/** The message schedule (RFC 7693 2.7), ten rounds of sixteen word indices, stored as byte offsets (x4). */
const SIGMA: usize = memory.data<u8>([
  0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60,
  56, 40, 16, 32, 36, 60, 52, 24, 4, 48, 0, 8, 44, 28, 20, 12,
  44, 32, 48, 0, 20, 8, 60, 52, 40, 56, 12, 24, 28, 4, 36, 16,
  28, 36, 12, 4, 52, 48, 44, 56, 8, 24, 20, 40, 16, 0, 60, 32,
  36, 0, 20, 28, 8, 16, 40, 60, 56, 4, 44, 48, 24, 32, 12, 52,
  8, 48, 24, 40, 0, 44, 32, 12, 16, 52, 28, 20, 60, 56, 4, 36,
  48, 20, 4, 60, 56, 52, 16, 40, 0, 28, 24, 12, 36, 8, 32, 44,
  52, 44, 28, 56, 48, 4, 12, 36, 20, 0, 60, 16, 32, 24, 8, 40,
  24, 60, 56, 36, 44, 12, 0, 32, 48, 8, 52, 28, 4, 16, 40, 20,
  40, 8, 32, 16, 28, 24, 4, 20, 60, 44, 36, 56, 12, 48, 52, 0,
]);

/** The chaining value h[0..8]. */
const H: usize = memory.data(32, 16);
/** The block waiting to be compressed: BLAKE2 compresses the last block with the final flag, so a full one waits for more input. */
const BUF: usize = memory.data(64, 16);
let bufLen: usize = 0;
/** Bytes compressed so far (the counter t; messages here are far below 2^32). */
let total: u32 = 0;

/** HMAC: h after the (key ^ ipad) and (key ^ opad) blocks, kept to reuse one key (tau0) across a KDF's HMACs. */
const IPAD_H: usize = memory.data(32, 16);
const OPAD_H: usize = memory.data(32, 16);
/** The (key ^ ipad) block itself: for an empty message it is the last block, compressed with the final flag, so IPAD_H does not apply. */
const IPAD_BLOCK: usize = memory.data(64, 16);
/** tau0, and the inner hash of an HMAC. */
const T0: usize = memory.data(32, 16);
const INNER: usize = memory.data(32, 16);
/** tau_{i-1} || i, the input of the KDF's later HMACs. */
const STEP: usize = memory.data(33, 16);

/** F (RFC 7693 3.2): compresses the 64-byte block at m into H; t is the byte count including it. */
function compress(m: usize, t: u32, last: bool): void {
  let v0 = load<u32>(H, 0), v1 = load<u32>(H, 4), v2 = load<u32>(H, 8), v3 = load<u32>(H, 12);
  let v4 = load<u32>(H, 16), v5 = load<u32>(H, 20), v6 = load<u32>(H, 24), v7 = load<u32>(H, 28);
  let v8 = IV0, v9 = IV1, v10 = IV2, v11 = IV3;
  let v12 = IV4 ^ t, v13 = IV5, v14 = last ? ~IV6 : IV6, v15 = IV7;
  for (let r: usize = 0; r < 160; r += 16) {
    const s = SIGMA + r;
    // G(a, b, c, d, x, y), RFC 7693 3.1, with rotations 16, 12, 8, 7.
    // Columns: G(v0,v4,v8,v12) G(v1,v5,v9,v13) G(v2,v6,v10,v14) G(v3,v7,v11,v15)
    v0 += v4 + load<u32>(m + <usize>load<u8>(s, 0)); v12 = rotr<u32>(v12 ^ v0, 16); v8 += v12; v4 = rotr<u32>(v4 ^ v8, 12);
    v0 += v4 + load<u32>(m + <usize>load<u8>(s, 1)); v12 = rotr<u32>(v12 ^ v0, 8); v8 += v12; v4 = rotr<u32>(v4 ^ v8, 7);
    v1 += v5 + load<u32>(m + <usize>load<u8>(s, 2)); v13 = rotr<u32>(v13 ^ v1, 16); v9 += v13; v5 = rotr<u32>(v5 ^ v9, 12);
    v1 += v5 + load<u32>(m + <usize>load<u8>(s, 3)); v13 = rotr<u32>(v13 ^ v1, 8); v9 += v13; v5 = rotr<u32>(v5 ^ v9, 7);
    v2 += v6 + load<u32>(m + <usize>load<u8>(s, 4)); v14 = rotr<u32>(v14 ^ v2, 16); v10 += v14; v6 = rotr<u32>(v6 ^ v10, 12);
    v2 += v6 + load<u32>(m + <usize>load<u8>(s, 5)); v14 = rotr<u32>(v14 ^ v2, 8); v10 += v14; v6 = rotr<u32>(v6 ^ v10, 7);
    v3 += v7 + load<u32>(m + <usize>load<u8>(s, 6)); v15 = rotr<u32>(v15 ^ v3, 16); v11 += v15; v7 = rotr<u32>(v7 ^ v11, 12);
    v3 += v7 + load<u32>(m + <usize>load<u8>(s, 7)); v15 = rotr<u32>(v15 ^ v3, 8); v11 += v15; v7 = rotr<u32>(v7 ^ v11, 7);
    // Diagonals: G(v0,v5,v10,v15) G(v1,v6,v11,v12) G(v2,v7,v8,v13) G(v3,v4,v9,v14)
    v0 += v5 + load<u32>(m + <usize>load<u8>(s, 8)); v15 = rotr<u32>(v15 ^ v0, 16); v10 += v15; v5 = rotr<u32>(v5 ^ v10, 12);
    v0 += v5 + load<u32>(m + <usize>load<u8>(s, 9)); v15 = rotr<u32>(v15 ^ v0, 8); v10 += v15; v5 = rotr<u32>(v5 ^ v10, 7);
    v1 += v6 + load<u32>(m + <usize>load<u8>(s, 10)); v12 = rotr<u32>(v12 ^ v1, 16); v11 += v12; v6 = rotr<u32>(v6 ^ v11, 12);
    v1 += v6 + load<u32>(m + <usize>load<u8>(s, 11)); v12 = rotr<u32>(v12 ^ v1, 8); v11 += v12; v6 = rotr<u32>(v6 ^ v11, 7);
    v2 += v7 + load<u32>(m + <usize>load<u8>(s, 12)); v13 = rotr<u32>(v13 ^ v2, 16); v8 += v13; v7 = rotr<u32>(v7 ^ v8, 12);
    v2 += v7 + load<u32>(m + <usize>load<u8>(s, 13)); v13 = rotr<u32>(v13 ^ v2, 8); v8 += v13; v7 = rotr<u32>(v7 ^ v8, 7);
    v3 += v4 + load<u32>(m + <usize>load<u8>(s, 14)); v14 = rotr<u32>(v14 ^ v3, 16); v9 += v14; v4 = rotr<u32>(v4 ^ v9, 12);
    v3 += v4 + load<u32>(m + <usize>load<u8>(s, 15)); v14 = rotr<u32>(v14 ^ v3, 8); v9 += v14; v4 = rotr<u32>(v4 ^ v9, 7);
  }
  store<u32>(H, load<u32>(H, 0) ^ v0 ^ v8, 0);
  store<u32>(H, load<u32>(H, 4) ^ v1 ^ v9, 4);
  store<u32>(H, load<u32>(H, 8) ^ v2 ^ v10, 8);
  store<u32>(H, load<u32>(H, 12) ^ v3 ^ v11, 12);
  store<u32>(H, load<u32>(H, 16) ^ v4 ^ v12, 16);
  store<u32>(H, load<u32>(H, 20) ^ v5 ^ v13, 20);
  store<u32>(H, load<u32>(H, 24) ^ v6 ^ v14, 24);
  store<u32>(H, load<u32>(H, 28) ^ v7 ^ v15, 28);
}

/** Starts a hash (RFC 7693 3.3): parameter block of digest length outLen (1..32) and key length keyLen (0..32); a key is the first block. */
function start(outLen: usize, key: usize, keyLen: usize): void {
  store<u32>(H, IV0 ^ 0x01010000 ^ (<u32>keyLen << 8) ^ <u32>outLen, 0);
  store<u32>(H, IV1, 4);
  store<u32>(H, IV2, 8);
  store<u32>(H, IV3, 12);
  store<u32>(H, IV4, 16);
  store<u32>(H, IV5, 20);
  store<u32>(H, IV6, 24);
  store<u32>(H, IV7, 28);
  total = 0;
  bufLen = 0;
  if (keyLen > 0) {
    memory.copy(BUF, key, keyLen);
    memory.fill(BUF + keyLen, 0, 64 - keyLen);
    bufLen = 64;
  }
}

/** Continues from a saved chaining value (an HMAC pad state): one 64-byte block already compressed. */
@inline function resume(state: usize): void {
  memory.copy(H, state, 32);
  total = 64;
  bufLen = 0;
}

function update(p: usize, len: usize): void {
  while (len > 0) {
    if (bufLen == 64) {
      total += 64;
      compress(BUF, total, false);
      bufLen = 0;
    }
    // Whole blocks straight from the input while more input follows them.
    while (bufLen == 0 && len > 64) {
      total += 64;
      compress(p, total, false);
      p += 64;
      len -= 64;
    }
    let n: usize = 64 - bufLen;
    if (n > len) n = len;
    memory.copy(BUF + bufLen, p, n);
    bufLen += n;
    p += n;
    len -= n;
  }
}

/** Compresses the last block (zero-padded, final flag) and writes the first outLen bytes of h to out. */
function finish(out: usize, outLen: usize): void {
  total += <u32>bufLen;
  memory.fill(BUF + bufLen, 0, 64 - bufLen);
  compress(BUF, total, true);
  memory.copy(out, H, outLen);
}

function wipe(): void {
  memory.fill(H, 0, 32);
  memory.fill(BUF, 0, 64);
  memory.fill(IPAD_H, 0, 32);
  memory.fill(OPAD_H, 0, 32);
  memory.fill(IPAD_BLOCK, 0, 64);
  memory.fill(T0, 0, 32);
  memory.fill(INNER, 0, 32);
  memory.fill(STEP, 0, 33);
  bufLen = 0;
  total = 0;
}

/**
 * BLAKE2s (RFC 7693): out[0..outLen] = BLAKE2s-outLen(key[0..keyLen], p[0..len]).
 * outLen 1..32, keyLen 0 (unkeyed) ..32; out may overlap the inputs.
 */
export function blake2s(out: usize, outLen: usize, key: usize, keyLen: usize, p: usize, len: usize): void {
  start(outLen, key, keyLen);
  update(p, len);
  finish(out, outLen);
  wipe();
}

/** The whitepaper's HASH(a || b): out[0..32] = BLAKE2s-256(a[0..aLen] || b[0..bLen]). out may overlap a or b. */
export function noise_hash(out: usize, a: usize, aLen: usize, b: usize, bLen: usize): void {
  start(32, 0, 0);
  update(a, aLen);
  update(b, bLen);
  finish(out, 32);
  wipe();
}

/** Sets IPAD_H and OPAD_H for an HMAC key of keyLen (at most 64) bytes. */
function hmac_key(key: usize, keyLen: usize): void {
  // RFC 2104: K zero-padded to the 64-byte block, XORed with 0x36 (inner) and 0x5c (outer).
  memory.copy(BUF, key, keyLen);
  memory.fill(BUF + keyLen, 0, 64 - keyLen);
  for (let i: usize = 0; i < 64; i += 4) store<u32>(BUF + i, load<u32>(BUF + i) ^ 0x36363636);
  memory.copy(IPAD_BLOCK, BUF, 64);
  start(32, 0, 0);
  compress(BUF, 64, false);
  memory.copy(IPAD_H, H, 32);
  for (let i: usize = 0; i < 64; i += 4) store<u32>(BUF + i, load<u32>(BUF + i) ^ (0x36363636 ^ 0x5c5c5c5c));
  start(32, 0, 0);
  compress(BUF, 64, false);
  memory.copy(OPAD_H, H, 32);
}

/** out[0..32] = HMAC(the key hmac_key set, p[0..len]) = HASH((K ^ opad) || HASH((K ^ ipad) || p)). */
function hmac_with(out: usize, p: usize, len: usize): void {
  if (len == 0) {
    start(32, 0, 0);
    memory.copy(BUF, IPAD_BLOCK, 64);
    bufLen = 64;
  } else {
    resume(IPAD_H);
    update(p, len);
  }
  finish(INNER, 32);
  resume(OPAD_H);
  update(INNER, 32);
  finish(out, 32);
}

/** HMAC-BLAKE2s (RFC 2104, 64-byte blocks): out[0..32] = HMAC(key[0..keyLen], p[0..len]), keyLen at most 64. */
export function hmac_blake2s(out: usize, key: usize, keyLen: usize, p: usize, len: usize): void {
  hmac_key(key, keyLen);
  hmac_with(out, p, len);
  wipe();
}

/**
 * The whitepaper's KDF_n(key, input), n = 1..3, keyLen at most 64:
 *   tau0 := HMAC(key, input); tau1 := HMAC(tau0, 0x1); tau_i := HMAC(tau0, tau_{i-1} || i)
 * writes tau1..tau_n to out[0..32n]. The pad states of tau0 are computed once
 * for its n HMACs. out may overlap key or input (both are read before out is written).
 */
export function noise_kdf(n: u32, out: usize, key: usize, keyLen: usize, p: usize, len: usize): void {
  if (n < 1 || n > 3) return;
  hmac_key(key, keyLen);
  hmac_with(T0, p, len);
  hmac_key(T0, 32);
  store<u8>(STEP, 1);
  hmac_with(STEP, STEP, 1);
  for (let i: u32 = 2; i <= n; i++) {
    memory.copy(out + (<usize>(i - 2) << 5), STEP, 32);
    store<u8>(STEP + 32, <u8>i);
    hmac_with(STEP, STEP, 33);
  }
  memory.copy(out + (<usize>(n - 1) << 5), STEP, 32);
  wipe();
}
