// WebTransport datagrams through the relay: the Deno relay with a self-signed
// certificate (ECDSA P-256, valid 10 days: what serverCertificateHashes
// accepts) carries datagrams to a UDP echo server on loopback.
//   (a) Deno's own WebTransport client through it; the relay's stats show the
//       session and free its UDP socket when it closes;
//   (b) Chromium's WebTransport (WebTransportBind, the browser build);
//   (c) "auto" against a relay without WebTransport ends on WebSocket;
//   (d) a disallowed `to` and a wrong token refused over WebTransport.
// Chromium blocks WebTransport to loopback from a page that has no address
// of its own (a page.route fulfilment) as a Local Network Access violation,
// so the page is served by a real HTTP server on 127.0.0.1.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import dgram from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { BrowserContext, Page } from "playwright-core";
import { nodeHost } from "../../adapters/node/host.ts";
import { startRelay } from "../../adapters/relay/server.ts";
import type { RelayServer, RelayStats } from "../../adapters/relay/relay.ts";
import { CHROMIUM } from "../helpers/browser.ts";
import { ROOT, notRun, poll } from "../helpers/netns.ts";

const DENO = join(ROOT, "node_modules", ".bin", "deno");
const DENO_RUN = [DENO, "run", "-A", "--unstable-net", "--no-lock", "--no-remote", `--config=${join(ROOT, "deno.json")}`];
const TOKEN = "s3cret";

/** The Deno relay: starts with the options in argv[0], prints where it listens, answers "stats" lines on stdin. */
const RELAY_TS = `
import { denoHost } from ${JSON.stringify(pathToFileURL(join(ROOT, "adapters", "deno", "host.ts")).href)};
import { startRelay } from ${JSON.stringify(pathToFileURL(join(ROOT, "adapters", "relay", "server.ts")).href)};
const o = JSON.parse(Deno.args[0]);
const r = await startRelay(denoHost(), { ...o, cert: Deno.readTextFileSync(o.cert), key: Deno.readTextFileSync(o.key), log: (l) => console.error(l) });
console.log(JSON.stringify({ port: r.port, url: r.url }));
let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  for (let i; (i = buf.indexOf("\\n")) >= 0;) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (line === "stats") console.log(JSON.stringify({ stats: r.stats(), webtransport: r.webtransport() }));
  }
}
await r.close();
`;

/**
 * Deno's WebTransport client: opens argv[0].url trusting the certificate
 * hash, sends \`sizes\` datagrams and reports the echoes, then waits for a
 * line on stdin (when \`hold\`) before closing; one JSON line per event.
 */
const CLIENT_TS = `
const o = JSON.parse(Deno.args[0]);
const out = (x) => console.log(JSON.stringify(x));
const value = Uint8Array.from(atob(o.hash), (c) => c.charCodeAt(0));
const wt = new WebTransport(o.url, { serverCertificateHashes: [{ algorithm: "sha-256", value }] });
const closed = wt.closed.then((i) => ({ event: "closed", code: i.closeCode, reason: i.reason }), (e) => ({ event: "closed", error: String(e) }));
try { await wt.ready; } catch (e) { out({ event: "failed", error: String(e) }); Deno.exit(0); }
out({ event: "ready", max: wt.datagrams.maxDatagramSize });
const w = wt.datagrams.writable.getWriter(), r = wt.datagrams.readable.getReader();
const want = new Map();
o.sizes.forEach((n, i) => { const d = new Uint8Array(n); for (let j = 0; j < n; j++) d[j] = (i * 7 + j) & 255; want.set(i, d); });
const got = new Set();
const reading = (async () => {
  for (;;) {
    const { value, done } = await r.read();
    if (done) return;
    for (const [k, d] of want) if (!got.has(k) && d.length === value.length && d.every((b, j) => b === value[j])) { got.add(k); break; }
    if (got.size === want.size) return;
  }
})();
if (want.size) {
  // Datagrams may be lost: send each until echoed, a few rounds.
  for (let round = 0; round < 20 && got.size < want.size; round++) {
    for (const [k, d] of want) if (!got.has(k)) await w.write(d);
    await Promise.race([reading, new Promise((res) => setTimeout(res, 200))]);
  }
  out({ event: "echoed", n: got.size, of: want.size });
}
if (o.hold) {
  const reader = Deno.stdin.readable.getReader();
  await reader.read();
  wt.close({ closeCode: 0, reason: "done" });
}
out(await Promise.race([closed, new Promise((res) => setTimeout(() => res({ event: "open" }), 5000))]));
Deno.exit(0);
`;

