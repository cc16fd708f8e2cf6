// The Deno adapter (adapters/deno, wg.ts at the root), run as the real thing
// with node_modules/.bin/deno.
//
// Without root: wg.ts type-checks against Deno's own declarations (tsc
// leaves adapters/deno to Deno); the bare command prints the usage and the
// permissions of each command; a missing permission is one line naming the
// flag, never a prompt or a stack trace; X25519 through FFI (libsodium or
// OpenSSL) and without it (@noble/curves) passes RFC 7748 and the
// low-order points; genkey | pubkey agrees with node:crypto.
//
// With root, in network namespaces (test/_netns.ts) against wireguard-go:
// pings both ways over both inner and both outer families, the stock wg(8)
// on our socket and our `wg show` on wireguard-go's, a new listen port
// live, a default route (SO_MARK found through FFI), iperf3 both ways, and
// SIGTERM, `wg down` and the interface deleted under it, each leaving
// nothing behind.
//
// With CI=true a missing Deno, root or tool fails the suite; elsewhere one
// test says why that part did not run.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { nodeX25519 } from "../../adapters/node-compat/x25519.ts";
import { AgainstGo, INNER, OUTER, ROOT, RUN_DIR, keypair, must, notRun, run, sigterm, unavailable, wgQuickConf } from "../helpers/netns.ts";

const DENO = join(ROOT, "node_modules", ".bin", "deno");
const WG = join(ROOT, "wg.ts");
const ENV = { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };

const noDeno = existsSync(DENO) ? null : `no ${DENO} (npm install)`;

/** `deno run FLAGS wg.ts ARGS`, with stdin closed unless `input` is given (so Deno never prompts). */
function wg(flags: string[], args: string[], o: { input?: string; ns?: string } = {}) {
  return run([DENO, "run", ...flags, WG, ...args], { ...o, env: ENV, timeout: 30_000 });
}

const oneLine = (s: string) => s.trimEnd().split("\n").length === 1 && !/^\s+at /m.test(s);

test("wg.ts, adapters/deno and Deno's entries type-check with deno check", async () => {
  if (noDeno) return notRun(noDeno);
  const entries = ["deno.ts", "deno-gateway.ts", "core.ts", "relay.ts"].map((f) => join(ROOT, "adapters", "entries", f));
  const r = await run([DENO, "check", WG, ...entries], { env: ENV, timeout: 120_000 });
  assert.is(r.code, 0, r.stderr + r.stdout);
});

test("bare `deno run --allow-net --unstable wg.ts` prints the usage and each command's permissions", async () => {
  if (noDeno) return notRun(noDeno);
  const r = await wg(["--allow-net", "--unstable"], []);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: wg <cmd>/);
  assert.match(r.stdout, /Deno permissions/);
  for (const cmd of ["genkey", "show <interface>", "up <config>", "down <interface>"]) assert.match(r.stdout, cmd);
  // Deno 2 only warns about the flag it removed; deno.json's "unstable": ["net"] does the work.
  assert.match(r.stderr, /--unstable/);
  assert.not.match(r.stderr, /error/i);
});

