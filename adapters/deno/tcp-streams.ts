// A Deno TCP connection as WHATWG streams, for the CLI's host sockets
// (runtime.ts) and the edge gateway's outbound connections (adapters/edge):
// a pulled readable, so backpressure reaches the socket, and a writable whose
// close is closeWrite (FIN), not close. Deno's own conn.readable closes the
// connection at EOF, which would end a half-closed connection's other
// direction; so reads go through conn.read, and the connection closes once
// both directions are done.

/** Bytes one read takes at most. */
const READ_CHUNK = 64 * 1024;

export function tcpStreams(c: Deno.TcpConn): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array>; close(): void } {
  try { c.setNoDelay(true); } catch { /* closed already */ }
  let closed = false, readDone = false, writeDone = false;
  const close = () => { if (!closed) { closed = true; try { c.close(); } catch { /* closed already */ } } };
  const done = (side: "r" | "w") => {
    if (side === "r") readDone = true; else writeDone = true;
    if (readDone && writeDone) close();
  };
  const readable = new ReadableStream<Uint8Array>({
    pull: async (ctl) => {
      const buf = new Uint8Array(READ_CHUNK);
      let n: number | null;
      try {
        n = await c.read(buf);
      } catch (e) {
        done("r");
        throw e;
      }
      if (n === null) { ctl.close(); done("r"); return; }
      ctl.enqueue(buf.subarray(0, n));
    },
    cancel: () => done("r"),
  }, { highWaterMark: 0 });
  const writable = new WritableStream<Uint8Array>({
    write: async (chunk) => {
      let off = 0;
      while (off < chunk.length) off += await c.write(chunk.subarray(off));
    },
    close: async () => {
      try { await c.closeWrite(); } catch { /* closed already */ }
      done("w");
    },
    abort: close,
  }, { highWaterMark: 1 });
  return { readable, writable, close };
}
