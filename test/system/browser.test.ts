// The browser build in real Chromium, through the WebSocket relay, to
// wireguard-go: namespace a runs wireguard-go and an HTTP server on its
// tunnel address; namespace b runs the relay (`wg relay`, Node) and Chromium,
// whose page is the example page (examples/) driven as a person would.
//   Chromium (b) --WebSocket, b's loopback--> relay (b) --UDP, veth--> wireguard-go (a) --> HTTP (a)
import { createHash, randomBytes } from "node:crypto";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CLI, INNER, Layout, OUTER, keypair, must, notRun, poll, run, unavailable, wgCommand, type Proc } from "../helpers/netns.ts";
import { ChromiumPage, browserUnavailable } from "../helpers/browser.ts";

const RELAY_PORT = 8091;
const WT_PORT = 8095;
const BIG = 10 << 20;

/** GET / answers a small page, GET /big the file `big` (10 MB of random bytes). */
const SERVER_JS = (addr: string, big: string) => `
import http from "node:http";
import { readFileSync } from "node:fs";
const big = readFileSync(${JSON.stringify(big)});
http.createServer((req, res) => {
  if (req.url === "/big") { res.writeHead(200, { "content-type": "application/octet-stream", "content-length": big.length }); res.end(big); return; }
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end("<h1>hello from wireguard-go's side</h1>\\n");
}).listen(80, ${JSON.stringify(addr)}, () => console.log("ready"));
// TCP port 7: echo, upper-cased, for the streams test.
import net from "node:net";
net.createServer((c) => c.on("data", (d) => c.write(d.toString().toUpperCase())).on("error", () => {})).listen(7, ${JSON.stringify(addr)});
`;

let L: Layout | null = null;

function bigFile(l: Layout, data: Uint8Array): string {
  const p = join(l.dir, "big.bin");
  writeFileSync(p, data);
  return p;
}
let why: string | null = null;
const A = keypair(), B = keypair();
let bigSha = "";
let relay: Proc | null = null;
let goName = "";

