// The WebSocket relay (adapters/relay): real WebSocket clients (the `ws`
// package, and raw TCP for malformed input) on loopback, a UDP echo server
// on loopback as the WireGuard endpoint. In-process on Node through
// startRelay; the `wg relay` CLI on Node, Deno and Bun as child processes.
// Node-only (build/test.mjs's NODE_ONLY): it starts Deno and Bun itself.
// A missing Deno or Bun fails in CI (CI=true) and is skipped elsewhere.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeHost } from "../../adapters/node/host.ts";
import { startRelay as startOn } from "../../adapters/relay/server.ts";
import type { ListenOptions, RelayServer } from "../../adapters/relay/relay.ts";

const startRelay = (o: ListenOptions) => startOn(nodeHost(), o);
import { Client, Raw, connect, echoServer, open, pattern, sleep, waitFor, type Echo } from "../helpers/relay.ts";
import { CLI, ROOT, wgCommand, type RuntimeName } from "../helpers/netns.ts";

/** Fails in CI, where every runtime must be present; elsewhere says why the test did nothing. */
function unavailable(why: string): void {
  if (process.env.CI === "true") assert.unreachable(`${why} (required when CI=true)`);
  console.log(`  skipped: ${why}`);
}

/** Runs `f` with an echo server and a relay allowed to reach it; both are closed after. */
async function withRelay(opts: Partial<ListenOptions>, f: (r: RelayServer, echo: Echo, log: string[]) => Promise<void>, family: 4 | 6 = 4): Promise<void> {
  const echo = await echoServer(family);
  const log: string[] = [];
  const target = family === 4 ? `127.0.0.1:${echo.port}` : `[::1]:${echo.port}`;
  const r = await startRelay({ allow: [target], log: (l) => log.push(l), ...opts });
  try {
    await f(r, echo, log);
  } finally {
    await r.close();
    await echo.close();
  }
}

const to = (r: RelayServer, echo: Echo, extra = "") => `${r.url}?to=127.0.0.1:${echo.port}${extra}`;

/** Whether a UDP port on the wildcard address can be bound (that is, nobody holds it). */
async function udpFree(port: number): Promise<boolean> {
  const s = dgram.createSocket("udp4");
  const ok = await new Promise<boolean>((resolve) => {
    s.once("error", () => resolve(false));
    s.bind(port, "0.0.0.0", () => resolve(true));
  });
  try { s.close(); } catch { /* never bound */ }
  return ok;
}

const portOf = (from: string) => Number(from.slice(from.lastIndexOf(":") + 1));

test("datagrams both ways over IPv4: one message is one datagram, every size 1..max", async () => {
  await withRelay({ maxMessage: 4096 }, async (r, echo) => {
    const c = await open(to(r, echo));
    for (let n = 1; n <= 4096; n++) await c.echo(pattern(n, n));
    assert.is(echo.sizes.length, 4096, "the upstream got one datagram per message");
    assert.ok(echo.sizes.every((s, i) => s === i + 1), "each datagram as long as its message");
    const s = r.stats();
    assert.equal(s.up, { datagrams: 4096, bytes: (4096 * 4097) / 2, messages: 4096 });
    assert.equal(s.down, s.up);
    assert.is(s.clients, 1);
    assert.is(s.sockets, 1);
    c.ws.close();
    await waitFor("the client to leave", () => r.stats().clients === 0);
  });
});

test("datagrams both ways over IPv6 ([::1]:port), and a CIDR allow entry", async () => {
  await withRelay({}, async (r, echo) => {
    const c = await open(`${r.url}?to=[::1]:${echo.port}`);
    for (const n of [1, 148, 92, 1452, 4096]) await c.echo(pattern(n, 3));
    assert.match(echo.from[0], /^::1:/);
    c.ws.close();
  }, 6);
  const echo = await echoServer(4);
  const r = await startRelay({ allow: [`127.0.0.0/8:${echo.port}`, `localhost:${echo.port + 1 > 65535 ? 1 : echo.port + 1}`] });
  try {
    const c = await open(`${r.url}?to=127.0.0.1:${echo.port}`);
    await c.echo(pattern(148));
    const o = await connect(`${r.url}?to=127.0.0.1:${echo.port === 1 ? 2 : echo.port - 1}`);
    assert.is((o as { status: number }).status, 403, "the port is part of the entry");
    c.ws.close();
  } finally {
    await r.close();
    await echo.close();
  }
});

