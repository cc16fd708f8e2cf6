// `npm run bench`'s browser figure: an HTTP download in Chromium through the
// browser build and the WebSocket relay, with the batch framing and with one
// datagram per message (the old framing, its baseline), the latter against
// the same download through the CLI's netstack path (`wg up --netstack`'s
// SOCKS5 proxy, curl), in one run and one namespace layout: wireguard-go in
// namespace a serves HTTP on its tunnel address to both peers; the relay,
// Chromium, and `wg up --netstack` run in namespace b. Beside each figure,
// the ceiling of its framing: bare WebSocket messages into the same page.
// Needs root, Chromium and curl.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { CLI, Layout, OUTER, ROOT, keypair, poll, run, unavailable, wgCommand, wgQuickConf, type RuntimeName } from "../helpers/netns.ts";
import { ChromiumPage, browserUnavailable } from "../helpers/browser.ts";

const BYTES = 32 << 20;
const SOCKS = 1081;
const RELAY = 8092;
const NET = "10.89.0";
const FLOOD = 8093;

/**
 * A WebSocket server that sends full datagrams (1452 bytes at MTU 1420) as
 * fast as the client takes them, one per message, or (path /batch) 45 to a
 * message in the batch framing, as the relay does under load: what Chromium
 * itself can receive in each framing, with no engine, for the ceilings.
 */
const FLOOD_JS = (root: string) => `
import { createRequire } from "node:module";
const { WebSocketServer } = createRequire(${JSON.stringify(join(root, "package.json"))})("ws");
const one = Buffer.alloc(1452, 7), n = 45, batch = Buffer.alloc(n * 1454, 7);
for (let i = 0; i < n; i++) batch.writeUInt16BE(1452, i * 1454);
new WebSocketServer({ port: ${FLOOD}, host: "127.0.0.1" }, () => console.log("ready")).on("connection", (ws, req) => {
  const msg = req.url === "/batch" ? batch : one;
  const pump = () => { while (ws.readyState === 1 && ws.bufferedAmount < 1 << 20) ws.send(msg); if (ws.readyState === 1) setImmediate(pump); };
  pump();
});
`;

type Emit = (o: Record<string, unknown>) => void;

const SERVER_JS = `
import http from "node:http";
const block = Buffer.alloc(1 << 16, 0x5a);
http.createServer((req, res) => {
  const n = req.url === "/big" ? ${BYTES} : 2;
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n });
  let left = n;
  const more = () => { while (left > 0) { const k = Math.min(left, block.length); left -= k; if (!res.write(block.subarray(0, k))) return res.once("drain", more); } res.end(); };
  more();
}).listen(8080, "${NET}.1", () => console.log("ready"));
`;

