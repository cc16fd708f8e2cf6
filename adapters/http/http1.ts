// HTTP/1.1 message syntax (RFC 9112) shared by the client (Tunnel.fetch), the
// small server (serveHttp) and the HTTP proxy: heads parsed into fields,
// bodies framed by Content-Length, chunked coding, or the end of the stream.
import { ProtocolError, type StreamReader, latin1Bytes } from "./reader.ts";

/** RFC 9110 5.6.2 token: method and field names. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** The longest chunk-size line read. */
const MAX_CHUNK_LINE = 4096;
/** The largest piece a body stream hands out. */
const BODY_PIECE = 64 * 1024;

export type Fields = [name: string, value: string][];

export interface RequestHead {
  method: string;
  target: string;
  version: string;
  fields: Fields;
}

export interface ResponseHead {
  version: string;
  status: number;
  statusText: string;
  fields: Fields;
}

function parseFields(lines: string[]): Fields {
  const fields: Fields = [];
  for (const l of lines) {
    // RFC 9112 2.2 and RFC 9110 5.5: a bare CR or a NUL is refused, never passed on (a proxy's origin may read a CR as a line end).
    if (/[\r\0]/.test(l)) throw new ProtocolError(`a bare CR or NUL in header line '${JSON.stringify(l.slice(0, 80)).slice(1, -1)}'`);
    if ((l.startsWith(" ") || l.startsWith("\t")) && fields.length) {
      // Obsolete line folding (RFC 9112 5.2): joined with a space (none at the ends when a part is empty).
      const f = fields[fields.length - 1];
      f[1] = `${f[1]} ${l.trim()}`.trim();
      continue;
    }
    const c = l.indexOf(":");
    if (c <= 0 || !TOKEN.test(l.slice(0, c))) throw new ProtocolError(`malformed header line '${l.slice(0, 80)}'`);
    fields.push([l.slice(0, c), l.slice(c + 1).trim()]);
  }
  return fields;
}

function lines(text: string): string[] {
  const l = text.split(/\r?\n/);
  if (l[l.length - 1] === "") l.pop();
  return l;
}

/** A request head (StreamReader.head's text): request line and fields. */
export function parseRequestHead(text: string): RequestHead {
  const l = lines(text);
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) (HTTP\/1\.[01])$/.exec(l[0] ?? "");
  if (!m) throw new ProtocolError(`not an HTTP/1.x request line: '${(l[0] ?? "").slice(0, 80)}'`);
  return { method: m[1], target: m[2], version: m[3], fields: parseFields(l.slice(1)) };
}

/** A response head: status line and fields. */
export function parseResponseHead(text: string): ResponseHead {
  const l = lines(text);
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(l[0] ?? "");
  if (!m) throw new ProtocolError(`not an HTTP/1.x status line: '${(l[0] ?? "").slice(0, 80)}'`);
  return { version: m[1], status: Number(m[2]), statusText: m[3] ?? "", fields: parseFields(l.slice(1)) };
}

/** The value of a field (the first one with that name), or null. */
export function field(fields: Fields, name: string): string | null {
  const n = name.toLowerCase();
  for (const [k, v] of fields) if (k.toLowerCase() === n) return v;
  return null;
}

/** How a body is delimited. */
export type Framing = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" };

/** RFC 9112 6.3 for a body-bearing message: chunked, Content-Length, or (responses only) the end of the stream. */
function framing(fields: Fields, request: boolean): Framing {
  const te = field(fields, "transfer-encoding");
  if (te !== null) {
    if (te.split(",").pop()!.trim().toLowerCase() === "chunked") return { kind: "chunked" };
    if (request) throw new ProtocolError(`unsupported Transfer-Encoding '${te}'`);
    return { kind: "close" };
  }
  const cl = field(fields, "content-length");
  if (cl !== null) {
    const v = cl.split(",").map((s) => s.trim());
    if (!v.every((x) => x === v[0]) || !/^\d{1,15}$/.test(v[0])) throw new ProtocolError(`invalid Content-Length '${cl}'`);
    return { kind: "length", length: Number(v[0]) };
  }
  return request ? { kind: "none" } : { kind: "close" };
}

