// A small HTTP/1.1 client over any byte stream pair (a TCP connection through
// the tunnel): what Tunnel.fetch is made of. One request per connection
// (Connection: close); request bodies with Content-Length (strings, bytes) or
// chunked (streams); responses with Content-Length, chunked, or read to the
// end; 1xx answers skipped. No TLS of its own, no redirects followed, no
// compression negotiated, no cookies, no proxy. RFC 9110 and RFC 9112.
// https: when the caller gives a TLS opener (the tunnel's, with its host's TLS).
import { ProtocolError, StreamReader, latin1Bytes } from "./reader.ts";
import { TOKEN, bodyStream, parseResponseHead, responseFraming, writeChunked, type ResponseHead } from "./http1.ts";

/** What fetch needs of a connection. */
export interface HttpConn {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Ends the connection in order (the response was read to its end). */
  close(): unknown;
  /** Tears the connection down (a response body cancelled, or an error). */
  abort(): void;
}

/** The part of RequestInit this client honours. */
export interface HttpRequestInit {
  method?: string;
  headers?: HeadersInit;
  body?: string | Uint8Array | ArrayBuffer | URLSearchParams | ReadableStream<Uint8Array> | null;
  signal?: AbortSignal | null;
}

/** The largest response head read (status line and headers). */
const MAX_HEAD = 64 * 1024;

/**
 * Fetches an http: URL over a connection opened by `open` (an https: one
 * over `openTls`, when given).
 * @param open opens a connection to host:port (the host as in the URL, IPv6 without brackets)
 * @param openTls opens a TLS connection to host:port, its certificate checked for that host
 * @returns a standard Response whose body streams from the connection
 * @throws TypeError for a URL that is not http: (nor https: with `openTls`), a bad method or header
 * @example const r = await httpFetch((h, p) => tunnel.connect(h, p), "http://10.0.0.1/"); await r.text();
 */
export async function httpFetch(
  open: (host: string, port: number) => Promise<HttpConn>, input: string | URL, init: HttpRequestInit = {},
  openTls?: (host: string, port: number) => Promise<HttpConn>,
): Promise<Response> {
  const url = new URL(String(input));
  const secure = url.protocol === "https:" && openTls !== undefined;
  if (url.protocol !== "http:" && !secure) {
    throw new TypeError(`${url.protocol} URLs are not supported: this client speaks plain HTTP/1.1 (no TLS)`);
  }
  const method = (init.method ?? "GET").toUpperCase();
  if (!TOKEN.test(method) || method === "CONNECT") throw new TypeError(`invalid method '${init.method}'`);
  const headers = new Headers(init.headers ?? undefined);
  let body: Uint8Array | ReadableStream<Uint8Array> | null = null;
  const b = init.body ?? null;
  if (typeof b === "string" || b instanceof URLSearchParams) {
    if (b instanceof URLSearchParams && !headers.has("content-type")) headers.set("content-type", "application/x-www-form-urlencoded;charset=UTF-8");
    else if (!headers.has("content-type")) headers.set("content-type", "text/plain;charset=UTF-8");
    body = new TextEncoder().encode(String(b));
  } else if (b instanceof Uint8Array) body = b;
  else if (b instanceof ArrayBuffer) body = new Uint8Array(b);
  else if (b instanceof ReadableStream) body = b;
  else if (b !== null) throw new TypeError("unsupported body type");
  if (body !== null && (method === "GET" || method === "HEAD")) throw new TypeError(`a ${method} request cannot have a body`);

  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  let req = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
  headers.forEach((v, k) => {
    if (k === "host" || k === "connection" || k === "content-length" || k === "transfer-encoding") return;
    req += `${k}: ${v}\r\n`;
  });
  if (!headers.has("accept")) req += "Accept: */*\r\n";
  req += "Connection: close\r\n";
  if (body instanceof Uint8Array) req += `Content-Length: ${body.length}\r\n`;
  else if (body !== null) req += "Transfer-Encoding: chunked\r\n";
  else if (method === "POST" || method === "PUT" || method === "PATCH") req += "Content-Length: 0\r\n";
  req += "\r\n";

  const signal = init.signal ?? null;
  signal?.throwIfAborted();
  const conn = await (secure ? openTls! : open)(host, port);
  const onAbort = () => conn.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const sending = sendRequest(conn.writable, latin1Bytes(req), body);
    sending.catch(() => {}); // a server may answer (and close) before reading it all
    const reader = new StreamReader(conn.readable);
    let head: ResponseHead;
    for (;;) {
      const text = await reader.head(MAX_HEAD);
      if (text === null) throw new ProtocolError("the server closed the connection without a response");
      head = parseResponseHead(text);
      if (head.status >= 200) break; // 1xx: informational, the real answer follows
    }
    const rh = new Headers();
    for (const [k, v] of head.fields) {
      try { rh.append(k, v); } catch { /* a field the Headers class refuses is left out */ }
    }
    const status = head.status, f = responseFraming(method, head);
    let stream: ReadableStream<Uint8Array> | null = null;
    if (f.kind === "none" || status === 205) {
      signal?.removeEventListener("abort", onAbort);
      reader.cancel();
      void conn.close();
    } else {
      stream = bodyStream(reader, f, (ok) => {
        signal?.removeEventListener("abort", onAbort);
        reader.cancel();
        if (ok) void conn.close();
        else conn.abort();
      });
    }
    // Response takes statuses 200-599 only; another keeps its number in a field.
    const ok = status <= 599;
    if (!ok) rh.set("x-status", String(status));
    return new Response(stream, {
      status: ok ? status : 502, statusText: ok ? head.statusText : "Bad Gateway", headers: rh,
    });
  } catch (e) {
    signal?.removeEventListener("abort", onAbort);
    conn.abort();
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
}

async function sendRequest(w: WritableStream<Uint8Array>, head: Uint8Array, body: Uint8Array | ReadableStream<Uint8Array> | null): Promise<void> {
  const writer = w.getWriter();
  try {
    if (body instanceof Uint8Array) {
      // One write for a small body, the head first otherwise.
      if (body.length <= 16384) {
        const both = new Uint8Array(head.length + body.length);
        both.set(head);
        both.set(body, head.length);
        await writer.write(both);
      } else {
        await writer.write(head);
        await writer.write(body);
      }
    } else {
      await writer.write(head);
      if (body !== null) {
        await writeChunked(writer, body);
      }
    }
    // Not closing the writable: some servers treat a FIN as the client leaving.
  } finally {
    writer.releaseLock();
  }
}

