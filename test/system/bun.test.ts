// The Bun adapter (adapters/bun): `bun adapters/entries/wg-bun.ts` run as the real
// thing. Without root: keys made and derived under Bun (node:crypto's X25519
// in Bun, stdin, stdout) agree with Node's. With root, in network namespaces
// (test/_netns.ts) against wireguard-go: pings both ways over both inner
// families and both outer ones, the stock wg(8) on our socket (show, a new
// listen port live), a default route (fwmark policy routing, SO_MARK set
// through bun:ffi), iperf3 both ways, SIGTERM and the interface deleted
// under it, each leaving nothing behind.
//
// With CI=true a missing Bun, root or tool fails the suite; elsewhere one
// test says why that part did not run.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync } from "node:fs";
import { nodeX25519 } from "../../adapters/node-compat/x25519.ts";
import { AgainstGo, INNER, keypair, must, notRun, run, sigterm, unavailable, wgCommand } from "../helpers/netns.ts";

/** `bun adapters/entries/wg-bun.ts`. */
const WG = wgCommand("bun");

const noBun = existsSync(WG[0]) ? null : `no ${WG[0]} (npm install)`;

test("keys under Bun: genkey and pubkey agree with node:crypto in Node", async () => {
  if (noBun) return notRun(noBun);
  const gen = await run([...WG, "genkey"]);
  assert.is(gen.code, 0, gen.stderr);
  const priv = gen.stdout.trim();
  assert.match(priv, /^[A-Za-z0-9+/]{43}=$/);
  const pub = await run([...WG, "pubkey"], { input: `${priv}\n` });
  assert.is(pub.code, 0, pub.stderr);
  const expected = Buffer.from(nodeX25519.publicKey(new Uint8Array(Buffer.from(priv, "base64")))).toString("base64");
  assert.is(pub.stdout.trim(), expected);
});

const why = noBun ?? unavailable();
if (why !== null) test("the Bun adapter against wireguard-go", () => notRun(why));
else suite();
test.run();

function suite(): void {
  /** The Bun adapter in b against wireguard-go in a. */
  const G = AgainstGo.on(test, `wgbun-${process.pid}`, "bun");

  test("pings both ways, IPv4 and IPv6 inside, over IPv4 and over IPv6 outside", () => G.pingsBothWays());

  test("stock wg(8) on our socket: show, and a new listen port taken live", () => G.with({}, async (p) => {
    await p.pings(G.L.b, [INNER.a4]);
    await G.stockShow(p);
    await G.newListenPort(p, G.portB + 7);
  }));

  test("1,000 peers added with wg addconf; our `wg show dump` into a slow pipe prints every one", () => G.with({}, async (p) => {
    let conf = "";
    for (let i = 0; i < 1000; i++) {
      conf += `[Peer]\nPublicKey = ${keypair().pub}\nAllowedIPs = 10.${100 + (i >> 8)}.${i & 255}.0/24\n\n`;
    }
    await must(["wg", "addconf", p.name, G.L.file("many.conf", conf)], { ns: G.L.b });
    // The reader starts late: output still buffered when the process exits would be lost.
    const cmd = `${WG.map((a) => `'${a}'`).join(" ")} show ${p.name} dump | (sleep 0.3; wc -l)`;
    const lines = (await must(["sh", "-c", cmd], { ns: G.L.b })).trim();
    assert.is(lines, "1002", "the interface line, our peer and 1,000 more");
    await p.pings(G.L.b, [INNER.a4]);
  }));

  test("a default route: fwmark policy routing (SO_MARK through bun:ffi); SIGTERM removes the rules", () =>
    G.defaultRoute(async (p) => { await G.endsClean(p, "SIGTERM", sigterm); }));

  test("iperf3 TCP through the tunnel, both directions", () =>
    G.iperf(async () => `Bun ${(await run([WG[0], "--version"])).stdout.trim()}`));

  test("SIGTERM: exit 0 within a second, nothing left behind", async () => {
    const ms = await G.stopsClean("SIGTERM", sigterm);
    assert.ok(ms < 1000, `exit took ${Math.round(ms)} ms`);
  });

  test("the interface deleted under it: exit 0, nothing left behind", async () => {
    await G.stopsClean("its interface was deleted", (p) => must(["ip", "link", "delete", p.name], { ns: G.L.b }));
  });

  test("cleanup: no namespace, process, socket or pid file left", async () => {
    await G.L.destroy();
    assert.equal(G.L.leftovers(), []);
  });
}