export async function benchBrowser(emit: Emit): Promise<void> {
  const why = unavailable() ?? await browserUnavailable() ?? (spawnSync("curl", ["--version"]).status === 0 ? null : "curl is not installed");
  if (why !== null) {
    emit({ bench: "browser", notRun: why });
    return;
  }
  const L = await Layout.create(`wgbb-${process.pid}`);
  let page: ChromiumPage | null = null;
  try {
    const A = keypair(), page$ = keypair(), cli = keypair();
    await L.wireguardGo(L.a, L.name("a"), {
      priv: A.priv, listenPort: 51890, addresses: [`${NET}.1/24`],
      peers: [{ pub: page$.pub, allowedIps: [`${NET}.2/32`] }, { pub: cli.pub, allowedIps: [`${NET}.3/32`] }],
    });
    const server = L.spawn(L.a, [process.execPath, L.file("server.mjs", SERVER_JS)]);
    await poll("the HTTP server", () => server.output().includes("ready") || !server.running, 5000);
    const peer = { pub: A.pub, allowedIps: [`${NET}.1/32`], endpoint: `${OUTER.a4}:51890` };

    // Baseline: the CLI's netstack path.
    const conf = wgQuickConf({ priv: cli.priv, listenPort: 51891, addresses: [`${NET}.3/24`], peers: [peer] });
    const path = L.file("cli.conf", `${conf}\n[Socks5]\nBindAddress = 127.0.0.1:${SOCKS}\n`);
    const ns = L.spawn(L.b, [process.execPath, CLI, "up", "--netstack", path]);
    const curl = (url: string) => run(["curl", "-sS", "--max-time", "60", "--socks5", `127.0.0.1:${SOCKS}`, "-o", "/dev/null", "-w", "%{speed_download}", url], { ns: L.b, timeout: 70_000 });
    await poll("the SOCKS5 proxy", async () => !ns.running || (await curl(`http://${NET}.1:8080/small`)).code === 0, 15_000, 200);
    if (!ns.running) throw new Error(`wg up --netstack exited: ${ns.output()}`);
    const r = await curl(`http://${NET}.1:8080/big`);
    if (r.code !== 0) throw new Error(`curl: ${r.stderr.trim()}`);
    const baseline = (Number(r.stdout) * 8) / 1e6;

    // The page through the relay: Node's relay in the old framing, then each runtime's in the batch framing.
    const runs = [["node", "datagram"], ["node", "batch"], ["deno", "batch"], ["bun", "batch"]] as const;
    const results: { relay: RuntimeName; framing: "datagram" | "batch"; mbps: number }[] = [];
    for (const [i, [rt, framing]] of runs.entries()) {
      const port = RELAY + i;
      const relay = L.spawn(L.b, [...wgCommand(rt), "relay", "--listen", `127.0.0.1:${port}`, "--allow", `${OUTER.a4}:51890`]);
      await poll(`the relay on ${rt}`, () => /listening/.test(relay.output()) || !relay.running, 15_000);
      if (!relay.running) throw new Error(`the relay on ${rt} exited: ${relay.output()}`);
      await page?.close();
      page = await ChromiumPage.open(L.b);
      await page.connect(wgQuickConf({ priv: page$.priv, addresses: [`${NET}.2/32`], peers: [peer] }), `ws://127.0.0.1:${port}/`, "", { framing });
      await page.fetch(`http://${NET}.1:8080/small`);
      const got = await page.fetch(`http://${NET}.1:8080/big`, 120_000);
      if (got.bytes !== BYTES) throw new Error(`the page got ${got.bytes} bytes of ${BYTES} through the relay on ${rt}`);
      results.push({ relay: rt, framing, mbps: got.mbps });
      await relay.stop("SIGTERM", 3000);
    }
    const old = results[0], got = results[1];

    // The ceiling: the same page receiving bare WebSocket messages for 3 s, an ACK-sized one back every second message.
    const flood = L.spawn(L.b, [process.execPath, L.file("flood.mjs", FLOOD_JS(ROOT))]);
    await poll("the WebSocket flood server", () => flood.output().includes("ready") || !flood.running, 5000);
    const ceiling = (url: string) => page!.page.evaluate((url) => new Promise<number>((resolve) => {
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      let n = 0, bytes = 0, t0 = 0;
      const ack = new Uint8Array(80);
      ws.onmessage = (e) => {
        if (t0 === 0) t0 = performance.now();
        bytes += (e.data as ArrayBuffer).byteLength;
        if (++n % 2 === 0) ws.send(ack);
        const ms = performance.now() - t0;
        if (ms > 3000) { ws.close(); resolve((bytes * 8) / (ms * 1000)); }
      };
    }), url);
    // Chromium's own WebSocket receive rate on this machine in each framing, no engine: what the relay path can at most reach.
    const ceilingOld = await ceiling(`ws://127.0.0.1:${FLOOD}/`), ceilingBatch = await ceiling(`ws://127.0.0.1:${FLOOD}/batch`);
    const round = (x: number) => Math.round(x * 10) / 10;
    emit({
      bench: "browser", framing: "datagram", Mbps: old.mbps, baselineMbps: baseline, ratio: old.mbps / baseline, vs: "wg up --netstack",
      bytes: BYTES, transport: "websocket", relay: "node", websocketCeilingMbps: round(ceilingOld),
    });
    emit({
      bench: "browser", framing: "batch", Mbps: got.mbps, baselineMbps: old.mbps, ratio: got.mbps / old.mbps, vs: "one datagram per message", target: 4,
      bytes: BYTES, transport: "websocket", relay: "node", websocketCeilingMbps: round(ceilingBatch),
    });
    for (const r of results.slice(2)) emit({ bench: "browser-relay", relay: r.relay, framing: r.framing, Mbps: r.mbps, baselineMbps: got.mbps, ratio: r.mbps / got.mbps, vs: "node relay" });
  } finally {
    await page?.close();
    await L.destroy();
  }
}