test("each client gets its own UDP port; it is freed on a close frame and on a dropped connection", async () => {
  await withRelay({}, async (r, echo) => {
    const a = await open(to(r, echo)), b = await open(to(r, echo));
    await a.echo(pattern(32, 1));
    await b.echo(pattern(32, 2));
    const [pa, pb] = [portOf(echo.from[0]), portOf(echo.from[1])];
    assert.is.not(pa, pb, "distinct source ports");
    assert.is(r.stats().sockets, 2);
    assert.not.ok(await udpFree(pa), "a's port is held while a is connected");

    // Only the upstream's datagrams reach a client: another socket's are dropped and counted.
    const stranger = dgram.createSocket("udp4");
    await new Promise<void>((res) => stranger.bind(0, "127.0.0.1", res));
    stranger.send(pattern(20), pa, "127.0.0.1");
    await waitFor("the stranger's datagram to be dropped", () => r.stats().drops.stranger === 1);
    stranger.close();
    assert.is(a.messages.length, 0);

    a.ws.close(1000);
    assert.is((await a.waitClosed()).code, 1000);
    await waitFor("a's socket to close", () => r.stats().sockets === 1);
    assert.ok(await udpFree(pa), "a's port is free again");

    b.ws.terminate(); // no close frame: the TCP connection just goes
    await waitFor("b's socket to close", () => r.stats().sockets === 0 && r.stats().clients === 0);
    assert.ok(await udpFree(pb), "b's port is free again");
    assert.is(r.stats().closed.client, 2);
  });
});

test("refusals: bad to (400), missing or wrong token (401), upstream or origin not allowed (403), full (503)", async () => {
  const echo = await echoServer(4);
  const log: string[] = [];
  const SECRET = "s3cret-token";
  const r = await startRelay({
    allow: [`127.0.0.1:${echo.port}`], tokens: [SECRET], origins: ["https://ok.example"], maxClients: 1, log: (l) => log.push(l),
  });
  const ok = { origin: "https://ok.example" };
  const up = `to=127.0.0.1:${echo.port}`;
  const expect = async (query: string, status: number, body: RegExp, headers: Record<string, string> = ok) => {
    const o = await connect(`${r.url}${query}`, headers);
    assert.ok("status" in o, `${query}: expected a refusal, got ${JSON.stringify("client" in o ? "an upgrade" : o)}`);
    const x = o as { status: number; body: string };
    assert.is(x.status, status, `${query}: status`);
    assert.match(x.body, body);
    assert.match(x.body, /^[^\n]+\n$/, "the body is one line");
  };
  try {
    await expect(`?token=${SECRET}`, 400, /to=host:port/);
    await expect(`?to=nohost&token=${SECRET}`, 400, /invalid to/);
    await expect(`?to=127.0.0.1:0&token=${SECRET}`, 400, /invalid to/);
    await expect(`?to=::1:51820&token=${SECRET}`, 400, /invalid to/);
    await expect(`?${up}`, 401, /missing token/);
    await expect(`?${up}&token=s3cret-tokeN`, 401, /wrong token/);
    await expect(`?${up}&token=${SECRET}x`, 401, /wrong token/);
    await expect(`?to=127.0.0.1:${echo.port === 1 ? 2 : 1}&token=${SECRET}`, 403, /not allowed/);
    await expect(`?to=10.0.0.1:${echo.port}&token=${SECRET}`, 403, /not allowed/);
    await expect(`?to=[::1]:${echo.port}&token=${SECRET}`, 403, /not allowed/);
    await expect(`?${up}&token=${SECRET}`, 403, /origin/, { origin: "https://evil.example" });
    await expect(`?${up}&token=${SECRET}`, 403, /origin/, {});
    // Not a WebSocket request at all.
    const plain = await fetch(`${r.url.replace("ws:", "http:")}?${up}&token=${SECRET}`);
    assert.is(plain.status, 400);
    assert.match(await plain.text(), /WebSocket/);

    const c = await open(`${r.url}?${up}&token=${SECRET}`, ok);
    await c.echo(pattern(64));
    await expect(`?${up}&token=${SECRET}`, 503, /limit/);
    c.ws.close();
    await waitFor("the client to leave", () => r.stats().clients === 0);
    const again = await open(`${r.url}?${up}&token=${SECRET}`, ok);
    again.ws.close();

    const s = r.stats();
    assert.equal(s.refused, { "bad-request": 5, unauthorized: 3, forbidden: 5, full: 1, source: 0 });
    assert.is(s.accepted, 2);
    assert.ok(log.length >= 14, "a line per refusal");
    assert.not.ok(log.some((l) => l.includes(SECRET) || l.includes("s3cret")), "no token in the log");
    assert.not.ok(log.some((l) => l.includes("\n")), "one line each");
  } finally {
    await r.close();
    await echo.close();
  }
});

