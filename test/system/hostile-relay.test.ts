// Hostile input at the relay's WebSocket, on Node, Deno and Bun: the relay
// runs from the built package (its ./node, ./deno or ./bun export, through
// hostile/relay-host.proc.ts) on loopback, a UDP echo server stands in for
// the WireGuard endpoint, and a legitimate client keeps 200 datagrams a
// second going through the relay and back while each class of attack runs
// from other loopback addresses (127.0.0.2 and up, so the per-source limit
// is the attacker's, not the legitimate client's). Each class records
// whether the relay lived, the legitimate delivery, the relay's memory
// before and after, and the counters that moved; it fails on a death, on
// delivery under 95%, or on growth past MEMORY_BOUND_MIB. Node-only as a
// driver (build/test.mjs): it starts each runtime itself.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import WebSocket from "ws";
import { Raw, echoServer, sleep, waitFor, type Echo } from "../helpers/relay.ts";
import { ROOT, notRun, type RuntimeName } from "../helpers/netns.ts";
import { rssMiB } from "../helpers/proc.ts";

/** Growth of the relay's resident memory one class may cause (MiB): its tables are bounded, so this is the GC's slack. */
const MEMORY_BOUND_MIB = 96;
const MAX_CLIENTS = 256, MAX_PER_SOURCE = 64, MAX_MESSAGE = 2000, RATE = 2000;
const PROC = join(ROOT, "build", "out", "test", "system", "hostile", "relay-host.proc.js");
const bin = (n: string) => join(ROOT, "node_modules", ".bin", n);

interface Relay { child: ChildProcess; port: number; url: string; stats: () => Stats; err: () => string; alive: () => boolean }
type Stats = Record<string, number | Record<string, number>>;

async function startRelay(runtime: RuntimeName, echo: Echo): Promise<Relay> {
  const entry = pathToFileURL(join(ROOT, "build", "lib", "adapters", "entries", `${runtime}.js`)).href;
  const options = JSON.stringify({
    host: "127.0.0.1", port: 0, allow: [`127.0.0.1:${echo.port}`], maxClients: MAX_CLIENTS, maxPerSource: MAX_PER_SOURCE,
    maxMessage: MAX_MESSAGE, rate: RATE, idleSeconds: 30,
  });
  const [cmd, ...pre] = runtime === "deno" ? [bin("deno"), "run", "-A", "--node-modules-dir=manual", "--no-lock", "--no-remote"]
    : runtime === "bun" ? [bin("bun")] : [process.execPath];
  const child = spawn(cmd, [...pre, PROC, entry, options], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "", last: Stats = {};
  let where: { url: string; port: number } | null = null;
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    const lines = out.split("\n");
    out = lines.pop()!;
    for (const l of lines) {
      const m = JSON.parse(l) as { url?: string; port?: number; stats?: Stats };
      if (m.url) where = { url: m.url, port: m.port! };
      if (m.stats) last = m.stats;
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => { err += d; });
  await waitFor(`${runtime}'s relay to listen (${err})`, () => where !== null || child.exitCode !== null, 30_000);
  assert.ok(where, `the relay did not start: ${err}`);
  const w = where as { url: string; port: number };
  return { child, port: w.port, url: `${w.url}?to=127.0.0.1:${echo.port}`, stats: () => last, err: () => err, alive: () => child.exitCode === null && child.signalCode === null };
}

/** Every counter as "path": number, so two snapshots can be compared. */
function flat(s: Stats, prefix = "", out: Record<string, number> = {}): Record<string, number> {
  for (const [k, v] of Object.entries(s)) {
    if (typeof v === "number") out[prefix + k] = v;
    else flat(v as Stats, `${prefix}${k}.`, out);
  }
  return out;
}

/** The legitimate client: a numbered datagram every 5 ms, echoes counted by number. */
class Legit {
  private seq = 0;
  private readonly got = new Set<number>();
  private timer: ReturnType<typeof setInterval> | null = null;
  closed = false;
  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (d: Buffer) => { if (d.length >= 4) this.got.add(d.readUInt32BE(0)); });
    ws.on("close", () => { this.closed = true; });
    ws.on("error", () => {});
  }
  static async open(url: string): Promise<Legit> {
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress: "127.0.0.1" });
    await new Promise<void>((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
    return new Legit(ws);
  }
  start(): void {
    this.timer = setInterval(() => {
      const d = Buffer.alloc(148, 0x5a);
      d.writeUInt32BE(this.seq++, 0);
      this.ws.send(d);
    }, 5);
  }
  mark(): number { return this.seq; }
  /** Of the datagrams numbered [from, to), how many came back. */
  delivered(from: number, to: number): number {
    let n = 0;
    for (let i = from; i < to; i++) if (this.got.has(i)) n++;
    return n;
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.ws.close();
  }
}