interface Lines { proc: ChildProcess; lines: string[]; next(pred: (l: string) => boolean, ms?: number): Promise<string>; stderr(): string }

/** A child process whose stdout is read line by line. */
function lines(argv: string[], env?: Record<string, string>): Lines {
  const proc = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", ...env } });
  const seen: string[] = [];
  let err = "", partial = "";
  proc.stdout!.on("data", (b: Buffer) => {
    partial += b.toString();
    for (let i; (i = partial.indexOf("\n")) >= 0;) { seen.push(partial.slice(0, i)); partial = partial.slice(i + 1); }
  });
  proc.stderr!.on("data", (b: Buffer) => { err += b.toString(); });
  let from = 0;
  return {
    proc, lines: seen, stderr: () => err,
    next: async (pred, ms = 15_000) => {
      const l = await poll(`a line from ${argv.at(-2) ?? argv[0]} (stderr: ${err.slice(-400)})`, () => {
        for (let i = from; i < seen.length; i++) if (pred(seen[i])) { from = i + 1; return seen[i]; }
        return proc.exitCode !== null ? `!exited ${proc.exitCode}` : null;
      }, ms);
      if (l.startsWith("!exited")) throw new Error(`${argv[0]} exited (${l.slice(8)}): ${err}`);
      return l;
    },
  };
}

let why: string | null = null;
let dir = "";
let hash = "";
let echo: dgram.Socket | null = null;
let echoPort = 0;
let relay: Lines | null = null;
let relayPort = 0;

/** Why the suite cannot run here, or null. */
function missing(): string | null {
  if (!existsSync(DENO)) return `no ${DENO} (npm install)`;
  if (spawnSync("openssl", ["version"]).status !== 0) return "no openssl";
  return null;
}

test.before(async () => {
  why = missing();
  if (why) return;
  dir = mkdtempSync(join(tmpdir(), "wg-js-wt-"));
  const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "10", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  // serverCertificateHashes: the SHA-256 of the certificate's DER.
  hash = Buffer.from(new X509Certificate(readFileSync(join(dir, "cert.pem"))).fingerprint256.replace(/:/g, ""), "hex").toString("base64");
  echo = dgram.createSocket("udp4");
  echo.on("message", (m, from) => echo!.send(m, from.port, from.address));
  await new Promise<void>((res) => echo!.bind(0, "127.0.0.1", res));
  echoPort = echo.address().port;
  writeFileSync(join(dir, "relay.ts"), RELAY_TS);
  writeFileSync(join(dir, "client.ts"), CLIENT_TS);
  relay = lines([...DENO_RUN, join(dir, "relay.ts"), JSON.stringify({
    allow: [`127.0.0.1:${echoPort}`], tokens: [TOKEN], host: "127.0.0.1", port: 0, idleSeconds: 60,
    cert: join(dir, "cert.pem"), key: join(dir, "key.pem"),
  })]);
  const l = JSON.parse(await relay.next((x) => x.startsWith("{"), 30_000));
  relayPort = l.port;
  assert.match(l.url, /^wss:\/\/127\.0\.0\.1:\d+\/$/);
});