test("malformed input (text, too big, garbage, bad frames, unmasked, truncated): those clients go, the relay serves on", async () => {
  await withRelay({ maxMessage: 1500 }, async (r, echo) => {
    const good = await open(to(r, echo));
    await good.echo(pattern(100));

    const text = await open(to(r, echo));
    text.send("hello");
    assert.is((await text.waitClosed()).code, 1003, "a text message closes with 1003");

    const big = await open(to(r, echo));
    await big.echo(pattern(1500));
    big.send(pattern(1501));
    assert.is((await big.waitClosed()).code, 1009, "a message over the limit closes with 1009");

    const path = `/?to=127.0.0.1:${echo.port}`;
    // Not HTTP at all.
    const junk = await Raw.open(r.port, path, false);
    junk.write(Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 13, 10, 13, 10, 0x16, 3, 1]));
    await waitFor("the junk connection to be dropped", () => junk.ended);
    // Upgraded, then bytes that are no frame (reserved bits, opcode 0xB).
    const garbage = await Raw.open(r.port, path);
    garbage.write(Buffer.from([0x7b, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
    await waitFor("the garbage connection to be dropped", () => garbage.ended);
    // A client frame without a mask (RFC 6455 section 5.1: the server must close).
    const unmasked = await Raw.open(r.port, path);
    unmasked.write(Buffer.from([0x82, 0x03, 1, 2, 3]));
    await waitFor("the unmasked connection to be dropped", () => unmasked.ended);
    // A frame announced 1400 bytes long, half sent, then the connection cut.
    const truncated = await Raw.open(r.port, path);
    truncated.write(Raw.frame(2, pattern(1400)).subarray(0, 700));
    await sleep(50);
    truncated.socket.destroy();
    // A good frame over raw TCP works (the raw client is sound), then a control frame too long.
    const raw = await Raw.open(r.port, path);
    raw.write(Raw.frame(2, pattern(10)));
    await waitFor("the raw client's echo", () => raw.data.length >= 12);
    assert.equal([...raw.data.subarray(0, 2)], [0x82, 10]);
    raw.write(Buffer.concat([Buffer.from([0x89, 0x80 | 126, 0, 200]), Buffer.alloc(204)]));
    await waitFor("the bad ping's connection to be dropped", () => raw.ended);

    await waitFor("only the good client left", () => r.stats().clients === 1 && r.stats().sockets === 1);
    for (let i = 0; i < 20; i++) await good.echo(pattern(200 + i, i));
    const s = r.stats();
    assert.is(s.closed.text, 1);
    assert.is(s.closed["too-big"], 1);
    assert.ok(s.closed.protocol >= 3, `protocol errors counted: ${JSON.stringify(s.closed)}`);
  });
});

test("a flood: 500 clients at once against max 64; the excess refused, the admitted served, then back to zero", async () => {
  await withRelay({ maxClients: 64 }, async (r, echo) => {
    const outcomes = await Promise.all(Array.from({ length: 500 }, () => connect(to(r, echo))));
    const admitted = outcomes.filter((o): o is { client: Client } => "client" in o).map((o) => o.client);
    const refused = outcomes.filter((o) => "status" in o) as { status: number }[];
    const errors = outcomes.filter((o) => "error" in o);
    assert.ok(admitted.length >= 1 && admitted.length <= 64, `admitted ${admitted.length}`);
    assert.is(refused.length + admitted.length + errors.length, 500);
    assert.ok(refused.every((o) => o.status === 503), "refused with 503");
    assert.ok(refused.length >= 436, `refused ${refused.length}`);
    // Every admitted client is served at once.
    await Promise.all(admitted.map((c, i) => c.echo(pattern(100 + i, i))));
    assert.is(new Set(echo.from).size, admitted.length, "a UDP port per admitted client");
    // Half leave with a close frame, half just drop.
    admitted.forEach((c, i) => (i % 2 ? c.ws.close() : c.ws.terminate()));
    await waitFor("zero clients and sockets", () => r.stats().clients === 0 && r.stats().sockets === 0, 5000);
    const late = await open(to(r, echo));
    await late.echo(pattern(7));
    late.ws.close();
  });
});

test("idle timeout closes with 1001 idle; traffic either way keeps a client", async () => {
  await withRelay({ idleSeconds: 0.3 }, async (r, echo) => {
    const quiet = await open(to(r, echo));
    const busy = await open(to(r, echo));
    await quiet.echo(pattern(10));
    const t = Date.now();
    while (Date.now() - t < 700) { await busy.echo(pattern(20)); await sleep(50); }
    assert.equal(await quiet.waitClosed(2000), { code: 1001, reason: "idle" });
    assert.is(busy.closed, null, "the busy client is still there");
    assert.is(r.stats().closed.idle, 1);
    await waitFor("the quiet client's socket to close", () => r.stats().sockets === 1);
    busy.ws.close();
  });
});

test("rate limit: the excess is dropped and counted, the client stays", async () => {
  await withRelay({ rate: 50, burst: 10 }, async (r, echo) => {
    const c = await open(to(r, echo));
    for (let i = 0; i < 200; i++) c.send(pattern(60, i));
    await waitFor("all 200 seen", () => r.stats().up.datagrams + r.stats().drops.rate === 200);
    const s = r.stats();
    assert.ok(s.up.datagrams >= 10 && s.up.datagrams <= 30, `sent ${s.up.datagrams}`);
    assert.ok(s.drops.rate >= 170, `dropped ${s.drops.rate}`);
    await waitFor("the echoes of what went through", () => c.messages.length === s.up.datagrams);
    c.messages.length = 0;
    await sleep(100);
    await c.echo(pattern(33)); // the bucket refills
    assert.is(c.closed, null);
    c.ws.close();
  });
});

test("backpressure: a client that stops reading loses datagrams (counted), the relay's buffer stays bounded", async () => {
  await withRelay({ maxBuffered: 64 * 1024 }, async (r, echo) => {
    const c = await open(to(r, echo));
    await c.echo(pattern(10));
    const relayPort = portOf(echo.from[0]);
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const d = pattern(1400);
    // 40 MB from the upstream's own socket: far more than the TCP buffers hold.
    for (let i = 0; i < 30_000; i++) {
      echo.socket.send(d, relayPort, "127.0.0.1");
      if (i % 200 === 0) await sleep(1);
    }
    await waitFor("backpressure drops", () => r.stats().drops.backpressure > 0, 10_000);
    assert.is(c.closed, null);
    c.ws.close();
  });
});

test("shutdown closes every client with 1001 and every socket", async () => {
  const echo = await echoServer(4);
  const r = await startRelay({ allow: [`127.0.0.1:${echo.port}`] });
  const cs = [await open(to(r, echo)), await open(to(r, echo))];
  for (const c of cs) await c.echo(pattern(5));
  await r.close();
  for (const c of cs) assert.is((await c.waitClosed()).code, 1001);
  assert.is(r.stats().clients, 0);
  assert.is(r.stats().sockets, 0);
  assert.ok(await udpFree(portOf(echo.from[0])));
  await echo.close();
});

// ---- the CLI on each runtime ----

interface Proc { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> }

function spawnRelay(runtime: RuntimeName, args: string[]): Proc {
  const [cmd, ...pre] = wgCommand(runtime);
  // Deno gets exactly what the README asks for, not -A.
  const argv = runtime === "deno" ? pre.map((a) => (a === "-A" ? "--allow-net" : a)) : pre;
  const child = spawn(cmd, [...argv, "relay", ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout!.on("data", (d) => { out += d; });
  child.stderr!.on("data", (d) => { err += d; });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

function missing(runtime: RuntimeName): string | null {
  const bin = wgCommand(runtime)[0];
  if (runtime !== "node" && !existsSync(bin)) return `no ${bin}`;
  if (runtime === "node" && !existsSync(CLI)) return `${CLI} is not built`;
  return null;
}

for (const runtime of ["node", "deno", "bun"] as RuntimeName[]) {
  test(`${runtime}: wg relay listens, echoes datagrams both ways, refuses, enforces limits, and exits cleanly on SIGTERM`, async () => {
    const why = missing(runtime);
    if (why) return unavailable(why);
    const echo = await echoServer(4);
    const p = spawnRelay(runtime, ["--listen", "127.0.0.1:0", "--allow", `127.0.0.1:${echo.port}`, "--max-message", "2000", "--idle", "30"]);
    try {
      await waitFor(`${runtime}'s relay to listen (${p.err()})`, () => /listening/.test(p.out()) || p.child.exitCode !== null, 30_000);
      const m = /^relay listening on (ws:\/\/127\.0\.0\.1:(\d+)\/) for 1 upstream\n$/.exec(p.out());
      assert.ok(m, `the listening line: ${JSON.stringify(p.out())} ${p.err()}`);
      const url = `${m![1]}?to=127.0.0.1:${echo.port}`;
      const a = await open(url), b = await open(url);
      for (const n of [1, 32, 148, 1452, 2000]) { await a.echo(pattern(n, 1)); await b.echo(pattern(n, 2)); }
      assert.is(new Set(echo.from).size, 2, "a UDP port per client");
      assert.is(echo.sizes.length, 10, "one datagram per message");
      const refused = await connect(`${m![1]}?to=127.0.0.1:1`);
      assert.is((refused as { status: number }).status, 403);
      const text = await open(url);
      text.send("hi");
      assert.is((await text.waitClosed()).code, 1003);
      const big = await open(url);
      big.send(pattern(2001));
      assert.is((await big.waitClosed()).code, 1009);
      const junk = await Raw.open(Number(m![2]), "/?to=127.0.0.1:1", true).catch(() => null);
      if (junk) { junk.write(Buffer.from([0x82, 0x03, 1, 2, 3])); await waitFor("the unmasked frame's connection to drop", () => junk.ended); }
      await a.echo(pattern(99)); // still serving

      p.child.kill("SIGTERM");
      assert.is(await p.exited, 0, `exit code (${p.err()})`);
      assert.is((await a.waitClosed()).code, 1001);
      assert.is((await b.waitClosed()).code, 1001);
      assert.not.match(p.err(), /\n\s+at /, "no stack trace");
      assert.ok(p.err().split("\n").every((l) => l === "" || l.startsWith("relay: ")), `only relay log lines: ${p.err()}`);
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
      await echo.close();
    }
  });
}

test("CLI errors: one line each, non-zero exit, no stack trace (Node, Deno, Bun)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "relay-"));
  const empty = join(dir, "empty");
  writeFileSync(empty, "\n");
  try {
    const cases: [string[], RegExp][] = [
      [["--listen", "nowhere", "--allow", "127.0.0.1:9"], /^wg: invalid --listen 'nowhere'/],
      [["--listen", "127.0.0.1:70000", "--allow", "127.0.0.1:9"], /^wg: invalid --listen/],
      [["--allow", "127.0.0.1"], /^wg: invalid --allow '127\.0\.0\.1'/],
      [["--allow", "300.1.1.1:9"], /^wg: invalid --allow/],
      [["--allow", "10.0.0.0/33:9"], /^wg: invalid --allow/],
      [[], /^wg: missing --allow/],
      [["--listen", "127.0.0.1:0"], /^wg: missing --allow/],
      [["--allow", "127.0.0.1:9", "--token-file", join(dir, "absent")], /^wg: cannot read --token-file/],
      [["--allow", "127.0.0.1:9", "--token-file", empty], /^wg: --token-file .* has no token/],
      [["--allow", "127.0.0.1:9", "--max-clients", "0"], /^wg: invalid --max-clients/],
      [["--allow", "127.0.0.1:9", "--idle", "soon"], /^wg: invalid --idle/],
      [["--allow", "127.0.0.1:9", "--rate"], /^wg: --rate needs a value/],
      [["--allow", "127.0.0.1:9", "--bogus"], /^wg: unknown relay option '--bogus'/],
    ];
    for (const runtime of ["node", "deno", "bun"] as RuntimeName[]) {
      const why = missing(runtime);
      if (why) { unavailable(why); continue; }
      // Deno and Bun start slowly: a few cases each, all of them on Node.
      for (const [args, want] of runtime === "node" ? cases : [cases[0], cases[2], cases[5], cases[7]]) {
        const [cmd, ...pre] = wgCommand(runtime);
        const r = spawnSync(cmd, [...pre, "relay", ...args], { cwd: ROOT, encoding: "utf8", timeout: 30_000, env: { ...process.env, NO_COLOR: "1" } });
        const what = `${runtime} wg relay ${args.join(" ")}`;
        assert.is.not(r.status, 0, `${what}: exit status`);
        assert.is(r.stdout, "", `${what}: nothing on stdout`);
        assert.match(r.stderr, want, `${what}: ${r.stderr}`);
        assert.is(r.stderr.split("\n").filter((l) => l !== "").length, 1, `${what}: one line: ${r.stderr}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
