// The browser build in real Chromium, through the WebSocket relay, to
// wireguard-go: namespace a runs wireguard-go and an HTTP server on its
// tunnel address; namespace b runs the relay (`wg relay`, Node) and Chromium,
// whose page is the example page (examples/) driven as a person would.
//   Chromium (b) --WebSocket, b's loopback--> relay (b) --UDP, veth--> wireguard-go (a) --> HTTP (a)
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CLI, INNER, Layout, OUTER, keypair, must, notRun, poll, unavailable, type Proc } from "./_netns.ts";
import { ChromiumPage, browserUnavailable } from "./_browser.ts";

const RELAY_PORT = 8091;
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
  relay = L.spawn(L.b, [process.execPath, CLI, "relay", "--listen", `127.0.0.1:${RELAY_PORT}`, "--allow", `${OUTER.a4}:51820`]);
  await poll("the relay", () => /listening/.test(relay!.output()) || !relay!.running, 5000);
  if (!relay.running) throw new Error(`the relay exited: ${relay.output()}`);
});

test.after(async () => { await L?.destroy(); });

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

test("Chromium: a second connection gets a new relay socket, and wireguard-go follows it (roaming)", async () => {
  if (why) return notRun(why);
  const page = await ChromiumPage.open(L!.b);
  try {
    await page.connect(config(), `ws://127.0.0.1:${RELAY_PORT}/`);
    assert.is((await page.fetch(`http://${INNER.a4}/`)).status, "200");
    await page.page.click("#disconnect");
    await page.page.waitForSelector('#state[data-state="closed"]');
    await page.connect(config(), `ws://127.0.0.1:${RELAY_PORT}/`);
    assert.is((await page.fetch(`http://${INNER.a4}/`)).status, "200");
  } finally {
    await page.close();
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
