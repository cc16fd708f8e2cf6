// `npm run bench`'s tunnel figure: iperf3 TCP through this project's `wg up`
// (namespace b) against wireguard-go (namespace a), and through a wireguard-go
// pair in the same two namespaces as the baseline, in one run. Both tunnels
// are up together and measured in turn (ours, baseline, each direction), so
// other load on the machine falls on both alike. "up": this side sends;
// "down": iperf3 -R, this side receives. Needs root and the tools
// test/_netns.ts names; otherwise one line says why it did not run.
import { Layout, OUTER, iperf, keypair, ping, unavailable, wgQuickConf } from "./_netns.ts";

const SECONDS = 5;

type Emit = (o: Record<string, unknown>) => void;

export async function benchTunnel(emit: Emit): Promise<void> {
  const why = unavailable();
  if (why !== null) {
    emit({ bench: "tunnel", runtime: "node", notRun: why });
    return;
  }
  const L = await Layout.create(`wgb-${process.pid}`);
  try {
    // Tunnel 10.77.0.0/24: wireguard-go :51820 in a, ours :51821 in b.
    // Tunnel 10.78.0.0/24: wireguard-go :51830 in a, wireguard-go :51831 in b.
    const tunnels = { ours: { net: "10.77.0", port: 51820 }, baseline: { net: "10.78.0", port: 51830 } };
    for (const [kind, t] of Object.entries(tunnels)) {
      const A = keypair(), B = keypair();
      await L.wireguardGo(L.a, L.name("a"), {
        priv: A.priv, listenPort: t.port, addresses: [`${t.net}.1/24`], peers: [{ pub: B.pub, allowedIps: [`${t.net}.2/32`] }],
      });
      const b = { priv: B.priv, listenPort: t.port + 1, addresses: [`${t.net}.2/24`], peers: [{ pub: A.pub, allowedIps: [`${t.net}.1/32`], endpoint: `${OUTER.a4}:${t.port}` }] };
      const p = kind === "ours" ? await L.ours(L.b, L.name("b"), wgQuickConf(b)) : await L.wireguardGo(L.b, L.name("b"), b);
      if (!(await ping(L.b, `${t.net}.1`))) throw new Error(`bench: no ping through the ${kind} tunnel\n${p.output()}`);
    }
    const mbps = (t: { net: string }, reverse: boolean) =>
      iperf(L, { serverNs: L.a, clientNs: L.b, server: `${t.net}.1`, port: 5201, seconds: SECONDS, reverse });
    for (const dir of ["up", "down"] as const) {
      const ours = await mbps(tunnels.ours, dir === "down");
      const base = await mbps(tunnels.baseline, dir === "down");
      emit({ bench: "tunnel", runtime: "node", dir, Mbps: ours, baselineMbps: base, ratio: ours / base, target: 0.8 });
    }
  } finally {
    await L.destroy();
  }
}
