// A byte ring with a hard cap: TCP's send buffer (bytes from SND.UNA on) and
// receive buffer (bytes the application has not read yet, with out-of-order
// data parked in the free space after them, at its offset from RCV.NXT).
// Storage starts empty and doubles as needed up to the cap, so an idle
// connection holds no buffer memory; it is never larger than the cap.

const EMPTY = new Uint8Array(0);
const MIN_STORAGE = 4096;

export class Ring {
  private buf: Uint8Array = EMPTY;
  private head = 0;
  /** Bytes readable from the head. */
  len = 0;

  /** @param max the cap in bytes: no more than this is ever held. */
  constructor(readonly max: number) {}

  /** Room left under the cap after the readable bytes. */
  get free(): number {
    return this.max - this.len;
  }

  /** Bytes of storage currently allocated. */
  get allocated(): number {
    return this.buf.length;
  }

  /** Makes storage hold at least `n` bytes from the head (n <= max). */
  private reserve(n: number): void {
    const old = this.buf, cap = old.length;
    if (n <= cap) return;
    let size = Math.max(MIN_STORAGE, cap);
    while (size < n) size *= 2;
    size = Math.min(size, this.max);
    const b = new Uint8Array(size);
    // Everything meaningful lies within `cap` bytes of the head: copy it all, unwrapped.
    b.set(old.subarray(this.head));
    b.set(old.subarray(0, this.head), cap - this.head);
    this.buf = b;
    this.head = 0;
  }

  /** Copies src[off, off + n) to `pos` bytes past the readable end (pos + n <= free), without making it readable. */
  writeAt(pos: number, src: Uint8Array, off: number, n: number): void {
    if (n <= 0) return;
    this.reserve(this.len + pos + n);
    const buf = this.buf, cap = buf.length;
    let at = this.head + this.len + pos;
    if (at >= cap) at -= cap;
    const first = Math.min(n, cap - at);
    buf.set(src.subarray(off, off + first), at);
    if (first < n) buf.set(src.subarray(off + first, off + n), 0);
  }

  /** Makes `n` more bytes (written at the readable end) readable. */
  commit(n: number): void {
    this.len += n;
  }

  /** Appends src[off, off + n) (n <= free). */
  push(src: Uint8Array, off: number, n: number): void {
    this.writeAt(0, src, off, n);
    this.len += n;
  }

  /** Copies n readable bytes starting `pos` past the head into dst[dstOff], without consuming them. */
  peek(pos: number, dst: Uint8Array, dstOff: number, n: number): void {
    if (n <= 0) return;
    const buf = this.buf, cap = buf.length;
    let at = this.head + pos;
    if (at >= cap) at -= cap;
    const first = Math.min(n, cap - at);
    dst.set(buf.subarray(at, at + first), dstOff);
    if (first < n) dst.set(buf.subarray(0, n - first), dstOff + first);
  }

  /** Consumes n readable bytes. (The head moves even when nothing is left: bytes parked past the end keep their place.) */
  discard(n: number): void {
    this.len -= n;
    this.head += n;
    if (this.head >= this.buf.length) this.head -= this.buf.length;
  }

  /** Takes up to n readable bytes as a new array. */
  take(n: number): Uint8Array {
    const m = Math.min(n, this.len), out = new Uint8Array(m);
    this.peek(0, out, 0, m);
    this.discard(m);
    return out;
  }

  /** Gives the storage back (only when nothing is held). */
  release(): void {
    if (this.len === 0) { this.buf = EMPTY; this.head = 0; }
  }
}