/** A raw connection from `local`, upgraded by hand to `path` (or not, with null); whatever the answer. */
const rawConn = (port: number, local: string, path: string | null) => Raw.open(port, path ?? "/", path !== null, { local, expect: null });
const frame = Raw.frame;

/** Runs `f` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, f: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (i < items.length) await f(items[i++]); }));
}

interface Row { name: string; alive: boolean; delivery: number; sent: number; rss: [number, number]; moved: string; note: string; failure: string | null }

/** One class; `expect` names a counter that must have moved (the relay saw the attack for what it is). */
async function klass(r: Relay, legit: Legit, rows: Row[], name: string, expect: string | null, attack: () => Promise<string>, minDelivery = 0.95): Promise<void> {
  const before = flat(r.stats()), rss0 = rssMiB(r.child.pid!), from = legit.mark();
  let note = "", failure: string | null = null;
  try { note = await attack(); } catch (e) { failure = (e as Error).message; }
  const to = legit.mark();
  await sleep(800); // the last echoes, and a stats line written after them
  const after = flat(r.stats()), sent = to - from, delivery = sent ? legit.delivered(from, to) / sent : 0;
  const moved = Object.keys(after).filter((k) => !/^(up|down)\.|^accepted$|^clients$|^sockets$/.test(k) && after[k] !== (before[k] ?? 0))
    .map((k) => `${k} +${after[k] - (before[k] ?? 0)}`).join(", ");
  const row = { name, alive: r.alive(), delivery, sent, rss: [rss0, r.alive() ? rssMiB(r.child.pid!) : -1] as [number, number], moved, note, failure };
  if (row.delivery < minDelivery && !failure) row.failure = `legitimate delivery ${(100 * delivery).toFixed(1)}%`;
  if (expect && !failure && !(after[expect] > (before[expect] ?? 0))) row.failure = `${expect} did not move`;
  rows.push(row);
}

