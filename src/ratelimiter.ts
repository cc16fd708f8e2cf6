// Per-source token bucket for handshake messages under load (whitepaper
// 5.3; wireguard-go's ratelimiter.go has the same numbers): 20 per second,
// bursts of 5. Tokens are counted in milliseconds of credit: each message
// costs 50, a bucket holds at most 250, and credit accrues one per ms.
//
// A source is an IPv4 address or an IPv6 /64, as the Linux kernel keys its
// limiter: one holder of a /64 has every address in it, so its addresses
// share one bucket instead of taking 2^64 of them.
//
// The table is bounded, and kept in order of last use. An entry idle for a
// second has refilled completely, so dropping it changes no answer; idle
// entries are collected from the old end. A full table never refuses a new
// source (the kernel and wireguard-go do not either): the least recently
// used entry gives way, and what it loses is only its debt, so a flood from
// many sources cannot lock a legitimate peer out. No timers: time comes in.
import { parseAddress } from "./ip.ts";

export const HANDSHAKES_PER_SECOND = 20;
export const HANDSHAKE_BURST = 5;
/**
 * Sources tracked at once (4096, a few hundred KiB of keys and buckets):
 * past it the least recently used source gives way (counted in `evicted`
 * when it was still in debt), so more sources cost only their debt.
 */
export const RATELIMITER_MAX_ENTRIES = 4096;
/** An entry untouched for this long is full again and may be forgotten. */
export const RATELIMITER_IDLE_MS = 1000;

const COST = 1000 / HANDSHAKES_PER_SECOND;
const MAX_TOKENS = COST * HANDSHAKE_BURST;

interface Bucket { tokens: number; lastMs: number }

/** The key of a source address: an IPv4 address (IPv4-mapped too) as it is, an IPv6 address by its /64. */
export function sourceKey(address: string): string {
  let b: Uint8Array;
  try {
    b = parseAddress(address.replace(/^\[|\]$/g, ""));
  } catch {
    return address; // not a literal (a test's name, a relay's "websocket"): itself
  }
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let k = "";
  for (let i = 0; i < 8; i++) k += b[i].toString(16).padStart(2, "0");
  return `${k}::/64`;
}

export class RateLimiter {
  readonly maxEntries: number;
  /** Oldest use first: Map keeps insertion order, and a use re-inserts. */
  private readonly table = new Map<string, Bucket>();
  /** Entries dropped for room while still in debt (a sign of a flood of sources). */
  evicted = 0;

  /**
   * @param maxEntries - most sources tracked at once (default RATELIMITER_MAX_ENTRIES).
   * @throws RangeError unless maxEntries is a positive integer.
   */
  constructor(maxEntries = RATELIMITER_MAX_ENTRIES) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError("maxEntries must be a positive integer");
    this.maxEntries = maxEntries;
  }

  /** Sources currently tracked. */
  get size(): number {
    return this.table.size;
  }

  /**
   * Takes one token for the source of `address` if it has one.
   * @param address - the source address as text (IPv6 counts by its /64).
   * @param nowMs - the caller's monotonic clock.
   * @returns whether a handshake message from it may be processed now.
   */
  allow(address: string, nowMs: number): boolean {
    this.collect(nowMs);
    const key = sourceKey(address);
    const b = this.table.get(key);
    if (b === undefined) {
      if (this.table.size >= this.maxEntries) {
        // The least recently used source gives way (collect left only busy ones).
        const oldest = this.table.keys().next().value!;
        this.table.delete(oldest);
        this.evicted++;
      }
      // A new source starts with a full bucket, less this message.
      this.table.set(key, { tokens: MAX_TOKENS - COST, lastMs: nowMs });
      return true;
    }
    this.table.delete(key);
    this.table.set(key, b);
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

  /** Forgets every source idle for RATELIMITER_IDLE_MS or more: from the old end, so O(forgotten). */
  collect(nowMs: number): void {
    for (const [key, b] of this.table) {
      if (nowMs - b.lastMs < RATELIMITER_IDLE_MS) break;
      this.table.delete(key);
    }
  }
}
