// Joining two byte streams both ways: a proxied connection (host and
// tunnel), a gateway's flow (tunnel and outbound socket).
//
// Each direction is one pipeTo, so backpressure is the streams' own: a
// slow reader on one side stops reads on the other, and nothing queues
// beyond each stream's small high-water mark. The end of one direction
// (FIN) closes the other side's writable (FIN onward) while the opposite
// direction goes on: half-close passes through. An error either way tears
// both connections down.

/** One side of a join. */
export interface StreamEnd {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Tears the connection down at once (RST, or the socket destroyed). */
  abort(): void;
}

/**
 * Copies a to b and b to a until both directions end.
 * @returns resolves when both are done (never rejects: a failure aborts both ends)
 */
export async function join(a: StreamEnd, b: StreamEnd): Promise<void> {
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