async function classes(r: Relay, legit: Legit, runtime: RuntimeName): Promise<Row[]> {
  const rows: Row[] = [];
  // Deno's and Bun's WebSocket servers end a connection that breaks the
  // protocol themselves and report an abnormal close, which the relay cannot
  // tell from a client that went away; ws (Node) says why.
  const protocol = runtime === "node" ? "closed.protocol" : "closed.client";
  const path = r.url.slice(r.url.indexOf("/", 5));

  await klass(r, legit, rows, "bytes of every length 0..2000 instead of an HTTP request", null, async () => {
    await pool(Array.from({ length: 2001 }, (_, n) => n), 24, async (n) => {
      const c = await rawConn(r.port, "127.0.0.2", null);
      c.socket.end(randomBytes(n));
      const t = Date.now();
      while (!c.ended && Date.now() - t < 3000) await sleep(10);
      c.socket.destroy();
    });
    return "2001 connections";
  });

  await klass(r, legit, rows, "upgraded, then random bytes of every length 0..2000", protocol, async () => {
    let upgraded = 0;
    await pool(Array.from({ length: 2001 }, (_, n) => n), 24, async (n) => {
      const c = await rawConn(r.port, "127.0.0.2", path);
      if (c.status === 101) upgraded++;
      c.socket.write(randomBytes(n));
      await sleep(20);
      c.socket.destroy();
    });
    if (upgraded < 1900) throw new Error(`only ${upgraded} of 2001 upgrades accepted`);
    return `${upgraded} upgrades`;
  });

  await klass(r, legit, rows, "every opcode 0..15, FIN set and clear, payloads of 0, 125, 126, 2000 and 2001 bytes", protocol, async () => {
    const cases: [number, boolean, number][] = [];
    for (let op = 0; op < 16; op++) for (const fin of [true, false]) for (const n of [0, 125, 126, 2000, 2001]) cases.push([op, fin, n]);
    let dropped = 0;
    await pool(cases, 16, async ([op, fin, n]) => {
      const c = await rawConn(r.port, "127.0.0.2", path);
      c.socket.write(frame(op, randomBytes(n), fin));
      const t = Date.now();
      while (!c.ended && Date.now() - t < 300) await sleep(10);
      if (c.ended) dropped++;
      c.socket.destroy();
    });
    return `${cases.length} frames, ${dropped} connections closed by the relay`;
  });

  await klass(r, legit, rows, "messages of 2001 and 65535 bytes sent whole, frames announcing 2^31 and 2^63 - 1 bytes, and a trickle of one byte a second", null, async () => {
    for (const n of [2001, 65535]) {
      const c = await rawConn(r.port, "127.0.0.2", path);
      c.socket.write(frame(2, randomBytes(n)));
      // Closed: the TCP connection ended, or a close frame came (Deno then waits for the client's).
      await waitFor(`the ${n}-byte message's connection to close`, () => c.ended || c.data[0] === 0x88, 3000);
      c.socket.destroy();
    }
    // Announced, never sent: ws (Node) and uWS (Bun) close on the header;
    // Deno's server waits for the payload, and the relay's idle timer ends it.
    const announced = await Promise.all([2n ** 31n, 2n ** 63n - 1n].map(async (n) => {
      const c = await rawConn(r.port, "127.0.0.2", path);
      c.socket.write(frame(2, randomBytes(100), true, n));
      const t = Date.now();
      while (!c.ended && Date.now() - t < 2000) await sleep(20);
      const closed = c.ended;
      c.socket.destroy();
      return closed;
    }));
    const slow = await Promise.all(Array.from({ length: 50 }, () => rawConn(r.port, "127.0.0.3", null)));
    for (let i = 0; i < 3; i++) {
      for (const c of slow) c.socket.write("GET / HTTP/1.1\r\n".slice(i, i + 1));
      await sleep(1000);
    }
    for (const c of slow) c.socket.destroy();
    return `each whole message closed its connection; the announced ones ${announced.every(Boolean) ? "closed at once" : "held open (until the idle timeout)"}; 50 slow requests held 3 s`;
  });

  await klass(r, legit, rows, `500 upgrades at once from one source (per-source limit ${MAX_PER_SOURCE})`, "refused.source", async () => {
    const socks = await Promise.all(Array.from({ length: 500 }, () => rawConn(r.port, "127.0.0.4", path)));
    const open = socks.filter((c) => c.status === 101).length, refused = socks.filter((c) => c.status === 503).length;
    for (const c of socks) c.socket.destroy();
    if (open + refused !== socks.length) throw new Error(`${socks.length - open - refused} upgrades answered neither 101 nor 503`);
    if (open > MAX_PER_SOURCE) throw new Error(`${open} upgrades from one source held open`);
    return `${open} held, the rest refused`;
  });

  await klass(r, legit, rows, `upgrades from 300 sources, 2 each (limit ${MAX_CLIENTS} clients)`, "refused.full", async () => {
    const sources = Array.from({ length: 300 }, (_, i) => `127.0.${10 + Math.floor(i / 250)}.${1 + (i % 250)}`);
    const socks = await Promise.all(sources.flatMap((s) => [rawConn(r.port, s, path), rawConn(r.port, s, path)]));
    const open = socks.filter((c) => c.status === 101).length, refused = socks.filter((c) => c.status === 503).length;
    for (const c of socks) c.socket.destroy();
    if (open + refused !== socks.length) throw new Error(`${socks.length - open - refused} upgrades answered neither 101 nor 503`);
    if (open > MAX_CLIENTS) throw new Error(`${open} clients held open`);
    return `${open} held, the rest refused`;
  });

  await klass(r, legit, rows, `a session sending 20,000 datagrams as fast as it can (rate ${RATE}/s)`, "drops.rate", async () => {
    const c = await rawConn(r.port, "127.0.0.5", path);
    const f = frame(2, randomBytes(148));
    for (let i = 0; i < 20_000; i++) c.socket.write(f);
    await sleep(1500);
    c.socket.destroy();
    return "one session";
  });

  // The batch framing (ports/framing.ts): u16 lengths the attacker controls.
  const batchConn = async (local: string) => {
    const c = await Raw.open(r.port, path, true, { local, expect: null, protocols: ["wg.datagram.v1", "wg.batch.v1"] });
    if (c.status !== 101) throw new Error(`the batch upgrade was answered ${c.status}`);
    return c;
  };
  await klass(r, legit, rows, "in the batch framing: 3000 malformed batches (random bytes, cut-short and zero lengths, datagrams over the largest), then one over 64 KiB", "drops.malformed", async () => {
    const c = await batchConn("127.0.0.7");
    const len = (n: number) => Buffer.from([n >> 8, n & 255]);
    for (let i = 0; i < 3000; i++) {
      const k = i % 4;
      const junk = k === 0 ? Buffer.concat([len(148), randomBytes(100)]) // cut short
        : k === 1 ? Buffer.concat([len(32), randomBytes(32), len(0)]) // a zero length
          : k === 2 ? Buffer.concat([len(MAX_MESSAGE + 1), randomBytes(MAX_MESSAGE + 1)]) // over the largest datagram
            : Buffer.concat([len(40), randomBytes(40), randomBytes(1)]); // a byte of a length
      c.socket.write(frame(2, junk));
    }
    await sleep(500);
    const over = Buffer.alloc(65537);
    c.socket.write(frame(2, over));
    await waitFor("the over-64-KiB batch's connection to close", () => c.ended || c.data[0] === 0x88, 3000);
    c.socket.destroy();
    return "one session";
  });

  await klass(r, legit, rows, `in the batch framing: 2000 batches of 40 datagrams as fast as it can (rate ${RATE} datagrams/s)`, "drops.rate", async () => {
    const c = await batchConn("127.0.0.8");
    const one = Buffer.concat([Buffer.from([0, 148]), randomBytes(148)]);
    const f = frame(2, Buffer.concat(Array.from({ length: 40 }, () => one)));
    for (let i = 0; i < 2000; i++) c.socket.write(f);
    await sleep(1500);
    c.socket.destroy();
    return "one session";
  });

  await klass(r, legit, rows, "a session that sends 1400-byte datagrams and never reads the echoes", "drops.backpressure", async () => {
    const c = await rawConn(r.port, "127.0.0.6", path);
    c.socket.pause();
    const f = frame(2, randomBytes(1400));
    // More than the loopback socket buffers on both sides hold (about 10 MB).
    for (let i = 0; i < 12_000; i++) { c.socket.write(f); if (i % 100 === 99) await sleep(60); }
    await sleep(1000);
    c.socket.destroy();
    return "one session, 12,000 datagrams (16.8 MB)";
  });

  return rows;
}

