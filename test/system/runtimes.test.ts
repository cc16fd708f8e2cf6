// The engine outside Node: Deno, Bun, workerd (Cloudflare's edge runtime,
// which refuses to compile WebAssembly from bytes) and Chromium each load
// engine.wasm their own way and run the same program, runtimes/exchange.ts:
// two engines, a handshake, one IPv4 packet and its reply. Each reports a
// JSON result that must equal Node's own run of the program.
//
// A runtime that is not installed fails the test in CI (CI=true) and is
// skipped with a printed reason elsewhere. Every process started here is
// killed in a finally block.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { exchange, REPLY, REQUEST, type Result } from "./runtimes/exchange.ts";
import { notRun } from "../helpers/netns.ts";
import { ROOT } from "../helpers/root.ts";
import { freePort, stop } from "../helpers/proc.ts";

// This file runs bundled, from build/out/test.
const root = ROOT;
const here = join(root, "test", "system", "runtimes");
const bin = join(root, "node_modules", ".bin");
const wasmFile = join(root, "build", "out", "engine.wasm");
const CHROMIUM = "/usr/bin/chromium";

const reference = exchange(new WebAssembly.Module(readFileSync(wasmFile)), `node ${process.version}`, "new WebAssembly.Module(bytes)");


/** The runtime's result must be Node's, apart from the labels. */
function check(got: unknown, ms: number, extra: string[] = []): Result {
  const r = got as Result & Record<string, unknown>;
  assert.type(r, "object");
  assert.ok(r.delivered, `${r.runtime}: a's packet did not arrive intact at b: ${JSON.stringify(r)}`);
  assert.ok(r.replied, `${r.runtime}: b's reply did not arrive intact at a: ${JSON.stringify(r)}`);
  const strip = (x: Record<string, unknown>) => {
    const y = { ...x };
    for (const k of ["runtime", "wasm", ...extra]) delete y[k];
    return y;
  };
  assert.equal(strip(r), strip(reference as unknown as Record<string, unknown>));
  console.log(`  ${r.runtime}, ${r.wasm}: ${Math.round(ms)} ms`);
  return r;
}

/** The JSON after "RESULT " in a program's output. */
function resultLine(name: string, r: { status: number | null; signal: string | null; stdout: string; stderr: string; error?: Error }): unknown {
  const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (r.error || r.status !== 0 || !line) {
    assert.unreachable(`${name} exited with ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ""}\n${r.stdout}\n${r.stderr}`);
  }
  return JSON.parse(line!.slice("RESULT ".length));
}

/** Runs a program to completion (killed after `ms`) and checks its result line. */
function runAndCheck(name: string, cmd: string, args: string[], ms: number, env: Record<string, string> = {}): void {
  const t = performance.now();
  const r = spawnSync(cmd, args, {
    cwd: root, encoding: "utf8", timeout: ms, killSignal: "SIGKILL", env: { ...process.env, NO_COLOR: "1", ...env },
  });
  check(resultLine(name, r), performance.now() - t);
}


test("the reference: Node's run delivers both packets and agrees with node:crypto's SHA-256", () => {
  const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  assert.ok(reference.delivered && reference.replied);
  assert.is(reference.request, sha(REQUEST));
  assert.is(reference.reply, sha(REPLY));
  assert.equal(reference.wire, { 1: 1, 2: 1, 4: 2 }, "one initiation, one response, two transport messages");
  assert.is(reference.a.txBytes, reference.b.rxBytes);
  assert.is(reference.b.txBytes, reference.a.rxBytes);
  assert.ok(reference.a.lastHandshakeTime > 0 && reference.a.lastHandshakeTime === reference.b.lastHandshakeTime);
  assert.is(reference.a.drops + reference.b.drops, 0);
});

test("Deno runs the TypeScript sources with engine.wasm as a source-phase import", () => {
  const deno = join(bin, "deno");
  if (!existsSync(deno)) return notRun(`no ${deno}`);
  // manual: use the node_modules npm installed. deno.json's "auto" would
  // re-lay node_modules out Deno's way (and skip install scripts).
  runAndCheck("deno", deno, ["run", "--node-modules-dir=manual", "--no-lock", "--no-remote", join(here, "deno.js")], 30_000,
    { DENO_NO_UPDATE_CHECK: "1" });
});

