// The package as a user gets it: this checkout packed (npm pack), installed
// into an empty project without dev dependencies (build/package.mjs), and
// used from there:
// - its installed size, printed, under 15 MB;
// - every entry imported on Node;
// - a consumer type-checked with tsc --strict against the package's .d.ts
//   (skipLibCheck off, so every declaration it loads is checked);
// - every example the README marks as run by this suite, as written: the
//   library example and the sockets example on Node (and on Deno and Bun
//   with the import changed as the comment says), the engine's and the relay's on Node, the worker on
//   workerd, the Deno gateway under deno serve, and the page's module
//   bundled with esbuild, in Chromium, through the installed `wg relay` to
//   wireguard-go (needs root);
// - `npx wg genkey | npx wg pubkey` from the installed bin, and `bun --bun wg`;
// and `deno publish --dry-run` of the checkout (the JSR package) is clean,
// and `npm run docs` writes the API reference of every entry.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { install, pack, packagesIn, sizeOf, SIZE_LIMIT } from "../../build/package.mjs";
import { INNER, Layout, OUTER, ROOT, keypair, notRun, poll, unavailable, type Proc } from "../helpers/netns.ts";
import { ChromiumPage, browserUnavailable } from "../helpers/browser.ts";
import { freePort, stop } from "../helpers/proc.ts";

const ENTRIES = ["wg-js", "wg-js/node", "wg-js/deno", "wg-js/bun", "wg-js/browser", "wg-js/workerd", "wg-js/deno-gateway", "wg-js/relay"];
const bin = (n: string) => join(ROOT, "node_modules", ".bin", n);
let dir = "", app = "";

function run(argv: string[], o: { cwd?: string; input?: string; timeout?: number } = {}): { code: number | null; out: string; err: string } {
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd: o.cwd ?? app, input: o.input, encoding: "utf8", timeout: o.timeout ?? 120_000,
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
  return { code: r.status, out: r.stdout ?? "", err: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), "wg-js-package-"));
  app = join(dir, "app");
  install(app, pack(ROOT, dir));
});

