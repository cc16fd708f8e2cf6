// A small HTTP/1.1 server over one connection (a TcpConn accepted inside the
// tunnel): the request as a standard Request, the handler's Response written
// back, one exchange per connection (Connection: close). Enough for the demo
// and tests; no keep-alive, no TLS, no Expect: 100-continue.
import { ProtocolError, StreamReader, latin1Bytes } from "./reader.ts";
import { bodyStream, field, parseRequestHead, requestFraming, writeChunked } from "./http1.ts";
import type { HttpConn } from "./client.ts";

/** The largest request head read. */
const MAX_HEAD = 32 * 1024;

export type HttpHandler = (req: Request) => Response | Promise<Response>;

/**
 * Answers one request on `conn` with `handler`, then closes the connection.
 * A malformed request gets 400, a handler that throws 500.
 * @example tunnel.listen(80, (c) => void serveHttp(c, () => new Response("hello\n")));
 */
export async function serveHttp(conn: HttpConn, handler: HttpHandler, local = "localhost"): Promise<void> {
  const reader = new StreamReader(conn.readable);
  const writer = conn.writable.getWriter();
  try {
    const text = await reader.head(MAX_HEAD);
    if (text === null) { reader.cancel(); await writer.close(); return; }
    let req: Request | null = null;
    try {
      const head = parseRequestHead(text);
      const f = requestFraming(head);
      const host = field(head.fields, "host") ?? local;
      const url = head.target.startsWith("/") ? `http://${host}${head.target}` : head.target;
      const headers = new Headers();
      for (const [k, v] of head.fields) headers.append(k, v);
      let body: ReadableStream<Uint8Array> | null = null;
      // The body streams from the connection as the handler reads it; what it leaves unread is dropped.
      if (f.kind !== "none" && head.method !== "GET" && head.method !== "HEAD") body = bodyStream(reader, f, () => {});
      req = new Request(url, { method: head.method, headers, body, duplex: "half" } as RequestInit);
    } catch (e) {
      if (!(e instanceof ProtocolError) && !(e instanceof TypeError)) throw e;
      await respond(writer, new Response(`${e.message}\n`, { status: 400 }), false);
    }
    if (req !== null) {
      let res: Response;
      try {
        res = await handler(req);
      } catch (e) {
        res = new Response(`${e instanceof Error ? e.message : String(e)}\n`, { status: 500 });
      }
      await respond(writer, res, req.method === "HEAD");
    }
  } catch {
    conn.abort();
    return;
  } finally {
    reader.cancel();
    writer.releaseLock();
  }
  await conn.close();
}

async function respond(writer: WritableStreamDefaultWriter<Uint8Array>, res: Response, head: boolean): Promise<void> {
  let text = `HTTP/1.1 ${res.status} ${res.statusText || reason(res.status)}\r\n`;
  const length = res.headers.get("content-length");
  res.headers.forEach((v, k) => {
    if (k === "connection" || k === "transfer-encoding" || k === "keep-alive") return;
    text += `${k}: ${v}\r\n`;
  });
  const bodyless = head || res.status === 204 || res.status === 304;
  // A body of unknown length goes out chunked; one the handler measured, as it is.
  const chunked = !bodyless && res.body !== null && length === null;
  if (chunked) text += "transfer-encoding: chunked\r\n";
  else if (!bodyless && res.body === null && length === null) text += "content-length: 0\r\n";
  text += "connection: close\r\n\r\n";
  await writer.write(latin1Bytes(text));
  if (bodyless || res.body === null) { await res.body?.cancel(); return; }
  if (chunked) { await writeChunked(writer, res.body); return; }
  const r = res.body.getReader();
  for (;;) {
    const { value, done } = await r.read();
    if (done) break;
    await writer.write(value);
  }
}

function reason(status: number): string {
  return ({ 200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error" } as Record<number, string>)[status] ?? "";
}