test("Bun runs the TypeScript sources, compiling engine.wasm from the file", () => {
  const bun = join(bin, "bun");
  if (!existsSync(bun)) return notRun(`no ${bun}`);
  runAndCheck("bun", bun, ["run", join(here, "bun.js")], 30_000);
});

test("workerd imports engine.wasm as a module, and refuses to compile bytes", async () => {
  let workerd: string, version: string;
  try {
    ({ default: workerd, version } = createRequire(import.meta.url)("workerd"));
  } catch (e) {
    return notRun(`the workerd package: ${(e as Error).message}`);
  }
  if (!existsSync(workerd)) return notRun(`no workerd binary at ${workerd}`);
  const dir = mkdtempSync(join(tmpdir(), "wg-js-workerd-"));
  let child: ChildProcess | null = null;
  try {
    await build({
      entryPoints: [join(here, "worker.ts")], outfile: join(dir, "worker.js"),
      bundle: true, format: "esm", platform: "browser", conditions: ["workerd", "worker"],
      external: ["./engine.wasm"], logLevel: "warning",
    });
    copyFileSync(join(here, "workerd.capnp"), join(dir, "workerd.capnp"));
    copyFileSync(wasmFile, join(dir, "engine.wasm"));
    const t = performance.now();
    let body: string | null = null, log = "";
    // A port free a moment ago may be taken by the time workerd binds it: try a few.
    for (let attempt = 0; attempt < 3 && body === null; attempt++) {
      await stop(child);
      const port = await freePort();
      const proc = spawn(workerd, ["serve", join(dir, "workerd.capnp"), "--socket-addr", `http=127.0.0.1:${port}`],
        { stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      log = "";
      proc.stdout!.on("data", (d) => { log += d; });
      proc.stderr!.on("data", (d) => { log += d; });
      for (const end = performance.now() + 15_000; performance.now() < end && proc.exitCode === null && proc.signalCode === null;) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) });
          body = await res.text();
          if (!res.ok) assert.unreachable(`workerd answered ${res.status}: ${body}`);
          break;
        } catch (e) {
          if (e instanceof assert.Assertion) throw e;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    }
    if (body === null) assert.unreachable(`workerd did not answer\n${log}`);
    const r = JSON.parse(body!);
    r.runtime = `workerd ${version}`;
    check(r, performance.now() - t, ["compileRefusal"]);
    assert.type(r.compileRefusal, "string", "workerd compiled WebAssembly from bytes: the test would prove nothing");
    assert.match(r.compileRefusal, /disallowed/);
    console.log(`  and from bytes: ${r.compileRefusal}`);
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Chromium compiles engine.wasm while fetching it, in a page", async () => {
  if (!existsSync(CHROMIUM)) return notRun(`no ${CHROMIUM} (apt-get install chromium)`);
  let chromium: typeof import("playwright-core").chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (e) {
    return notRun(`playwright-core: ${(e as Error).message}`);
  }
  const bundle = await build({
    entryPoints: [join(here, "browser.ts")], bundle: true, format: "esm", platform: "browser", write: false, logLevel: "warning",
  });
  const files: Record<string, [Uint8Array, string]> = {
    "/": [readFileSync(join(here, "index.html")), "text/html; charset=utf-8"],
    "/browser.js": [bundle.outputFiles[0].contents, "text/javascript"],
    "/engine.wasm": [readFileSync(wasmFile), "application/wasm"],
  };
  const server: Server = createServer((req, res) => {
    const f = files[req.url ?? ""];
    res.writeHead(f ? 200 : 404, { "content-type": f ? f[1] : "text/plain", "cache-control": "no-store" });
    res.end(f ? f[0] : "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const profile = mkdtempSync(join(tmpdir(), "wg-js-chromium-"));
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | null = null;
  try {
    const t = performance.now();
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, timeout: 30_000,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
      ],
    });
    const page = context.pages()[0] ?? await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector("#result[data-done]", { state: "attached", timeout: 20_000 });
    const r = JSON.parse((await page.textContent("#result"))!);
    if (r.error) assert.unreachable(`the page failed: ${r.error}`);
    assert.equal(errors, []);
    // The page's user agent has the reduced version (156.0.0.0); the browser knows its own.
    r.runtime = `chromium ${context.browser()?.version() ?? "(version unknown)"}`;
    check(r, performance.now() - t);
  } finally {
    await context?.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(profile, { recursive: true, force: true });
  }
});

test.run();
