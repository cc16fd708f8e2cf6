// A host without FFI (no koffi, no glibc, Deno without --allow-ffi, bun:ffi
// failing): nothing native is loaded at import, so everything but the TUN
// device works, on Node, Deno and Bun. FFI loading is made to fail with the
// hooks in test/system/no-ffi/ (Node: "koffi" not found, or a koffi whose
// load() fails; Bun: a bun:ffi whose dlopen fails) and Deno's --deny-ffi.
// With it failing, each runtime:
// - imports every entry of the package and pings between two in-process
//   tunnels on loopback (library.mjs);
// - runs `wg genkey | wg pubkey`; two `wg up --netstack` on loopback, one
//   serving a host's HTTP server inside the tunnel, the other's HTTP proxy
//   fetching it; `wg relay` carrying datagrams to a UDP echo server;
// - and says in one line, naming --netstack (or on Deno the flag), that
//   `wg up` cannot open a TUN device here.
// Nothing here needs root; all traffic is on loopback.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, get, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { keyToBase64 } from "../../src/config.ts";
import { nobleX25519 } from "../../src/x25519.ts";
import { CLI, ROOT, notRun, type RuntimeName } from "../helpers/netns.ts";
import { freePort, stop } from "../helpers/proc.ts";
import { echoServer, open, pattern, waitFor } from "../helpers/relay.ts";

const HERE = join(ROOT, "test", "system", "no-ffi");
const bin = (n: string) => join(ROOT, "node_modules", ".bin", n);
const ENTRIES_JS = pathToFileURL(join(ROOT, "build", "lib", "adapters", "entries")).href;
const ENTRIES_TS = pathToFileURL(join(ROOT, "adapters", "entries")).href;

/** A way of making FFI fail on a runtime, and the command lines it gives. */
interface Variant {
  runtime: RuntimeName;
  name: string;
  env: Record<string, string>;
  /** argv to run a script of this folder with FFI failing. */
  script(file: string, args: string[]): string[];
  /** argv of the `wg` command with FFI failing. */
  wg(args: string[]): string[];
  /** What `wg up CONFIG` (a TUN device) says, as a pattern of its one line. */
  tunLine: RegExp;
}

const DENO_FLAGS = ["--allow-net", "--allow-read", "--allow-write=/var/run/wireguard", "--allow-env", "--deny-ffi", "--node-modules-dir=manual", "--no-lock", "--no-remote"];
const VARIANTS: Variant[] = [
  {
    runtime: "node", name: "koffi not installed", env: { WG_NO_FFI: "no-koffi" },
    script: (f, a) => [process.execPath, "--import", join(HERE, "node-register.mjs"), f, ...a],
    wg: (a) => [process.execPath, "--import", join(HERE, "node-register.mjs"), CLI, ...a],
    tunLine: /^wg: the TUN device on Node needs the koffi package, which is not installed \(npm install koffi; or use wg up --netstack, which needs no TUN device\)\n$/,
  },
  {
    runtime: "node", name: "no libc.so.6", env: { WG_NO_FFI: "no-libc" },
    script: (f, a) => [process.execPath, "--import", join(HERE, "node-register.mjs"), f, ...a],
    wg: (a) => [process.execPath, "--import", join(HERE, "node-register.mjs"), CLI, ...a],
    tunLine: /^wg: this host has no TUN support yet \(cannot load libc\.so\.6: libc\.so\.6: cannot open shared object file: No such file or directory\): use wg up --netstack, the userspace TCP\/IP stack, instead\n$/,
  },
  {
    runtime: "deno", name: "--deny-ffi", env: {},
    script: (f, a) => [bin("deno"), "run", ...DENO_FLAGS, f, ...a],
    wg: (a) => [bin("deno"), "run", ...DENO_FLAGS, join(ROOT, "wg.ts"), ...a],
    tunLine: /^wg: needs .*--allow-ffi.*\(.*the TUN device, through libc.*\).*; or wg up --netstack, which needs only --allow-net\n$/,
  },
  {
    runtime: "bun", name: "bun:ffi's dlopen failing", env: {},
    script: (f, a) => [bin("bun"), "--preload", join(HERE, "bun-preload.js"), f, ...a],
    wg: (a) => [bin("bun"), "--preload", join(HERE, "bun-preload.js"), join(ROOT, "adapters", "entries", "wg-bun.ts"), ...a],
    tunLine: /^wg: this host has no TUN support yet \(cannot load libc\.so\.6 through bun:ffi: libc\.so\.6: cannot open shared object file: No such file or directory\): use wg up --netstack, the userspace TCP\/IP stack, instead\n$/,
  },
];

