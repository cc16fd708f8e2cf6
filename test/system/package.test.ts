// The package as a user gets it: this checkout packed (npm pack), installed
// into an empty project without dev dependencies (build/package.mjs), and
// used from there:
// - its installed size, printed, under 15 MB;
// - every entry imported on Node;
// - a consumer type-checked with tsc --strict against the package's .d.ts
//   (skipLibCheck off, so every declaration it loads is checked);
// - the README's library example, as written, on Node, and on Deno and Bun
//   with its import changed as its comment says;
// - `npx wg genkey | npx wg pubkey` from the installed bin;
// - the browser entry bundled with esbuild from the installed package into
//   the example page, in Chromium, through the installed `wg relay`, to
//   wireguard-go (needs root);
// and `deno publish --dry-run` of the checkout (the JSR package) is clean.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { install, pack, packagesIn, sizeOf, SIZE_LIMIT } from "../../build/package.mjs";
import { INNER, Layout, OUTER, ROOT, keypair, notRun, poll, unavailable, type Proc } from "../helpers/netns.ts";
import { ChromiumPage, browserUnavailable } from "../helpers/browser.ts";

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
  assert.equal(shipped.filter((f: string) => /^(test|assembly|\.ci|docs|examples)\/|\.map$|\.wat$|\.png$/.test(f)), [], "no tests, sources of the WASM, maps or pictures");
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

/** The README's library example: the first ```js block after its marker. */
function readmeExample(): string {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  const at = text.indexOf("<!-- The block below is run as written by test/system/package.test.ts");
  assert.ok(at >= 0, "the README marks its library example");
  const m = /```js\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, "a js block follows the marker");
  return m![1];
}

for (const runtime of ["node", "deno", "bun"] as const) {
  test(`the README's library example runs on ${runtime} from the installed package`, () => {
    const code = readmeExample();
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

test("npx wg genkey | npx wg pubkey from the installed package", () => {
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

// ---- the browser entry, bundled from the installed package, in Chromium ----

const RELAY_PORT = 8093;
const BIG = 4 << 20;

test("the browser entry bundled with esbuild from the installed package: Chromium -> installed wg relay -> wireguard-go", async () => {
  const why = unavailable() ?? await browserUnavailable();
  if (why) return notRun(why);
  // The example page, its script bundled with "./wg.js" taken from the installed package's browser entry.
  const site = join(dir, "site");
  await build({
    entryPoints: [join(ROOT, "examples", "app.js")], outfile: join(site, "app.js"), bundle: true, format: "esm", platform: "browser",
    logLevel: "warning", absWorkingDir: app,
    plugins: [{
      name: "wg-js-from-the-package",
      setup(b) {
        b.onResolve({ filter: /^\.\/wg\.js$/ }, async () => {
          const r = await b.resolve("wg-js/browser", { kind: "import-statement", resolveDir: app });
          if (r.errors.length) return { errors: r.errors };
          assert.ok(r.path.startsWith(join(app, "node_modules", "wg-js")), r.path);
          return { path: r.path };
        });
      },
    }],
  });
  copyFileSync(join(ROOT, "examples", "index.html"), join(site, "index.html"));
  writeFileSync(join(site, "serve.mjs"), `
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
const files = { "/": ["index.html", "text/html"], "/app.js": ["app.js", "text/javascript"] };
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
    const big = randomBytes(BIG);
    const bigFile = join(L.dir, "big.bin");
    writeFileSync(bigFile, big);
    const web = L.spawn(L.a, [process.execPath, L.file("web.mjs", `
import http from "node:http";
import { readFileSync } from "node:fs";
const big = readFileSync(${JSON.stringify(bigFile)});
http.createServer((req, res) => {
  if (req.url === "/big") { res.end(big); return; }
  res.writeHead(200, { "content-type": "text/plain" }).end("hello from wireguard-go's side, to the packaged page\\n");
})
  .listen(80, ${JSON.stringify(INNER.a4)}, () => console.log("ready"));
`)]);
    await poll("the HTTP server", () => web.output().includes("ready") || !web.running, 5000);
    // The relay is the installed package's `wg` bin.
    const relay: Proc = L.spawn(L.b, [process.execPath, join(app, "node_modules", ".bin", "wg"), "relay", "--listen", `127.0.0.1:${RELAY_PORT}`, "--allow", `${OUTER.a4}:51820`]);
    await poll("the installed relay", () => /listening/.test(relay.output()) || !relay.running, 10_000);
    assert.ok(relay.running, relay.output());
    page = await ChromiumPage.open(L.b, { server: [process.execPath, join(site, "serve.mjs")] });
    await page.connect(`[Interface]\nPrivateKey = ${B.priv}\nAddress = ${INNER.b4}/32\n\n[Peer]\nPublicKey = ${A.pub}\nAllowedIPs = ${INNER.a4}/32\nEndpoint = ${OUTER.a4}:51820\n`,
      `ws://127.0.0.1:${RELAY_PORT}/`);
    const small = await page.fetch(`http://${INNER.a4}/`);
    assert.is(small.status, "200");
    assert.match(small.text, "to the packaged page");
    const got = await page.fetch(`http://${INNER.a4}/big`);
    assert.is(got.bytes, BIG);
    assert.is(got.sha256, createHash("sha256").update(big).digest("hex"));
    assert.equal(page.errors, []);
  } finally {
    await page?.close();
    await L.destroy();
  }
});

test.run();
