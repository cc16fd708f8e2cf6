// The rig of test/system/hostile.test.ts: namespace a holds wireguard-go (the
// legitimate peer), tcpdump (capturing what crosses the link) and the
// attacker (attacker.proc.ts, with a few hundred source addresses of its own);
// namespace b holds this project's `wg up` under test and a UDP listener.
// Each attack class runs while a ping stream flows from a through the tunnel,
// and records the stream's delivery, our process's memory and which of its
// counters moved.
import { createInterface } from "node:readline";
import { connect } from "node:net";
import { join } from "node:path";
import { Layout, Proc, ROOT, RUN_DIR, keypair, must, poll, sleep, wgQuickConf, type RuntimeName } from "../../helpers/netns.ts";

export const ATTACKER = join(ROOT, "build", "out", "test", "system", "hostile", "attacker.proc.js");
export const OUR_PORT = 51821, GO_PORT = 51820;
export const A4 = "192.168.77.1", B4 = "192.168.77.2";
/** Tunnel addresses: wireguard-go's, ours, mallory's. */
export const INNER_A = "10.77.0.1", INNER_B = "10.77.0.2", INNER_M = "10.77.0.66";

export interface Keys { go: { priv: string; pub: string }; ours: { priv: string; pub: string }; mallory: { priv: string; pub: string } }

/** A line-per-command client of a program speaking JSON on stdin/stdout. */
export class Commands {
  private seq = 0;
  private readonly waiting = new Map<number, (v: Record<string, unknown>) => void>();
  readonly ready: Promise<Record<string, unknown>>;

  constructor(readonly proc: Proc) {
    let first: (v: Record<string, unknown>) => void = () => {};
    this.ready = new Promise((r) => { first = r; });
    createInterface({ input: proc.child.stdout! }).on("line", (line) => {
      let msg: Record<string, unknown>;
      try { msg = JSON.parse(line); } catch { return; }
      if (typeof msg.id === "number") { this.waiting.get(msg.id)?.(msg); this.waiting.delete(msg.id); } else first(msg);
    });
  }

