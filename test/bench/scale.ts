// `npm run bench`'s scale figures: 10,000 peers and 1,000,000 AllowedIPs
// prefixes applied with the stock `wg setconf`, then read back with `wg show
// dump`, against this project's `wg up` (Node) and against wireguard-go, in
// one run. Each side keeps its one real peer (the other side, with its
// endpoint) in the configuration; setconf replaces every peer, so that peer's
// session starts again on both (its first pings wait for the handshake).
// So the same configuration goes in with `wg addconf` first, which keeps
// that session: a ping through it, from the side being configured, runs
// every 10 ms throughout each step, and its worst round trip during the
// addconf and the dump says whether the control path held the data path up.
// RSS is the process's VmRSS.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { Layout, OUTER, keypair, must, ping, unavailable, wgQuickConf, type Proc } from "../helpers/netns.ts";

const PEERS = Number(process.env.SCALE_PEERS ?? 10_000);
const PER_PEER = Number(process.env.SCALE_PREFIXES_PER_PEER ?? 100);

type Emit = (o: Record<string, unknown>) => void;

const rssMiB = (pid: number, field = "VmRSS") => {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
};

/** The pid of the program `ip netns exec` became (it execs), or its child. */
const pidOf = (p: Proc) => p.child.pid!;

/** A wg(8) configuration (as `wg setconf` reads it) of our key, our one real peer, and PEERS made-up ones. */
function bigConf(priv: string, port: number, real: { pub: string; allowed: string; endpoint?: string }): string {
  const lines = ["[Interface]", `PrivateKey = ${priv}`, `ListenPort = ${port}`, "", "[Peer]", `PublicKey = ${real.pub}`, `AllowedIPs = ${real.allowed}`];
  if (real.endpoint) lines.push(`Endpoint = ${real.endpoint}`);
  const key = new Uint8Array(32);
  for (let i = 0; i < PEERS; i++) {
    crypto.getRandomValues(key);
    const ips: string[] = [];
    // /24s from 44.0.0.0 up, none inside the tunnel's or the veth's subnets.
    for (let j = 0; j < PER_PEER; j++) {
      const k = 0x2c000000 + (i * PER_PEER + j) * 256;
      ips.push(`${k >>> 24}.${(k >>> 16) & 255}.${(k >>> 8) & 255}.0/24`);
    }
    lines.push("", "[Peer]", `PublicKey = ${btoa(String.fromCharCode(...key))}`, `AllowedIPs = ${ips.join(", ")}`);
  }
  return lines.join("\n") + "\n";
}

/** Pings `addr` from `ns` every 10 ms until stopped; the worst round trip (ms) and how many went unanswered. */
function pinger(ns: string, addr: string): { stop(): Promise<{ worstMs: number; sent: number; lost: number }> } {
  const c = spawn("ip", ["netns", "exec", ns, "ping", "-n", "-i", "0.01", "-W", "1", addr], { stdio: ["ignore", "pipe", "ignore"] });
  let text = "";
  c.stdout.on("data", (d) => { text += d; });
  return {
    async stop() {
      c.kill("SIGINT");
      await new Promise((r) => c.once("close", r));
      const rtts = [...text.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
      const sent = Number(/(\d+) packets transmitted/.exec(text)?.[1] ?? 0);
      return { worstMs: Math.max(0, ...rtts), sent, lost: sent - rtts.length };
    },
  };
}

async function timed(argv: string[], pingNs: string, pingAddr: string): Promise<{ seconds: number; stdout: string; worstMs: number; lost: number }> {
  const p = pinger(pingNs, pingAddr);
  await new Promise((r) => setTimeout(r, 300)); // a few round trips before, for a baseline
  const t0 = performance.now();
  const stdout = await must(argv, { timeout: 300_000 });
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 300));
  const { worstMs, lost } = await p.stop();
  return { seconds, stdout, worstMs, lost };
}

