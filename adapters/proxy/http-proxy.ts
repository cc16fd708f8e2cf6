// An HTTP proxy whose far side is the tunnel: CONNECT host:port becomes a
// TCP connection through the netstack with the bytes relayed both ways;
// a request with an absolute http: URI (GET http://host/path HTTP/1.1) is
// sent on to the origin through the tunnel in origin form, its response
// relayed back. One request per connection for the latter (Connection:
// close both ways, so the end of each message is the end of the stream).
// With Username and Password set, Proxy-Authorization: Basic is required.
// A request in origin form to the proxy itself (`GET /status`) answers
// with the tunnel's status as JSON, when a status function is given.
import type { TcpConn } from "../../src/netstack/index.ts";
import type { HostStream } from "../ports/host.ts";
import { ProtocolError, StreamReader, latin1Bytes } from "../http/reader.ts";
import { connectionTokens, field, isHopByHop, parseRequestHead, parseResponseHead, type Fields } from "../http/http1.ts";
import { answerAndRelay, deadline, endWith, writeBytes } from "./connections.ts";
import type { TunnelSide } from "./socks5.ts";

export interface HttpProxyOptions {
  username?: string;
  password?: string;
  /** What `GET /status` on the proxy itself answers (JSON); without it, such requests get 400. */
  status?: () => unknown;
  /** ms a client has to send its request head (default 30 s). */
  handshakeTimeout?: number;
}

/** The largest request or response head. */
const MAX_HEAD = 32 * 1024;

