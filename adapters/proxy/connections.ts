// Joining two byte streams both ways (a proxied connection), and the cap on
// how many such joins run at once.
//
// Each direction is one pipeTo, so backpressure is the streams' own: a
// slow reader on one side stops reads on the other, and nothing queues
// beyond each stream's small high-water mark. The end of one direction
// (FIN) closes the other side's writable (FIN onward) while the opposite
// direction goes on: half-close passes through. An error either way tears
// both connections down.

/** One side of a relay. */
export interface RelayEnd {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Tears the connection down at once (RST, or the socket destroyed). */
  abort(): void;
}

/**
 * Copies a to b and b to a until both directions end.
 * @returns resolves when both are done (never rejects: a failure aborts both ends)
 */
export async function relay(a: RelayEnd, b: RelayEnd): Promise<void> {
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    a.abort();
    b.abort();
  };
  await Promise.all([
    a.readable.pipeTo(b.writable).catch(fail),
    b.readable.pipeTo(a.writable).catch(fail),
  ]);
}

/**
 * A proxy's success path: `answer` to the client (the CONNECT or SOCKS5
 * reply), then the client's remaining bytes and the tunnel connection joined
 * both ways. If the answer cannot be written, both are torn down.
 */
export async function answerAndRelay(
  client: { writable: WritableStream<Uint8Array>; close(): void }, rest: ReadableStream<Uint8Array>,
  conn: RelayEnd, answer: Uint8Array,
): Promise<void> {
  try {
    await writeBytes(client.writable, answer);
  } catch {
    conn.abort();
    client.close();
    return;
  }
  await relay({ readable: rest, writable: client.writable, abort: () => client.close() }, conn);
}

/** Writes bytes to a writable without keeping it locked. */
export async function writeBytes(w: WritableStream<Uint8Array>, bytes: Uint8Array): Promise<void> {
  const writer = w.getWriter();
  try {
    await writer.write(bytes);
  } finally {
    writer.releaseLock();
  }
}

/**
 * Ends a client connection in order: `bytes` (a refusal, an error reply)
 * written, the sending side closed (FIN), reading abandoned, then closed.
 */
export async function endWith(
  client: { writable: WritableStream<Uint8Array>; close(): void }, reader: { cancel(): void } | null, bytes: Uint8Array | null,
): Promise<void> {
  try {
    const w = client.writable.getWriter();
    if (bytes) await w.write(bytes);
    await w.close();
  } catch { /* the connection is gone already */ }
  reader?.cancel();
  client.close();
}

/** A counting cap: how many connections (or associations) may be open at once. */
export class Slots {
  active = 0;
  /** Refused for want of a slot. */
  refused = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`invalid connection cap ${max}`);
  }

  /** Takes a slot; false (counted) when all are taken. */
  take(): boolean {
    if (this.active >= this.max) { this.refused++; return false; }
    this.active++;
    return true;
  }

  give(): void {
    if (this.active > 0) this.active--;
  }
}

/** Calls `f` after `ms` unless cancelled: a deadline for a protocol's opening exchange. */
export function deadline(ms: number, f: () => void): () => void {
  const t = setTimeout(f, ms);
  return () => clearTimeout(t);
}
