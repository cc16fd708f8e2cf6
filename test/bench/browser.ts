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

interface Responsiveness { bytes: number; mbps: number; longestTaskMs: number; longTasks: number; timerLagMs: number; mainBusy: number }

/**
 * The download driven from the page's own script, the tunnel in the page's
 * thread (connect) or in a Worker (connectWorker), with what the page's
 * thread went through meanwhile: its longest task (PerformanceObserver
 * "longtask": 50 ms and over), the longest a 10 ms timer fired late, and
 * the share of the time the page's main thread ran tasks (Chromium's
 * TaskDuration metric over the download's wall time).
 */
async function responsiveness(page: ChromiumPage, opts: { config: string; relay: string; small: string; big: string; worker: boolean }): Promise<Responsiveness> {
  const cdp = await page.page.context().newCDPSession(page.page);
  await cdp.send("Performance.enable");
  const taskSeconds = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration")!.value;
  // The download starts in the page, the metric is read around it, then the page reports.
  await page.page.evaluate(async (o) => {
    const w = window as unknown as { wgRun: Promise<unknown> };
    let go!: () => void;
    const started = new Promise<void>((r) => { go = r; });
    w.wgRun = (async () => {
      const wg = await import(o.module); // the example page's copy of the browser build
      const t = o.worker ? await wg.connectWorker(o.config, { relay: o.relay }) : await wg.connect(o.config, { relay: o.relay });
      try {
        await (await t.fetch(o.small)).arrayBuffer();
        go();
        let longest = 0, longTasks = 0, lag = 0, last = performance.now();
        const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) { longest = Math.max(longest, e.duration); longTasks++; } });
        obs.observe({ type: "longtask" });
        const probe = setInterval(() => { const now = performance.now(); lag = Math.max(lag, now - last - 10); last = now; }, 10);
        const t0 = performance.now();
        const reader = (await t.fetch(o.big)).body!.getReader();
        let bytes = 0;
        for (;;) { const { value, done } = await reader.read(); if (done) break; bytes += value.length; }
        const ms = performance.now() - t0;
        clearInterval(probe);
        obs.disconnect();
        return { bytes, mbps: (bytes * 8) / (ms * 1000), longestTaskMs: Math.round(longest), longTasks, timerLagMs: Math.round(lag) };
      } finally {
        await t.close();
      }
    })();
    void w.wgRun.then(go, go); // a failure before the download: the next evaluate reports it
    await started;
  }, { ...opts, module: "./wg.js" });
  const busy0 = await taskSeconds(), wall0 = performance.now();
  const r = await page.page.evaluate(() => (window as unknown as { wgRun: Promise<Omit<Responsiveness, "mainBusy">> }).wgRun);
  const busy = (await taskSeconds() - busy0) / ((performance.now() - wall0) / 1000);
  await cdp.detach();
  return { ...r, mainBusy: Math.round(busy * 100) / 100 };
}

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
    const threads: Responsiveness[] = [];
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
      if (i === 1) {
        // The same relay and framing, driven from the page's script: the tunnel in the page's thread, then in a Worker.
        const o = { config: wgQuickConf({ priv: page$.priv, addresses: [`${NET}.2/32`], peers: [peer] }), relay: `ws://127.0.0.1:${port}/`, small: `http://${NET}.1:8080/small`, big: `http://${NET}.1:8080/big` };
        for (const worker of [false, true]) {
          const r = await responsiveness(page, { ...o, worker });
          if (r.bytes !== BYTES) throw new Error(`the page got ${r.bytes} bytes of ${BYTES} (worker ${worker})`);
          threads.push(r);
        }
      }
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
    const [main, worker] = threads, round0 = (x: number) => Math.round(x);
    emit({
      bench: "browser-worker", framing: "batch", relay: "node", Mbps: worker.mbps, baselineMbps: main.mbps, ratio: worker.mbps / main.mbps, vs: "tunnel in the page's thread",
      // The page's thread during the download: its longest task and the worst lateness of a 10 ms timer, with the tunnel there and in a Worker.
      longestTaskMs: worker.longestTaskMs, baselineLongestTaskMs: main.longestTaskMs, longTasks: worker.longTasks, baselineLongTasks: main.longTasks,
      timerLagMs: round0(worker.timerLagMs), baselineTimerLagMs: round0(main.timerLagMs),
      mainThreadBusy: worker.mainBusy, baselineMainThreadBusy: main.mainBusy,
    });
    for (const r of results.slice(2)) emit({ bench: "browser-relay", relay: r.relay, framing: r.framing, Mbps: r.mbps, baselineMbps: got.mbps, ratio: r.mbps / got.mbps, vs: "node relay" });
  } finally {
    await page?.close();
    await L.destroy();
  }
}
