// Out-of-order bookkeeping for the receive buffer: which byte ranges past
// RCV.NXT have arrived (their bytes sit in the ring's free space). A fixed
// number of disjoint ranges bounds the work per segment; a segment that would
// need one more is dropped, and the sender retransmits it (RFC 9293 3.10.7.4
// lets a receiver keep or drop out-of-order segments).

export class Assembler {
  /** Disjoint, non-touching, sorted [start, end) pairs, offsets from RCV.NXT, all starts > 0. */
  private r: number[] = [];

  constructor(readonly maxRanges = 8) {}

  get empty(): boolean {
    return this.r.length === 0;
  }

  /** Number of ranges held. */
  get count(): number {
    return this.r.length / 2;
  }

  /** Records [start, end) (start > 0) as arrived; false, changing nothing, if that needs too many ranges. */
  add(start: number, end: number): boolean {
    const r = this.r;
    // First range whose end reaches start, and the first one that begins past end.
    let i = 0;
    while (i < r.length && r[i + 1] < start) i += 2;
    let j = i;
    while (j < r.length && r[j] <= end) j += 2;
    if (i === j) {
      if (r.length / 2 >= this.maxRanges) return false;
      r.splice(i, 0, start, end);
      return true;
    }
    // Merge [start, end) with ranges i .. j-2.
    const s = Math.min(start, r[i]), e = Math.max(end, r[j - 1]);
    r.splice(i, j - i, s, e);
    return true;
  }

  /**
   * The in-order edge moved: bytes [0, n) are now present. Merges the ranges
   * that touch them and returns how many contiguous bytes from 0 are present;
   * the remaining ranges are rebased on that new edge.
   */
  advance(n: number): number {
    const r = this.r;
    let end = n, k = 0;
    while (k < r.length && r[k] <= end) { end = Math.max(end, r[k + 1]); k += 2; }
    if (k > 0) r.splice(0, k);
    for (let i = 0; i < r.length; i++) r[i] -= end;
    return end;
  }

  clear(): void {
    this.r.length = 0;
  }
}