test.after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the installed package, with its dependencies, is under 15 MB", () => {
  const modules = join(app, "node_modules"), bytes = sizeOf(modules);
  const pkgs = packagesIn(modules);
  console.log(`  installed size: ${(bytes / 1048576).toFixed(1)} MB in ${pkgs.length} packages (${pkgs.join(", ")})`);
  assert.ok(bytes <= SIZE_LIMIT, `${bytes} bytes`);
  for (const dev of ["assemblyscript", "typescript", "esbuild", "deno", "bun", "workerd", "playwright-core", "uvu"]) {
    assert.not.ok(pkgs.includes(dev), `${dev} is a dev dependency only`);
  }
  const shipped = JSON.parse(run(["npm", "pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT }).out)[0].files.map((f: { path: string }) => f.path);
  assert.ok(shipped.includes("LICENSE") && shipped.includes("README.md"));
  for (const f of ["build/lib/adapters/entries/wg-node.js", "build/lib/adapters/entries/core.d.ts", "build/out/engine.wasm"]) assert.ok(shipped.includes(f), f);
  assert.equal(shipped.filter((f: string) => /^(test|assembly|\.ci|docs|examples)\/|\.map$|\.wat$|\.png$/.test(f)), [], "no tests, sources of the WASM, maps or pictures");
});

test("a clone installed without its dev dependencies: the build says so in one line", () => {
  const clone = join(dir, "clone");
  mkdirSync(join(clone, "build"), { recursive: true });
  copyFileSync(join(ROOT, "build", "build.mjs"), join(clone, "build", "build.mjs"));
  const r = run([process.execPath, join(clone, "build", "build.mjs")], { cwd: clone });
  assert.is(r.code, 1);
  assert.is(r.err, `wg-js: building needs the dev dependency assemblyscript: run npm install (without --omit=dev) in ${clone}\n`);
});

test("every entry imports on Node from the installed package", () => {
  writeFileSync(join(app, "imports.mjs"), ENTRIES.map((e, i) => `import * as m${i} from ${JSON.stringify(e)};`).join("\n") +
    `\nconsole.log(JSON.stringify([${ENTRIES.map((_, i) => `Object.keys(m${i}).length`).join(", ")}]));\n`);
  const r = run([process.execPath, "imports.mjs"]);
  assert.is(r.code, 0, r.err);
  const counts = JSON.parse(r.out) as number[];
  assert.is(counts.length, ENTRIES.length);
  assert.ok(counts.every((n) => n > 0), r.out);
});

test("a consumer type-checks with tsc --strict against the installed declarations", () => {
  writeFileSync(join(app, "consumer.ts"), `
import { Engine, openTunnel as openWith, parseWgQuick, publicKeyOf, generatePrivateKey, Stack, FakeTun, bindPair, Device, type TunnelDeps, type Host } from "wg-js";
import { openTunnel, startRelay, nodeHost } from "wg-js/node";
import { bunHost } from "wg-js/bun";
import { denoHost } from "wg-js/deno";
import { connect, type ConnectOptions } from "wg-js/browser";
import { gatewayWorker, createGateway } from "wg-js/workerd";
import { createDenoGateway } from "wg-js/deno-gateway";
import { startRelay as startRelayOn, AllowList, type RelayHost } from "wg-js/relay";

const key: string = generatePrivateKey();
const pub: string = publicKeyOf(key);
const conf = parseWgQuick(\`[Interface]\\nPrivateKey = \${key}\\nAddress = 10.0.0.1\\n\`);
const host: Host = nodeHost();
const deps: TunnelDeps = host;
const relayHost: RelayHost = bunHost();
export async function use(): Promise<void> {
  const t = await openTunnel("...");
  const res: Response = await t.fetch("http://10.0.0.1/");
  const t2 = await openWith(deps, { addresses: ["10.0.0.2"], privateKey: new Uint8Array(32) });
  const r = await startRelay({ allow: ["192.0.2.1:51820"] });
  const r2 = await startRelayOn(relayHost, { allow: ["192.0.2.1:51820"] });
  const opts: ConnectOptions = { relay: "wss://relay.example/" };
  const page = await connect("...", opts);
  const w: { fetch(req: Request, env: { WG_CONFIG?: string }): Promise<Response> } = gatewayWorker(undefined as unknown as WebAssembly.Module);
  void [pub, conf.interface.addresses, res.status, t2.status().addresses, r.url, r2.stats().clients, page.close(), w, createGateway, createDenoGateway,
    denoHost, AllowList, Engine, Stack, new FakeTun(), bindPair(), Device];
}
`);
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, skipLibCheck: false, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext",
      lib: ["ES2022", "DOM"], types: ["node"], typeRoots: [join(ROOT, "node_modules", "@types")],
    },
    files: ["consumer.ts"],
  }, null, 2));
  const r = run([process.execPath, join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "."]);
  assert.is(r.code, 0, r.out + r.err);
});

const MARKER = "<!-- The block below is run as written by test/system/package.test.ts";

/** The README's blocks marked as run by this suite, in order. */
function readmeBlocks(): string[] {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  return text.split(MARKER).slice(1).map((part) => {
    const m = /^[^\n]*-->\n```js\n([\s\S]*?)```/.exec(part);
    assert.ok(m, `a js block right after the marker: ${part.slice(0, 80)}`);
    return m![1];
  });
}

/** The one marked block that contains `what`. */
function readmeBlock(what: string): string {
  const found = readmeBlocks().filter((b) => b.includes(what));
  assert.is(found.length, 1, `one marked README block with ${what}`);
  return found[0];
}

test("the README marks its examples, and this suite runs each one", () => {
  const blocks = readmeBlocks();
  const ran = ["tunnel.mjs: two WireGuard peers", "sockets.mjs: node:http", "new Engine(", "startRelay } from", "gatewayWorker(wasm)", "wg-js/deno-gateway", "fetchThroughTunnel(", "fetchInWorker("];
  assert.is(blocks.length, ran.length, "every marked block is one of the blocks run below");
  for (const r of ran) readmeBlock(r);
});

