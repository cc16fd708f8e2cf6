// Anti-replay window for transport counters: RFC 6479 (IPsec Anti-Replay
// Algorithm without Bit Shifting), as WireGuard uses it (whitepaper 5.4.6).
//
// State at `w` (REPLAY_BYTES, 8-byte aligned, owned by the caller):
//   +0    u64  top: highest accepted counter + 1, or 0 when nothing arrived yet
//   +8    128 x u64 ring of bitmap blocks
//
// Counter c is tracked at bit position p = c + 1 (so 0 can mean "empty"):
// block (p >> 6) & 127, bit p & 63. Sliding forward zeroes the blocks passed
// over instead of shifting bits. One block is always the partially filled
// current one, so the usable window is 128 * 64 - 64 = 8128 counters behind
// the highest one.
//
// The check runs before the AEAD and must not mutate (a forged packet must
// not move the window); the update runs only after the tag verified and
// re-checks, since a batch may hold the same counter twice.

/** Ring size in 64-bit blocks (a power of two). */
@inline const BLOCKS: u64 = 128;
/** log2(bits per block). */
@inline const BLOCK_SHIFT: u64 = 6;
/** Counters accepted behind the highest one: 128 * 64 - 64. */
@inline const WINDOW: u64 = 8128;
/** REJECT_AFTER_MESSAGES = 2^64 - 2^13 - 1 (whitepaper section 6.1); a
 *  counter at or above it is never accepted. */
@inline const REJECT_AFTER_MESSAGES: u64 = 0xFFFF_FFFF_FFFF_DFFF;

@inline const TOP: usize = 0;
@inline const RING: usize = 8;

/** Bytes of one window's state; the caller reserves this many at `w`, 8-byte aligned. */
export const REPLAY_BYTES: usize = 8 + <usize>BLOCKS * 8;

/** Address of ring block number `i` (blocks count up forever; the ring wraps them). */
@inline function block(w: usize, i: u64): usize {
  return w + RING + ((<usize>(i & (BLOCKS - 1))) << 3);
}

/**
 * Empties the window: nothing received yet, every counter below the limit acceptable.
 * @param w state, REPLAY_BYTES bytes
 */
export function replay_reset(w: usize): void {
  memory.fill(w, 0, REPLAY_BYTES);
}

/**
 * Cheap pre-check before the AEAD. Never writes to the state.
 * @param w state, REPLAY_BYTES bytes
 * @param counter the packet's 64-bit counter
 * @returns false when the counter is at or above REJECT_AFTER_MESSAGES,
 *   older than the window, or already marked seen
 */
export function replay_check(w: usize, counter: u64): bool {
  if (counter >= REJECT_AFTER_MESSAGES) return false;
  let p = counter + 1;                // cannot wrap: counter < 2^64 - 2^13 - 1
  let top = load<u64>(w, TOP);
  if (p > top) return true;           // ahead of everything seen: fresh
  if (p + WINDOW < top) return false; // fell off the back of the window
  return (load<u64>(block(w, p >> BLOCK_SHIFT)) & (<u64>1 << (p & 63))) == 0;
}

/**
 * Marks a counter seen after its tag verified, sliding the window forward
 * when it is the newest. Re-checks first.
 * @param w state, REPLAY_BYTES bytes
 * @param counter the packet's 64-bit counter
 * @returns true when accepted and recorded; false (state unchanged) when
 *   replay_check would reject it
 */
export function replay_update(w: usize, counter: u64): bool {
  if (counter >= REJECT_AFTER_MESSAGES) return false;
  let p = counter + 1;
  let top = load<u64>(w, TOP);
  if (p > top) {
    // Zero the blocks between the current one and the new one (at most the
    // whole ring). Bits above `top` inside the current block are already zero:
    // only a counter above `top` could have set them.
    let cur = top >> BLOCK_SHIFT;
    let ahead = (p >> BLOCK_SHIFT) - cur;
    if (ahead > BLOCKS) ahead = BLOCKS;
    for (let i: u64 = 1; i <= ahead; ++i) store<u64>(block(w, cur + i), 0);
    store<u64>(w, p, TOP);
  } else if (p + WINDOW < top) {
    return false;
  }
  let at = block(w, p >> BLOCK_SHIFT);
  let bit = <u64>1 << (p & 63);
  let bits = load<u64>(at);
  if (bits & bit) return false;       // only reachable when p <= top: nothing was changed
  store<u64>(at, bits | bit);
  return true;
}
