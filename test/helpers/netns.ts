// Two network namespaces joined by a veth pair, wireguard-go, iperf3 and this
// project's `wg up` in them: what test/interop.test.ts, test/bench-tunnel.ts
// and the adapter suites (AgainstGo) build their peers on. Needs root and the
// Debian packages wireguard-go, wireguard-tools, iproute2, iputils-ping and
// iperf3.
//
// All traffic stays inside the two namespaces (and their loopbacks). Names
// carry the process id, so concurrent runs do not meet; every process started
// here is tracked and killed by Layout.destroy, which also deletes the
// namespaces and any socket or pid file left under /var/run/wireguard by an
// interface of ours. A synchronous exit handler does the same if the process
// dies first.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Test } from "uvu";
import * as assert from "uvu/assert";
import { keyToBase64 } from "../../src/config.ts";
import { nobleX25519 } from "../../src/x25519.ts";

/** The repository root (this file runs bundled, from build/out/test). */
export { ROOT } from "./root.ts";
import { ROOT } from "./root.ts";
/** The Node CLI under test; WG_CLI points the tests at another build of it. */
export const CLI = process.env.WG_CLI ?? join(ROOT, "build", "lib", "adapters", "entries", "wg-node.js");
export const RUN_DIR = "/var/run/wireguard";

export type RuntimeName = "node" | "deno" | "bun";
/** How each runtime runs this project's `wg` (the commands the README gives). */
export function wgCommand(runtime: RuntimeName): string[] {
  const bin = (n: string) => join(ROOT, "node_modules", ".bin", n);
  if (runtime === "deno") return [bin("deno"), "run", "-A", "--node-modules-dir=manual", "--no-lock", "--no-remote", join(ROOT, "wg.ts")];
  if (runtime === "bun") return [bin("bun"), join(ROOT, "adapters", "entries", "wg-bun.ts")];
  return [process.execPath, CLI];
}

const TOOLS: [string, string][] = [
  ["wireguard-go", "wireguard-go"], ["wg", "wireguard-tools"], ["ip", "iproute2"], ["ping", "iputils-ping"], ["iperf3", "iperf3"],
];

/**
 * Which of `need` ([program, Debian package]) are not on PATH (or in
 * /usr/sbin), as one line with the apt-get command that installs them;
 * null when all are there.
 */
export function missingTools(need: [string, string][]): string | null {
  const path = (process.env.PATH ?? "/usr/bin:/bin").split(":").concat("/usr/sbin");
  const lacking = need.filter(([bin]) => !path.some((d) => {
    try { accessSync(join(d, bin), constants.X_OK); return true; } catch { return false; }
  }));
  if (lacking.length === 0) return null;
  return `missing ${lacking.map(([b]) => b).join(", ")} (apt-get install --no-install-recommends ${[...new Set(lacking.map(([, p]) => p))].join(" ")})`;
}

/** Why the namespace tests cannot run here, or null when they can. */
export function unavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root (network namespaces, TUN devices and wireguard-go need root)";
  const lacking = missingTools(TOOLS);
  if (lacking) return lacking;
  if (!existsSync("/dev/net/tun")) return "no /dev/net/tun";
  if (!existsSync(CLI)) return `${CLI} is not built (npm run build)`;
  return null;
}

/** Says why a test (or part of a suite) did not run; with CI=true that fails it instead. */
export function notRun(why: string): void {
  if (process.env.CI === "true") assert.unreachable(`${why} (required when CI=true)`);
  console.log(`  not run: ${why}`);
}

export interface Result { code: number | null; signal: string | null; stdout: string; stderr: string }

