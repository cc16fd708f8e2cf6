// `wg up --relay` against wireguard-go, on Node, Deno and Bun: namespace b
// reaches namespace a only over TCP, to `wg relay` there, which carries the
// datagrams to wireguard-go on a's loopback. 64 MB go each way through the
// TUN interface (curl to an HTTP server on wireguard-go's tunnel address,
// SHA-256 compared) while the relay is stopped and started again in the
// middle of each; then the same with --netstack (a TCPClientTunnel) on
// Node. wireguard-go sees the peer only at the relay's loopback address.
//
// Needs root, wireguard-go, wg, ip and curl: with CI=true their absence
// fails the suite; elsewhere one test says why nothing ran.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, createReadStream, existsSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CLI, INNER, Layout, OUTER, RUN_DIR, keypair, missingTools, must, notRun, poll, run, unavailable, wgCommand, wgQuickConf, type Proc, type RuntimeName } from "../helpers/netns.ts";

const PORT_A = 51860, RELAY = 8091, HTTP = 8080, FORWARD = 2280;
const BIG = 64 << 20;
/** A transfer across a relay restart takes longer than this only if the path is not recovered at once. */
const RECOVERED_MS = 20_000;

const SERVER_JS = `
import http from "node:http"; import { createHash } from "node:crypto"; import { createReadStream, statSync } from "node:fs";
const [host, file] = process.argv.slice(2);
http.createServer((req, res) => {
  if (req.url === "/big") { res.writeHead(200, { "content-length": statSync(file).size }); createReadStream(file).pipe(res); return; }
  if (req.url === "/upload") {
    const h = createHash("sha256"); let n = 0;
    req.on("data", (d) => { h.update(d); n += d.length; });
    req.on("end", () => res.end(JSON.stringify({ sha256: h.digest("hex"), bytes: n })));
    return;
  }
  res.end("hello\\n");
}).listen(${HTTP}, host, () => console.log("ready"));
`;

function missing(): string | null {
  return unavailable() ?? missingTools([["curl", "curl"]]);
}

const otherRuntime = "Deno" in globalThis ? "Deno" : process.versions.bun ? "Bun" : null;
const why = missing();
if (otherRuntime !== null) {
  test("wg up --relay against wireguard-go", () => { console.log(`  relay-cli suite: runs under Node (this is ${otherRuntime})`); });
} else if (why !== null) {
  test("wg up --relay against wireguard-go", () => notRun(why));
} else {
  suite();
}
test.run();