for (const runtime of ["node", "deno", "bun"] as const) {
  test(`the README's library example runs on ${runtime} from the installed package`, () => {
    const code = readmeBlock("tunnel.mjs: two WireGuard peers");
    assert.match(code, /from "wg-js\/node"/);
    const file = join(app, `readme-${runtime}.mjs`);
    writeFileSync(file, code.replace('from "wg-js/node"', `from "wg-js/${runtime}"`));
    // Its own network namespace where it can have one, so its port 51820 meets nothing else.
    const ns = process.getuid?.() === 0 && spawnSync("ip", ["-V"]).status === 0 ? `wgpk-${process.pid}-${runtime}` : null;
    if (ns) {
      spawnSync("ip", ["netns", "add", ns]);
      spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
    try {
      const argv = runtime === "node" ? [process.execPath, file]
        : runtime === "deno" ? [bin("deno"), "run", "--allow-net", "--unstable-net", "--node-modules-dir=manual", "--no-lock", file]
        : [bin("bun"), file];
      const r = run(ns ? ["ip", "netns", "exec", ns, ...argv] : argv, { timeout: 60_000 });
      assert.is(r.code, 0, r.err);
      assert.is(r.out, "200 hello /readme, from inside the tunnel\n\n");
    } finally {
      if (ns) spawnSync("ip", ["netns", "delete", ns]);
    }
  });
}

for (const runtime of ["node", "deno", "bun"] as const) {
  test(`the README's sockets example (http.request with the agent, a net.Socket stand-in) runs on ${runtime} from the installed package`, () => {
    const code = readmeBlock("sockets.mjs: node:http");
    assert.match(code, /from "wg-js\/node"/);
    const file = join(app, `readme-sockets-${runtime}.mjs`);
    writeFileSync(file, code.replace('from "wg-js/node"', `from "wg-js/${runtime}"`));
    const argv = runtime === "node" ? [process.execPath, file]
      : runtime === "deno" ? [bin("deno"), "run", "--allow-net", "--unstable-net", "--node-modules-dir=manual", "--no-lock", file]
      : [bin("bun"), file];
    const r = run(argv, { timeout: 60_000 });
    assert.is(r.code, 0, r.err);
    assert.is(r.out, "200 hello /agent\nechoed\n");
  });
}

test("the README's engine example and relay example run on Node from the installed package", () => {
  writeFileSync(join(app, "readme-engine.mjs"), readmeBlock("new Engine("));
  const engine = run([process.execPath, "readme-engine.mjs"]);
  assert.is(engine.code, 0, engine.err);
  assert.is(engine.out, "1 28 true\n");
  writeFileSync(join(app, "readme-relay.mjs"), readmeBlock("startRelay } from"));
  const relay = run([process.execPath, "readme-relay.mjs"]);
  assert.is(relay.code, 0, relay.err);
  assert.match(relay.out, /^ws:\/\/127\.0\.0\.1:\d+\/\n0\n$/);
});

/** A gateway's config (no Endpoint), and the public key it answers /status with. */
function gatewayConfig(): { text: string; publicKey: string } {
  const g = keypair(), page = keypair();
  return { text: `[Interface]\nPrivateKey = ${g.priv}\nAddress = 10.77.0.1/24\n\n[Peer]\nPublicKey = ${page.pub}\nAllowedIPs = 10.77.0.2/32\n`, publicKey: g.pub };
}

/** GET /status until it answers (or `ms` pass); its JSON. */
async function statusOf(port: number, alive: () => boolean, ms = 30_000): Promise<{ publicKey: string; sessions: number }> {
  for (const end = Date.now() + ms; Date.now() < end && alive();) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) return await res.json();
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("no /status answer");
}

test("the README's worker runs in workerd, bundled from the installed package", async () => {
  const workerd = join(ROOT, "node_modules", ".bin", "workerd");
  if (!existsSync(workerd)) return notRun(`no ${workerd}`);
  const site = join(dir, "worker");
  mkdirSync(site, { recursive: true });
  writeFileSync(join(app, "worker.js"), readmeBlock("gatewayWorker(wasm)"));
  await build({
    entryPoints: [join(app, "worker.js")], outfile: join(site, "worker.js"), bundle: true, format: "esm", platform: "browser",
    conditions: ["workerd", "worker"], absWorkingDir: app, logLevel: "warning", external: ["cloudflare:sockets"], // as wrangler leaves it
    plugins: [{
      name: "wasm-module",
      setup(b) {
        // What wrangler does with a .wasm import: the file beside the bundle, a CompiledWasm module.
        b.onResolve({ filter: /^wg-js\/engine\.wasm$/ }, async (a) => {
          if (a.pluginData === "inner") return undefined;
          const r = await b.resolve(a.path, { kind: "import-statement", resolveDir: app, pluginData: "inner" });
          if (r.errors.length) return { errors: r.errors };
          copyFileSync(r.path, join(site, "engine.wasm"));
          return { path: "./engine.wasm", external: true };
        });
      },
    }],
  });
  const conf = gatewayConfig();
  writeFileSync(join(site, "config.capnp"), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .w)],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
const w :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js"), (name = "engine.wasm", wasm = embed "engine.wasm")],
  bindings = [(name = "WG_CONFIG", fromEnvironment = "WG_CONFIG")],
  compatibilityDate = "2025-09-01",
);
`);
  const port = await freePort();
  const child = spawn(workerd, ["serve", join(site, "config.capnp"), "--socket-addr", `http=127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WG_CONFIG: conf.text },
  });
  let log = "";
  child.stdout!.on("data", (d) => { log += d; });
  child.stderr!.on("data", (d) => { log += d; });
  try {
    const s = await statusOf(port, () => child.exitCode === null).catch((e) => { throw new Error(`${(e as Error).message}: ${log}`); });
    assert.is(s.publicKey, conf.publicKey);
    assert.is(s.sessions, 0);
  } finally {
    await stop(child);
  }
});