function simple(status: number, reason: string, extra = "", body = `${status} ${reason}\n`): Uint8Array {
  return latin1Bytes(`HTTP/1.1 ${status} ${reason}\r\n${extra}content-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
}

/** host:port of a CONNECT target (RFC 9110 9.3.6: authority form; IPv6 in brackets). */
export function parseAuthority(target: string): [string, number] | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/@]+)):(\d{1,5})$/.exec(target);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return [m[1] ?? m[2], port];
}

function authorized(fields: Fields, opts: HttpProxyOptions): boolean {
  if (opts.username === undefined || opts.password === undefined) return true;
  const v = field(fields, "proxy-authorization");
  const m = v ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(v) : null;
  if (!m) return false;
  let text: string;
  try { text = new TextDecoder().decode(Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0))); } catch { return false; }
  const want = `${opts.username}:${opts.password}`;
  let d = text.length ^ want.length;
  for (let i = 0; i < Math.max(text.length, want.length); i++) d |= (text.charCodeAt(i) || 0) ^ (want.charCodeAt(i) || 0);
  return d === 0;
}

/** The status line and reason for a failure to reach the origin. */
function gatewayError(e: unknown): Uint8Array {
  const code = (e as { code?: string }).code;
  if (code === "ETIMEDOUT") return simple(504, "Gateway Timeout", "", `504 Gateway Timeout: ${(e as Error).message}\n`);
  return simple(502, "Bad Gateway", "", `502 Bad Gateway: ${e instanceof Error ? e.message : String(e)}\n`);
}

/**
 * Serves one HTTP proxy client connection.
 * @returns resolves when the client is done (never rejects; failures close the connection)
 */
export async function serveHttpProxy(client: HostStream, tunnel: TunnelSide, opts: HttpProxyOptions = {}): Promise<void> {
  const r = new StreamReader(client.readable);
  const cancel = deadline(opts.handshakeTimeout ?? 30_000, () => client.close());
  const fail = async (bytes: Uint8Array) => {
    cancel();
    await endWith(client, r, bytes);
  };
  try {
    let text: string | null;
    try {
      text = await r.head(MAX_HEAD);
    } catch (e) {
      if (e instanceof ProtocolError && /over/.test(e.message)) { await fail(simple(431, "Request Header Fields Too Large")); return; }
      throw e;
    }
    if (text === null) { client.close(); return; }
    let head;
    try { head = parseRequestHead(text); } catch { await fail(simple(400, "Bad Request")); return; }
    if (!authorized(head.fields, opts)) {
      await fail(simple(407, "Proxy Authentication Required", 'proxy-authenticate: Basic realm="wg"\r\n'));
      return;
    }
    if (head.method === "CONNECT") {
      const hp = parseAuthority(head.target);
      if (hp === null) { await fail(simple(400, "Bad Request")); return; }
      let conn: TcpConn;
      try { conn = await tunnel.connect(hp[0], hp[1]); } catch (e) { await fail(gatewayError(e)); return; }
      cancel();
      await answerAndRelay(client, r.rest(), { readable: conn.readable, writable: conn.writable, abort: () => conn.abort() },
        latin1Bytes("HTTP/1.1 200 Connection established\r\n\r\n"));
      return;
    }
    if (head.target.startsWith("/")) {
      if (opts.status && head.method === "GET" && head.target === "/status") {
        await fail(latin1Bytes(statusResponse(opts.status())));
        return;
      }
      await fail(simple(400, "Bad Request", "", "400 Bad Request: this is a proxy; ask for an absolute http:// URI\n"));
      return;
    }
    let url: URL;
    try { url = new URL(head.target); } catch { await fail(simple(400, "Bad Request")); return; }
    if (url.protocol !== "http:") { await fail(simple(501, "Not Implemented", "", "501: only http:// URIs are proxied (use CONNECT for TLS)\n")); return; }
    let conn: TcpConn;
    try {
      conn = await tunnel.connect(url.hostname.replace(/^\[|\]$/g, ""), url.port ? Number(url.port) : 80);
    } catch (e) {
      await fail(gatewayError(e));
      return;
    }
    cancel();
    await forward(client, r, conn, head.method, `${url.pathname}${url.search}`, head.version, head.fields, url.host);
  } catch {
    client.close();
  } finally {
    cancel();
  }
}

function statusResponse(status: unknown): string {
  const body = JSON.stringify(status, null, 1) + "\n";
  const bytes = new TextEncoder().encode(body);
  return `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${bytes.length}\r\nconnection: close\r\n\r\n${String.fromCharCode(...bytes)}`;
}

/**
 * Sends the request on in origin form without its hop-by-hop fields, then
 * relays: the rest of the client's bytes (the body) to the origin, and the
 * origin's response, its head rewritten the same way, back.
 */
async function forward(client: HostStream, r: StreamReader, conn: TcpConn, method: string, path: string, version: string,
  fields: Fields, authority: string): Promise<void> {
  const hop = connectionTokens(fields);
  let out = `${method} ${path} ${version}\r\n`;
  if (field(fields, "host") === null) out += `Host: ${authority}\r\n`;
  for (const [k, v] of fields) if (!isHopByHop(k, hop)) out += `${k}: ${v}\r\n`;
  out += "Connection: close\r\n\r\n";
  try {
    await writeBytes(conn.writable, latin1Bytes(out));
  } catch {
    conn.abort();
    client.close();
    return;
  }
  const back = new StreamReader(conn.readable);
  const response = (async (): Promise<ReadableStream<Uint8Array>> => {
    // Informational answers (1xx) pass through as they are; the final head is rewritten.
    for (;;) {
      const text = await back.head(MAX_HEAD);
      if (text === null) throw new ProtocolError("the origin closed without a response");
      const h = parseResponseHead(text);
      const rhop = connectionTokens(h.fields);
      let s = `${h.version} ${h.status} ${h.statusText}\r\n`;
      for (const [k, v] of h.fields) if (!isHopByHop(k, rhop)) s += `${k}: ${v}\r\n`;
      if (h.status >= 200) s += "Connection: close\r\n";
      s += "\r\n";
      await writeBytes(client.writable, latin1Bytes(s));
      if (h.status >= 200) return back.rest();
    }
  })();
  let rest: ReadableStream<Uint8Array>;
  // The request body goes on while the response head is awaited.
  const up = r.rest().pipeTo(conn.writable).catch(() => { conn.abort(); client.close(); });
  try {
    rest = await response;
  } catch (e) {
    await writeBytes(client.writable, gatewayError(e)).catch(() => {});
    conn.abort();
    client.close();
    await up;
    return;
  }
  await Promise.all([
    up,
    rest.pipeTo(client.writable).catch(() => { conn.abort(); client.close(); }),
  ]);
}
