// The edge gateway (adapters/gateway) in the runtimes it is built for: workerd
// (spawned from the npm package, with build/out/edge/workerd/) and
// `deno serve` (build/out/edge/deno/). A client's TCP flow goes
//   client netstack -> WireGuard datagrams over a WebSocket -> gateway engine
//   -> gateway stack (forward mode) -> workerd connect() / Deno.connect
//   -> an HTTP server of this test on loopback
// The clients: Chromium with the browser build (build/out/browser/wg.js)
// on the example page, and the same client code on Node (adapters/browser
// with the `ws` package's WebSocket) for what a page cannot easily do:
// junk on the WebSocket, a refused port, closing and counting sessions.
//
// A runtime that is not installed fails the test in CI (CI=true) and is
// skipped with a printed reason elsewhere. Every process started here is
// killed in test.after.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { connect } from "../../adapters/entries/browser.ts";
import type { Tunnel } from "../../adapters/tunnel/tunnel.ts";
import { NetError } from "../../src/netstack/index.ts";
import { ROOT, keypair, notRun } from "../helpers/netns.ts";
import { hash, mac, LABEL_MAC1 } from "../../src/crypto.ts";
import { freePort, rssMiB, stop } from "../helpers/proc.ts";
import { ChromiumPage, browserUnavailable } from "../helpers/browser.ts";

const EDGE = join(ROOT, "build", "out", "edge");
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const BODY = randomBytes(384 * 1024);
const BODY_SHA = createHash("sha256").update(BODY).digest("hex");
const GW = keypair(), CLIENT = keypair();
const GW_ADDR = "10.77.0.1", CLIENT_ADDR = "10.77.0.2";

const gatewayConfig = `[Interface]
PrivateKey = ${GW.priv}
Address = ${GW_ADDR}/24

[Peer]
PublicKey = ${CLIENT.pub}
AllowedIPs = ${CLIENT_ADDR}/32
`;

// No Endpoint: the peer is the relay URL itself, the gateway.
const clientConfig = `[Interface]
PrivateKey = ${CLIENT.priv}
Address = ${CLIENT_ADDR}/32
DNS = ${GW_ADDR}

[Peer]
PublicKey = ${GW.pub}
AllowedIPs = 0.0.0.0/0
`;



const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** A gateway process: its base URL, its output so far, and its status. */
class Gateway {
  log = "";
  constructor(readonly name: string, readonly child: ChildProcess, readonly port: number) {
    child.stdout!.on("data", (d) => { this.log += d; });
    child.stderr!.on("data", (d) => { this.log += d; });
  }

  get http(): string { return `http://127.0.0.1:${this.port}`; }
  get ws(): string { return `ws://127.0.0.1:${this.port}/`; }
  get running(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  async status(): Promise<Record<string, number | string | string[]>> {
    const res = await fetch(`${this.http}/status`, { signal: AbortSignal.timeout(5000) });
    assert.is(res.status, 200, `${this.name} /status`);
    return res.json();
  }

  /** Polls the status until `ok` holds. */
  async waitStatus(what: string, ok: (s: Record<string, number | string | string[]>) => boolean, ms = 10_000): Promise<Record<string, number | string | string[]>> {
    const end = performance.now() + ms;
    for (;;) {
      const s = await this.status();
      if (ok(s)) return s;
      if (performance.now() > end) assert.unreachable(`${this.name}: ${what}; status ${JSON.stringify(s)}\n${this.log}`);
      await sleep(50);
    }
  }

  /** Starts it (a few tries: a port free a moment ago may be taken) and waits for /status to answer. */
  static async start(name: string, spawnAt: (port: number) => ChildProcess): Promise<Gateway> {
    let last = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const g = new Gateway(name, spawnAt(port), port);
      for (const end = performance.now() + 20_000; performance.now() < end && g.running;) {
        try {
          // Any answer means it listens (a bad WG_ALLOW is answered 500).
          await (await fetch(`${g.http}/status`, { signal: AbortSignal.timeout(5000) })).arrayBuffer();
          return g;
        } catch { /* not up yet */ }
        await sleep(50);
      }
      last = g.log;
      await stop(g.child);
    }
    throw new Error(`${name} did not start:\n${last}`);
  }
}

let server: Server | null = null;
let httpPort = 0;
let closedPort = 0;
/** Requests the loopback server has answered. */
let served = 0;
const gateways: Gateway[] = [];
const dirs: string[] = [];
const tunnels: Tunnel[] = [];

