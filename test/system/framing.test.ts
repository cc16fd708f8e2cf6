// The batch framing (ports/framing.ts) in real Chromium, through the relay on
// Node, Deno and Bun, to wireguard-go: 10 MB down and 8 MB up intact
// (SHA-256 on both ends), and both directions of mismatch with a side that
// speaks one datagram per message only: the page against `wg relay
// --no-batch` (which answers the one-per-message name, as an older Node or
// Bun relay answers the first name offered), and a page offering no
// subprotocol (as older pages) against a relay that would batch.
//   Chromium (b) --WebSocket--> relay (b) --UDP, veth--> wireguard-go (a) --> HTTP (a)
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { INNER, Layout, OUTER, keypair, notRun, poll, unavailable, wgCommand, type Proc, type RuntimeName } from "../helpers/netns.ts";
import { ChromiumPage, browserUnavailable } from "../helpers/browser.ts";

const BIG = 10 << 20, UP = 8 << 20;
const PORT = 8120;

/** GET /big: 10 MB of random bytes; POST /up: the body's length and SHA-256 as JSON. */
const SERVER_JS = (addr: string, big: string) => `
import http from "node:http";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
const big = readFileSync(${JSON.stringify(big)});
http.createServer((req, res) => {
  if (req.url === "/big") { res.writeHead(200, { "content-type": "application/octet-stream", "content-length": big.length }); res.end(big); return; }
  if (req.method === "POST" && req.url === "/up") {
    const h = createHash("sha256"); let n = 0;
    req.on("data", (d) => { h.update(d); n += d.length; });
    req.on("end", () => { res.writeHead(200, { "content-type": "application/json" }); res.end(JSON.stringify({ bytes: n, sha: h.digest("hex") })); });
    return;
  }
  res.writeHead(200, { "content-type": "text/plain" }); res.end("hello\\n");
}).listen(80, ${JSON.stringify(addr)}, () => console.log("ready"));
`;

let L: Layout | null = null;
let why: string | null = null;
const A = keypair(), B = keypair();
let bigSha = "";
const relays = new Map<string, { proc: Proc; port: number }>();