function run(argv: string[], env: Record<string, string>, input?: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, input, encoding: "utf8", timeout: 60_000, env: { ...process.env, ...env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } });
  return { code: r.status, out: r.stdout ?? "", err: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

interface Proc { child: ChildProcess; out: () => string; err: () => string }
const procs: ChildProcess[] = [];

function start(argv: string[], env: Record<string, string>): Proc {
  const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, env: { ...process.env, ...env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  procs.push(child);
  let out = "", err = "";
  child.stdout!.on("data", (d) => { out += d; });
  child.stderr!.on("data", (d) => { err += d; });
  return { child, out: () => out, err: () => err };
}

/** GET `url` through the HTTP proxy at 127.0.0.1:`port`; the status and body. */
function viaProxy(port: number, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: "127.0.0.1", port, path: url, headers: { host: new URL(url).host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.setTimeout(15_000, () => req.destroy(new Error("no answer through the proxy in 15 s")));
  });
}

function missing(v: Variant): string | null {
  if (v.runtime === "node") return spawnSync("test", ["-f", CLI]).status === 0 ? null : `${CLI} is not built (npm run build)`;
  return spawnSync(bin(v.runtime), ["--version"]).status === 0 ? null : `no ${bin(v.runtime)}`;
}

let n = 0;
for (const v of VARIANTS) {
  const label = `${v.runtime} (${v.name})`;

  test(`${label}: every entry imports, and two tunnels in one process ping`, () => {
    const why = missing(v);
    if (why) return notRun(why);
    const [dir, ext] = v.runtime === "node" ? [ENTRIES_JS, "js"] : [ENTRIES_TS, "ts"];
    const r = run(v.script(join(HERE, "library.mjs"), [dir, ext, v.runtime]), v.env);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /^OK entries=8 exports=\d+ rtt=[0-9.]+\n$/);
  });

  test(`${label}: wg genkey | pubkey, two wg up --netstack with an HTTP proxy, wg relay; wg up says it has no TUN in one line`, async () => {
    const why = missing(v);
    if (why) return notRun(why);
    const key = run(v.wg(["genkey"]), v.env);
    assert.is(key.code, 0, key.err);
    assert.match(key.out, /^[A-Za-z0-9+/]{43}=\n$/);
    const pub = run(v.wg(["pubkey"]), v.env, key.out);
    assert.is(pub.code, 0, pub.err);
    assert.is(pub.out, keyToBase64(nobleX25519.publicKey(Uint8Array.from(atob(key.out.trim()), (c) => c.charCodeAt(0)))) + "\n");

    const dir = mkdtempSync(join(tmpdir(), "wg-js-noffi-"));
    let web: Server | null = null;
    const echo = await echoServer(4);
    try {
      // A host HTTP server, reached from inside the tunnel through A's [TCPServerTunnel].
      web = createServer((req, res) => { res.end(`hello ${req.url} from the host\n`); });
      await new Promise<void>((r) => web!.listen(0, "127.0.0.1", r));
      const webPort = (web.address() as { port: number }).port;
      const ka = nobleX25519.generate(), kb = nobleX25519.generate();
      const [udpA, proxyPort] = [await freePort(), await freePort()];
      const i = ++n, net = `10.${234 + i}.0`;
      const a = join(dir, `nfa${i}.conf`), b = join(dir, `nfb${i}.conf`);
      writeFileSync(a, `[Interface]\nPrivateKey = ${keyToBase64(ka.privateKey)}\nAddress = ${net}.1/32\nListenPort = ${udpA}\n\n` +
        `[Peer]\nPublicKey = ${keyToBase64(kb.publicKey)}\nAllowedIPs = ${net}.2/32\n\n[TCPServerTunnel]\nListenPort = 80\nTarget = 127.0.0.1:${webPort}\n`);
      writeFileSync(b, `[Interface]\nPrivateKey = ${keyToBase64(kb.privateKey)}\nAddress = ${net}.2/32\n\n` +
        `[Peer]\nPublicKey = ${keyToBase64(ka.publicKey)}\nAllowedIPs = ${net}.1/32\nEndpoint = 127.0.0.1:${udpA}\n\n[http]\nBindAddress = 127.0.0.1:${proxyPort}\n`);
      const pa = start(v.wg(["up", "--netstack", a]), v.env), pb = start(v.wg(["up", "--netstack", b]), v.env);
      for (const p of [pa, pb]) {
        await waitFor(`${label}: up --netstack to be ready (${p.err()})`, () => /\[#\] ready\n/.test(p.err()) || p.child.exitCode !== null, 30_000);
        assert.match(p.err(), /\[#\] ready\n/);
      }
      const page = await viaProxy(proxyPort, `http://${net}.1/through-the-tunnel`);
      assert.equal(page, { status: 200, body: "hello /through-the-tunnel from the host\n" });

      // wg show and wg set, against up --netstack's UAPI socket (served where /var/run/wireguard is writable).
      if (/UAPI on /.test(pa.err())) {
        const show = run(v.wg(["show", `nfa${i}`, "dump"]), v.env);
        assert.is(show.code, 0, show.err);
        assert.match(show.out, keyToBase64(kb.publicKey));
        const set = run(v.wg(["set", `nfa${i}`, "peer", keyToBase64(kb.publicKey), "persistent-keepalive", "25"]), v.env);
        assert.is(set.code, 0, set.err);
        assert.is(run(v.wg(["show", `nfa${i}`, "persistent-keepalive"]), v.env).out, `${keyToBase64(kb.publicKey)}\t25\n`);
      } else if (process.getuid?.() === 0) assert.unreachable(`as root, up --netstack serves its UAPI socket: ${pa.err()}`);

      const relay = start(v.wg(["relay", "--listen", "127.0.0.1:0", "--allow", `127.0.0.1:${echo.port}`]), v.env);
      await waitFor(`${label}: the relay to listen (${relay.err()})`, () => /listening/.test(relay.out()) || relay.child.exitCode !== null, 30_000);
      const m = /^relay listening on (ws:\/\/127\.0\.0\.1:\d+\/) for 1 upstream\n$/.exec(relay.out());
      assert.ok(m, `${relay.out()} ${relay.err()}`);
      const client = await open(`${m![1]}?to=127.0.0.1:${echo.port}`);
      await client.echo(pattern(148));
      client.ws.close();

      // A TUN device is what this host cannot give: one line, naming what to do.
      const conf = join(dir, `nft${i}.conf`);
      writeFileSync(conf, `[Interface]\nPrivateKey = ${keyToBase64(ka.privateKey)}\nAddress = 10.99.${i}.1/32\n`);
      const up = run(v.wg(["up", conf]), v.env);
      assert.is(up.code, 1, up.err);
      assert.match(up.err, v.tunLine);
      assert.is(up.err.trimEnd().split("\n").length, 1, `one line: ${up.err}`);
      // SIGTERM: each ends, and takes its UAPI socket and pid file with it.
      for (const [p, name] of [[pa, `nfa${i}`], [pb, `nfb${i}`], [relay, ""]] as const) {
        const code = await new Promise<number | null>((resolve) => {
          if (p.child.exitCode !== null) { resolve(p.child.exitCode); return; }
          p.child.once("exit", (c) => resolve(c));
          p.child.kill("SIGTERM");
        });
        assert.is(code, 0, `${name || "the relay"} exits 0 on SIGTERM: ${p.err()}`);
        if (name) assert.not.ok(existsSync(`/var/run/wireguard/${name}.sock`), `${name}'s socket removed`);
      }
    } finally {
      for (const p of procs.splice(0)) await stop(p);
      await echo.close();
      web?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("node (ws not installed): wg relay says in one line that it needs ws", () => {
  if (missing(VARIANTS[0])) return notRun(missing(VARIANTS[0])!);
  const r = run([process.execPath, "--import", join(HERE, "node-register.mjs"), CLI, "relay", "--listen", "127.0.0.1:0", "--allow", "127.0.0.1:9"], { WG_NO_FFI: "no-ws" });
  assert.is(r.code, 1);
  assert.is(r.err, "wg: the relay on Node needs the ws package, which is not installed (npm install ws)\n");
});

test.run();