test("a missing permission: one line naming the flag, exit 1, no prompt and no stack trace", async () => {
  if (noDeno) return notRun(noDeno);
  const dir = mkdtempSync(join(tmpdir(), "wgdeno-"));
  try {
    const conf = join(dir, "wgd0.conf");
    writeFileSync(conf, wgQuickConf({ priv: keypair().priv, addresses: ["10.99.0.1/24"], peers: [] }), { mode: 0o600 });
    const cases: [string[], string[], RegExp][] = [
      [[], ["up", conf], new RegExp(`^wg: needs --allow-read=${dir},${RUN_DIR} --allow-write=${RUN_DIR} --allow-run=ip --allow-net --allow-ffi --allow-sys=uid \\(reading the config; `)],
      [[`--allow-read=${dir}`, `--allow-read=${RUN_DIR}`, `--allow-write=${RUN_DIR}`, "--allow-run=ip", "--allow-net", "--allow-sys=uid"], ["up", conf],
        /^wg: needs --allow-ffi \(the TUN device, through libc\); or wg up --netstack, which needs only --allow-net\n$/],
      [[], ["show", "wgd0"], new RegExp(`^wg: needs --allow-read=${RUN_DIR} --allow-write=${RUN_DIR} --allow-net=unix:${RUN_DIR}/wgd0.sock \\(the interface's socket\\)`)],
      [[], ["show"], /^wg: needs .*--allow-run=ls/],
      [[], ["down", "wgd0"], /^wg: needs .*--allow-run \(/],
      [[`--allow-read=${RUN_DIR}`, `--allow-write=${RUN_DIR}`, `--allow-net=unix:${RUN_DIR}/wgd0.sock`], ["set", "wgd0", "private-key", join(dir, "key")],
        new RegExp(`^wg: needs --allow-read=${dir}/key \\(reading the private-key file\\)\\n$`)],
    ];
    for (const [flags, args, want] of cases) {
      const r = await wg(flags, args);
      const what = `deno run ${flags.join(" ")} wg.ts ${args.join(" ")}`;
      assert.is(r.code, 1, `${what}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr), `${what}: not one line:\n${r.stderr}`);
      assert.match(r.stderr, want, what);
      assert.is(r.stdout, "", what);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A Deno program, run from a temporary file with the project's deno.json; its last stdout line is JSON. */
async function denoScript(flags: string[], source: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), "wgdeno-"));
  try {
    const file = join(dir, "check.ts");
    writeFileSync(file, source);
    const r = await run([DENO, "run", "--config", join(ROOT, "deno.json"), ...flags, file], { env: ENV, timeout: 60_000 });
    assert.is(r.code, 0, r.stderr + r.stdout);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const url = (p: string) => pathToFileURL(join(ROOT, p)).href;

const X25519_CHECK = `
import { denoX25519 as dh, x25519Implementation } from "${url("adapters/deno/x25519.ts")}";
import v from "${url("test/vectors/x25519.json")}" with { type: "json" };
const unhex = (h: string) => Uint8Array.from(h.match(/../g)!, (b) => parseInt(b, 16));
const hex = (b: Uint8Array | null) => b === null ? "null" : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const bad: string[] = [];
const eq = (what: string, got: string, want: string) => { if (got !== want) bad.push(\`\${what}: \${got} != \${want}\`); };
for (const [i, t] of v.rfc7748_5_2.entries()) eq(\`5.2 #\${i + 1}\`, hex(dh.shared(unhex(t.scalar), unhex(t.u))), t.out);
let k = unhex(v.rfc7748_5_2_iterated.start), u = k.slice();
for (let i = 1; i <= 1000; i++) {
  const r = dh.shared(k, u)!;
  u = k; k = r;
  if (i === 1) eq("5.2 iterated once", hex(k), v.rfc7748_5_2_iterated.after1);
}
eq("5.2 iterated 1000 times", hex(k), v.rfc7748_5_2_iterated.after1000);
const s = v.rfc7748_6_1;
eq("6.1 Alice's public key", hex(dh.publicKey(unhex(s.alicePrivate))), s.alicePublic);
eq("6.1 Bob's public key", hex(dh.publicKey(unhex(s.bobPrivate))), s.bobPublic);
eq("6.1 shared", hex(dh.shared(unhex(s.alicePrivate), unhex(s.bobPublic))), s.shared);
for (const t of v.wycheproofValid) eq(\`wycheproof \${t.tcId}\`, hex(dh.shared(unhex(t.private), unhex(t.public))), t.shared);
const mine = dh.generate();
for (const t of v.lowOrder) eq(\`low order \${t.name}\`, hex(dh.shared(mine.privateKey, unhex(t.public))), "null");
for (const t of v.wycheproofZeroShared) eq(\`zero shared \${t.tcId}\`, hex(dh.shared(unhex(t.private), unhex(t.public))), "null");
const a = dh.generate(), b = dh.generate();
eq("generate: both ways", hex(dh.shared(a.privateKey, b.publicKey)), hex(dh.shared(b.privateKey, a.publicKey)));
eq("generate: clamped", String((a.privateKey[0] & 7) | ((a.privateKey[31] & 0xc0) ^ 0x40)), "0");
let thrown = "";
try { dh.shared(new Uint8Array(31), a.publicKey); } catch (e) { thrown = (e as Error).name; }
eq("a 31-byte key", thrown, "RangeError");
const t0 = performance.now();
let n = 0;
while (performance.now() - t0 < 300) { dh.shared(a.privateKey, b.publicKey); n++; }
console.log(JSON.stringify({ impl: x25519Implementation(), bad, perSecond: Math.round(n / ((performance.now() - t0) / 1000)) }));
`;

test("X25519 through FFI and without it: RFC 7748, Wycheproof, every low-order point gives null", async () => {
  if (noDeno) return notRun(noDeno);
  const native = await denoScript(["--allow-ffi"], X25519_CHECK);
  const noble = await denoScript([], X25519_CHECK);
  console.log(`  X25519 in Deno: ${native.impl} ${native.perSecond}/s, ${noble.impl} ${noble.perSecond}/s`);
  assert.equal(native.bad, []);
  assert.equal(noble.bad, []);
  assert.is(noble.impl, "@noble/curves");
  if (native.impl === "@noble/curves") notRun("neither libsodium nor OpenSSL's libcrypto could be opened: X25519 falls back to @noble/curves");
});

test("the runtime turns Deno's NotCapable into a one-line PermissionError naming the flag", async () => {
  if (noDeno) return notRun(noDeno);
  const r = await denoScript([], `
import { denoHost } from "${url("adapters/deno/host.ts")}";
const rt = denoHost();
const out: string[] = [];
for (const f of [() => rt.readFile("/etc/hostname"), () => rt.run(["ip", "link"]), async () => rt.isRoot(), () => rt.tunDevices()]) {
  try { await f(); out.push("no error"); } catch (e) { out.push(\`\${(e as Error).name}: \${(e as Error).message}\`); }
}
console.log(JSON.stringify({ out, env: rt.env("HOME") ?? null }));
`);
  assert.equal(r.out, [
    "PermissionError: needs --allow-read=/etc/hostname (reading /etc/hostname)",
    "PermissionError: needs --allow-run=ip (running ip)",
    "PermissionError: needs --allow-sys=uid (checking for root)",
    "PermissionError: needs --allow-ffi (the TUN device, through libc)",
  ]);
  assert.is(r.env, null, "an environment variable without --allow-env is undefined, not a prompt");
});

test("genkey | pubkey under Deno agree with node:crypto, with and without FFI", async () => {
  if (noDeno) return notRun(noDeno);
  const gen = await wg([], ["genkey"]);
  assert.is(gen.code, 0, gen.stderr);
  const priv = gen.stdout.trim();
  assert.match(priv, /^[A-Za-z0-9+/]{43}=$/);
  const expected = Buffer.from(nodeX25519.publicKey(new Uint8Array(Buffer.from(priv, "base64")))).toString("base64");
  for (const flags of [[], ["--allow-ffi"]]) {
    const pub = await wg(flags, ["pubkey"], { input: `${priv}\n` });
    assert.is(pub.code, 0, pub.stderr);
    assert.is(pub.stdout.trim(), expected, flags.join(" "));
  }
});

const why = noDeno ?? unavailable();
if (why !== null) test("the Deno adapter against wireguard-go", () => notRun(why));
else suite();
test.run();

function suite(): void {
  /** `deno run -A wg.ts up` in b (the README's command) against wireguard-go in a. */
  const G = AgainstGo.on(test, `wgdn-${process.pid}`, [DENO, "run", "-A", WG], { env: ENV, timeout: 20_000 });

  test("pings both ways, IPv4 and IPv6 inside, over IPv4 and over IPv6 outside", () => G.pingsBothWays());

  test("stock wg(8) on our socket, our wg show on wireguard-go's, a new listen port taken live", () => G.with({}, async (p) => {
    await p.pings(G.L.b, [INNER.a4]);
    await G.stockShow(p);
    const theirs = await wg(["-A"], ["show", p.goName], { ns: G.L.a });
    assert.is(theirs.code, 0, theirs.stderr);
    assert.match(theirs.stdout, `peer: ${G.B.pub}`);
    assert.match(theirs.stdout, `endpoint: ${OUTER.b4}:${G.portB}`);
    await G.newListenPort(p, G.portB + 5);
  }));

  test("a default route: fwmark policy routing, SO_MARK on the socket found through FFI", () => G.defaultRoute(async (p) => {
    const ss = await must(["ss", "-uane"], { ns: G.L.b });
    assert.match(ss, new RegExp(`:${G.portB}\\s.*fwmark:0xca6c`));
    await G.endsClean(p, "SIGTERM", sigterm);
  }));

  test("iperf3 TCP through the tunnel, both directions", () =>
    G.iperf(async () => (await run([DENO, "--version"], { env: ENV })).stdout.split("\n")[0]));

  test("SIGTERM, `wg down` and the interface deleted: exit 0, nothing left behind", async () => {
    await G.stopsClean("SIGTERM", sigterm);
    await G.stopsClean("deno run -A wg.ts down", async (p) => {
      const r = await wg(["-A"], ["down", p.name], { ns: G.L.b });
      assert.is(r.code, 0, r.stderr);
    });
    await G.stopsClean("ip link delete", (p) => must(["ip", "link", "delete", p.name], { ns: G.L.b }));
  });

  test("cleanup: no namespace, process, socket or pid file left", async () => {
    await G.L.destroy();
    assert.equal(G.L.leftovers(), []);
  });
}