test.before(async () => {
  why = unavailable() ?? await browserUnavailable();
  if (why) return;
  L = await Layout.create(`wgfr-${process.pid}`);
  await L.wireguardGo(L.a, L.name("a"), {
    priv: A.priv, listenPort: 51820, addresses: [`${INNER.a4}/24`], peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`] }],
  });
  const big = randomBytes(BIG);
  bigSha = createHash("sha256").update(big).digest("hex");
  const file = join(L.dir, "big.bin");
  writeFileSync(file, big);
  const server = L.spawn(L.a, [process.execPath, L.file("server.mjs", SERVER_JS(INNER.a4, file))]);
  await poll("the HTTP server", () => server.output().includes("ready") || !server.running, 5000);
  if (!server.running) throw new Error(server.output());
});

test.after(async () => {
  for (const r of relays.values()) await r.proc.stop("SIGTERM", 3000);
  await L?.destroy();
});

/** `wg relay` on `rt` in namespace b (started once per kind), allowing wireguard-go's endpoint. */
async function relay(rt: RuntimeName, batch = true): Promise<string> {
  const kind = `${rt}${batch ? "" : "-no-batch"}`;
  let r = relays.get(kind);
  if (!r) {
    const port = PORT + relays.size;
    const proc = L!.spawn(L!.b, [...wgCommand(rt), "relay", "--listen", `127.0.0.1:${port}`, "--allow", `${OUTER.a4}:51820`, ...(batch ? [] : ["--no-batch"])]);
    await poll(`the relay on ${rt}`, () => /listening/.test(proc.output()) || !proc.running, 30_000);
    if (!proc.running) throw new Error(`the relay on ${rt} exited: ${proc.output()}`);
    relays.set(kind, r = { proc, port });
  }
  return `ws://127.0.0.1:${r.port}/`;
}

const config = () => `[Interface]
PrivateKey = ${B.priv}
Address = ${INNER.b4}/32

[Peer]
PublicKey = ${A.pub}
AllowedIPs = ${INNER.a4}/32
Endpoint = ${OUTER.a4}:51820
`;

interface Outcome {
  framing: string; down: { status: number; bytes: number; sha: string }; up: { bytes: number; sha: string };
  upSha: string; counters: Record<string, number>; errors: string[];
}

/** In the page, on its own copy of the browser build: a download and an upload, the framing its WebSocket got, the bind's counters. */
async function transfer(relayUrl: string, batch: boolean): Promise<Outcome> {
  const page = await ChromiumPage.open(L!.b);
  try {
    const r = await page.page.evaluate(async (o) => {
      const wg = await import(o.module);
      let framing = "none";
      const t = await wg.connect(o.config, { relay: o.relay, batch: o.batch, onevent: (e: { type: string; framing?: string }) => { if (e.type === "open") framing = e.framing ?? "?"; } });
      const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
      try {
        const res = await t.fetch(o.down);
        const body = new Uint8Array(await res.arrayBuffer());
        const down = { status: res.status, bytes: body.length, sha: hex(await crypto.subtle.digest("SHA-256", body)) };
        // 8 MB of a pattern no two datagrams share, so a misordered or mixed-up datagram shows in the hash.
        const data = new Uint8Array(o.upBytes);
        for (let i = 0; i < data.length; i += 4) new DataView(data.buffer).setUint32(i, Math.imul(i, 2654435761) >>> 0);
        const upSha = hex(await crypto.subtle.digest("SHA-256", data));
        const up = await (await t.fetch(o.upUrl, { method: "POST", body: data, headers: { "content-type": "application/octet-stream" } })).json();
        return { framing, down, up, upSha, counters: { ...t.device.bind.counters } };
      } finally {
        await t.close();
      }
    }, { module: "./wg.js", config: config(), relay: relayUrl, batch, down: `http://${INNER.a4}/big`, upUrl: `http://${INNER.a4}/up`, upBytes: UP });
    return { ...r, errors: page.errors };
  } finally {
    await page.close();
  }
}

function intact(r: Outcome): void {
  assert.is(r.down.status, 200);
  assert.is(r.down.bytes, BIG);
  assert.is(r.down.sha, bigSha, "the 10 MB download differs from what the server sent");
  assert.is(r.up.bytes, UP);
  assert.is(r.up.sha, r.upSha, "the 8 MB upload differs from what the page sent");
  assert.equal(r.errors, []);
}

for (const rt of ["node", "deno", "bun"] as const) {
  test(`Chromium -> ${rt} relay in the batch framing -> wireguard-go: 10 MB down and 8 MB up intact, fewer messages than datagrams`, async () => {
    if (why) return notRun(why);
    const r = await transfer(await relay(rt), true);
    intact(r);
    assert.is(r.framing, "batch");
    const c = r.counters;
    console.log(`  ${rt}: ${c.received} datagrams in ${c.messagesReceived} messages down, ${c.sent} in ${c.messagesSent} up`);
    assert.ok(c.messagesReceived < c.received, `down: ${c.messagesReceived} messages for ${c.received} datagrams`);
    assert.ok(c.messagesSent < c.sent, `up: ${c.messagesSent} messages for ${c.sent} datagrams`);
  });
}

test("mismatch: a batching page and a relay that speaks one datagram per message only (--no-batch) work together", async () => {
  if (why) return notRun(why);
  const r = await transfer(await relay("node", false), true);
  intact(r);
  assert.is(r.framing, "datagram");
  assert.is(r.counters.messagesReceived, r.counters.received);
  assert.is(r.counters.messagesSent, r.counters.sent);
});

test("mismatch: a page that offers no subprotocol (as pages before the batch framing) and a batching relay work together", async () => {
  if (why) return notRun(why);
  for (const rt of ["node", "bun"] as const) {
    const r = await transfer(await relay(rt), false);
    intact(r);
    assert.is(r.framing, "datagram", `${rt}: the relay answered no batch to a page that did not ask`);
    assert.is(r.counters.messagesReceived, r.counters.received);
  }
});

test.run();
