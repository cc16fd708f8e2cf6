// The net.Socket stand-in (node-compat/socket.ts), the Agents and the TLS
// connector over two tunnels in one process on loopback UDP, with each
// runtime's host (Node, Deno, Bun): bytes both ways with backpressure
// (pipe), half-close, reset, timeouts, http.request with the tunnel's agent
// against a page served inside the tunnel, a TLS handshake with a server
// that speaks no TLS and with one that never answers, and one-line errors
// for bad input. Real servers and
// certificates are in test/system/sockets.test.ts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import * as http from "node:http";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { ROOT } from "../../helpers/root.ts";
import { nodeHost } from "../../../adapters/node/host.ts";
import { openTunnel, type Tunnel, type TunnelDeps } from "../../../adapters/tunnel/tunnel.ts";
import { nodeTls } from "../../../adapters/node-compat/tls.ts";
import { withSockets, type SocketMethods } from "../../../adapters/node-compat/sockets.ts";
import type { TcpConn } from "../../../src/netstack/index.ts";

const adapter = (path: string) => import(pathToFileURL(join(ROOT, "adapters", path)).href);
const rt: TunnelDeps = "Deno" in globalThis ? (await adapter("deno/host.ts")).denoHost()
  : process.versions.bun ? (await adapter("bun/host.ts")).bunHost() : nodeHost();
let A: Tunnel, B: Tunnel & SocketMethods;
const SERVER = "10.92.0.1";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
function bytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = 2463534242;
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 255; }
  return b;
}
async function drain(r: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of r as unknown as AsyncIterable<Uint8Array>) n += c.length;
  return n;
}

