// TLS over a tunnel connection with the runtime's own TLS: node:tls's
// connect({ socket }) over a StreamSocket, which Node, Deno and Bun all
// accept (measured: Node 20, Deno 2.9, Bun 1.4 each verify a certificate and
// agree ALPN over a Duplex that is not a net.Socket). Certificates are
// verified by default against the runtime's roots plus the `ca` given.
import * as tls from "node:tls";
import type { Duplex } from "node:stream";
import type { TlsClientOptions, TlsConn, TlsConnector } from "../ports/tls.ts";
import { StreamSocket, type StreamConn } from "./socket.ts";

/** The TLS chunks a TlsConn's readable holds before it pauses the socket. */
const READ_AHEAD = 4;
/** A server that accepts the connection but never answers the handshake fails after this (node:tls has no limit of its own). */
const HANDSHAKE_MS = 30_000;

/** What tls.connect is given for `o` (the connector here and undici's in sockets.ts). */
export function tlsConnectOptions(socket: Duplex, o: TlsClientOptions): tls.ConnectionOptions {
  const extra = o.ca === undefined ? [] : (Array.isArray(o.ca) ? o.ca : [o.ca]).map((c) => typeof c === "string" ? c : new TextDecoder().decode(c));
  return {
    socket,
    host: o.host,
    servername: o.servername,
    // `ca` replaces the roots in node:tls; the roots are kept and the given ones added.
    ca: extra.length ? [...tls.rootCertificates, ...extra] : undefined,
    ALPNProtocols: o.alpn,
    rejectUnauthorized: o.rejectUnauthorized ?? true,
  };
}

/** One line for a failed handshake, keeping the runtime's code (e.g. ERR_TLS_CERT_ALTNAME_INVALID). */
export function tlsError(o: TlsClientOptions, e: unknown): Error {
  const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  const err = new Error(`TLS with ${o.servername ?? o.host} failed: ${msg}`);
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string") (err as Error & { code: string }).code = code;
  return err;
}

/** The TlsConnector of Node, Deno and Bun. */
export const nodeTls: TlsConnector = (conn, o) => new Promise<TlsConn>((resolve, reject) => {
  const inner = new StreamSocket(Promise.resolve(conn as StreamConn), { allowHalfOpen: true });
  const s = tls.connect(tlsConnectOptions(inner, o));
  const ms = o.timeout ?? HANDSHAKE_MS;
  const timer = setTimeout(() => fail(new Error(`no handshake within ${ms / 1000} s`)), ms);
  const fail = (e: unknown) => { clearTimeout(timer); s.destroy(); inner.destroy(); reject(tlsError(o, e)); };
  const closed = () => fail(new Error("the connection closed during the handshake"));
  s.once("error", fail);
  s.once("close", closed);
  s.once("secureConnect", () => {
    clearTimeout(timer);
    // Only these two: node:tls has "close" listeners of its own (freeing the SSL state).
    s.off("error", fail);
    s.off("close", closed);
    resolve(streamsOf(s, conn, typeof s.alpnProtocol === "string" ? s.alpnProtocol : null));
  });
});

/** A TLSSocket's plaintext as WHATWG streams, with backpressure both ways. */
function streamsOf(s: tls.TLSSocket, conn: { abort(): void }, alpn: string | null): TlsConn {
  let done = false;
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      s.on("data", (d: Uint8Array) => {
        if (done) return;
        c.enqueue(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        if ((c.desiredSize ?? 0) <= 0) s.pause();
      });
      s.once("end", () => { if (!done) { done = true; c.close(); } });
      s.once("error", (e) => { if (!done) { done = true; c.error(e); } });
      s.once("close", () => { if (!done) { done = true; c.error(new Error("the TLS connection was reset")); } });
      s.pause();
    },
    pull() { s.resume(); },
    cancel() { done = true; s.destroy(); },
  }, { highWaterMark: READ_AHEAD });
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) => new Promise<void>((res, rej) => { s.write(chunk, (e) => (e ? rej(e) : res())); }),
    close: () => new Promise<void>((res) => { s.end(() => res()); }),
    abort: () => { s.destroy(); },
  });
  return {
    readable, writable, alpn,
    close: async () => {
      if (!writable.locked) { try { await writable.close(); } catch { /* already closed or failed */ } } else s.end();
    },
    // The TLS socket's end does not always reach the stream under it: reset that too.
    abort: () => { s.destroy(); conn.abort(); },
  };
}
