// `npm run bench`'s tunnel figures: iperf3 TCP through a pair of this
// project's `wg up` (namespace a and namespace b, the same runtime on both
// sides) on Node, Deno and Bun, once with TUN offloads (the default) and
// once with WG_OFFLOAD=off, against a wireguard-go pair in the same two
// namespaces as the baseline, in one run. All tunnels are up together and
// each figure is taken right beside its baseline, so other load on the
// machine falls on both alike. "up": b sends; "down": iperf3 -R, b receives.
// Needs root and the tools test/_netns.ts names; otherwise one line says why
// not. BENCH_RUNTIMES=node,bun picks runtimes.
import { Layout, OUTER, iperf, keypair, ping, unavailable, wgQuickConf, type RuntimeName } from "../helpers/netns.ts";

const SECONDS = 5;
const RUNTIMES = (process.env.BENCH_RUNTIMES?.split(",") ?? ["node", "deno", "bun"]) as RuntimeName[];
const MODES = ["on", "off"] as const;

type Emit = (o: Record<string, unknown>) => void;

export async function benchTunnel(emit: Emit): Promise<void> {
  const why = unavailable();
  if (why !== null) {
    for (const runtime of RUNTIMES) emit({ bench: "tunnel", runtime, notRun: why });
    return;
  }
  const L = await Layout.create(`wgb-${process.pid}`);
  try {
    // A pair of ours per runtime and offload mode, and the baseline
    // wireguard-go pair, each on its own subnet and ports.
    const tunnels: Record<string, { net: string; port: number }> = { baseline: { net: "10.78.0", port: 51830 } };
    RUNTIMES.forEach((r, i) => MODES.forEach((m, j) => { tunnels[`${r}-${m}`] = { net: `10.${79 + 2 * i + j}.0`, port: 51840 + 10 * (2 * i + j) }; }));
    for (const [kind, t] of Object.entries(tunnels)) {
      const A = keypair(), B = keypair();
      const a = { priv: A.priv, listenPort: t.port, addresses: [`${t.net}.1/24`], peers: [{ pub: B.pub, allowedIps: [`${t.net}.2/32`] }] };
      const b = { priv: B.priv, listenPort: t.port + 1, addresses: [`${t.net}.2/24`], peers: [{ pub: A.pub, allowedIps: [`${t.net}.1/32`], endpoint: `${OUTER.a4}:${t.port}` }] };
      let p;
      if (kind === "baseline") {
        await L.wireguardGo(L.a, L.name("a"), a);
        p = await L.wireguardGo(L.b, L.name("b"), b);
      } else {
        const [runtime, mode] = kind.split("-") as [RuntimeName, string];
        const env: Record<string, string> = mode === "off" ? { WG_OFFLOAD: "off" } : {};
        await L.ours(L.a, L.name("a"), wgQuickConf(a), runtime, { env });
        p = await L.ours(L.b, L.name("b"), wgQuickConf(b), runtime, { env });
      }
      if (!(await ping(L.b, `${t.net}.1`))) throw new Error(`bench: no ping through the ${kind} tunnel\n${p.output()}`);
    }
    const mbps = (t: { net: string }, reverse: boolean) =>
      iperf(L, { serverNs: L.a, clientNs: L.b, server: `${t.net}.1`, port: 5201, seconds: SECONDS, reverse });
    // Each figure right beside its own baseline, so load elsewhere falls on both alike.
    for (const runtime of RUNTIMES) {
      for (const dir of ["up", "down"] as const) {
        const on = await mbps(tunnels[`${runtime}-on`], dir === "down");
        const base = await mbps(tunnels.baseline, dir === "down");
        const off = await mbps(tunnels[`${runtime}-off`], dir === "down");
        emit({ bench: "tunnel", runtime, dir, Mbps: on, offloadOffMbps: off, baselineMbps: base, ratio: on / base, offloadOffRatio: off / base, target: 2 });
      }
    }
  } finally {
    await L.destroy();
  }
}