test.after(async () => {
  relay?.proc.stdin!.end();
  if (relay && relay.proc.exitCode === null) {
    await Promise.race([new Promise((r) => relay!.proc.once("exit", r)), new Promise((r) => setTimeout(r, 3000))]);
    relay.proc.kill();
  }
  echo?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function stats(): Promise<{ stats: RelayStats; webtransport: { sessions: number; accepted: number; refused: number } }> {
  relay!.proc.stdin!.write("stats\n");
  return JSON.parse(await relay!.next((l) => l.startsWith('{"stats"')));
}

const wtUrl = (to: string, token: string | null = TOKEN) =>
  `https://127.0.0.1:${relayPort}/?to=${to}${token === null ? "" : `&token=${token}`}`;

function client(o: { url: string; sizes: number[]; hold?: boolean }): Lines {
  return lines([...DENO_RUN, join(dir, "client.ts"), JSON.stringify({ ...o, hash })]);
}

test("(a) Deno's WebTransport client: datagrams echoed through the relay; the session shows in its stats and its socket is freed", async () => {
  if (why) return notRun(why);
  const sizes = [1, 92, 148, 512, 1000, 1100, 32, 64, 1200, 7];
  const c = client({ url: wtUrl(`127.0.0.1:${echoPort}`), sizes, hold: true });
  try {
    const ready = JSON.parse(await c.next((l) => l.includes('"ready"')));
    assert.ok(ready.max >= 1200, `maxDatagramSize ${ready.max}`);
    const echoed = JSON.parse(await c.next((l) => l.includes('"echoed"')));
    assert.is(echoed.n, sizes.length, "every datagram came back");
    const during = await stats();
    assert.is(during.webtransport.sessions, 1, "one WebTransport session");
    assert.is(during.stats.clients, 1);
    assert.is(during.stats.sockets, 1, "one UDP socket for it");
    assert.ok(during.stats.up.datagrams >= sizes.length && during.stats.down.datagrams >= sizes.length);
    c.proc.stdin!.write("close\n");
    const closed = JSON.parse(await c.next((l) => l.includes('"closed"') || l.includes('"open"')));
    assert.is(closed.event, "closed");
    const after = await poll("the relay to free the session's socket", async () => {
      const s = await stats();
      return s.stats.sockets === 0 && s.webtransport.sessions === 0 ? s : null;
    }, 5000, 100);
    assert.is(after.stats.clients, 0);
    assert.is(after.webtransport.accepted, 1);
    assert.is(after.stats.closed.client, 1);
  } finally {
    c.proc.kill();
  }
});

test("(d) over WebTransport, a disallowed `to` (403) and a wrong or missing token (401) are refused; the relay stays up", async () => {
  if (why) return notRun(why);
  for (const [url, code] of [
    [wtUrl("127.0.0.1:9"), 403],
    [wtUrl(`127.0.0.1:${echoPort}`, "wrong"), 401],
    [wtUrl(`127.0.0.1:${echoPort}`, null), 401],
    [wtUrl("not a host"), 400],
  ] as const) {
    const c = client({ url, sizes: [] });
    try {
      const l = JSON.parse(await c.next((x) => /"(closed|failed|open)"/.test(x)));
      // Deno's server API answers the CONNECT with 200 itself, so a refusal is
      // a close right after: the client sees the code, or (a race in Deno's
      // client, about 1 run in 4) its ready rejected. Never an open session;
      // the relay's counters below say why each was refused.
      assert.ok(l.event === "closed" || (l.event === "failed" && /WebTransportError/.test(l.error)), `${url}: ${JSON.stringify(l)}`);
      if (l.event === "closed") assert.is(l.code, code, `${url}: ${JSON.stringify(l)}`);
    } finally {
      c.proc.kill();
    }
  }
  const s = await stats();
  assert.is(s.webtransport.refused, 4);
  assert.is(s.stats.refused.forbidden, 1);
  assert.is(s.stats.refused.unauthorized, 2);
  assert.is(s.stats.refused["bad-request"], 1);
  assert.is(s.stats.sockets, 0, "no socket for a refused session");
  // Still serving.
  const ok = client({ url: wtUrl(`127.0.0.1:${echoPort}`), sizes: [100, 200] });
  try {
    assert.is(JSON.parse(await ok.next((l) => l.includes('"echoed"'))).n, 2);
  } finally {
    ok.proc.kill();
  }
});

// ---- Chromium ----

let chromeWhy: string | null = null;
let ctx: BrowserContext | null = null;
let page: Page | null = null;
let http: Server | null = null;

async function chromium(): Promise<Page> {
  if (page) return page;
  const { chromium } = await import("playwright-core");
  // The page and the browser build, from a real server on loopback (see the top of this file).
  http = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/wg.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(readFileSync(join(ROOT, "build", "out", "browser", "wg.js")));
    } else if (path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end("<!doctype html><title>wt</title>");
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => http!.listen(0, "127.0.0.1", r));
  // A fresh profile each run; no --disable-quic: WebTransport is HTTP/3.
  ctx = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM, headless: true, timeout: 30_000,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = ctx.pages()[0] ?? await ctx.newPage();
  await page.goto(`http://127.0.0.1:${(http.address() as { port: number }).port}/`);
  return page;
}

/** In the page: a bind from wg.js sends each size to the echo server until it comes back; what it saw. */
async function echoInPage(p: Page, make: string, echoTo: number, sizes: number[]): Promise<{ echoed: number; open: string[]; counters: Record<string, number>; events: string[] }> {
  return p.evaluate(async ({ make, echoTo, sizes }) => {
    const wg = await import(new URL("/wg.js", location.href).href);
    const events: string[] = [];
    const bind = new Function("wg", "events", `return ${make}`)(wg, events);
    const to = { address: "127.0.0.1", port: echoTo };
    const want = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (i * 7 + j) & 255));
    const got = new Set<number>();
    bind.start((buf: Uint8Array, off: number, len: number) => {
      const d = buf.subarray(off, off + len);
      want.forEach((w, i) => { if (!got.has(i) && w.length === d.length && w.every((b, j) => b === d[j])) got.add(i); });
    }, () => {});
    for (let round = 0; round < 40 && got.size < want.length; round++) {
      want.forEach((w, i) => { if (!got.has(i)) bind.send(w, 0, w.length, to); });
      await new Promise((r) => setTimeout(r, 250));
    }
    const r = { echoed: got.size, open: [...bind.open], counters: { ...bind.counters }, events };
    bind.close();
    return r;
  }, { make, echoTo, sizes });
}

