// Reading a protocol's head off a byte stream: exact counts (SOCKS5), lines
// and header blocks (HTTP), then handing the rest on as a stream again, the
// bytes already read first. Everything is bounded by the caller's limits,
// and nothing is read ahead of what a call asks for beyond one chunk.

/** The stream ended, or a limit was passed, before the head was complete. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

const CRLF2 = [13, 10, 13, 10];

export class StreamReader {
  private buf: Uint8Array = new Uint8Array(0);
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private released = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }

  /** Bytes read but not yet consumed. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Reads one more chunk onto the buffer; false at the end of the stream. */
  private async more(): Promise<boolean> {
    const { value, done } = await this.reader.read();
    if (done) return false;
    if (value.length === 0) return true;
    if (this.buf.length === 0) { this.buf = value; return true; }
    const b = new Uint8Array(this.buf.length + value.length);
    b.set(this.buf);
    b.set(value, this.buf.length);
    this.buf = b;
    return true;
  }

  /** Exactly n bytes; ProtocolError if the stream ends first. */
  async exact(n: number): Promise<Uint8Array> {
    while (this.buf.length < n) if (!(await this.more())) throw new ProtocolError("the connection ended early");
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async byte(): Promise<number> {
    return (await this.exact(1))[0];
  }

  /**
   * Everything up to and including the first blank line (CRLF CRLF), as
   * latin1 text without that blank line; null when the stream ends cleanly
   * before any byte. ProtocolError past `max` bytes or on a truncated head.
   */
  async head(max: number): Promise<string | null> {
    let from = 0;
    for (;;) {
      const at = indexOf(this.buf, CRLF2, from);
      if (at >= 0) {
        const text = latin1(this.buf.subarray(0, at + 2));
        this.buf = this.buf.subarray(at + 4);
        return text;
      }
      if (this.buf.length > max) throw new ProtocolError(`header block over ${max} bytes`);
      from = Math.max(0, this.buf.length - 3);
      if (!(await this.more())) {
        if (this.buf.length === 0) return null;
        throw new ProtocolError("the connection ended inside a header block");
      }
    }
  }

  /** One line without its CRLF (or LF); ProtocolError past `max` bytes or at the end. */
  async line(max: number): Promise<string> {
    let from = 0;
    for (;;) {
      const at = this.buf.indexOf(10, from);
      if (at >= 0) {
        const end = at > 0 && this.buf[at - 1] === 13 ? at - 1 : at;
        const text = latin1(this.buf.subarray(0, end));
        this.buf = this.buf.subarray(at + 1);
        return text;
      }
      if (this.buf.length > max) throw new ProtocolError(`line over ${max} bytes`);
      from = this.buf.length;
      if (!(await this.more())) throw new ProtocolError("the connection ended inside a line");
    }
  }

  /** Up to `max` bytes: what is buffered, else the next chunk; null at the end of the stream. */
  async some(max: number): Promise<Uint8Array | null> {
    if (this.buf.length === 0 && !(await this.more())) return null;
    const n = Math.min(max, this.buf.length);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /**
   * The rest of the stream: the buffered bytes, then each chunk as it is
   * pulled (no read-ahead: backpressure reaches the source). The reader is
   * used up; cancelling the result cancels the source.
   */
  rest(): ReadableStream<Uint8Array> {
    if (this.released) throw new TypeError("StreamReader.rest called twice");
    this.released = true;
    let first: Uint8Array | null = this.buf.length > 0 ? this.buf : null;
    this.buf = new Uint8Array(0);
    const r = this.reader;
    return new ReadableStream<Uint8Array>({
      pull: async (c) => {
        if (first) { c.enqueue(first); first = null; return; }
        const { value, done } = await r.read();
        if (done) c.close();
        else c.enqueue(value);
      },
      cancel: (why) => r.cancel(why),
    }, { highWaterMark: 0 });
  }

  /** Cancels the source (nothing more will be read). */
  cancel(): void {
    this.reader.cancel().catch(() => {});
  }
}

function indexOf(b: Uint8Array, pat: number[], from: number): number {
  outer: for (let i = from; i + pat.length <= b.length; i++) {
    for (let j = 0; j < pat.length; j++) if (b[i + j] !== pat[j]) continue outer;
    return i;
  }
  return -1;
}

/** Bytes as latin1 text (HTTP heads are octets; this keeps every byte as one char). */
export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** latin1 text as bytes (chars above 0xff are not expected; they are cut to their low byte). */
export function latin1Bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}
