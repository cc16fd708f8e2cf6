// TLS over a tunnel connection in a page or a Worker, where no runtime TLS
// can be laid over a stream of one's own: subtls (TLS 1.3 client over
// SubtleCrypto, MIT, by the author of Neon's serverless driver). What it
// does, and so what this connector does:
//   - TLS 1.3 only; key exchange P-256; cipher TLS_AES_128_GCM_SHA256;
//     server signatures ECDSA P-256/SHA-256 or RSA-PSS/SHA-256.
//   - the chain verified to a trusted certificate: each one signs the one
//     before it, CA basicConstraints and pathLength checked, every
//     certificate valid now, the leaf's extKeyUsage serverAuth, its
//     subjectAltName DNS names matched (one wildcard label).
//   - SNI sent for a name; no ALPN (its 0.5.0 release offers none: `alpn`
//     is always null); no close_notify sent (close() ends with FIN).
// A page has no API for the platform's roots, so nothing is trusted unless
// given: each call's `ca`, or `roots` for every call (see README, "TLS in a
// page"). SubtleCrypto exists only in a secure context (https:, localhost).
// subtls comes as build/out/subtls.js (build/build.mjs), bound to the global crypto.
import { LazyReadFunctionReadQueue, TrustedCert, startTls, type RootCertsDatabase } from "#subtls";
import type { StreamEnd } from "../ports/streams.ts";
import type { TlsClientOptions, TlsConn, TlsConnector } from "../ports/tls.ts";

/** A server that accepts the connection but never answers the handshake fails after this. */
const HANDSHAKE_MS = 30_000;
/** Parsed root sets kept, by their PEM text (a page passes the same `ca` for each request). */
const DB_CACHE = 8;

export interface BrowserTlsOptions {
  /** PEM certificates trusted for every connection, besides each call's `ca` (e.g. a root set of your choosing). */
  roots?: string | string[];
}

const databases = new Map<string, Promise<RootCertsDatabase>>();

/** The root database for `pem`, parsed once while it is among the last DB_CACHE used. */
function database(pem: string): Promise<RootCertsDatabase> {
  let db = databases.get(pem);
  if (db) { databases.delete(pem); databases.set(pem, db); return db; }
  db = TrustedCert.databaseFromPEM(pem);
  databases.set(pem, db);
  db.catch(() => databases.delete(pem));
  if (databases.size > DB_CACHE) databases.delete(databases.keys().next().value!);
  return db;
}

/** The PEM text of `roots` and `ca` together. */
function trusted(roots: string[], ca: TlsClientOptions["ca"]): string {
  const extra = ca === undefined ? [] : (Array.isArray(ca) ? ca : [ca]).map((c) => typeof c === "string" ? c : new TextDecoder().decode(c));
  return [...roots, ...extra].join("\n");
}

/** subtls's own words for the common failures, as the reasons node:tls would give. */
function reason(msg: string): string {
  if (msg.startsWith("Ran out of certificates")) return "certificate not trusted (no chain to a given CA)";
  const name = /^No matching subjectAltName for (.*)$/.exec(msg);
  if (name) return `the certificate is not for ${name[1]}`;
  if (msg === "End-user certificate is not valid now") return "the certificate has expired or is not yet valid";
  if (msg === "Fatal alert message received") return "the server sent a fatal alert";
  return msg;
}

function tlsError(o: TlsClientOptions, e: unknown): Error {
  const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  return new Error(`TLS with ${o.servername ?? o.host} failed: ${reason(msg)}`);
}

/**
 * The TlsConnector of a page or a Worker.
 * @param opts `roots`: PEM certificates trusted for every connection
 * @returns a TlsConnector for TunnelDeps.tls
 * @example openTunnel({ ...deps, tls: browserTls({ roots: pem }) }, config)
 */
export function browserTls(opts: BrowserTlsOptions = {}): TlsConnector {
  const roots = opts.roots === undefined ? [] : Array.isArray(opts.roots) ? opts.roots : [opts.roots];
  return async (conn, o) => {
    if (o.rejectUnauthorized === false) {
      throw tlsError(o, new Error("rejectUnauthorized: false is not supported in a page (give the server's CA or certificate as ca)"));
    }
    if (typeof crypto === "undefined" || crypto.subtle === undefined) {
      throw tlsError(o, new Error("no SubtleCrypto here: a page must be a secure context (https: or localhost)"));
    }
    const pem = trusted(roots, o.ca);
    if (!/-----BEGIN CERTIFICATE-----/.test(pem)) {
      throw tlsError(o, new Error("no trusted certificates: a page has no system roots, give ca (PEM) or roots"));
    }
    const reader = conn.readable.getReader();
    const writer = conn.writable.getWriter();
    let failed: unknown = null;
    const queue = new LazyReadFunctionReadQueue(async () => {
      const r = await reader.read();
      return r.done ? undefined : r.value;
    });
    const send = (data: Uint8Array) => {
      try { writer.write(data).catch((e: unknown) => { failed ??= e; }); } catch (e) { failed ??= e; }
    };
    const ms = o.timeout ?? HANDSHAKE_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no handshake within ${ms / 1000} s`)), ms);
    });
    let session: Awaited<ReturnType<typeof startTls>>;
    try {
      const db = await database(pem);
      const hs = startTls(o.servername ?? o.host, db, queue.read.bind(queue), send, {
        useSNI: o.servername !== undefined,
        // subtls asks the CA for digitalSignature by default; RFC 5280 asks keyCertSign, which few test CAs and not all public roots carry with it.
        requireDigitalSigKeyUsage: false,
      });
      hs.catch(() => {});
      session = await Promise.race([late, hs]);
      // subtls sends the client's Finished with the first read or write: send it now, so the handshake is done
      // for the server too (as node:tls's secureConnect) and a close() at once still ends in order.
      await session.write(new Uint8Array(0));
    } catch (e) {
      reader.releaseLock();
      writer.releaseLock();
      conn.abort();
      throw tlsError(o, failed ?? (queue.moreDataMayFollow() ? e : new Error("the connection closed during the handshake")));
    } finally {
      clearTimeout(timer);
    }
    return streamsOf(session, conn, writer);
  };
}

/** A subtls session as a TlsConn: reads pulled record by record, writes encrypted in order. */
function streamsOf(s: { read(): Promise<Uint8Array | undefined>; write(d: Uint8Array): Promise<void> }, conn: StreamEnd & { close(): unknown }, writer: WritableStreamDefaultWriter<Uint8Array>): TlsConn {
  const readable = new ReadableStream<Uint8Array>({
    async pull(c) {
      const d = await s.read();
      if (d === undefined) c.close();
      else if (d.byteLength > 0) c.enqueue(d);
    },
    cancel() { conn.abort(); },
  }, { highWaterMark: 0 });
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await writer.close();
  };
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      await s.write(chunk);
      // subtls hands records to the writer without waiting: wait for them here, so a slow network holds the writer back.
      await writer.ready;
    },
    close: end,
    abort() { conn.abort(); },
  });
  return {
    readable, writable, alpn: null,
    close: async () => {
      if (!writable.locked) { try { await writable.close(); } catch { /* already closed or failed */ } } else await end().catch(() => {});
    },
    abort: () => conn.abort(),
  };
}
