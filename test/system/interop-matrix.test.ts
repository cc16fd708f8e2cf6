// Each runtime's `wg up` against wireguard-go, and the runtimes against each
// other (Node-Deno, Deno-Bun, Bun-Node), in two network namespaces: a
// handshake, pings both ways over IPv4 and IPv6, and an iperf3 TCP stream
// each way. In CI a missing tool or root fails; elsewhere it says why and stops.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync } from "node:fs";
import { Layout, OUTER, iperf, keypair, ping, unavailable, wgCommand, wgQuickConf, type RuntimeName } from "../helpers/netns.ts";

const why = unavailable() ?? (() => {
  for (const r of ["deno", "bun"] as const) if (!existsSync(wgCommand(r)[0])) return `${r} is not installed (npm install)`;
  return null;
})();

if (why !== null) {
  test("interop matrix prerequisites", () => {
    if (process.env.CI === "true") assert.unreachable(`interop matrix cannot run in CI: ${why}`);
    console.log(`interop matrix not run: ${why}`);
  });
} else {
  let L: Layout;
  let seq = 0;
  test.before(async () => { L = await Layout.create(`wgm-${process.pid}`); });
  test.after(async () => { await L.destroy(); });

  /** Brings a tunnel up between side a (runtime or wireguard-go) and side b, then exercises it. */
  async function exercise(aSide: RuntimeName | "wireguard-go", bSide: RuntimeName): Promise<void> {
    const n = seq++;
    const net4 = `10.${90 + n}.0`, net6 = `fd${90 + n}::`;
    const port = 52000 + n * 10;
    const A = keypair(), B = keypair();
    const a = {
      priv: A.priv, listenPort: port, addresses: [`${net4}.1/24`, `${net6}1/64`],
      peers: [{ pub: B.pub, allowedIps: [`${net4}.2/32`, `${net6}2/128`] }],
    };
    const b = {
      priv: B.priv, listenPort: port + 1, addresses: [`${net4}.2/24`, `${net6}2/64`],
      peers: [{ pub: A.pub, allowedIps: [`${net4}.1/32`, `${net6}1/128`], endpoint: `${OUTER.a4}:${port}` }],
    };
    const pa = aSide === "wireguard-go"
      ? await L.wireguardGo(L.a, L.name("a"), a)
      : await L.ours(L.a, L.name("a"), wgQuickConf(a), aSide);
    const pb = await L.ours(L.b, L.name("b"), wgQuickConf(b), bSide);
    try {
      const out = () => `\n--- a (${aSide}):\n${pa.output()}\n--- b (${bSide}):\n${pb.output()}`;
      assert.ok(await ping(L.b, `${net4}.1`, 8000), `b -> a IPv4${out()}`);
      assert.ok(await ping(L.a, `${net4}.2`), `a -> b IPv4${out()}`);
      assert.ok(await ping(L.b, `${net6}1`), `b -> a IPv6${out()}`);
      assert.ok(await ping(L.a, `${net6}2`), `a -> b IPv6${out()}`);
      const up = await iperf(L, { serverNs: L.a, clientNs: L.b, server: `${net4}.1`, port: 5201, seconds: 2, reverse: false });
      const down = await iperf(L, { serverNs: L.a, clientNs: L.b, server: `${net4}.1`, port: 5201, seconds: 2, reverse: true });
      console.log(`  ${aSide} <-> ${bSide}: iperf3 ${up.toFixed(0)} Mbit/s b->a, ${down.toFixed(0)} Mbit/s a->b`);
      assert.ok(up > 10 && down > 10, `iperf3 rates ${up}, ${down}`);
    } finally {
      await pb.stop("SIGTERM", 3000);
      await pa.stop("SIGTERM", 3000);
    }
  }

  for (const r of ["node", "deno", "bun"] as const) {
    test(`${r} against wireguard-go`, () => exercise("wireguard-go", r));
  }
  for (const [x, y] of [["node", "deno"], ["deno", "bun"], ["bun", "node"]] as const) {
    test(`${x} against ${y}`, () => exercise(x, y));
  }
  test("nothing is left behind", async () => {
    await L.destroy();
    assert.equal(L.leftovers(), []);
  });
}

test.run();
