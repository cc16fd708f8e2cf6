// The page's TLS connector (adapters/browser/tls.ts, subtls) against
// node:tls servers on loopback, on each runtime's SubtleCrypto (Node, Deno,
// Bun): bytes both ways across many records, half-close, `roots`, and the
// one-line refusals (another CA, another name, no CA, rejectUnauthorized
// false, a server that closes or never answers). The certificates in
// test/vectors/tls are made for this test (valid until 2126; their keys
// protect nothing). Through the tunnel in Chromium: test/system/browser-tls.test.ts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { join } from "node:path";
import { ROOT } from "../../helpers/root.ts";
import { browserTls } from "../../../adapters/browser/tls.ts";
import type { TlsClientOptions } from "../../../adapters/ports/tls.ts";

const V = join(ROOT, "test", "vectors", "tls");
const pem = (f: string) => readFileSync(join(V, f), "utf8");
const CA = pem("ca.pem");
const servers: net.Server[] = [];
const accepted = new Set<net.Socket>();

/** A listening server on loopback; resolves to its port. */
function listen(s: net.Server): Promise<number> {
  servers.push(s);
  s.on("connection", (c: net.Socket) => { accepted.add(c); c.once("close", () => accepted.delete(c)); });
  return new Promise((r) => s.listen(0, "127.0.0.1", () => r((s.address() as net.AddressInfo).port)));
}

/** A TLS server that counts what it gets and, at the client's FIN, answers "got N" and ends; "ping" lines are echoed upper-cased. */
const tlsServer = (cert: string, key: string) => listen(tls.createServer({ cert: pem(cert), key: pem(key), allowHalfOpen: true }, (s) => {
  let n = 0;
  s.on("data", (d: Buffer) => { n += d.length; if (d.toString() === "ping\n") s.write("PING\n"); });
  s.on("end", () => s.end(`got ${n}`));
  s.on("error", () => {});
}));

/** A TCP connection to `port` as the stream pair the tunnel gives a connector. */
async function dial(port: number) {
  const s = net.connect(port, "127.0.0.1");
  await new Promise<void>((r, j) => { s.once("connect", () => r()); s.once("error", j); });
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      s.on("data", (d: Buffer) => { c.enqueue(new Uint8Array(d)); if ((c.desiredSize ?? 0) <= 0) s.pause(); });
      s.once("end", () => { try { c.close(); } catch { /* cancelled */ } });
      s.once("error", (e) => { try { c.error(e); } catch { /* cancelled */ } });
    },
    pull() { s.resume(); },
    cancel() { s.destroy(); },
  });
  const writable = new WritableStream<Uint8Array>({
    write: (c) => new Promise<void>((r, j) => { s.write(c, (e) => (e ? j(e) : r())); }),
    close: () => new Promise<void>((r) => { s.end(() => r()); }),
    abort: () => { s.destroy(); },
  });
  return { readable, writable, abort: () => s.destroy(), close: () => s.end() };
}

async function text(r: ReadableStream<Uint8Array>): Promise<string> {
  let out = "";
  for await (const c of r as unknown as AsyncIterable<Uint8Array>) out += new TextDecoder().decode(c);
  return out;
}

async function refusal(port: number, o: TlsClientOptions, connector = browserTls()): Promise<string> {
  try {
    const c = await connector(await dial(port), o);
    c.abort();
    return "no error";
  } catch (e) {
    return (e as Error).message;
  }
}

const FILES = { host: "files.wg", servername: "files.wg" };
let good = 0, rogue = 0;

test.before(async () => {
  good = await tlsServer("server.pem", "server.key");
  rogue = await tlsServer("rogue.pem", "rogue.key");
});

test.after(() => {
  for (const c of accepted) c.destroy();
  for (const s of servers) s.close();
});

test("a handshake with the CA given; a line both ways; 300 KB up across many records; half-close answered", async () => {
  const c = await browserTls()(await dial(good), { ...FILES, ca: CA });
  assert.is(c.alpn, null);
  const w = c.writable.getWriter();
  await w.write(new TextEncoder().encode("ping\n"));
  const r = c.readable.getReader();
  const first = await r.read();
  assert.is(new TextDecoder().decode(first.value), "PING\n");
  const big = new Uint8Array(300_000).fill(7);
  await w.write(big);
  await w.close();
  r.releaseLock();
  assert.is(await text(c.readable), `got ${5 + big.length}`);
});

test("roots: trusted for every connection, no ca per call; a Uint8Array ca too", async () => {
  const c = await browserTls({ roots: [CA] })(await dial(good), FILES);
  await c.close();
  assert.is(await text(c.readable), "got 0");
  const d = await browserTls()(await dial(good), { ...FILES, ca: new TextEncoder().encode(CA) });
  d.abort();
});

test("refusals, each one line: another CA, another name, no CA, rejectUnauthorized false", async () => {
  assert.is(await refusal(rogue, { ...FILES, ca: CA }), "TLS with files.wg failed: certificate not trusted (no chain to a given CA)");
  assert.is(await refusal(good, { host: "other.wg", servername: "other.wg", ca: CA }), "TLS with other.wg failed: the certificate is not for other.wg");
  assert.is(await refusal(good, FILES), "TLS with files.wg failed: no trusted certificates: a page has no system roots, give ca (PEM) or roots");
  assert.is(await refusal(good, { ...FILES, ca: CA, rejectUnauthorized: false }),
    "TLS with files.wg failed: rejectUnauthorized: false is not supported in a page (give the server's CA or certificate as ca)");
  // The rogue CA given alone trusts only its own.
  assert.is(await refusal(good, { ...FILES, ca: pem("rogue-ca.pem") }), "TLS with files.wg failed: certificate not trusted (no chain to a given CA)");
});

test("a server that closes at the ClientHello, and one that never answers (timeout), each fail in one line", async () => {
  const closes = await listen(net.createServer((s) => { s.once("data", () => s.end()); s.on("error", () => {}); }));
  assert.is(await refusal(closes, { ...FILES, ca: CA }), "TLS with files.wg failed: the connection closed during the handshake");
  const silent = await listen(net.createServer((s) => { s.on("error", () => {}); }));
  const t0 = performance.now();
  assert.is(await refusal(silent, { ...FILES, ca: CA, timeout: 300 }), "TLS with files.wg failed: no handshake within 0.3 s");
  assert.ok(performance.now() - t0 < 2000);
});

test.run();
