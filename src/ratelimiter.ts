// Per-source-IP token bucket for handshake messages under load (whitepaper
// 5.3; wireguard-go ratelimiter.go has the same numbers): 20 per second,
// bursts of 5. Tokens are counted in milliseconds of credit: each message
// costs 50, a bucket holds at most 250, and credit accrues one per ms.
//
// The table is bounded. An entry idle for a second has refilled completely,
// so dropping it changes no answer; idle entries are collected by collect()
// and lazily from allow(). When the table is full of busy sources, new
// sources are refused until one goes idle. No timers: time comes in.

export const HANDSHAKES_PER_SECOND = 20;
export const HANDSHAKE_BURST = 5;
/** An entry untouched for this long is full again and may be forgotten. */
export const RATELIMITER_IDLE_MS = 1000;

const COST = 1000 / HANDSHAKES_PER_SECOND;
const MAX_TOKENS = COST * HANDSHAKE_BURST;

interface Bucket { tokens: number; lastMs: number }

export class RateLimiter {
  readonly maxEntries: number;
  private readonly table = new Map<string, Bucket>();
  private lastCollectMs = -Infinity;
  /** No entry can be idle before this time (a lower bound, so a full table is not rescanned on every new source). */
  private nextIdleMs = -Infinity;

  /**
   * @param maxEntries - most sources tracked at once (default 4096).
   * @throws RangeError unless maxEntries is a positive integer.
   */
  constructor(maxEntries = 4096) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError("maxEntries must be a positive integer");
    this.maxEntries = maxEntries;
  }

  /** Sources currently tracked. */
  get size(): number {
    return this.table.size;
  }

  /**
   * Takes one token for `ip` if it has one.
   * @param ip - the source address, in whatever one canonical text form the caller uses.
   * @param nowMs - the caller's monotonic clock.
   * @returns whether a handshake message from `ip` may be processed now.
   */
  allow(ip: string, nowMs: number): boolean {
    if (nowMs - this.lastCollectMs >= RATELIMITER_IDLE_MS) this.collect(nowMs);
    const b = this.table.get(ip);
    if (b === undefined) {
      if (this.table.size >= this.maxEntries) {
        if (nowMs >= this.nextIdleMs) this.collect(nowMs);
        if (this.table.size >= this.maxEntries) return false;
      }
      // A new source starts with a full bucket, less this message.
      this.table.set(ip, { tokens: MAX_TOKENS - COST, lastMs: nowMs });
      if (this.nextIdleMs === -Infinity) this.nextIdleMs = nowMs + RATELIMITER_IDLE_MS;
      return true;
    }
    if (nowMs > b.lastMs) {
      b.tokens = Math.min(MAX_TOKENS, b.tokens + (nowMs - b.lastMs));
      b.lastMs = nowMs;
    }
    if (b.tokens >= COST) {
      b.tokens -= COST;
      return true;
    }
    return false;
  }

  /** Forgets every source idle for RATELIMITER_IDLE_MS or more. O(entries). */
  collect(nowMs: number): void {
    let next = Infinity;
    for (const [ip, b] of this.table) {
      if (nowMs - b.lastMs >= RATELIMITER_IDLE_MS) this.table.delete(ip);
      else if (b.lastMs + RATELIMITER_IDLE_MS < next) next = b.lastMs + RATELIMITER_IDLE_MS;
    }
    this.lastCollectMs = nowMs;
    this.nextIdleMs = next === Infinity ? -Infinity : next;
  }
}