test.before(async () => {
  why = unavailable() ?? await browserUnavailable();
  if (why) return;
  L = await Layout.create(`wgbr-${process.pid}`);
  goName = L.name("a");
  await L.wireguardGo(L.a, goName, {
    priv: A.priv, listenPort: 51820, addresses: [`${INNER.a4}/24`],
    peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`] }],
  });
  const big = randomBytes(BIG);
  bigSha = createHash("sha256").update(big).digest("hex");
  const server = L.spawn(L.a, [process.execPath, L.file("server.mjs", SERVER_JS(INNER.a4, bigFile(L, big)))]);
  await poll("the HTTP server", () => server.output().includes("ready") || !server.running, 5000);
  if (!server.running) throw new Error(server.output());
  relay = startRelay();
  await poll("the relay", () => /listening/.test(relay!.output()) || !relay!.running, 5000);
  if (!relay.running) throw new Error(`the relay exited: ${relay.output()}`);
});

test.after(async () => { await L?.destroy(); });

/** `wg relay` on Node in namespace b, allowing only wireguard-go's endpoint. */
const startRelay = () => L!.spawn(L!.b, [process.execPath, CLI, "relay", "--listen", `127.0.0.1:${RELAY_PORT}`, "--allow", `${OUTER.a4}:51820`]);

const config = () => `[Interface]
PrivateKey = ${B.priv}
Address = ${INNER.b4}/32

[Peer]
PublicKey = ${A.pub}
AllowedIPs = ${INNER.a4}/32
Endpoint = ${OUTER.a4}:51820
`;

test("Chromium -> relay -> wireguard-go: the example page fetches a page and 10 MB intact", async () => {
  if (why) return notRun(why);
  const page = await ChromiumPage.open(L!.b);
  try {
    await page.connect(config(), `ws://127.0.0.1:${RELAY_PORT}/`);
    const small = await page.fetch(`http://${INNER.a4}/`);
    assert.is(small.status, "200");
    assert.match(small.text, "hello from wireguard-go's side");
    await page.handshake();
    // For README.md's picture of the example page: WG_SCREENSHOT=docs/example-page.png.
    if (process.env.WG_SCREENSHOT) {
      await page.page.setViewportSize({ width: 1000, height: 1000 });
      await page.page.waitForTimeout(1100);
      await page.page.screenshot({ path: process.env.WG_SCREENSHOT, fullPage: true });
    }
    const big = await page.fetch(`http://${INNER.a4}/big`);
    assert.is(big.status, "200");
    assert.is(big.bytes, BIG);
    assert.is(big.sha256, bigSha, "the 10 MB body differs from what the server sent");
    console.log(`  10 MB through the relay: ${big.mbps} Mbit/s`);
    // wireguard-go saw the page at the relay's UDP socket in namespace b.
    const eps = await must(["wg", "show", goName, "endpoints"], { ns: L!.a });
    assert.match(eps, new RegExp(`${OUTER.b4.replace(/\./g, "\\.")}:\\d+`));
    assert.equal(page.errors, []);
  } finally {
    await page.close();
  }
});

test("Chromium: the browser build's API with a config object: a TCP stream, status with handshake time and bytes, close", async () => {
  if (why) return notRun(why);
  const page = await ChromiumPage.open(L!.b);
  try {
    const r = await page.page.evaluate(async (o) => {
      const wg = await import(o.module); // the page's own copy of the browser build
      const key = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const t = await wg.connect({
        privateKey: key(o.priv), addresses: [o.self],
        peers: [{ publicKey: key(o.pub), allowedIps: [`${o.peer}/32`], endpoint: { address: o.host, port: o.port } }],
      }, { relay: o.relay });
      const conn = await t.connect(o.peer, 7);
      const w = conn.writable.getWriter();
      await w.write(new TextEncoder().encode("through a stream\n"));
      const reader = conn.readable.getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      await w.close();
      const st = t.status();
      const peer = st.peers[0];
      await t.close();
      let after = "";
      try { await t.fetch(`http://${o.peer}/`); } catch (e) { after = (e as Error).message; }
      return { text, lastHandshakeTime: peer.lastHandshakeTime, rxBytes: peer.rxBytes, txBytes: peer.txBytes, now: Date.now(), after };
    }, { priv: B.priv, pub: A.pub, self: INNER.b4, peer: INNER.a4, host: OUTER.a4, port: 51820, relay: `ws://127.0.0.1:${RELAY_PORT}/`, module: "./wg.js" });
    assert.is(r.text, "THROUGH A STREAM\n");
    assert.ok(r.lastHandshakeTime > r.now - 30_000 && r.lastHandshakeTime <= r.now, `handshake time ${r.lastHandshakeTime}, now ${r.now}`);
    assert.ok(r.rxBytes > 0 && r.txBytes > 0, `bytes ${r.rxBytes} received, ${r.txBytes} sent`);
    assert.is(r.after, "the tunnel is closed");
    assert.equal(page.errors, []);
  } finally {
    await page.close();
  }
});

test("Chromium: the tunnel in a Worker (connectWorker): 10 MB intact, a TCP stream both ways, status, a bad config's one line, close", async () => {
  if (why) return notRun(why);
  const page = await ChromiumPage.open(L!.b);
  try {
    const r = await page.page.evaluate(async (o) => {
      const wg = await import(o.module);
      let bad = "";
      try { await wg.connectWorker("[Interface]\nPrivateKey = nope\n", { relay: o.relay }); } catch (e) { bad = `${(e as Error).name}: ${(e as Error).message}`; }
      const events: string[] = [];
      const t = await wg.connectWorker(o.config, { relay: o.relay, onevent: (e: { type: string; framing?: string }) => events.push(`${e.type} ${e.framing ?? ""}`.trim()) });
      const res = await t.fetch(o.big);
      const body = new Uint8Array(await res.arrayBuffer());
      const sha = [...new Uint8Array(await crypto.subtle.digest("SHA-256", body))].map((b) => b.toString(16).padStart(2, "0")).join("");
      const conn = await t.connect(o.peer, 7);
      const w = conn.writable.getWriter();
      await w.write(new TextEncoder().encode("through a worker\n"));
      const reader = conn.readable.getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      conn.abort();
      const st = await t.status();
      await t.close();
      let after = "";
      try { await t.fetch(o.big); } catch (e) { after = (e as Error).message; }
      return { status: res.status, bytes: body.length, sha, text, rx: st.peers[0].rxBytes, handshake: st.peers[0].lastHandshakeTime > 0, events, bad, after };
    }, { module: "./wg.js", config: config(), relay: `ws://127.0.0.1:${RELAY_PORT}/`, big: `http://${INNER.a4}/big`, peer: INNER.a4 });
    assert.is(r.status, 200);
    assert.is(r.bytes, BIG);
    assert.is(r.sha, bigSha, "the 10 MB body differs from what the server sent");
    assert.is(r.text, "THROUGH A WORKER\n");
    assert.ok(r.rx > BIG && r.handshake, `status: ${r.rx} bytes received, handshake ${r.handshake}`);
    assert.equal(r.events, ["open batch"], "the Worker's WebSocket opened in the batch framing");
    assert.match(r.bad, /^ConfigError: line 2: /);
    assert.is(r.after, "the tunnel is closed");
    assert.equal(page.errors, []);
  } finally {
    await page.close();
  }
});

test("Chromium: the relay restarts, the page's WebSocket reopens on a new UDP socket, and wireguard-go follows the same session (roaming)", async () => {
  if (why) return notRun(why);
  const page = await ChromiumPage.open(L!.b);
  const endpoint = async () => (await must(["wg", "show", goName, "endpoints"], { ns: L!.a })).trim().split("\t")[1];
  const handshake = async () => (await must(["wg", "show", goName, "latest-handshakes"], { ns: L!.a })).trim().split("\t")[1];
  try {
    await page.connect(config(), `ws://127.0.0.1:${RELAY_PORT}/`);
    assert.is((await page.fetch(`http://${INNER.a4}/`)).status, "200");
    const before = await endpoint(), shook = await handshake();
    await relay!.stop("SIGTERM", 3000);
    relay = startRelay();
    await poll("the relay again", () => /listening/.test(relay!.output()) || !relay!.running, 5000);
    // The first packet after the close reopens the WebSocket (after the bind's 1 s pause).
    assert.is((await page.fetch(`http://${INNER.a4}/`)).status, "200");
    const after = await endpoint();
    assert.ok(after !== before && after.startsWith(`${OUTER.b4}:`), `endpoint ${before} -> ${after}`);
    assert.is(await handshake(), shook, "the same session carried on: no new handshake");
  } finally {
    await page.close();
  }
});

test("Chromium over WebTransport: the relay on Deno with a certificate, datagrams as QUIC datagrams, 10 MB intact from wireguard-go", async () => {
  if (why) return notRun(why);
  // A throwaway ECDSA certificate: Chromium takes a self-signed one by its hash (valid at most 14 days).
  const key = join(L!.dir, "wt-key.pem"), cert = join(L!.dir, "wt-cert.pem");
  const ssl = await run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "10", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
  if (ssl.code !== 0) return notRun(`openssl: ${ssl.stderr.trim()}`);
  const hash = new X509Certificate(readFileSync(cert)).fingerprint256.replace(/:/g, "");
  const wt = L!.spawn(L!.b, [...wgCommand("deno"), "relay", "--listen", `127.0.0.1:${WT_PORT}`, "--allow", `${OUTER.a4}:51820`, "--cert", cert, "--key", key]);
  await poll("the Deno relay", () => /listening/.test(wt.output()) || !wt.running, 30_000);
  if (!wt.running) throw new Error(`the Deno relay exited: ${wt.output()}`);
  const page = await ChromiumPage.open(L!.b, { quic: true });
  try {
    const r = await page.page.evaluate(async (o) => {
      const wg = await import(o.module);
      const value = Uint8Array.from(o.hash.match(/../g)!, (h: string) => parseInt(h, 16));
      const t = await wg.connect(o.config, { relay: o.relay, webtransport: { serverCertificateHashes: [{ algorithm: "sha-256", value }] } });
      const t0 = performance.now();
      const res = await t.fetch(o.url);
      const body = new Uint8Array(await res.arrayBuffer());
      const ms = performance.now() - t0;
      const sha = [...new Uint8Array(await crypto.subtle.digest("SHA-256", body))].map((b) => b.toString(16).padStart(2, "0")).join("");
      const out = { status: res.status, bytes: body.length, sha, open: t.device.bind.open as string[], mtu: t.engine.mtu as number, mbps: (body.length * 8) / (ms * 1000) };
      await t.close();
      return out;
    }, { module: "./wg.js", config: config(), relay: `https://127.0.0.1:${WT_PORT}/`, hash, url: `http://${INNER.a4}/big` });
    assert.equal(r.open, [`${OUTER.a4}:51820 (webtransport)`], "the endpoint went over WebTransport");
    assert.is(r.mtu, 1168, "the MTU that fits Chromium's datagrams");
    console.log(`  10 MB over WebTransport: ${r.mbps.toFixed(1)} Mbit/s`);
    assert.is(r.status, 200);
    assert.is(r.bytes, BIG);
    assert.is(r.sha, bigSha);
    assert.equal(page.errors, []);
  } finally {
    await page.close();
    await wt.stop("SIGTERM", 3000);
  }
});

test("Chromium: a relay that refuses the upstream leaves the page with a clear state, not a hang", async () => {
  if (why) return notRun(why);
  const page = await ChromiumPage.open(L!.b);
  try {
    const wrong = config().replace(`${OUTER.a4}:51820`, `${OUTER.a4}:51999`);
    await page.connect(wrong, `ws://127.0.0.1:${RELAY_PORT}/`);
    // The first packet opens the WebSocket, which the relay refuses (403 before the upgrade).
    await page.page.fill("#url", `http://${INNER.a4}/`);
    await page.page.click("#fetch");
    await page.page.waitForSelector("#state.error", { timeout: 10_000 });
    assert.match(await page.page.textContent("#state") ?? "", /relay closed \(1006/);
  } finally {
    await page.close();
  }
});

test.run();
