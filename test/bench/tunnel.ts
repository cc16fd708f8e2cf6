// `npm run bench`'s tunnel figures: iperf3 TCP through this project's
// `wg up` on Node, Deno and Bun (namespace b) against wireguard-go (namespace
// a), and through a wireguard-go pair in the same two namespaces as the
// baseline, in one run. All tunnels are up together and each figure is taken
// right beside its baseline, so other load on the machine falls on both
// alike. "up": this side sends; "down": iperf3 -R, this side receives. Needs
// root and the tools test/_netns.ts names; otherwise one line says why not.
import { Layout, OUTER, iperf, keypair, ping, unavailable, wgQuickConf, type RuntimeName } from "../helpers/netns.ts";

const SECONDS = 5;
const RUNTIMES: RuntimeName[] = ["node", "deno", "bun"];

type Emit = (o: Record<string, unknown>) => void;

export async function benchTunnel(emit: Emit): Promise<void> {
  const why = unavailable();
  if (why !== null) {
    for (const runtime of RUNTIMES) emit({ bench: "tunnel", runtime, notRun: why });
    return;
  }
  const L = await Layout.create(`wgb-${process.pid}`);
  try {
    // One tunnel per runtime of ours (wireguard-go in a, ours in b) and the
    // baseline wireguard-go pair, each on its own subnet and ports.
    const tunnels: Record<string, { net: string; port: number }> = { baseline: { net: "10.78.0", port: 51830 } };
    RUNTIMES.forEach((r, i) => { tunnels[r] = { net: `10.${79 + i}.0`, port: 51840 + 10 * i }; });
    for (const [kind, t] of Object.entries(tunnels)) {
      const A = keypair(), B = keypair();
      await L.wireguardGo(L.a, L.name("a"), {
        priv: A.priv, listenPort: t.port, addresses: [`${t.net}.1/24`], peers: [{ pub: B.pub, allowedIps: [`${t.net}.2/32`] }],
      });
      const b = { priv: B.priv, listenPort: t.port + 1, addresses: [`${t.net}.2/24`], peers: [{ pub: A.pub, allowedIps: [`${t.net}.1/32`], endpoint: `${OUTER.a4}:${t.port}` }] };
      const p = kind === "baseline" ? await L.wireguardGo(L.b, L.name("b"), b) : await L.ours(L.b, L.name("b"), wgQuickConf(b), kind as RuntimeName);
      if (!(await ping(L.b, `${t.net}.1`))) throw new Error(`bench: no ping through the ${kind} tunnel\n${p.output()}`);
    }
    const mbps = (t: { net: string }, reverse: boolean) =>
      iperf(L, { serverNs: L.a, clientNs: L.b, server: `${t.net}.1`, port: 5201, seconds: SECONDS, reverse });
    // Each figure right beside its own baseline, so load elsewhere falls on both alike.
    for (const runtime of RUNTIMES) {
      for (const dir of ["up", "down"] as const) {
        const ours = await mbps(tunnels[runtime], dir === "down");
        const base = await mbps(tunnels.baseline, dir === "down");
        emit({ bench: "tunnel", runtime, dir, Mbps: ours, baselineMbps: base, ratio: ours / base, target: 0.8 });
      }
    }
  } finally {
    await L.destroy();
  }
}