function table(runtime: string, rows: Row[]): string {
  const lines = [`| ${runtime} relay class | alive | legit delivery | RSS MiB before → after (bound +${MEMORY_BOUND_MIB}) | counters that moved | notes |`, "|---|---|---|---|---|---|"];
  for (const r of rows) lines.push(`| ${r.name} | ${r.alive ? "yes" : "NO"} | ${(100 * r.delivery).toFixed(1)}% of ${r.sent} | ${r.rss[0]} → ${r.rss[1]} | ${r.moved || "none"} | ${r.note}${r.failure ? ` FAILED: ${r.failure}` : ""} |`);
  return lines.join("\n");
}

for (const runtime of (process.env.HOSTILE_RUNTIMES ?? "node,deno,bun").split(",") as RuntimeName[]) {
  test(`${runtime}: the relay under every class of hostile input at its WebSocket, legitimate datagrams flowing`, async () => {
    if (!existsSync(PROC)) return notRun(`${PROC} is not built`);
    if (runtime !== "node" && !existsSync(bin(runtime))) return notRun(`no ${bin(runtime)}`);
    const echo = await echoServer(4);
    const r = await startRelay(runtime, echo);
    try {
      const legit = await Legit.open(r.url);
      legit.start();
      await sleep(1000);
      assert.ok(legit.delivered(0, legit.mark()) > 100, `no echoes through the relay (${r.err()})`);
      const rows = await classes(r, legit, runtime);
      const closedEarly = legit.closed;
      legit.stop();
      console.log(`\n${table(runtime, rows)}`);
      for (const row of rows) {
        assert.ok(row.alive, `${row.name}: the relay died\n${r.err()}`);
        assert.is(row.failure, null, `${row.name}: ${row.failure}`);
        assert.ok(row.rss[1] - row.rss[0] <= MEMORY_BOUND_MIB, `${row.name}: memory grew ${row.rss[1] - row.rss[0]} MiB`);
      }
      assert.not.ok(closedEarly, "the legitimate client was closed");
    } finally {
      r.child.kill("SIGKILL");
      await echo.close();
    }
  });
}

test.run();
