// The client side of test/system/sockets.test.ts, run in namespace b under
// Node, Deno or Bun: opens the tunnel with that runtime's entry and drives
// real client libraries through it (ioredis, node:http and node:https with
// the tunnel's agents, raw sockets, TLS and https: fetch). Each step's
// outcome goes into one JSON line ("RESULT {...}"): the suite decides what
// must pass on which runtime.
//   <runtime> client.proc.js <wg-quick config> <CA PEM> <server address>
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as http from "node:http";
import * as https from "node:https";
import process from "node:process";
import { Redis } from "ioredis";
import { Agent, fetch as undiciFetch } from "undici";
import type { SocketTunnel } from "../../../adapters/entries/node.ts";
import type { StreamSocket } from "../../../adapters/node-compat/socket.ts";
import { ROOT } from "../../helpers/root.ts";

const [confPath, caPath, server] = process.argv.slice(2);
const runtime = "Deno" in globalThis ? "deno" : process.versions.bun ? "bun" : "node";
// The package as it ships (build/lib), this runtime's entry: "wg-js/node", "wg-js/deno" or "wg-js/bun".
const entry = await import(join(ROOT, "build", "lib", "adapters", "entries", `${runtime}.js`)) as typeof import("../../../adapters/entries/node.ts");
const ca = readFileSync(caPath, "utf8");
const out: Record<string, unknown> = { runtime: `${runtime} ${runtime === "deno" ? (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno : runtime === "bun" ? process.versions.bun : process.version}` };

const t: SocketTunnel = await entry.openTunnel(readFileSync(confPath, "utf8"));

/** Runs one step; its result (or the first line of its error, with the code) goes into `out`. */
async function step(name: string, fn: () => Promise<Record<string, unknown>>, ms = 15_000): Promise<void> {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const r = await Promise.race([fn(), new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); })]);
    out[name] = { ok: true, ...r, ms: Math.round(performance.now() - t0) };
  } catch (e) {
    const err = e as { message?: string; code?: string; cause?: { message?: string; code?: string } };
    const cause = err?.cause?.message ? ` (cause: ${err.cause.message.split("\n")[0]})` : "";
    out[name] = { ok: false, error: String(err?.message ?? e).split("\n")[0] + cause, code: err?.code ?? err?.cause?.code };
  } finally {
    clearTimeout(timer);
  }
}

/** The server's known byte stream (xorshift32), as SERVERS_JS makes it. */
function known(n: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = 2463534242;
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 255; }
  return b;
}
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** ioredis's connector contract (connect, check, disconnect), over the tunnel's sockets. */
class TunnelConnector {
  firstError?: Error;
  protected stream: StreamSocket | null = null;
  constructor(private readonly o: { host: string; port: number }) {}
  check(): boolean { return true; }
  connect(): Promise<StreamSocket> {
    const s = this.stream = t.createConnection({ host: this.o.host, port: this.o.port });
    s.once("error", (e) => { this.firstError = e; });
    return Promise.resolve(s);
  }
  disconnect(): void { this.stream?.end(); }
}