export async function benchScale(emit: Emit): Promise<void> {
  const why = unavailable();
  if (why !== null) { emit({ bench: "scale", notRun: why }); return; }
  const L = await Layout.create(`wgs-${process.pid}`);
  try {
    const A = keypair(), B = keypair();
    const goName = L.name("a"), ourName = L.name("b");
    const go = await L.wireguardGo(L.a, goName, {
      priv: A.priv, listenPort: 51850, addresses: ["10.90.0.1/24"], peers: [{ pub: B.pub, allowedIps: ["10.90.0.2/32"] }],
    });
    const bConf = { priv: B.priv, listenPort: 51851, addresses: ["10.90.0.2/24"], peers: [{ pub: A.pub, allowedIps: ["10.90.0.1/32"], endpoint: `${OUTER.a4}:51850` }] };
    const ours = await L.ours(L.b, ourName, wgQuickConf(bConf), "node");
    if (!(await ping(L.b, "10.90.0.1"))) throw new Error(`bench: no ping through the tunnel\n${ours.output()}`);
    await new Promise((r) => setTimeout(r, 1000));
    const idleOurs = rssMiB(pidOf(ours)), idleGo = rssMiB(pidOf(go));
    // RssAnon leaves out the program's own mapped code (about 42 MiB of Node's binary, shared by every Node process).
    emit({
      bench: "idle-rss", impl: "wg up (node)", MiB: idleOurs, baselineMiB: idleGo, anonMiB: rssMiB(pidOf(ours), "RssAnon"),
      baselineAnonMiB: rssMiB(pidOf(go), "RssAnon"), baseline: "wireguard-go", target: 50,
    });

    const sides = {
      ours: { name: ourName, proc: ours, pingNs: L.b, pingAddr: "10.90.0.1", conf: bigConf(B.priv, 51851, { pub: A.pub, allowed: "10.90.0.1/32", endpoint: `${OUTER.a4}:51850` }) },
      go: { name: goName, proc: go, pingNs: L.a, pingAddr: "10.90.0.2", conf: bigConf(A.priv, 51850, { pub: B.pub, allowed: "10.90.0.2/32", endpoint: `${OUTER.b4}:51851` }) },
    };
    type Timed = Awaited<ReturnType<typeof timed>>;
    const r: Record<string, { add: Timed; set: Timed; dump: Timed; rss: number; peers: number; prefixes: number }> = {};
    for (const [k, s] of Object.entries(sides)) {
      const file = L.file(`${s.name}-big.conf`, s.conf);
      // addconf first: the real peer and its session stay, so the ping shows only the control path's cost.
      const add = await timed(["wg", "addconf", s.name, file], s.pingNs, s.pingAddr);
      const dump = await timed(["wg", "show", s.name, "dump"], s.pingNs, s.pingAddr);
      // setconf of the same: every peer replaced (all 10,001 removed, then added again).
      const set = await timed(["wg", "setconf", s.name, file], s.pingNs, s.pingAddr);
      const rows = dump.stdout.trimEnd().split("\n").slice(1);
      const prefixes = rows.reduce((n, row) => n + (row.split("\t")[3] === "(none)" ? 0 : row.split("\t")[3].split(",").length), 0);
      r[k] = { add, set, dump, rss: rssMiB(pidOf(s.proc)), peers: rows.length, prefixes };
      if (!(await ping(s.pingNs, s.pingAddr))) throw new Error(`bench: the real peer stopped answering after the set on ${k}`);
    }
    const o = r.ours, g = r.go;
    for (const [k, x] of Object.entries(r)) {
      if (x.peers !== PEERS + 1 || x.prefixes !== PEERS * PER_PEER + 1) throw new Error(`bench: ${k} shows ${x.peers} peers and ${x.prefixes} prefixes after the set`);
    }
    for (const [op, x] of [["addconf", "add"], ["dump", "dump"], ["setconf", "set"]] as const) {
      emit({
        bench: "scale", op, peers: PEERS, prefixes: PEERS * PER_PEER, seconds: o[x].seconds, baselineSeconds: g[x].seconds,
        ratio: g[x].seconds / o[x].seconds, target: 1, worstPingMs: o[x].worstMs, lost: o[x].lost,
        baselineWorstPingMs: g[x].worstMs, baselineLost: g[x].lost, pingTarget: 50,
      });
    }
    emit({ bench: "scale", op: "rss-after", MiB: o.rss, baselineMiB: g.rss, perPeerKiB: (o.rss - idleOurs) * 1024 / PEERS, baselinePerPeerKiB: (g.rss - idleGo) * 1024 / PEERS });
  } finally {
    await L.destroy();
  }
}