function suite(): void {
  let L: Layout, relay: Proc, goName: string, bigFile: string, bigHash: string;
  const A = keypair(), B = keypair();
  const node = process.execPath;
  const url = `ws://${OUTER.a4}:${RELAY}/`;

  const startRelay = async () => {
    relay = L.spawn(L.a, [node, CLI, "relay", "--listen", `${OUTER.a4}:${RELAY}`, "--allow", `127.0.0.1:${PORT_A}`]);
    await poll("the relay listening", () => relay.stdout.includes("relay listening") || !relay.running, 10_000, 20);
    assert.ok(relay.running, relay.output());
  };
  /** Stops the relay, waits, starts it again: every WebSocket through it closes. Resolves with when it was stopped. */
  const restartRelay = async (pause: number): Promise<number> => {
    await relay.stop("SIGTERM", 3000);
    const stopped = performance.now();
    await new Promise((r) => setTimeout(r, pause));
    await startRelay();
    return stopped;
  };
  const sha256File = (path: string) => new Promise<string>((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path).on("data", (d) => h.update(d)).on("end", () => resolve(h.digest("hex"))).on("error", reject);
  });
  const conf = () => wgQuickConf({
    priv: B.priv, addresses: [`${INNER.b4}/24`],
    peers: [{ pub: A.pub, allowedIps: [`${INNER.a4}/32`], endpoint: `127.0.0.1:${PORT_A}` }],
  });
  /** curl down and up through `base`, the relay restarted during each; Mbit/s of each. */
  const transfers = async (label: string, base: string) => {
    const out = join(L.dir, `down-${label}.bin`);
    const curl = (args: string[]) => run(["curl", "-sS", "--max-time", "240", ...args], { ns: L.b, timeout: 250_000 });
    let t0 = performance.now();
    let restarted = restartAfter(400);
    let r = await curl(["-o", out, "-w", "%{http_code} %{size_download} %{speed_download}", `${base}/big`]);
    let done = performance.now();
    assert.ok((await restarted) < done, `${label}: the relay was stopped before the download ended`);
    // The bind reopens the relay's WebSocket unasked and speaks first, so the sender learns the new path within a
    // second or two; waiting for our next packet (a keepalive, 10 s on) and TCP's backoff took 35-40 s.
    assert.ok(done - t0 < RECOVERED_MS, `${label}: the download took ${((done - t0) / 1000).toFixed(1)} s across the restart`);
    const [code, size, speed] = r.stdout.split(" ");
    assert.is(code, "200", `${label} download: ${r.stderr}${r.stdout}`);
    assert.is(Number(size), BIG);
    assert.is(await sha256File(out), bigHash, `${label} download checksum`);
    t0 = performance.now();
    restarted = restartAfter(400);
    r = await curl(["-T", bigFile, "-w", "\\n%{http_code} %{speed_upload}", `${base}/upload`]);
    done = performance.now();
    assert.ok((await restarted) < done, `${label}: the relay was stopped before the upload ended`);
    assert.ok(done - t0 < RECOVERED_MS, `${label}: the upload took ${((done - t0) / 1000).toFixed(1)} s across the restart`);
    const lines = r.stdout.trim().split("\n");
    assert.is(lines[1]?.split(" ")[0], "200", `${label} upload: ${r.stderr}${r.stdout}`);
    const got = JSON.parse(lines[0]) as { sha256: string; bytes: number };
    assert.is(got.bytes, BIG);
    assert.is(got.sha256, bigHash, `${label} upload checksum`);
    console.log(`  ${label}: 64 MB down at ${(Number(speed) * 8 / 1e6).toFixed(0)} Mbit/s, up at ${(Number(lines[1].split(" ")[1]) * 8 / 1e6).toFixed(0)} Mbit/s, the relay restarted during each`);
  };
  const restartAfter = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)).then(() => restartRelay(500));

  test.before(async () => {
    L = await Layout.create(`wgc-${process.pid}`);
    bigFile = join(L.dir, "big.bin");
    const fd = openSync(bigFile, "w");
    for (let o = 0; o < BIG; o += 1 << 20) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
    bigHash = await sha256File(bigFile);
    goName = L.name("a");
    await L.wireguardGo(L.a, goName, {
      priv: A.priv, listenPort: PORT_A, addresses: [`${INNER.a4}/24`], peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`] }],
    });
    const server = L.spawn(L.a, [node, L.file("server.mjs", SERVER_JS, 0o644), INNER.a4, bigFile]);
    await poll("the HTTP server", () => server.stdout.includes("ready") || !server.running, 5000, 20);
    assert.ok(server.running, server.output());
    await startRelay();
    // Nothing but the relay's TCP port joins the namespaces here: UDP from b to a's WireGuard port is not listened for.
    assert.not.match(await must(["ss", "-Hlun"], { ns: L.a }), new RegExp(`${OUTER.a4.replace(/\./g, "\\.")}:${PORT_A}`));
  });

  test.after(async () => {
    await L?.destroy();
  });

  for (const runtime of ["node", "deno", "bun"] as RuntimeName[]) {
    test(`${runtime}: wg up --relay carries 64 MB each way intact to wireguard-go, through a relay restart in each`, async () => {
      const name = L.name("b");
      const path = L.file(`${name}.conf`, conf());
      const ours = L.spawn(L.b, [...wgCommand(runtime), "up", `--relay=${url}`, path]);
      try {
        await poll(`${name} up`, async () => !ours.running || existsSync(`${RUN_DIR}/${name}.sock`), 20_000, 50);
        assert.ok(ours.running, ours.output());
        await poll("a ping through the relay", async () => (await run(["ping", "-n", "-c", "1", "-W", "1", INNER.a4], { ns: L.b, timeout: 3000 })).code === 0, 20_000, 100);
        const show = await must(["wg", "show", goName, "endpoints"], { ns: L.a });
        assert.match(show, /\t127\.0\.0\.1:\d+/, `wireguard-go sees the peer at the relay's loopback: ${show}`);
        await transfers(`${runtime} TUN`, `http://${INNER.a4}:${HTTP}`);
        assert.match(ours.stderr, new RegExp(`\\[#\\] relay: 127\\.0\\.0\\.1:${PORT_A} closed \\(\\d+[^)]*\\); trying again`), ours.output());
      } finally {
        await ours.stop("SIGTERM", 5000);
      }
      assert.is(ours.child.exitCode, 0, ours.output());
    });
  }

  test("node: wg up --netstack --relay: a TCPClientTunnel carries 64 MB each way, through a relay restart in each", async () => {
    const name = L.name("b");
    const path = L.file(`${name}.conf`, conf() + `\n[TCPClientTunnel]\nBindAddress = 127.0.0.1:${FORWARD}\nTarget = ${INNER.a4}:${HTTP}\n`);
    const ours = L.spawn(L.b, [node, CLI, "up", "--netstack", `--relay=${url}`, path]);
    try {
      await poll("ready", () => ours.stderr.includes("[#] ready") || !ours.running, 20_000, 50);
      assert.match(ours.stderr, new RegExp(`through the relay ws://${OUTER.a4.replace(/\./g, "\\.")}:${RELAY}`), ours.output());
      await transfers("node netstack", `http://127.0.0.1:${FORWARD}`);
    } finally {
      await ours.stop("SIGTERM", 5000);
    }
    assert.is(ours.child.exitCode, 0, ours.output());
  });
}
