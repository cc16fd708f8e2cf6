// A proxy's connections: answering the client, then joining it to the
// tunnel (ports/streams.ts); ending it in order; the cap on how many run at
// once; the deadline of an opening exchange.
import { join, type StreamEnd } from "../ports/streams.ts";

/**
 * A proxy's success path: `answer` to the client (the CONNECT or SOCKS5
 * reply), then the client's remaining bytes and the tunnel connection joined
 * both ways. If the answer cannot be written, both are torn down.
 */
export async function answerAndRelay(
  client: { writable: WritableStream<Uint8Array>; close(): void }, rest: ReadableStream<Uint8Array>,
  conn: StreamEnd, answer: Uint8Array,
): Promise<void> {
  try {
    await writeBytes(client.writable, answer);
  } catch {
    conn.abort();
    client.close();
    return;
  }
  await join({ readable: rest, writable: client.writable, abort: () => client.close() }, conn);
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