/** WG_ALLOW naming this test's loopback HTTP server, by address and by name. */
const loopbackAllowed = () => `127.0.0.1:${httpPort}, 127.0.0.1:${closedPort}, localhost:${httpPort}`;

/** The capnp template as built lets connect() reach public addresses only. */
const TEMPLATE_NET = '(name = "net", network = (allow = ["public"]))';

/**
 * workerd with build/out/edge/workerd/, or why it cannot run. `local`: the
 * template's net service also allows loopback, as its comment says to.
 */
async function startWorkerd(env: Record<string, string> = {}, local = true): Promise<Gateway | string> {
  let bin: string;
  try {
    bin = createRequire(import.meta.url)("workerd").default;
  } catch (e) {
    return `the workerd package: ${(e as Error).message}`;
  }
  if (!existsSync(bin)) return `no workerd binary at ${bin}`;
  if (!existsSync(join(EDGE, "workerd", "worker.js"))) return "no build/out/edge/workerd (node build/build.mjs)";
  // A copy: the test's own directory, the capnp template as built.
  const dir = mkdtempSync(join(tmpdir(), "wg-js-gateway-"));
  dirs.push(dir);
  for (const f of ["worker.js", "engine.wasm", "workerd.capnp"]) copyFileSync(join(EDGE, "workerd", f), join(dir, f));
  const capnp = readFileSync(join(dir, "workerd.capnp"), "utf8");
  assert.ok(capnp.includes(TEMPLATE_NET), "the template's net service allows public addresses only");
  if (local) writeFileSync(join(dir, "workerd.capnp"), capnp.replace(TEMPLATE_NET, '(name = "net", network = (allow = ["public", "local"]))'));
  const g = await Gateway.start("workerd", (port) => spawn(bin, ["serve", join(dir, "workerd.capnp"), "--socket-addr", `http=127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WG_CONFIG: gatewayConfig, WG_ALLOW: loopbackAllowed(), ...env },
  }));
  gateways.push(g);
  return g;
}

/** `deno serve` with build/out/edge/deno/, or why it cannot run. */
async function startDeno(env: Record<string, string> = {}): Promise<Gateway | string> {
  if (!existsSync(DENO)) return `no ${DENO}`;
  if (!existsSync(join(EDGE, "deno", "gateway.js"))) return "no build/out/edge/deno (node build/build.mjs)";
  const dir = mkdtempSync(join(tmpdir(), "wg-js-gateway-"));
  dirs.push(dir);
  const conf = join(dir, "gateway.conf");
  writeFileSync(conf, gatewayConfig, { mode: 0o600 });
  const g = await Gateway.start("deno serve", (port) => spawn(DENO, [
    "serve", "--host", "127.0.0.1", "--port", String(port), "--no-lock", "--no-remote", "--no-config",
    "--allow-net", "--allow-env=WG_CONFIG,WG_CONFIG_FILE,WG_ALLOW", `--allow-read=${conf}`, join(EDGE, "deno", "gateway.js"),
  ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", WG_CONFIG_FILE: conf, WG_ALLOW: loopbackAllowed(), ...env } }));
  gateways.push(g);
  return g;
}

/** The Node client: adapters/browser's connect with the `ws` package's WebSocket. */
async function nodeClient(url: string, Ws: new (url: string, protocols?: string | string[]) => WebSocket = WebSocket): Promise<Tunnel> {
  const t = await connect(clientConfig, { relay: url, WebSocket: Ws as unknown as typeof globalThis.WebSocket });
  tunnels.push(t);
  return t;
}

async function fetchBody(t: Tunnel): Promise<void> {
  const res = await t.fetch(`http://127.0.0.1:${httpPort}/body`);
  assert.is(res.status, 200);
  const body = new Uint8Array(await res.arrayBuffer());
  assert.is(body.length, BODY.length);
  assert.is(createHash("sha256").update(body).digest("hex"), BODY_SHA, "the body differs from what the server sent");
}

/** A name through the gateway's DNS: the page gets a stand-in address, the gateway connects to the name (here: localhost). */
async function byName(t: Tunnel): Promise<void> {
  const [a] = await t.resolve("localhost");
  assert.match(a, /^198\.1[89]\./);
  const res = await t.fetch(`http://localhost:${httpPort}/small`);
  assert.is(res.status, 200);
  await res.arrayBuffer();
}

async function expectCode(p: Promise<unknown>, code: string, ms: number): Promise<void> {
  const t = performance.now();
  try {
    await p;
  } catch (e) {
    assert.instance(e, NetError, String(e));
    assert.is((e as NetError).code, code);
    assert.ok(performance.now() - t < ms, `${code} took ${Math.round(performance.now() - t)} ms`);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test.before(async () => {
  server = createServer((req, res) => {
    served++;
    if (req.url === "/small") { res.end("hello through the gateway\n"); return; }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BODY.length });
    res.end(BODY);
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  httpPort = (server.address() as AddressInfo).port;
  closedPort = await freePort();
});

test.after(async () => {
  for (const t of tunnels) await t.close().catch(() => {});
  for (const g of gateways) await stop(g.child);
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

for (const runtime of ["workerd", "deno"] as const) {
  test(`Chromium's page -> WebSocket -> the gateway under ${runtime === "deno" ? "deno serve" : "workerd"} -> a loopback HTTP server: ${BODY.length >> 10} KiB intact`, async () => {
    const why = await browserUnavailable();
    if (why) return notRun(why);
    const g = runtime === "workerd" ? await startWorkerd() : await startDeno();
    if (typeof g === "string") return notRun(g);
    // The batch framing, then a page that offers no subprotocol (as pages before it), on the same gateway.
    for (const framing of ["batch", "datagram"] as const) {
      const page = await ChromiumPage.open();
      try {
        const had = ((await g.status()).framing as unknown as Record<string, number>)[framing];
        await page.connect(clientConfig, g.ws, "", { framing });
        const r = await page.fetch(`http://127.0.0.1:${httpPort}/body`);
        assert.is(r.status, "200");
        assert.is(r.bytes, BODY.length);
        assert.is(r.sha256, BODY_SHA, "the body differs from what the server sent");
        await page.handshake();
        assert.equal(page.errors, []);
        const s = await g.status();
        assert.is(s.sessions, 1);
        assert.ok((s.flowsOpened as number) >= 1);
        assert.is((s.framing as unknown as Record<string, number>)[framing], had + 1, `the session's framing is ${framing}`);
        console.log(`  ${g.name}, ${framing} framing: ${r.bytes} bytes in ${r.ms} ms (${r.mbps} Mbit/s)`);
      } finally {
        await page.close();
      }
      await g.waitStatus("the page's session is not freed after the browser closed", (s) => s.sessions === 0);
    }
    await stop(g.child);
  });
}

test("workerd gateway: junk on the WebSocket is dropped and the session keeps working; a refused port resets; closing frees the session", async () => {
  const g = await startWorkerd();
  if (typeof g === "string") return notRun(g);
  // Not a WebSocket: one line, 426.
  const plain = await fetch(`${g.http}/`);
  assert.is(plain.status, 426);
  assert.match(await plain.text(), /WebSocket/);
  const before = await g.status();
  assert.is(before.sessions, 0);
  assert.is(before.publicKey, GW.pub);
  assert.not.match(JSON.stringify(before), GW.priv, "the status shows no private key");

  // A client whose WebSocket first carries a text message, an oversized
  // message and two junk datagrams, then the real handshake; it offers no
  // subprotocol (one datagram per message: junk datagrams, not junk batches).
  class JunkFirst extends WebSocket {
    constructor(url: string | URL) {
      super(url);
      this.addEventListener("open", () => {
        this.send("not a datagram");
        this.send(randomBytes(70_000));
        this.send(randomBytes(148));
        this.send(Uint8Array.of(4, 0, 0, 0, ...randomBytes(60)));
      });
    }
  }
  const t = await nodeClient(g.ws, JunkFirst);
  await fetchBody(t);
  const s = await g.status();
  assert.is(s.sessions, 1);
  assert.is(s.dropText, 1, "the text message");
  assert.is(s.dropOversized, 1, "the oversized message");
  assert.ok((s.dropEngine as number) >= 2, "the junk datagrams, dropped by the engine");

  // A port nobody listens on: the SYN is refused with a reset, at once.
  await expectCode(t.connect("127.0.0.1", closedPort), "ECONNREFUSED", 5000);
  // A destination WG_ALLOW does not list: the same.
  await expectCode(t.connect("127.0.0.1", httpPort + (httpPort === 65535 ? -1 : 1)), "ECONNREFUSED", 5000);
  const refused = await g.status();
  assert.ok((refused.flowsRefused as number) >= 2);
  // And the session still carries flows.
  const small = await t.fetch(`http://127.0.0.1:${httpPort}/small`);
  assert.is(await small.text(), "hello through the gateway\n");
  // And by name, through the gateway's DNS and workerd's connect(name).
  await byName(t);

  // A connection left open is torn down with the session.
  const open = await t.connect("127.0.0.1", httpPort);
  await g.waitStatus("the open connection is not counted", (x) => x.flows === 1);
  await t.close();
  await g.waitStatus("closing the WebSocket did not free the session", (x) => x.sessions === 0 && x.flows === 0);
  const err = await open.closed.then(() => null, (e) => e);
  assert.instance(err, NetError, "the tunnel's connection ended with an error");
  assert.ok(g.running, `workerd exited\n${g.log}`);
  await stop(g.child);
});

test("deno serve gateway: the Node client fetches through it; closing frees the session", async () => {
  const g = await startDeno();
  if (typeof g === "string") return notRun(g);
  const t = await nodeClient(g.ws);
  await fetchBody(t);
  await expectCode(t.connect("127.0.0.1", closedPort), "ECONNREFUSED", 5000);
  await byName(t);
  await t.close();
  await g.waitStatus("closing the WebSocket did not free the session", (x) => x.sessions === 0);
  await stop(g.child);
});

// Least privilege: WG_ALLOW unset reaches nothing on this host, and on workerd
// the template's net service refuses loopback even when WG_ALLOW names it.
for (const [name, start] of [
  ["workerd, WG_ALLOW unset", () => startWorkerd({ WG_ALLOW: "" })],
  ["workerd, the template as built, WG_ALLOW naming the server", () => startWorkerd({}, false)],
  ["deno serve, WG_ALLOW unset", () => startDeno({ WG_ALLOW: "" })],
] as [string, () => Promise<Gateway | string>][]) {
  test(`${name}: the loopback server is refused, by address and by name`, async () => {
    const g = await start();
    if (typeof g === "string") return notRun(g);
    const t = await nodeClient(g.ws);
    const before = served;
    try {
      await expectCode(t.connect("127.0.0.1", httpPort), "ECONNREFUSED", 5000);
      const [a] = await t.resolve("localhost");
      await expectCode(t.connect(a, httpPort), "ECONNREFUSED", 5000);
      const s = await g.status();
      assert.ok((s.flowsOpened as number) === 0 && (s.flowsRefused as number) >= 2, JSON.stringify(s));
      assert.is(served, before, "the server saw no request");
    } finally {
      await t.close();
      await stop(g.child);
    }
  });
}

// Hostile input at the gateway's WebSocket while a legitimate session keeps
// fetching through it: per class, the legitimate fetches that succeeded, the
// gateway's memory before and after, and the status counters that moved.

/** Attacker sessions: plain WebSockets to the gateway that send what they are given. */
async function attackers(url: string, n: number): Promise<WebSocket[]> {
  const all = await Promise.all(Array.from({ length: n }, () => new Promise<WebSocket | null>((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on("open", () => resolve(ws));
    ws.on("error", () => resolve(null));
    ws.on("unexpected-response", () => resolve(null));
  })));
  return all.filter((w): w is WebSocket => w !== null);
}

/** An initiation that passes mac1 (the responder's public key is public), with random ephemeral and sealed fields. */
function mac1Initiation(responderPub: Uint8Array): Uint8Array {
  const m = new Uint8Array(148);
  m.set(randomBytes(144), 4);
  m[0] = 1; m[1] = m[2] = m[3] = 0;
  m.set(mac(hash(LABEL_MAC1, responderPub), m.subarray(0, 116)), 116);
  m.fill(0, 132);
  return m;
}

const MAX_SESSIONS = 64; // adapters/gateway MAX_SESSIONS

for (const runtime of ["deno", "workerd"] as const) {
  test(`${runtime === "deno" ? "deno serve" : "workerd"} gateway under hostile input at its WebSocket, a legitimate session fetching throughout`, async () => {
    const g = await (runtime === "deno" ? startDeno() : startWorkerd());
    if (typeof g === "string") return notRun(g);
    const t = await nodeClient(g.ws);
    await fetchBody(t);
    let ok = 0, failed = 0, running = true;
    const legit = (async () => {
      while (running) {
        try {
          const res = await t.fetch(`http://127.0.0.1:${httpPort}/small`, { signal: AbortSignal.timeout(5000) });
          if ((await res.text()) === "hello through the gateway\n") ok++; else failed++;
        } catch { failed++; }
        await sleep(50);
      }
    })();
    const gwPub = Buffer.from(GW.pub, "base64");
    const rows: string[] = [];
    const numbers = (s: Record<string, unknown>) => Object.fromEntries(Object.entries(s).filter(([, v]) => typeof v === "number")) as Record<string, number>;
    const klass = async (name: string, expect: string, attack: () => Promise<string>) => {
      const before = numbers(await g.status()), rss0 = rssMiB(g.child.pid!), ok0 = ok, failed0 = failed;
      const note = await attack();
      await sleep(1000);
      const after = numbers(await g.status()), rss1 = rssMiB(g.child.pid!);
      const tries = ok - ok0 + failed - failed0, rate = tries ? (ok - ok0) / tries : 0;
      const moved = Object.keys(after).filter((k) => !/^(sessions|flows|flowsOpened|flowsClosed|bytes.*|datagrams.*)$/.test(k) && after[k] !== before[k])
        .map((k) => `${k} +${after[k] - (before[k] ?? 0)}`).join(", ");
      rows.push(`| ${name} | ${g.running ? "yes" : "NO"} | ${(100 * rate).toFixed(1)}% of ${tries} | ${rss0} → ${rss1} | ${moved || "none"} | ${note} |`);
      assert.ok(g.running, `${name}: the gateway exited\n${g.log}`);
      assert.ok(tries > 0 && rate >= 0.95, `${name}: legitimate fetches ${ok - ok0} of ${tries}`);
      assert.ok(rss1 - rss0 <= 96, `${name}: memory grew ${rss1 - rss0} MiB`);
      assert.ok(after[expect] > (before[expect] ?? 0), `${name}: ${expect} did not move (${moved})`);
      // The attackers offer no subprotocol: a malformed batch could only be the legitimate client's own.
      assert.is(after.dropMalformed, before.dropMalformed, `${name}: the legitimate session's batches arrived malformed`);
    };
    try {
      await klass("datagrams of every length 0..2000 with each type byte 0..5 and 255", "dropEngine", async () => {
        const ws = await attackers(g.ws, 7);
        [0, 1, 2, 3, 4, 5, 255].forEach((type, i) => {
          for (let n = 0; n <= 2000; n++) {
            const d = randomBytes(n);
            if (n > 0) d[0] = type;
            if (n >= 4) d[1] = d[2] = d[3] = 0;
            ws[i].send(d);
          }
        });
        await sleep(1500);
        for (const w of ws) w.terminate();
        return `${7 * 2001} messages on ${ws.length} sessions`;
      });
      await klass("3000 initiations with a valid mac1 (random ephemeral, static and timestamp)", "dropEngine", async () => {
        const ws = await attackers(g.ws, 10);
        for (let i = 0; i < 3000; i++) {
          ws[i % ws.length].send(mac1Initiation(gwPub));
          if (i % 300 === 299) await sleep(100);
        }
        await sleep(1500);
        for (const w of ws) w.terminate();
        return `on ${ws.length} sessions`;
      });
      await klass("text messages and messages of 70,000 bytes", "dropOversized", async () => {
        const [ws] = await attackers(g.ws, 1);
        for (let i = 0; i < 50; i++) { ws.send("not a datagram"); ws.send(randomBytes(70_000)); }
        await sleep(1000);
        ws.terminate();
        return "100 messages on one session";
      });
      await klass(`150 sessions at once (limit ${MAX_SESSIONS})`, "sessionsRefused", async () => {
        const ws = await attackers(g.ws, 150);
        await sleep(500);
        const held = ws.length;
        for (const w of ws) w.terminate();
        if (held > MAX_SESSIONS - 1) throw new Error(`${held} attacker sessions held beside the legitimate one`);
        return `${held} held, the rest refused`;
      });
    } finally {
      running = false;
      await legit;
      console.log(`\n| ${runtime} gateway class | alive | legit fetches | RSS MiB before → after (bound +96) | counters that moved | notes |\n|---|---|---|---|---|---|\n${rows.join("\n")}`);
      await t.close();
      await stop(g.child);
    }
  });
}

test("deno serve: WG_ALLOW with a malformed entry is answered 500 with its one line", async () => {
  const g = await startDeno({ WG_ALLOW: "127.0.0.1:99999" });
  if (typeof g === "string") return notRun(g);
  const r = await fetch(`${g.http}/status`);
  assert.is(r.status, 500);
  assert.is(await r.text(), "WG_ALLOW: invalid entry '127.0.0.1:99999': port '99999' is not 1-65535 or *\n");
  await stop(g.child);
});

test.run();