test("(b) Chromium: WebTransportBind with serverCertificateHashes echoes datagrams through the Deno relay", async () => {
  if (why) return notRun(why);
  if (!existsSync(CHROMIUM)) return notRun(chromeWhy = `no ${CHROMIUM}`);
  if (!existsSync(join(ROOT, "build", "out", "browser", "wg.js"))) return notRun(chromeWhy = "no build/out/browser/wg.js (npm run build)");
  const p = await chromium();
  const before = (await stats()).webtransport.accepted;
  const sizes = [92, 148, 32, 600, 1100, 1180];
  const make = `new wg.WebTransportBind(${JSON.stringify(`https://127.0.0.1:${relayPort}/`)}, {
    token: ${JSON.stringify(TOKEN)},
    serverCertificateHashes: [{ algorithm: "sha-256", value: Uint8Array.from(atob(${JSON.stringify(hash)}), (c) => c.charCodeAt(0)) }],
    onevent: (e) => events.push(e.type + " " + e.endpoint + (e.reason ? " " + e.reason : "")),
  })`;
  const r = await echoInPage(p, make, echoPort, sizes);
  assert.is(r.echoed, sizes.length, JSON.stringify(r));
  assert.equal(r.open, [`127.0.0.1:${echoPort}`]);
  assert.is(r.counters.tooBig, 0);
  assert.is((await stats()).webtransport.accepted, before + 1, "the relay saw a WebTransport session");
});

test("(b) Chromium: a datagram over the session's maxDatagramSize is dropped and counted, or moves the endpoint to WebSocket under auto", async () => {
  if (why) return notRun(why);
  if (chromeWhy) return notRun(chromeWhy);
  const p = await chromium();
  const hashes = `[{ algorithm: "sha-256", value: Uint8Array.from(atob(${JSON.stringify(hash)}), (c) => c.charCodeAt(0)) }]`;
  const drop = await echoInPage(p, `new wg.WebTransportBind(${JSON.stringify(`https://127.0.0.1:${relayPort}/`)}, { token: "${TOKEN}", serverCertificateHashes: ${hashes} })`, echoPort, [100, 1452]);
  assert.is(drop.echoed, 1, JSON.stringify(drop));
  assert.ok(drop.counters.tooBig >= 1, JSON.stringify(drop.counters));
  // The same through AutoBind: the big datagram moves the endpoint to the relay's wss: side, where it fits.
  const auto = await echoInPage(p, `new wg.AutoBind(${JSON.stringify(`wss://127.0.0.1:${relayPort}/`)}, ${JSON.stringify(`https://127.0.0.1:${relayPort}/`)}, {
    token: "${TOKEN}", webtransport: { serverCertificateHashes: ${hashes} },
    onevent: (e) => events.push(e.type + " " + e.transport + (e.fallback ? " fallback" : "")),
  })`, echoPort, [100, 1452]);
  // Chromium does not take the self-signed certificate for a wss: WebSocket (no hashes for those): the fallback is attempted but cannot open.
  assert.ok(auto.events.includes("close webtransport fallback"), JSON.stringify(auto));
});

test("(c) auto: against a relay with no WebTransport (the Node relay), Chromium falls back to WebSocket and datagrams flow", async () => {
  if (why) return notRun(why);
  if (chromeWhy) return notRun(chromeWhy);
  const p = await chromium();
  let node: RelayServer | null = null;
  try {
    node = await startRelay(nodeHost(), { allow: [`127.0.0.1:${echoPort}`], host: "127.0.0.1", port: 0 });
    // The relay's port on UDP has nothing listening: the WebTransport session cannot open.
    const make = `new wg.AutoBind(${JSON.stringify(node.url)}, ${JSON.stringify(`https://127.0.0.1:${node.port}/`)}, {
      onevent: (e) => events.push(e.type + " " + e.transport + (e.fallback ? " fallback" : "")),
    })`;
    const t0 = Date.now();
    const r = await echoInPage(p, make, echoPort, [92, 148, 1452]);
    assert.is(r.echoed, 3, JSON.stringify(r));
    assert.equal(r.open, [`127.0.0.1:${echoPort} (websocket)`]);
    assert.ok(r.events.includes("close webtransport fallback") && r.events.includes("open websocket"), JSON.stringify(r.events));
    assert.is(r.counters.fallbacks, 1);
    assert.ok(Date.now() - t0 < 15_000);
    assert.is(node.stats().accepted, 1);
  } finally {
    await node?.close();
  }
});

test("(c) connect(): transport 'websocket' never tries WebTransport; 'webtransport' without an https: URL is a TypeError", async () => {
  if (why) return notRun(why);
  if (chromeWhy) return notRun(chromeWhy);
  const p = await chromium();
  const r = await p.evaluate(async () => {
    const wg = await import(new URL("/wg.js", location.href).href);
    const conf = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nAddress = 10.0.0.2/32\n\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs = 10.0.0.1/32\nEndpoint = 127.0.0.1:9\n";
    const out: string[] = [];
    const ws = await wg.connect(conf, { relay: "https://127.0.0.1:9/", transport: "websocket" });
    out.push(ws.device.bind.constructor.name);
    await ws.close();
    const auto = await wg.connect(conf, { relay: "https://127.0.0.1:9/" });
    out.push(auto.device.bind.constructor.name, String(auto.device.engine.mtu));
    await auto.close();
    const plain = await wg.connect(conf, { relay: "ws://127.0.0.1:9/" });
    out.push(plain.device.bind.constructor.name, String(plain.device.engine.mtu));
    await plain.close();
    try { await wg.connect(conf, { relay: "ws://127.0.0.1:9/", transport: "webtransport" }); out.push("no error"); } catch (e) { out.push((e as Error).name); }
    return out;
  });
  // The build is minified: class names are compared, not spelled out.
  const [wsBind, autoBind, autoMtu, plainBind, plainMtu, error] = r;
  assert.is(wsBind, plainBind, `transport 'websocket' and a ws: URL pick the same bind: ${r}`);
  assert.is.not(autoBind, wsBind, `auto with an https: URL picks another: ${r}`);
  assert.is(autoMtu, "1168", "the MTU WebTransport datagrams hold, when the config gives none");
  assert.is(plainMtu, "1420");
  assert.is(error, "TypeError");
});

test("(b, c) Chromium closes", async () => {
  await ctx?.close().catch(() => {});
  await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
});

test.run();
