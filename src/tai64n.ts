// TAI64N timestamps for handshake initiations (whitepaper 5.4.2; the
// format is D. J. Bernstein's TAI64N: 8 bytes of seconds, 4 of nanoseconds,
// big-endian). The seconds carry the 2^62 + 10 offset the kernel and
// wireguard-go use. The responder only ever compares them, so they need to
// be monotonic per initiator, not exact.

/** Nanoseconds are rounded down to a multiple of this (2^24 ns, about 16.8 ms), so a timestamp is no fine clock oracle. */
export const TAI64N_WHITENER = 0x1000000;
const SECONDS_BASE_HIGH = 0x40000000; // 2^62 in the high u32 of the seconds
const SECONDS_BASE_LOW = 10;

/**
 * The TAI64N label of a wall-clock time.
 * @param wallMs - Unix time in milliseconds (Date.now() in the caller, never read here).
 * @param out - 12 bytes to fill (a new array if omitted).
 * @returns `out`.
 * @throws RangeError if `wallMs` is not finite or `out` is shorter than 12 bytes.
 * @example tai64n(Date.now())
 */
export function tai64n(wallMs: number, out: Uint8Array = new Uint8Array(12)): Uint8Array {
  if (!Number.isFinite(wallMs)) throw new RangeError("tai64n: wallMs must be a finite number");
  if (out.length < 12) throw new RangeError("tai64n: out must hold 12 bytes");
  const secs = Math.floor(wallMs / 1000);
  const nanos = Math.floor((wallMs - secs * 1000) * 1e6);
  const whitened = nanos - (nanos % TAI64N_WHITENER);
  // seconds + 2^62 + 10 as a big-endian u64, split in two u32 halves.
  const s = secs + SECONDS_BASE_LOW;
  const high = SECONDS_BASE_HIGH + Math.floor(s / 0x100000000);
  const low = s - Math.floor(s / 0x100000000) * 0x100000000;
  const dv = new DataView(out.buffer, out.byteOffset, 12);
  dv.setUint32(0, high >>> 0);
  dv.setUint32(4, low >>> 0);
  dv.setUint32(8, whitened);
  return out;
}

/** Orders two TAI64N labels (12 bytes each): -1 if a is earlier, 0 if equal, 1 if a is later. */
export function compareTai64n(a: Uint8Array, b: Uint8Array): -1 | 0 | 1 {
  for (let i = 0; i < 12; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}
