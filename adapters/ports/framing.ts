// How WireGuard datagrams ride WebSocket messages between a page and the
// relay or the edge gateway. Two framings, chosen by WebSocket subprotocol:
//
//   wg.datagram.v1  one binary message is exactly one datagram (also what a
//                   socket that negotiated no subprotocol speaks, so older
//                   pages, relays and gateways keep working).
//   wg.batch.v1     one binary message carries one or more datagrams, each a
//                   u16 big-endian length then that many bytes, the whole
//                   message at most BATCH_BYTES. Chromium's cost is per
//                   message, not per byte: one message per engine batch
//                   instead of one per datagram is what lets a page's
//                   tunnel go faster than a few thousand datagrams a second.
//
// A client offers both, the one-per-message name first: a server that
// answers with the first name offered whatever it is (the ws package's
// default, Bun's) then picks the framing both sides speak. A server that
// knows both picks the batch; one that knows neither answers none.
// Senders flush at the end of each engine batch (or I/O turn), never on a
// timer, so a lone datagram is not held back.

/** The subprotocol names, in the order a client offers them. */
export const SUBPROTOCOL = { datagram: "wg.datagram.v1", batch: "wg.batch.v1" } as const;

export type Framing = keyof typeof SUBPROTOCOL;

/** The most bytes one batch message may hold, length prefixes included (64 KiB: some 45 full-MTU datagrams). */
export const BATCH_BYTES = 65536;

/** Bytes before each datagram in a batch message. */
export const BATCH_HEADER = 2;

/** The framing a socket speaks, from the subprotocol it negotiated ("" or an unknown name: one per message). */
export function framingOf(protocol: string | null | undefined): Framing {
  return protocol === SUBPROTOCOL.batch ? "batch" : "datagram";
}

/**
 * The subprotocol a server answers to a client's offer (the names of its
 * Sec-WebSocket-Protocol header), or null to answer none: the batch where
 * both are willing, else the one-per-message name when offered.
 */
export function chooseSubprotocol(offered: readonly string[], batch: boolean): string | null {
  if (batch && offered.includes(SUBPROTOCOL.batch)) return SUBPROTOCOL.batch;
  return offered.includes(SUBPROTOCOL.datagram) ? SUBPROTOCOL.datagram : null;
}

/** The names of a Sec-WebSocket-Protocol header ("a, b" -> ["a", "b"]); none when absent. */
export function parseSubprotocols(header: string | null | undefined): string[] {
  if (!header) return [];
  return header.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Checks a batch message: every datagram 1..maxDatagram bytes, the lengths
 * adding up to the message exactly. Returns the number of datagrams, or 0
 * for a malformed message (nothing of which should be delivered).
 */
export function countBatch(msg: Uint8Array, maxDatagram: number): number {
  if (msg.length > BATCH_BYTES) return 0;
  let off = 0, n = 0;
  while (off < msg.length) {
    if (off + BATCH_HEADER > msg.length) return 0;
    const len = (msg[off] << 8) | msg[off + 1];
    off += BATCH_HEADER;
    if (len === 0 || len > maxDatagram || off + len > msg.length) return 0;
    off += len;
    n++;
  }
  return n;
}

/**
 * Calls `each` with every datagram of a batch message countBatch accepted
 * (offset and length into `msg`; no copies).
 */
export function forEachInBatch(msg: Uint8Array, each: (off: number, len: number) => void): void {
  for (let off = 0; off + BATCH_HEADER <= msg.length;) {
    const len = (msg[off] << 8) | msg[off + 1];
    off += BATCH_HEADER;
    each(off, len);
    off += len;
  }
}

/**
 * A batch message of `parts[0..count)` (`bytes`: their lengths added), in a
 * buffer of its own: for a socket whose send may keep the bytes it is given
 * until written (the ws package's does), unlike WebSocket's, which copies.
 */
export function joinBatch(parts: readonly Uint8Array[], count: number, bytes: number): Uint8Array {
  const m = new Uint8Array(bytes + count * BATCH_HEADER);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const p = parts[i];
    m[at] = p.length >>> 8;
    m[at + 1] = p.length & 0xff;
    m.set(p, at + BATCH_HEADER);
    at += BATCH_HEADER + p.length;
  }
  return m;
}

/**
 * One socket's outgoing batch message, built in a buffer of its own (one
 * copy of each datagram; WebSocket send copies the message, so the buffer
 * is reused at once).
 */
export class BatchWriter {
  private readonly buf = new Uint8Array(BATCH_BYTES);
  private used = 0;
  /** Datagrams in the message now. */
  count = 0;

  /** Whether a datagram of `len` bytes still fits. */
  fits(len: number): boolean {
    return this.used + BATCH_HEADER + len <= BATCH_BYTES;
  }

  /** Appends one datagram; the caller made room with take() when fits() said no. */
  add(src: Uint8Array, off: number, len: number): void {
    const b = this.buf, at = this.used;
    b[at] = len >>> 8;
    b[at + 1] = len & 0xff;
    b.set(src.subarray(off, off + len), at + BATCH_HEADER);
    this.used = at + BATCH_HEADER + len;
    this.count++;
  }

  /** Bytes in the message now. */
  get bytes(): number {
    return this.used;
  }

  /** The message so far (a view, valid until the next add), and the writer emptied. */
  take(): Uint8Array {
    const m = this.buf.subarray(0, this.used);
    this.used = 0;
    this.count = 0;
    return m;
  }
}