export function requestFraming(head: RequestHead): Framing {
  return framing(head.fields, true);
}

export function responseFraming(method: string, head: ResponseHead): Framing {
  const s = head.status;
  if (method === "HEAD" || s < 200 || s === 204 || s === 304) return { kind: "none" };
  return framing(head.fields, false);
}

/**
 * The body of a message as a stream pulled from `reader` (no read-ahead).
 * `done(true)` runs once the body ended as framed, `done(false)` on an error
 * or a cancel; the caller ends the connection there.
 */
export function bodyStream(reader: StreamReader, f: Framing, done: (ok: boolean) => void): ReadableStream<Uint8Array> {
  let finished = false;
  const end = (ok: boolean) => { if (!finished) { finished = true; done(ok); } };
  let left = f.kind === "length" ? f.length : 0, last = false;
  const next = async (): Promise<Uint8Array | null> => {
    switch (f.kind) {
      case "none": return null;
      case "close": return reader.some(BODY_PIECE);
      case "length": {
        if (left === 0) return null;
        const piece = await reader.some(Math.min(left, BODY_PIECE));
        if (piece === null) throw new ProtocolError(`the body ended ${left} bytes short of its Content-Length`);
        left -= piece.length;
        return piece;
      }
      case "chunked": {
        if (last) return null;
        if (left === 0) {
          const line = (await reader.line(MAX_CHUNK_LINE)).split(";")[0].trim();
          if (!/^[0-9a-fA-F]{1,12}$/.test(line)) throw new ProtocolError(`invalid chunk size '${line.slice(0, 20)}'`);
          left = parseInt(line, 16);
          if (left === 0) {
            while ((await reader.line(MAX_CHUNK_LINE)) !== "") { /* trailer fields are dropped */ }
            last = true;
            return null;
          }
        }
        const piece = await reader.some(Math.min(left, BODY_PIECE));
        if (piece === null) throw new ProtocolError("the connection ended inside a chunk");
        left -= piece.length;
        if (left === 0 && (await reader.line(2)) !== "") throw new ProtocolError("a chunk is not followed by CRLF");
        return piece;
      }
    }
  };
  return new ReadableStream<Uint8Array>({
    pull: async (c) => {
      let piece: Uint8Array | null;
      try {
        piece = await next();
      } catch (e) {
        end(false);
        throw e;
      }
      if (piece === null) { c.close(); end(true); return; }
      // A copy: the reader's buffer is a view that later reads may not keep.
      c.enqueue(piece.slice());
    },
    cancel: () => end(false),
  }, { highWaterMark: 0 });
}

const CRLF = Uint8Array.of(13, 10);
const LAST_CHUNK = latin1Bytes("0\r\n\r\n");

/** Writes a stream's chunks to `writer` in chunked coding, then the last chunk. */
export async function writeChunked(writer: WritableStreamDefaultWriter<Uint8Array>, body: ReadableStream<Uint8Array>): Promise<void> {
  const r = body.getReader();
  try {
    for (;;) {
      const { value, done } = await r.read();
      if (done) break;
      if (value.length === 0) continue;
      await writer.write(latin1Bytes(`${value.length.toString(16)}\r\n`));
      await writer.write(value);
      await writer.write(CRLF);
    }
  } catch (e) {
    r.cancel(e).catch(() => {});
    throw e;
  }
  await writer.write(LAST_CHUNK);
}

/** Hop-by-hop fields (RFC 9110 7.6.1) and the ones a proxy must not pass on. */
export function isHopByHop(name: string, connectionTokens: Set<string>): boolean {
  const n = name.toLowerCase();
  return n === "connection" || n === "proxy-connection" || n === "keep-alive" || n === "proxy-authorization" ||
    n === "proxy-authenticate" || n === "te" || n === "trailer" || n === "upgrade" || connectionTokens.has(n);
}

/** The field names a Connection header lists (they are hop-by-hop too). */
export function connectionTokens(fields: Fields): Set<string> {
  const s = new Set<string>();
  for (const [k, v] of fields) {
    if (k.toLowerCase() !== "connection") continue;
    for (const t of v.split(",")) if (t.trim()) s.add(t.trim().toLowerCase());
  }
  return s;
}
