// Endpoint re-resolution against wireguard-go, on Node, Deno and Bun: `wg up`
// in namespace b reaches wireguard-go through `Endpoint = wgpeer.test:PORT`,
// a name namespace b's hosts file (/etc/netns/B/hosts, which `ip netns exec`
// puts over /etc/hosts) maps to wireguard-go's address. Then wireguard-go
// "moves": its old address is removed and a new one added, and the hosts file
// is rewritten. Pings keep going out; once its session's packets go
// unanswered the engine starts a handshake (KEEPALIVE + REKEY_TIMEOUT after
// the last answer), and the peer must be at the new address, answering
// pings, within two retry periods of that first initiation.
//
// Needs root, wireguard-go, wg, ip, ping: with CI=true their absence fails
// the suite; elsewhere one test says why nothing ran.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { KEEPALIVE_TIMEOUT, REKEY_TIMEOUT } from "../../src/constants.ts";
import { INNER, Layout, OUTER, keypair, must, notRun, ping, poll, run, unavailable, wgQuickConf, type RuntimeName } from "../helpers/netns.ts";

const PORT_A = 51850;
const MOVED4 = "192.168.77.11";

const otherRuntime = "Deno" in globalThis ? "Deno" : process.versions.bun ? "Bun" : null;
const why = unavailable();
if (otherRuntime !== null) {
  test("endpoint re-resolution against wireguard-go", () => { console.log(`  reresolve suite: runs under Node (this is ${otherRuntime})`); });
} else if (why !== null) {
  test("endpoint re-resolution against wireguard-go", () => notRun(why));
} else {
  suite();
}
test.run();

function suite(): void {
  let L: Layout, hosts: string, goName: string;
  const A = keypair(), B = keypair();

  test.before(async () => {
    L = await Layout.create(`wgr-${process.pid}`);
    goName = L.name("a");
    await L.wireguardGo(L.a, goName, {
      priv: A.priv, listenPort: PORT_A, addresses: [`${INNER.a4}/24`], peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`] }],
    });
    mkdirSync(`/etc/netns/${L.b}`, { recursive: true });
    hosts = `/etc/netns/${L.b}/hosts`;
  });

  test.after(async () => {
    await L?.destroy();
    if (L) rmSync(`/etc/netns/${L.b}`, { recursive: true, force: true });
  });

  for (const runtime of ["node", "deno", "bun"] as RuntimeName[]) {
    test(`${runtime}: a peer whose name moves is followed within two retry periods of the first unanswered initiation`, async () => {
      // Start where the name is right; the file is rewritten in place (a bind mount follows the inode, not the name).
      const at = async (address: string) => {
        writeFileSync(hosts, `127.0.0.1 localhost\n${address} wgpeer.test\n`);
      };
      await run(["ip", "-n", L.a, "address", "del", `${MOVED4}/${OUTER.v4cidr}`, "dev", "va"]);
      await run(["ip", "-n", L.a, "address", "add", `${OUTER.a4}/${OUTER.v4cidr}`, "dev", "va"]);
      await at(OUTER.a4);
      const name = L.name("b");
      const ours = await L.ours(L.b, name, wgQuickConf({
        priv: B.priv, addresses: [`${INNER.b4}/24`],
        peers: [{ pub: A.pub, allowedIps: [`${INNER.a4}/32`], endpoint: `wgpeer.test:${PORT_A}` }],
      }), runtime);
      try {
        assert.ok(await ping(L.b, INNER.a4, 10_000), `first ping: ${ours.output()}`);
        assert.match(await must(["wg", "show", name, "endpoints"], { ns: L.b }), new RegExp(`${OUTER.a4.replace(/\./g, "\\.")}:${PORT_A}`));

        // wireguard-go moves; the name follows it.
        await must(["ip", "-n", L.a, "address", "del", `${OUTER.a4}/${OUTER.v4cidr}`, "dev", "va"]);
        await must(["ip", "-n", L.a, "address", "add", `${MOVED4}/${OUTER.v4cidr}`, "dev", "va"]);
        await at(MOVED4);
        // wireguard-go must not find us first (its own initiation from the new address would move us by
        // roaming, not by the name): its idea of our endpoint goes to its own loopback's discard port.
        await must(["wg", "set", goName, "peer", B.pub, "endpoint", "127.0.0.1:9"], { ns: L.a });
        const moved = performance.now();
        // Pings go on (one a second): the session's packets now vanish, and the engine notices.
        const pinger = L.spawn(L.b, ["ping", "-n", "-i", "0.5", "-W", "1", INNER.a4]);
        const endpoint = async () => (await run(["wg", "show", name, "endpoints"], { ns: L.b })).stdout;
        await poll("the endpoint to move", async () => (await endpoint()).includes(`${MOVED4}:${PORT_A}`), 60_000, 100);
        const followed = performance.now() - moved;
        assert.ok(await ping(L.b, INNER.a4, 5000), `ping after the move: ${ours.output()}`);
        const answered = performance.now() - moved;
        await pinger.stop("SIGTERM", 2000);
        // The first initiation goes out KEEPALIVE + REKEY_TIMEOUT after the last answer (plus jitter, and the
        // half second between pings); two retry periods after it, the handshake must have gone to the new address.
        const bound = KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + 2 * REKEY_TIMEOUT + 1500;
        console.log(`  ${runtime}: endpoint moved ${(followed / 1000).toFixed(1)} s after the address did, pings answered at ${(answered / 1000).toFixed(1)} s (bound ${(bound / 1000).toFixed(1)} s)`);
        assert.ok(answered <= bound, `answered ${answered.toFixed(0)} ms after the move (bound ${bound} ms): ${ours.output()}`);
        assert.match(ours.stderr, new RegExp(`\\[#\\] wgpeer\\.test:${PORT_A} now resolves to ${MOVED4.replace(/\./g, "\\.")}:${PORT_A} \\(was ${OUTER.a4.replace(/\./g, "\\.")}:${PORT_A}\\)`));
      } finally {
        await ours.stop("SIGTERM", 5000);
      }
    });
  }
}