test("the README's Deno gateway runs under deno serve from the installed package", async () => {
  const block = readmeBlock("wg-js/deno-gateway");
  writeFileSync(join(app, "gateway.js"), block);
  // The command its first line gives, with a free port (and no lock file, no download).
  const args = /deno serve (.*)$/m.exec(block)?.[1].trim().split(/\s+/);
  assert.ok(args, "the block says how to serve it");
  assert.equal(args.slice(0, 2), ["--host", "127.0.0.1"], "the README's deno serve stays on loopback");
  const conf = gatewayConfig();
  const port = await freePort();
  const child = spawn(bin("deno"), ["serve", "--port", String(port), "--node-modules-dir=manual", "--no-lock", ...args], { cwd: app, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", WG_CONFIG: conf.text } });
  let log = "";
  child.stdout!.on("data", (d) => { log += d; });
  child.stderr!.on("data", (d) => { log += d; });
  try {
    const s = await statusOf(port, () => child.exitCode === null).catch((e) => { throw new Error(`${(e as Error).message}: ${log}`); });
    assert.is(s.publicKey, conf.publicKey);
  } finally {
    await stop(child);
  }
});

test("bun --bun wg runs the installed CLI on Bun", () => {
  const r = run([bin("bun"), "--bun", "wg", "--version"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^wg-js v0\.1\.0 - a WireGuard engine for JavaScript runtimes \(Bun /);
});

test("npx wg genkey | npx wg pubkey from the installed package", () => {
  // The installed bin, not wireguard-tools' wg on the PATH.
  const v = run(["npx", "--no-install", "wg", "--version"]);
  assert.match(v.out, /^wg-js v0\.1\.0 - a WireGuard engine for JavaScript runtimes \(Node /, v.out + v.err);
  const k = run(["npx", "--no-install", "wg", "genkey"]);
  assert.is(k.code, 0, k.err);
  assert.match(k.out, /^[A-Za-z0-9+/]{43}=\n$/);
  const p = run(["npx", "--no-install", "wg", "pubkey"], { input: k.out });
  assert.is(p.code, 0, p.err);
  assert.match(p.out, /^[A-Za-z0-9+/]{43}=\n$/);
  assert.is.not(p.out, k.out);
});

test("deno publish --dry-run (the JSR package) is clean", () => {
  const r = run([bin("deno"), "publish", "--dry-run", "--allow-dirty"], { cwd: ROOT, timeout: 300_000 });
  assert.is(r.code, 0, r.err);
  assert.match(r.err + r.out, /Success Dry run complete/);
  assert.not.match(r.err + r.out, /warning/i);
});

test("npm run docs: the API reference of every entry, from its JSDoc", () => {
  const r = run(["npm", "run", "docs"], { cwd: ROOT, timeout: 300_000 });
  assert.is(r.code, 0, r.err);
  const docs = join(ROOT, "build", "docs");
  for (const e of ["node", "deno", "bun", "browser", "workerd", "deno-gateway", "relay"]) {
    assert.ok(existsSync(join(docs, e, "index.html")), `build/docs/${e}/index.html`);
  }
  const page = (p: string) => readFileSync(join(docs, p), "utf8");
  assert.match(page("node/~/openTunnel.html"), "Opens a tunnel inside this process");
  assert.match(page("browser/~/connect.html"), "Opens a tunnel from a wg-quick(8) config");
  assert.match(page("relay/~/startRelay.html"), "Starts a relay on");
});

// ---- the page's module, bundled from the installed package, in Chromium ----

const RELAY_PORT = 8093;

test("the README's page modules (the tunnel in the page, and in a Worker) bundled with esbuild from the installed package: Chromium -> installed wg relay -> wireguard-go", async () => {
  const why = unavailable() ?? await browserUnavailable();
  if (why) return notRun(why);
  const site = join(dir, "site");
  writeFileSync(join(app, "page.js"), `${readmeBlock("fetchThroughTunnel(")}\n${readmeBlock("fetchInWorker(")}`);
  await build({
    entryPoints: [join(app, "page.js")], outfile: join(site, "page.bundle.js"), bundle: true, format: "esm", platform: "browser",
    absWorkingDir: app, logLevel: "warning", metafile: true,
  }).then((r) => {
    const inputs = Object.keys(r.metafile!.inputs);
    assert.ok(inputs.some((p) => p.includes("node_modules/wg-js/build/lib/adapters/entries/browser.js")), "bundled from the installed package");
  });
  writeFileSync(join(site, "index.html"), `<!doctype html><meta charset="utf-8"><script type="module">
import { fetchThroughTunnel, fetchInWorker } from "./page.bundle.js";
window.fetchThroughTunnel = fetchThroughTunnel;
window.fetchInWorker = fetchInWorker;
document.title = "ready";
</script>`);
  writeFileSync(join(site, "serve.mjs"), `
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
const files = { "/": ["index.html", "text/html"], "/page.bundle.js": ["page.bundle.js", "text/javascript"] };
createServer((req, res) => {
  const f = files[new URL(req.url, "http://x").pathname];
  if (!f) { res.writeHead(404).end(); return; }
  res.writeHead(200, { "content-type": f[1] }).end(readFileSync(new URL(f[0], import.meta.url)));
}).listen(0, "127.0.0.1", function () { console.log("page on http://127.0.0.1:" + this.address().port + "/"); });
`);

  const L = await Layout.create(`wgpk-${process.pid}`);
  let page: ChromiumPage | null = null;
  try {
    const A = keypair(), B = keypair();
    await L.wireguardGo(L.a, L.name("a"), {
      priv: A.priv, listenPort: 51820, addresses: [`${INNER.a4}/24`], peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`] }],
    });
    const web = L.spawn(L.a, [process.execPath, L.file("web.mjs", `
import http from "node:http";
http.createServer((req, res) => res.writeHead(200, { "content-type": "text/plain" }).end("hello from wireguard-go's side, to the packaged page\\n"))
  .listen(80, ${JSON.stringify(INNER.a4)}, () => console.log("ready"));
`)]);
    await poll("the HTTP server", () => web.output().includes("ready") || !web.running, 5000);
    // The relay is the installed package's `wg` bin.
    const relay: Proc = L.spawn(L.b, [process.execPath, join(app, "node_modules", ".bin", "wg"), "relay", "--listen", `127.0.0.1:${RELAY_PORT}`, "--allow", `${OUTER.a4}:51820`]);
    await poll("the installed relay", () => /listening/.test(relay.output()) || !relay.running, 10_000);
    assert.ok(relay.running, relay.output());
    page = await ChromiumPage.open(L.b, { server: [process.execPath, join(site, "serve.mjs")] });
    await page.page.waitForFunction(() => document.title === "ready", undefined, { timeout: 10_000 });
    const config = `[Interface]\nPrivateKey = ${B.priv}\nAddress = ${INNER.b4}/32\n\n[Peer]\nPublicKey = ${A.pub}\nAllowedIPs = ${INNER.a4}/32\nEndpoint = ${OUTER.a4}:51820\n`;
    const got = await page.page.evaluate(([c, r, u]) => (window as unknown as { fetchThroughTunnel(c: string, r: string, u: string): Promise<unknown> }).fetchThroughTunnel(c, r, u),
      [config, `ws://127.0.0.1:${RELAY_PORT}/`, `http://${INNER.a4}/`]);
    assert.equal(got, { status: 200, body: "hello from wireguard-go's side, to the packaged page\n", handshake: true });
    const inWorker = await page.page.evaluate(([c, r, u]) => (window as unknown as { fetchInWorker(c: string, r: string, u: string): Promise<unknown> }).fetchInWorker(c, r, u),
      [config, `ws://127.0.0.1:${RELAY_PORT}/`, `http://${INNER.a4}/`]);
    assert.equal(inWorker, { status: 200, body: "hello from wireguard-go's side, to the packaged page\n", handshake: true }, "the same through the Worker");
    assert.equal(page.errors, []);
  } finally {
    await page?.close();
    await L.destroy();
  }
});

test.run();