test.before(async () => {
  const ka = rt.x25519.generate(), kb = rt.x25519.generate();
  const stack = { tcp: { timeWait: 200 } };
  A = await openTunnel(rt, {
    privateKey: ka.privateKey, listenPort: 0, addresses: [`${SERVER}/24`],
    peers: [{ publicKey: kb.publicKey, allowedIps: ["10.92.0.2/32"] }],
  }, { stack });
  B = withSockets(await openTunnel({ ...rt, tls: nodeTls }, {
    privateKey: kb.privateKey, addresses: ["10.92.0.2"],
    peers: [{ publicKey: ka.publicKey, endpoint: { address: "127.0.0.1", port: A.engine.listenPort }, allowedIps: ["10.92.0.0/24"] }],
  }, { stack }));
  // An echo, a counter that answers after the FIN, and a server that speaks no TLS.
  A.listen(7, (c) => { void c.readable.pipeTo(c.writable).catch(() => {}); });
  A.listen(9, (c) => { void drain(c.readable).then(async (n) => { const w = c.writable.getWriter(); await w.write(new TextEncoder().encode(`got ${n}`)); await w.close(); }).catch(() => {}); });
  A.listen(443, (c) => { const w = c.writable.getWriter(); void w.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n")).then(() => w.close()).catch(() => {}); });
  A.serve(80, (req) => new Response(`hello ${new URL(req.url).pathname}\n`));
  assert.ok((await B.ping(SERVER)) >= 0);
});

test.after(async () => {
  await B?.close();
  await A?.close();
});

test("createConnection: connect, then 4 MB through an echo with pipe (backpressure both ways), checksums equal", async () => {
  const data = bytes(4 << 20);
  const s = B.createConnection({ host: SERVER, port: 7 });
  assert.ok(s.connecting);
  assert.is(s.remoteAddress, SERVER);
  await new Promise<void>((resolve, reject) => { s.once("connect", resolve); s.once("error", reject); });
  assert.not.ok(s.connecting);
  assert.is(s.readyState, "open");
  assert.is(s.localAddress, "10.92.0.2");
  assert.is(s.remotePort, 7);
  const h = createHash("sha256");
  let n = 0;
  const sink = new Writable({ write(c: Uint8Array, _e, cb) { h.update(c); n += c.length; cb(); } });
  const chunks = function* () { for (let o = 0; o < data.length; o += 50_000) yield data.subarray(o, o + 50_000); };
  await Promise.all([pipeline(Readable.from(chunks()), s), pipeline(s, sink)]);
  assert.is(n, data.length);
  assert.is(h.digest("hex"), sha(data));
  assert.is(s.bytesWritten, data.length);
  assert.is(s.bytesRead, data.length);
});

test("end() half-closes: the peer sees EOF and answers, the socket still reads the answer (net's (port, host, onConnect) form)", async () => {
  let connected = false;
  const s = B.createConnection(9, SERVER, () => { connected = true; });
  let answer = "";
  s.on("data", (d: Uint8Array) => { answer += new TextDecoder().decode(d); });
  s.write(bytes(100_000));
  s.end();
  await new Promise<void>((resolve, reject) => { s.once("end", resolve); s.once("error", reject); });
  assert.is(answer, "got 100000");
  assert.ok(connected, "onConnect was called");
});

test("destroy() resets the connection: the peer's streams fail", async () => {
  let accepted!: (c: TcpConn) => void;
  const got = new Promise<TcpConn>((r) => { accepted = r; });
  const l = A.listen(10, (c) => accepted(c));
  const s = B.createConnection({ host: SERVER, port: 10 });
  await new Promise((r) => s.once("connect", r));
  const c = await got;
  s.destroy();
  let err: unknown = null;
  try { await c.closed; } catch (e) { err = e; }
  assert.ok(err, "the peer's connection ended with an error (reset)");
  assert.match(String((err as { code?: string }).code), /^ECONN(RESET|ABORTED)$/);
  l.close();
});

test("setTimeout: \"timeout\" after the idle time, none while bytes move; a closed port gives ECONNREFUSED", async () => {
  const s = B.createConnection({ host: SERVER, port: 7 });
  const t0 = performance.now();
  await new Promise<void>((resolve) => s.setTimeout(100, resolve));
  assert.ok(performance.now() - t0 >= 90, `after ${performance.now() - t0} ms`);
  assert.not.ok(s.destroyed, "a timeout leaves the socket open, as net.Socket's does");
  s.setTimeout(0);
  s.destroy();
  const e = await new Promise<Error & { code?: string }>((resolve) => B.createConnection({ host: SERVER, port: 11 }).once("error", resolve));
  assert.is(e.code, "ECONNREFUSED");
});

test("http.request with tunnel.httpAgent() against a page served inside the tunnel", async () => {
  const agent = B.httpAgent();
  const body = await new Promise<string>((resolve, reject) => {
    http.get(`http://${SERVER}/agent`, { agent }, (res) => {
      let b = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { b += d; });
      res.on("end", () => resolve(`${res.statusCode} ${b}`));
    }).on("error", reject);
  });
  assert.is(body, "200 hello /agent\n");
  agent.destroy();
});

test("connectTls to a server that speaks no TLS: one line naming the host", async () => {
  let err: unknown = null;
  try { await B.connectTls(SERVER, 443); } catch (e) { err = e; }
  assert.instance(err, Error);
  const msg = (err as Error).message;
  assert.match(msg, /^TLS with 10\.92\.0\.1 failed: \S/);
  assert.not.match(msg, /\n/);
});

test("connectTls to a server that never answers the handshake: one line after the timeout", async () => {
  const l = A.listen(444, () => { /* accepts, says nothing */ });
  const t0 = performance.now();
  let err: unknown = null;
  try { await B.connectTls(SERVER, 444, { timeout: 200 }); } catch (e) { err = e; }
  assert.is((err as Error)?.message, "TLS with 10.92.0.1 failed: no handshake within 0.2 s");
  assert.ok(performance.now() - t0 < 2000);
  l.close();
});

test("bad input: one-line RangeErrors", () => {
  assert.throws(() => B.createConnection({ host: SERVER, port: 0 }), (e: Error) => e instanceof RangeError && e.message === "the port must be 1-65535, not 0");
  const s = B.createConnection({ host: SERVER, port: 7 });
  assert.throws(() => s.setTimeout(-1), (e: Error) => e instanceof RangeError && /non-negative/.test(e.message));
  s.destroy();
});

test.run();