/** A request with node:http or node:https; resolves with the status, the body and whether the socket was reused. */
function request(mod: typeof http | typeof https, url: string, o: https.RequestOptions): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = mod.request(url, o, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { body += d; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

try {
  await step("redis", async () => {
    const r = new Redis({
      host: server, port: 6379, Connector: TunnelConnector as never,
      maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000,
    });
    r.on("error", () => {}); // reported by the commands below
    try {
      const set = await r.set("greeting", `hello from ${runtime}`);
      const get = await r.get("greeting");
      // A pipeline: 2000 commands written at once, 2000 replies in order.
      const N = 1000, key = `counter-${runtime}`;
      const p = r.pipeline().del(key);
      for (let i = 0; i < N; i++) p.incr(key);
      for (let i = 0; i < N - 1; i++) p.set(`k${i}`, "x".repeat(i % 100));
      const t0 = performance.now();
      const replies = (await p.exec())!;
      const pipelineMs = performance.now() - t0;
      const errors = replies.filter(([e]) => e).length;
      const last = replies[N][1];
      const big = "y".repeat(1 << 20); // 1 MiB each way: many segments, the window opened and closed
      await r.set("big", big);
      const bigBack = await r.get("big");
      return { set, get, commands: replies.length, errors, last, pipelineMs: Math.round(pipelineMs), bigOk: bigBack === big };
    } finally {
      r.disconnect();
    }
  });

  await step("redisTls", async () => {
    // ioredis with `tls`: the connector hands it a TLSSocket over the tunnel; ioredis waits for its "secureConnect".
    class TlsConnector extends TunnelConnector {
      override connect(): Promise<StreamSocket> {
        const s = t.createTlsConnection({ host: "files.wg", port: 6380, ca });
        s.once("error", (e) => { this.firstError = e; });
        return Promise.resolve(s as unknown as StreamSocket);
      }
    }
    const r = new Redis({ host: "files.wg", port: 6380, tls: {}, Connector: TlsConnector as never, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000 });
    r.on("error", () => {});
    try {
      await r.set("over-tls", runtime);
      return { get: await r.get("over-tls") };
    } finally {
      r.disconnect();
    }
  });

  await step("http", async () => {
    const agent = t.httpAgent({ keepAlive: true });
    try {
      const a = await request(http, `http://${server}:8080/hello`, { agent });
      const b = await request(http, `http://${server}:8080/hello`, { agent });
      return { status: a.status, body: a.body, secondReused: b.reused };
    } finally {
      agent.destroy();
    }
  });

  await step("halfclose", () => new Promise((resolve, reject) => {
    // The server counts bytes until our FIN, then answers and closes: end() must leave reading open.
    const s = t.createConnection({ host: server, port: 7070 });
    const sent = 300_000;
    let answer = "", connected = false, timedOut = false;
    s.setTimeout(200, () => { timedOut = true; });
    s.on("connect", () => { connected = true; s.write(new Uint8Array(sent).fill(7)); s.end(); });
    s.on("data", (d: Uint8Array) => { answer += new TextDecoder().decode(d); });
    s.on("end", () => resolve({ connected, answer, sent, remote: `${s.remoteAddress}:${s.remotePort}`, bytesWritten: s.bytesWritten }));
    s.on("error", reject);
    void timedOut;
  }));

  await step("timeout", () => new Promise((resolve, reject) => {
    const s = t.createConnection({ host: server, port: 8080 });
    const t0 = performance.now();
    s.setTimeout(150);
    s.once("timeout", () => { resolve({ after: Math.round(performance.now() - t0), open: !s.destroyed }); s.destroy(); });
    s.on("error", reject);
  }));

  await step("refused", () => new Promise((resolve) => {
    const s = t.createConnection({ host: server, port: 9 });
    s.on("error", (e: Error & { code?: string }) => resolve({ code: e.code, message: e.message }));
  }));

  await step("tlsFetch", async () => {
    const r = await t.fetch(`https://files.wg:8443/`, { tls: { ca } });
    const body = await r.text();
    return { status: r.status, body: body.slice(0, 40) };
  });

  await step("tlsIp", async () => {
    const r = await t.fetch(`https://${server}:8443/`, { tls: { ca } });
    await r.text();
    return { status: r.status };
  });

  await step("tlsBulk", async () => {
    const N = 8 << 20, want = sha256(known(N));
    const r = await t.fetch(`https://files.wg:8446/big?n=${N}`, { tls: { ca } });
    const down = new Uint8Array(await r.arrayBuffer());
    const up = known(4 << 20).map((b) => b ^ 0x5a);
    // A stream body: chunked, written as the TLS socket takes it.
    const body = new ReadableStream<Uint8Array>({
      start(c) { for (let o = 0; o < up.length; o += 65536) c.enqueue(up.subarray(o, o + 65536)); c.close(); },
    });
    const u = await (await t.fetch("https://files.wg:8446/sha", { method: "POST", body, tls: { ca } })).json() as { bytes: number; sha256: string };
    return { downOk: down.length === N && sha256(down) === want, upBytes: u.bytes, upOk: u.sha256 === sha256(up) };
  }, 60_000);

  await step("tlsInsecure", async () => {
    const r = await t.fetch("https://files.wg:8443/", { tls: { rejectUnauthorized: false } });
    await r.text();
    return { status: r.status };
  });

  await step("tlsAlpn", async () => {
    const c = await t.connectTls("files.wg", 8443, { ca, alpn: ["h2", "http/1.1"] });
    c.abort();
    return { alpn: c.alpn };
  });

  await step("httpsAgent", async () => {
    const agent = t.httpsAgent();
    try {
      const r = await request(https, "https://files.wg:8443/", { agent, ca });
      return { status: r.status, body: r.body.slice(0, 40) };
    } finally {
      agent.destroy();
    }
  });

  await step("undici", async () => {
    // The npm undici's fetch with an Agent over the tunnel: http: and https:, the second request on a kept-alive socket.
    const dispatcher = new Agent({ connect: t.connector({ ca }) });
    try {
      const a = await undiciFetch(`http://${server}:8080/hello`, { dispatcher });
      const b = await undiciFetch(`http://${server}:8080/hello`, { dispatcher });
      const c = await undiciFetch("https://files.wg:8443/", { dispatcher });
      return { status: a.status, body: await a.text(), second: await b.text(), https: c.status };
    } finally {
      await dispatcher.close?.(); // Bun's built-in undici stand-in has no close
    }
  });

  await step("undiciByPath", async () => {
    // The same npm package loaded by its file: Bun maps the name "undici" to a built-in stand-in, not a file path.
    const u = await import(pathToFileURL(join(ROOT, "node_modules", "undici", "index.js")).href) as typeof import("undici");
    const dispatcher = new u.Agent({ connect: t.connector({ ca }) });
    try {
      const a = await u.fetch(`http://${server}:8080/hello`, { dispatcher });
      const c = await u.fetch("https://files.wg:8443/", { dispatcher });
      return { status: a.status, body: await a.text(), https: c.status };
    } finally {
      await dispatcher.close();
    }
  });

  await step("globalFetch", async () => {
    // The runtime's own fetch given the same dispatcher: Node's takes it (its bundled undici), others may not.
    const dispatcher = new Agent({ connect: t.connector() });
    try {
      const r = await fetch(`http://${server}:8080/hello`, { dispatcher, signal: AbortSignal.timeout(3000) } as RequestInit);
      return { status: r.status, body: await r.text() };
    } finally {
      await dispatcher.close?.(); // Bun's built-in undici stand-in has no close
    }
  });

  // Refusals: each must fail with one line.
  await step("tlsNoCa", async () => ({ status: (await t.fetch("https://files.wg:8443/")).status }));
  await step("tlsRogue", async () => ({ status: (await t.fetch("https://files.wg:8444/", { tls: { ca } })).status }));
  await step("tlsWrongName", async () => ({ status: (await t.fetch("https://files.wg:8445/", { tls: { ca } })).status }));
} finally {
  await t.close();
}
console.log("RESULT " + JSON.stringify(out));
process.exit(0);