/** Runs a program (in namespace `ns` when given) to completion, killed after `timeout` ms. */
export function run(argv: string[], opts: { ns?: string; input?: string; timeout?: number; env?: Record<string, string> } = {}): Promise<Result> {
  const full = opts.ns ? ["ip", "netns", "exec", opts.ns, ...argv] : argv;
  return new Promise((resolve) => {
    const c = spawn(full[0], full.slice(1), {
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { ...process.env, ...opts.env },
    });
    let stdout = "", stderr = "";
    c.stdout!.on("data", (d) => { stdout += d; });
    c.stderr!.on("data", (d) => { stderr += d; });
    const timer = setTimeout(() => { stderr += `\n[killed after ${opts.timeout ?? 10_000} ms]`; c.kill("SIGKILL"); }, opts.timeout ?? 10_000);
    c.on("error", (e) => { clearTimeout(timer); resolve({ code: 127, signal: null, stdout, stderr: `${full[0]}: ${e.message}` }); });
    c.on("close", (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    if (c.stdin) { c.stdin.on("error", () => {}); c.stdin.end(opts.input); }
  });
}

/** Like run, but throws (with the output) unless the program exits 0; resolves with its stdout. */
export async function must(argv: string[], opts: Parameters<typeof run>[1] = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(`${opts.ns ? `[${opts.ns}] ` : ""}${argv.join(" ")}: exit ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Calls `fn` every `every` ms until it returns a truthy value; throws `what` after `ms`. */
export async function poll<T>(what: string, fn: () => Promise<T> | T, ms = 5000, every = 50): Promise<NonNullable<T>> {
  const end = performance.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(every);
  }
}

/**
 * A fresh X25519 key pair, base64 as wg(8) writes keys. Not node:crypto's
 * generateKeyPairSync with a JWK export: that can deadlock Node 20 (see
 * adapters/node-compat/x25519.ts), and it did, hanging a suite.
 */
export function keypair(): { priv: string; pub: string } {
  const { privateKey, publicKey } = nobleX25519.generate();
  return { priv: keyToBase64(privateKey), pub: keyToBase64(publicKey) };
}

/** A random preshared key, base64. */
export function psk(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
}

export interface PeerSpec {
  pub: string;
  psk?: string;
  /** `host:port` or `[v6]:port`. */
  endpoint?: string;
  allowedIps: string[];
  keepalive?: number;
}

/** A wg-quick(8) configuration file's text. */
export function wgQuickConf(o: { priv: string; listenPort?: number; addresses: string[]; peers: PeerSpec[]; extra?: string }): string {
  let s = `[Interface]\nPrivateKey = ${o.priv}\n`;
  if (o.listenPort !== undefined) s += `ListenPort = ${o.listenPort}\n`;
  if (o.addresses.length) s += `Address = ${o.addresses.join(", ")}\n`;
  if (o.extra) s += o.extra;
  for (const p of o.peers) {
    s += `\n[Peer]\nPublicKey = ${p.pub}\n`;
    if (p.psk) s += `PresharedKey = ${p.psk}\n`;
    s += `AllowedIPs = ${p.allowedIps.join(", ")}\n`;
    if (p.endpoint) s += `Endpoint = ${p.endpoint}\n`;
    if (p.keepalive !== undefined) s += `PersistentKeepalive = ${p.keepalive}\n`;
  }
  return s;
}

/** A long-running program in a namespace, its output kept. */
export class Proc {
  stdout = "";
  stderr = "";
  exited: Promise<{ code: number | null; signal: string | null }>;
  exit: { code: number | null; signal: string | null } | null = null;

  constructor(readonly child: ChildProcess, readonly label: string) {
    child.stdout?.on("data", (d) => { this.stdout += d; });
    child.stderr?.on("data", (d) => { this.stderr += d; });
    this.exited = new Promise((resolve) => {
      child.on("error", (e) => { this.stderr += String(e); this.exit ??= { code: 127, signal: null }; resolve(this.exit); });
      child.on("exit", (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
    });
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** Sends `signal`, waits up to `ms` for the exit, then SIGKILL. Resolves with the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM", ms = 3000): Promise<{ code: number | null; signal: string | null; timedOut: boolean }> {
    if (!this.running) return { ...this.exit!, timedOut: false };
    this.child.kill(signal);
    const t = await Promise.race([this.exited.then((e) => ({ ...e, timedOut: false })), sleep(ms).then(() => null)]);
    if (t) return t;
    this.child.kill("SIGKILL");
    return { ...(await this.exited), timedOut: true };
  }

  /** The output, for a failure message. */
  output(): string {
    return `${this.label}${this.exit ? ` (exited ${this.exit.code ?? this.exit.signal})` : ""}:\n${this.stderr}${this.stdout}`.trim();
  }
}

/** The outer (veth) addresses: the peer namespace `a` is .1 / ::1, ours `b` is .2 / ::2. */
export const OUTER = { a4: "192.168.77.1", b4: "192.168.77.2", a6: "fd77::1", b6: "fd77::2", v4cidr: 24, v6cidr: 64 };
/** The tunnel's addresses. */
export const INNER = { a4: "10.77.0.1", b4: "10.77.0.2", a6: "fd78::1", b6: "fd78::2" };

/** For Layout.ours: the environment of `wg up`, and how long it may take to come up (ms, 10 s unless given). */
export interface OursOptions { env?: Record<string, string>; timeout?: number; /** The config file's mode (default 0600). */ mode?: number }

const live = new Set<Layout>();
let exitHook = false;

/**
 * Namespaces `a` (the reference peer) and `b` (this project), a veth between
 * them with IPv4 and IPv6 addresses, and the processes started in them.
 */
export class Layout {
  readonly a: string;
  readonly b: string;
  readonly dir: string;
  private readonly procs = new Set<Proc>();
  /** Interface names whose /var/run/wireguard files are ours to remove. */
  private readonly names = new Set<string>();
  private seq = 0;

  private constructor(readonly tag: string) {
    this.a = `${tag}-a`;
    this.b = `${tag}-b`;
    this.dir = mkdtempSync(join(tmpdir(), `${tag}-`));
  }

  /** Creates the namespaces and the veth; `tag` should be unique to this run (e.g. carry the pid). */
  static async create(tag: string): Promise<Layout> {
    const l = new Layout(tag);
    live.add(l);
    if (!exitHook) {
      exitHook = true;
      process.on("exit", () => { for (const x of live) x.destroySync(); });
      for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => { for (const x of live) x.destroySync(); process.exit(130); });
    }
    try {
      await must(["ip", "netns", "add", l.a]);
      await must(["ip", "netns", "add", l.b]);
      await must(["ip", "link", "add", "va", "netns", l.a, "type", "veth", "peer", "name", "vb", "netns", l.b]);
      for (const [ns, dev, v4, v6] of [[l.a, "va", OUTER.a4, OUTER.a6], [l.b, "vb", OUTER.b4, OUTER.b6]]) {
        await must(["ip", "-n", ns, "address", "add", `${v4}/${OUTER.v4cidr}`, "dev", dev]);
        await must(["ip", "-n", ns, "address", "add", `${v6}/${OUTER.v6cidr}`, "dev", dev, "nodad"]);
        await must(["ip", "-n", ns, "link", "set", dev, "up"]);
        await must(["ip", "-n", ns, "link", "set", "lo", "up"]);
      }
    } catch (e) {
      await l.destroy();
      throw e;
    }
    return l;
  }

  /** A fresh interface name (at most 15 characters), unique to this run. */
  name(side: "a" | "b"): string {
    const n = `${this.tag.replace(/[^a-z0-9]/g, "").slice(0, 10)}${side}${this.seq++}`;
    this.names.add(n);
    return n;
  }

  /** Starts a long-running program in `ns`, tracked for destroy(); `stdin`: a pipe to write to (else none). */
  spawn(ns: string, argv: string[], env: Record<string, string> = {}, o: { stdin?: boolean } = {}): Proc {
    const c = spawn("ip", ["netns", "exec", ns, ...argv], { stdio: [o.stdin ? "pipe" : "ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    c.stdin?.on("error", () => {});
    const p = new Proc(c, `[${ns}] ${argv.join(" ")}`);
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** Writes a file in this run's temporary folder; returns its path. */
  file(name: string, text: string, mode = 0o600): string {
    const p = join(this.dir, name);
    writeFileSync(p, text, { mode });
    return p;
  }

  /**
   * wireguard-go as interface `name` in `ns`, configured with wg(8) and ip(8):
   * its key, port and peers, and `addresses` (CIDR) on the link, which is up.
   */
  async wireguardGo(ns: string, name: string, o: { priv: string; listenPort: number; addresses: string[]; peers: PeerSpec[] }): Promise<Proc> {
    this.names.add(name);
    const p = this.spawn(ns, ["wireguard-go", name], { WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" });
    await poll(`${name}.sock from wireguard-go`, () => existsSync(`${RUN_DIR}/${name}.sock`) || !p.running, 5000, 20);
    if (!p.running) throw new Error(p.output());
    const key = this.file(`${name}.key`, `${o.priv}\n`);
    const argv = ["wg", "set", name, "listen-port", String(o.listenPort), "private-key", key];
    for (const peer of o.peers) {
      argv.push("peer", peer.pub, "allowed-ips", peer.allowedIps.join(","));
      if (peer.endpoint) argv.push("endpoint", peer.endpoint);
      if (peer.keepalive) argv.push("persistent-keepalive", String(peer.keepalive));
      if (peer.psk) argv.push("preshared-key", this.file(`${name}.psk`, `${peer.psk}\n`));
    }
    await must(argv, { ns });
    for (const a of o.addresses) await must(["ip", "address", "add", a, "dev", name, ...(a.includes(":") ? ["nodad"] : [])], { ns });
    await must(["ip", "link", "set", name, "up"], { ns });
    return p;
  }

  /**
   * This project's `wg up` on a config file (the interface is named after the
   * file), in `ns`; resolves once the interface is up with its socket served.
   * `runtime` names a runtime (wgCommand) or is the whole command before `up`.
   */
  async ours(ns: string, name: string, conf: string, runtime: RuntimeName | string[] = "node", o: OursOptions = {}): Promise<Proc> {
    this.names.add(name);
    const path = this.file(`${name}.conf`, conf, o.mode);
    const p = this.spawn(ns, [...(typeof runtime === "string" ? wgCommand(runtime) : runtime), "up", path], o.env);
    await poll(`${name} up (wg up)`, async () => {
      if (!p.running) return true;
      if (!existsSync(`${RUN_DIR}/${name}.sock`)) return false;
      const r = await run(["ip", "-o", "link", "show", "dev", name], { ns });
      return r.code === 0 && /[<,]UP[,>]/.test(r.stdout);
    }, o.timeout ?? 10_000, 50);
    if (!p.running) throw new Error(`wg up exited early: ${p.output()}`);
    return p;
  }

  /** Kills every process started here, deletes the namespaces and this run's files. */
  async destroy(): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.stop("SIGTERM", 2000)));
    for (const ns of [this.a, this.b]) await run(["ip", "netns", "delete", ns]);
    this.removeFiles();
    live.delete(this);
  }

  /** destroy() for an exit handler: synchronous, best effort. */
  destroySync(): void {
    for (const p of this.procs) if (p.running) p.child.kill("SIGKILL");
    for (const ns of [this.a, this.b]) spawnSync("ip", ["netns", "delete", ns], { stdio: "ignore" });
    this.removeFiles();
    live.delete(this);
  }

  private removeFiles(): void {
    for (const n of this.names) {
      for (const ext of ["sock", "pid"]) rmSync(`${RUN_DIR}/${n}.${ext}`, { force: true });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Namespaces, interfaces' files and processes of this run still present (none after destroy). */
  leftovers(): string[] {
    const out: string[] = [];
    const list = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    for (const ns of [this.a, this.b]) if (new RegExp(`^${ns}( |$)`, "m").test(list)) out.push(`namespace ${ns}`);
    for (const n of this.names) for (const ext of ["sock", "pid"]) if (existsSync(`${RUN_DIR}/${n}.${ext}`)) out.push(`${RUN_DIR}/${n}.${ext}`);
    for (const p of this.procs) if (p.running) out.push(`process ${p.child.pid}: ${p.label}`);
    return out;
  }
}

/** Waits for an iperf3 server in `ns` on `port`, runs the client in the other namespace; Mbit/s received. */
export async function iperf(l: Layout, o: { serverNs: string; clientNs: string; server: string; port: number; seconds: number; reverse: boolean }): Promise<number> {
  const s = l.spawn(o.serverNs, ["iperf3", "-s", "-1", "-B", o.server, "-p", String(o.port)]);
  try {
    // iperf3's own "listening" line sits in its stdout buffer: ask the socket table.
    await poll("iperf3 server listening", async () => !s.running ||
      (await run(["ss", "-Hltn", `sport = :${o.port}`], { ns: o.serverNs })).stdout.includes(`:${o.port}`), 5000, 20);
    if (!s.running) throw new Error(s.output());
    const argv = ["iperf3", "-c", o.server, "-p", String(o.port), "-t", String(o.seconds), "-J", "--connect-timeout", "3000"];
    if (o.reverse) argv.push("-R");
    const r = await run(argv, { ns: o.clientNs, timeout: (o.seconds + 10) * 1000 });
    let j: { error?: string; end?: { sum_received?: { bits_per_second?: number } } } = {};
    try { j = JSON.parse(r.stdout); } catch { /* reported below */ }
    const bps = j.end?.sum_received?.bits_per_second;
    if (r.code !== 0 || j.error || !bps) {
      throw new Error(`iperf3${o.reverse ? " -R" : ""} failed (exit ${r.code ?? r.signal}): ${j.error ?? (r.stderr || r.stdout).trim().slice(0, 500)}`);
    }
    return bps / 1e6;
  } finally {
    await s.stop("SIGTERM", 1000);
  }
}

/** One ping from `ns` to `addr`, retried until a reply or `ms` passes. */
export async function ping(ns: string, addr: string, ms = 5000): Promise<boolean> {
  const end = performance.now() + ms;
  do {
    const r = await run(["ping", "-n", "-c", "1", "-W", "1", addr], { ns, timeout: 3000 });
    if (r.code === 0) return true;
  } while (performance.now() < end);
  return false;
}

/** wireguard-go in namespace a and this project's `wg up` in b, each the other's peer. */
export interface Pair {
  readonly go: Proc;
  readonly ours: Proc;
  /** wireguard-go's interface (in a) and ours (in b). */
  readonly goName: string;
  readonly name: string;
  /** Pings each of `addrs` from `ns`; fails, with both sides' output, at the first that gets no reply. */
  pings(ns: string, addrs: string[]): Promise<void>;
  /** Stops ours (SIGTERM, 3 s), then wireguard-go. */
  close(): Promise<void>;
}

/**
 * One runtime's `wg up` in namespace b against wireguard-go in a, over INNER's
 * addresses, with the same two key pairs and ports every time: pairs made to
 * order, and the checks the adapter suites (test/bun-adapter.test.ts,
 * test/deno-adapter.test.ts) run on each runtime.
 */
export class AgainstGo {
  /** wireguard-go's keys. */
  readonly A = keypair();
  /** Ours. */
  readonly B = keypair();
  /** Where ours reaches wireguard-go: over IPv4, over IPv6. */
  readonly v4: string;
  readonly v6: string;
  private layout?: Layout;

  /** `runtime` and `o` as Layout.ours takes them; `L` is made by start(). */
  constructor(readonly tag: string, readonly runtime: RuntimeName | string[], readonly o: OursOptions = {}, readonly portA = 51820, readonly portB = 51821) {
    this.v4 = `${OUTER.a4}:${portA}`;
    this.v6 = `[${OUTER.a6}]:${portA}`;
  }

  /** One for the tests of uvu suite `test`: its Layout made before them, destroyed after. */
  static on(test: Test, tag: string, runtime: RuntimeName | string[], o: OursOptions = {}): AgainstGo {
    const g = new AgainstGo(tag, runtime, o);
    test.before(() => g.start());
    test.after(async () => { await g.layout?.destroy(); });
    return g;
  }

  /** Creates the namespaces (Layout.create with this tag). */
  async start(): Promise<void> {
    this.layout = await Layout.create(this.tag);
  }

  /** The namespaces, once start() has made them. */
  get L(): Layout {
    if (!this.layout) throw new Error(`${this.tag}: the namespaces are not made yet (start)`);
    return this.layout;
  }

  /** wireguard-go (knowing our IPv4 endpoint), and ours reaching it at `endpoint` (v4) with `allowed` for it (its /32 and /128). */
  async pair(o: { endpoint?: string; allowed?: string[] } = {}): Promise<Pair> {
    const { L, A, B } = this;
    const goName = L.name("a"), name = L.name("b");
    const go = await L.wireguardGo(L.a, goName, {
      priv: A.priv, listenPort: this.portA, addresses: [`${INNER.a4}/24`, `${INNER.a6}/64`],
      peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`, `${INNER.b6}/128`], endpoint: `${OUTER.b4}:${this.portB}` }],
    });
    let ours: Proc;
    try {
      ours = await L.ours(L.b, name, wgQuickConf({
        priv: B.priv, listenPort: this.portB, addresses: [`${INNER.b4}/24`, `${INNER.b6}/64`],
        peers: [{ pub: A.pub, allowedIps: o.allowed ?? [`${INNER.a4}/32`, `${INNER.a6}/128`], endpoint: o.endpoint ?? this.v4 }],
      }), this.runtime, this.o);
    } catch (e) {
      await go.stop();
      throw e;
    }
    return {
      go, ours, goName, name,
      pings: async (ns, addrs) => {
        for (const addr of addrs) assert.ok(await ping(ns, addr), `no reply from ${addr} (ping in ${ns})\n${ours.output()}\n${go.output()}`);
      },
      close: async () => { await ours.stop("SIGTERM", 3000); await go.stop("SIGTERM", 2000); },
    };
  }

  /** Runs `fn` on a fresh pair (made as pair(o) makes it), closing the pair after. */
  async with<T>(o: Parameters<AgainstGo["pair"]>[0], fn: (p: Pair) => Promise<T>): Promise<T> {
    const p = await this.pair(o);
    try {
      return await fn(p);
    } finally {
      await p.close();
    }
  }

  /** With ours reaching wireguard-go over IPv4 and then over IPv6: pings both ways over both inner families. */
  async pingsBothWays(): Promise<void> {
    for (const endpoint of [this.v4, this.v6]) {
      await this.with({ endpoint }, async (p) => {
        await p.pings(this.L.b, [INNER.a4, INNER.a6]);
        await p.pings(this.L.a, [INNER.b4, INNER.b6]);
      });
    }
  }

  /** The stock wg(8)'s `show` on our socket: our interface, the peer, our port, its endpoint, a recent handshake. */
  async stockShow(p: Pair): Promise<void> {
    const text = await must(["wg", "show", p.name], { ns: this.L.b });
    const wants = [`interface: ${p.name}`, `peer: ${this.A.pub}`, `listening port: ${this.portB}`, `endpoint: ${this.v4}`, /latest handshake: (Now|\d+ seconds? ago)/];
    for (const want of wants) assert.match(text, want);
  }

  /** The stock wg(8) sets our listen port to `port`, taken live: pings through, and wireguard-go sees the new source port. */
  async newListenPort(p: Pair, port: number): Promise<void> {
    const { L } = this;
    await must(["wg", "set", p.name, "listen-port", String(port)], { ns: L.b });
    assert.is((await must(["wg", "show", p.name, "listen-port"], { ns: L.b })).trim(), String(port));
    await p.pings(L.b, [INNER.a4]);
    const ep = (await must(["wg", "show", p.goName, "endpoints"], { ns: L.a })).trim().split("\t")[1];
    assert.is(ep, `${OUTER.b4}:${port}`);
    await p.pings(L.a, [INNER.b6]);
  }

  /** A pair with a default route (AllowedIPs 0.0.0.0/0 and ::/0) through the tunnel, for `fn`: fwmark policy routing. */
  async defaultRoute<T>(fn: (p: Pair) => Promise<T>): Promise<T> {
    return this.with({ allowed: ["0.0.0.0/0", "::/0"] }, async (p) => {
      // Without the mark on our socket, our own datagrams would be routed into the tunnel.
      await p.pings(this.L.b, [INNER.a4, INNER.a6]);
      assert.is((await must(["wg", "show", p.name, "fwmark"], { ns: this.L.b })).trim(), "0xca6c");
      return fn(p);
    });
  }

  /** iperf3 TCP through a fresh pair's tunnel, sending and receiving, each over 20 Mbit/s; logs the rates after `label()`. */
  async iperf(label: () => Promise<string>): Promise<void> {
    await this.with({}, async (p) => {
      const { L } = this;
      await p.pings(L.b, [INNER.a4]);
      const rate = (reverse: boolean) => iperf(L, { serverNs: L.a, clientNs: L.b, server: INNER.a4, port: 5201, seconds: 3, reverse });
      const up = await rate(false), down = await rate(true);
      console.log(`  iperf3 -t 3, ${await label()}: sending ${up.toFixed(0)} Mbit/s, receiving (-R) ${down.toFixed(0)} Mbit/s`);
      assert.ok(up > 20, `sending: ${up.toFixed(1)} Mbit/s`);
      assert.ok(down > 20, `receiving: ${down.toFixed(1)} Mbit/s`);
      assert.ok(p.ours.running, p.ours.output());
    });
  }

  /** What `up` may leave in namespace b for interface `name`: the link, fwmark policy rules, the socket and pid files. */
  async leftBehind(name: string): Promise<string[]> {
    const out: string[] = [];
    if ((await run(["ip", "link", "show", "dev", name], { ns: this.L.b })).code === 0) out.push(`interface ${name}`);
    for (const f of ["-4", "-6"]) {
      for (const l of (await must(["ip", f, "rule"], { ns: this.L.b })).split("\n")) {
        if (/fwmark|suppress_prefixlength/.test(l)) out.push(`rule ${f} ${l.trim()}`);
      }
    }
    for (const ext of ["sock", "pid"]) if (existsSync(`${RUN_DIR}/${name}.${ext}`)) out.push(`${RUN_DIR}/${name}.${ext}`);
    return out;
  }

  /**
   * Does `stop` (named `what`) to pair `p`, then gives our `wg up` 5 s: it must
   * exit 0 and leave nothing behind. Resolves with the ms from `stop` to the exit.
   */
  async endsClean(p: Pair, what: string, stop: (p: Pair) => unknown): Promise<number> {
    const t = performance.now();
    await stop(p);
    const e = await Promise.race([p.ours.exited, sleep(5000).then(() => null)]);
    const ms = performance.now() - t;
    assert.ok(e, `still running 5 s after ${what}\n${p.ours.output()}`);
    assert.is(e!.code, 0, p.ours.output());
    assert.equal(await this.leftBehind(p.name), [], what);
    return ms;
  }

  /** A fresh pair, pinged through from b, then endsClean(what, stop). */
  async stopsClean(what: string, stop: (p: Pair) => unknown): Promise<number> {
    return this.with({}, async (p) => {
      await p.pings(this.L.b, [INNER.a4]);
      return this.endsClean(p, what, stop);
    });
  }
}

/** For endsClean: SIGTERM to our `wg up`. */
export const sigterm = (p: Pair): void => { p.ours.child.kill("SIGTERM"); };