  /** Sends one command; resolves with its answer, or rejects after `ms` or if the program exits. */
  ask(cmd: string, args: Record<string, unknown> = {}, ms = 120_000): Promise<Record<string, unknown>> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd}: no answer in ${ms} ms\n${this.proc.output()}`)), ms);
      this.waiting.set(id, (v) => { clearTimeout(timer); v.error ? reject(new Error(`${cmd}: ${v.error}`)) : resolve(v); });
      void this.proc.exited.then(() => { clearTimeout(timer); reject(new Error(`${cmd}: the program exited\n${this.proc.output()}`)); });
      this.proc.child.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }
}

/** One request on our UAPI socket; the answer's key=value lines (repeated keys: the last). */
export function uapi(name: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(`${RUN_DIR}/${name}.sock`);
    let text = "";
    s.setEncoding("utf8");
    s.on("data", (d) => { text += d; if (/errno=-?\d+\n\n$/.test(text)) { s.end(); resolve(text); } });
    s.on("error", reject);
    s.on("close", () => resolve(text));
    s.write(request);
  });
}

export async function stats(name: string): Promise<Record<string, number>> {
  const text = await uapi(name, "stats=1\n\n");
  const out: Record<string, number> = {};
  for (const l of text.split("\n")) {
    const [k, v] = l.split("=");
    if (k && v !== undefined && k !== "errno") out[k] = v === "true" ? 1 : v === "false" ? 0 : Number(v);
  }
  return out;
}

/** A peer's fields from get=1, by its public key in hex. */
export async function peerStatus(name: string, pubHex: string): Promise<Record<string, string>> {
  const text = await uapi(name, "get=1\n\n");
  const out: Record<string, string> = {};
  let mine = false;
  for (const l of text.split("\n")) {
    const [k, v] = [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)];
    if (k === "public_key") mine = v === pubHex;
    else if (mine) out[k] = v;
  }
  return out;
}

/** A ping stream, 100 a second, from `ns` to `addr`; stop() gives its delivery. */
export function pingStream(L: Layout, ns: string, addr: string, extra: string[] = []): { stop(): Promise<{ sent: number; received: number }> } {
  const p = L.spawn(ns, ["ping", "-n", "-q", "-i", "0.01", "-W", "2", ...extra, addr]);
  return {
    async stop() {
      await sleep(1000); // replies in flight
      p.child.kill("SIGINT");
      await p.exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(p.stdout);
      if (!m) throw new Error(`ping printed no summary: ${p.output()}`);
      return { sent: Number(m[1]), received: Number(m[2]) };
    },
  };
}

/** The whole rig, up, with a first handshake done and captured. */
export interface Rig {
  L: Layout;
  keys: Keys;
  goName: string;
  name: string;
  go: Proc;
  ours: Proc;
  capture: Proc;
  capFile: string;
  attacker: Commands;
  listener: Commands;
}

/** Addresses for namespace a's link: many IPv4 in the link's /24 and routed ones, IPv6 in the link's /64 and 50 other /64s. */
export const SOURCES = {
  v4: Array.from({ length: 100 }, (_, i) => `192.168.77.${100 + i}`),
  v4routed: Array.from({ length: 50 }, (_, i) => `10.200.${1 + (i >> 4)}.${1 + (i & 15)}`),
  v6sameNet: Array.from({ length: 100 }, (_, i) => `fd77::100:${(i + 1).toString(16)}`),
  v6nets: Array.from({ length: 50 }, (_, i) => `fd7a:0:${(i + 1).toString(16)}::1`),
};

export async function rig(tag: string, runtime: RuntimeName): Promise<Rig> {
  const L = await Layout.create(tag);
  const keys: Keys = { go: keypair(), ours: keypair(), mallory: keypair() };
  // The attacker's own addresses, and routes back to them from b.
  const batch = [
    ...SOURCES.v4.map((a) => `address add ${a}/24 dev va`),
    ...SOURCES.v4routed.map((a) => `address add ${a}/32 dev va`),
    ...SOURCES.v6sameNet.map((a) => `address add ${a}/64 dev va nodad`),
    ...SOURCES.v6nets.map((a) => `address add ${a}/64 dev va nodad`),
  ].join("\n");
  await must(["ip", "-n", L.a, "-batch", L.file("sources.batch", batch + "\n")]);
  await must(["ip", "-n", L.b, "route", "add", "10.200.0.0/16", "via", A4]);
  await must(["ip", "-n", L.b, "-6", "route", "add", "fd7a::/32", "via", "fd77::1"]);

  const capFile = join(L.dir, "wire.pcap");
  const capture = L.spawn(L.a, ["tcpdump", "-i", "va", "-U", "-n", "-s", "2048", "-w", capFile, "udp", "port", String(OUR_PORT)]);
  await poll("tcpdump listening", () => /listening on/.test(capture.stderr) || !capture.running, 10_000);
  if (!capture.running) throw new Error(capture.output());

  const goName = L.name("a"), name = L.name("b");
  const go = await L.wireguardGo(L.a, goName, {
    priv: keys.go.priv, listenPort: GO_PORT, addresses: ["10.77.0.1/24"],
    peers: [{ pub: keys.ours.pub, allowedIps: [`${INNER_B}/32`], endpoint: `${B4}:${OUR_PORT}` }],
  });
  const ours = await L.ours(L.b, name, wgQuickConf({
    priv: keys.ours.priv, listenPort: OUR_PORT, addresses: [`${INNER_B}/24`],
    peers: [{ pub: keys.go.pub, allowedIps: [`${INNER_A}/32`], endpoint: `${A4}:${GO_PORT}` }, { pub: keys.mallory.pub, allowedIps: [`${INNER_M}/32`] }],
  }), runtime, { timeout: 20_000 });
  const attacker = new Commands(L.spawn(L.a, [process.execPath, ATTACKER, JSON.stringify({
    target: B4, target6: "fd77::2", port: OUR_PORT, targetPublic: keys.ours.pub, malloryPrivate: keys.mallory.priv,
  })], {}, { stdin: true }));
  const listener = new Commands(L.spawn(L.b, [process.execPath, ATTACKER, "listen", "9"], {}, { stdin: true }));
  await Promise.all([attacker.ready, listener.ready]);
  return { L, keys, goName, name, go, ours, capture, capFile, attacker, listener };
}
