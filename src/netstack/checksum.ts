// The Internet checksum (RFC 1071): the 16-bit ones' complement of the ones'
// complement sum of the data as big-endian 16-bit words, and the
// pseudo-header that TCP (RFC 9293 3.1), UDP (RFC 768) and ICMPv6 (RFC 8200
// 8.1) put under it.
//
// Sums are kept unfolded as plain numbers: every word is at most 0xffff, so a
// double holds the exact sum of far more than any packet, and folding once at
// the end gives the same result as folding as we go.

/**
 * Adds b[off, off + len) to `acc` as big-endian 16-bit words; an odd last
 * byte counts as its high half. The result is unfolded.
 */
export function sum(b: Uint8Array, off: number, len: number, acc = 0): number {
  const end = off + len;
  let s = acc, i = off;
  for (; i + 7 < end; i += 8) {
    s += ((b[i] << 8) | b[i + 1]) + ((b[i + 2] << 8) | b[i + 3]) + ((b[i + 4] << 8) | b[i + 5]) + ((b[i + 6] << 8) | b[i + 7]);
  }
  for (; i + 1 < end; i += 2) s += (b[i] << 8) | b[i + 1];
  if (i < end) s += b[i] << 8;
  return s;
}

/** Folds an unfolded sum to 16 bits and complements it: the checksum field's value. */
export function finish(s: number): number {
  // `& 0xffff` is exact for integers below 2^53 (ToInt32 keeps the low bits).
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/**
 * The pseudo-header's contribution: source and destination addresses (4 or
 * 16 bytes each, at srcOff/dstOff of their arrays), the protocol number and
 * the upper-layer length. IPv4's 12-byte and IPv6's 40-byte layouts add up to
 * the same words.
 */
export function pseudo(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, alen: number, proto: number, len: number): number {
  return sum(src, srcOff, alen, sum(dst, dstOff, alen, proto + (len >>> 16) + (len & 0xffff)));
}

/**
 * Computes and stores the checksum of the upper-layer message at
 * buf[off, off + len) sent from src to dst, in its field at off + field.
 * A computed zero goes out as all ones, which UDP requires (RFC 768) and
 * TCP and ICMPv6 read the same way.
 */
export function storeChecksum(buf: Uint8Array, off: number, len: number, src: Uint8Array, dst: Uint8Array, proto: number, field: number): void {
  buf[off + field] = 0; buf[off + field + 1] = 0;
  let c = finish(sum(buf, off, len, pseudo(src, 0, dst, 0, src.length, proto, len)));
  if (c === 0) c = 0xffff;
  buf[off + field] = c >> 8; buf[off + field + 1] = c & 0xff;
}
