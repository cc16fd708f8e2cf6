// The Bun adapter (adapters/bun): `bun adapters/bun/main.ts` run as the real
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
import { nodeX25519 } from "../adapters/node/x25519.ts";
import {
  INNER, Layout, OUTER, RUN_DIR, iperf, keypair, must, ping, run, unavailable, wgCommand, wgQuickConf, type Proc,
} from "./_netns.ts";

/** `bun adapters/bun/main.ts`. */
const WG = wgCommand("bun");
const PORT_A = 51820, PORT_B = 51821;

function skip(why: string): void {
  if (process.env.CI === "true") assert.unreachable(`${why} (required when CI=true)`);
  console.log(`  not run: ${why}`);
}

const noBun = existsSync(WG[0]) ? null : `no ${WG[0]} (npm install)`;

test("keys under Bun: genkey and pubkey agree with node:crypto in Node", async () => {
  if (noBun) return skip(noBun);
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
if (why !== null) {
  test("the Bun adapter against wireguard-go", () => skip(why));
} else {
  suite();
}
test.run();

function suite(): void {
  let L: Layout;
  const A = keypair(), B = keypair();

  test.before(async () => {
    L = await Layout.create(`wgbun-${process.pid}`);
  });
  test.after(async () => {
    await L?.destroy();
  });

  interface Pair { go: Proc; ours: Proc; goName: string; name: string; close(): Promise<void> }

  /** wireguard-go in a (knowing our endpoint), the Bun adapter in b with `allowed` for the peer. */
  async function pair(o: { endpoint: string; allowed?: string[] }): Promise<Pair> {
    const goName = L.name("a"), name = L.name("b");
    const go = await L.wireguardGo(L.a, goName, {
      priv: A.priv, listenPort: PORT_A, addresses: [`${INNER.a4}/24`, `${INNER.a6}/64`],
      peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`, `${INNER.b6}/128`], endpoint: `${OUTER.b4}:${PORT_B}` }],
    });
    let p: Proc;
    try {
      p = await L.ours(L.b, name, wgQuickConf({
        priv: B.priv, listenPort: PORT_B, addresses: [`${INNER.b4}/24`, `${INNER.b6}/64`],
        peers: [{ pub: A.pub, allowedIps: o.allowed ?? [`${INNER.a4}/32`, `${INNER.a6}/128`], endpoint: o.endpoint }],
      }), "bun");
    } catch (e) {
      await go.stop();
      throw e;
    }
    return {
      go, ours: p, goName, name,
      close: async () => { await p.stop("SIGTERM", 3000); await go.stop("SIGTERM", 2000); },
    };
  }

  async function pings(from: string, addrs: string[], p: Pair): Promise<void> {
    for (const addr of addrs) {
      assert.ok(await ping(from, addr), `no reply from ${addr} (ping in ${from})\n${p.ours.output()}\n${p.go.output()}`);
    }
  }

  /** What `up` leaves in namespace b for interface `name`: link, policy rules, files. */
  async function traces(name: string): Promise<string[]> {
    const out: string[] = [];
    if ((await run(["ip", "link", "show", "dev", name], { ns: L.b })).code === 0) out.push(`interface ${name}`);
    for (const f of ["-4", "-6"]) {
      const rules = (await must(["ip", f, "rule"], { ns: L.b })).split("\n").filter((l) => /fwmark|suppress_prefixlength/.test(l));
      out.push(...rules.map((l) => `rule ${f} ${l.trim()}`));
    }
    for (const ext of ["sock", "pid"]) if (existsSync(`${RUN_DIR}/${name}.${ext}`)) out.push(`${RUN_DIR}/${name}.${ext}`);
    return out;
  }

  test("pings both ways, IPv4 and IPv6 inside, over IPv4 and over IPv6 outside", async () => {
    for (const endpoint of [`${OUTER.a4}:${PORT_A}`, `[${OUTER.a6}]:${PORT_A}`]) {
      const p = await pair({ endpoint });
      try {
        await pings(L.b, [INNER.a4, INNER.a6], p);
        await pings(L.a, [INNER.b4, INNER.b6], p);
      } finally {
        await p.close();
      }
    }
  });

  test("stock wg(8) on our socket: show, and a new listen port taken live", async () => {
    const p = await pair({ endpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      const text = await must(["wg", "show", p.name], { ns: L.b });
      assert.match(text, `interface: ${p.name}`);
      assert.match(text, `peer: ${A.pub}`);
      assert.match(text, `listening port: ${PORT_B}`);
      assert.match(text, `endpoint: ${OUTER.a4}:${PORT_A}`);
      assert.match(text, /latest handshake: (Now|\d+ seconds? ago)/);
      await must(["wg", "set", p.name, "listen-port", String(PORT_B + 7)], { ns: L.b });
      assert.is((await must(["wg", "show", p.name, "listen-port"], { ns: L.b })).trim(), String(PORT_B + 7));
      await pings(L.b, [INNER.a4], p);
      const ep = (await must(["wg", "show", p.goName, "endpoints"], { ns: L.a })).trim().split("\t")[1];
      assert.is(ep, `${OUTER.b4}:${PORT_B + 7}`);
      await pings(L.a, [INNER.b6], p);
    } finally {
      await p.close();
    }
  });

  test("1,000 peers added with wg addconf; our `wg show dump` into a slow pipe prints every one", async () => {
    const p = await pair({ endpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      let conf = "";
      for (let i = 0; i < 1000; i++) {
        conf += `[Peer]\nPublicKey = ${keypair().pub}\nAllowedIPs = 10.${100 + (i >> 8)}.${i & 255}.0/24\n\n`;
      }
      await must(["wg", "addconf", p.name, L.file("many.conf", conf)], { ns: L.b });
      // The reader starts late: output still buffered when the process exits would be lost.
      const cmd = `${WG.map((a) => `'${a}'`).join(" ")} show ${p.name} dump | (sleep 0.3; wc -l)`;
      const lines = (await must(["sh", "-c", cmd], { ns: L.b })).trim();
      assert.is(lines, "1002", "the interface line, our peer and 1,000 more");
      await pings(L.b, [INNER.a4], p);
    } finally {
      await p.close();
    }
  });

  test("a default route: fwmark policy routing (SO_MARK through bun:ffi); SIGTERM removes the rules", async () => {
    const p = await pair({ endpoint: `${OUTER.a4}:${PORT_A}`, allowed: ["0.0.0.0/0", "::/0"] });
    try {
      // Without the mark on our socket, our own datagrams would be routed into the tunnel.
      await pings(L.b, [INNER.a4, INNER.a6], p);
      assert.is((await must(["wg", "show", p.name, "fwmark"], { ns: L.b })).trim(), "0xca6c");
      const e = await p.ours.stop("SIGTERM", 5000);
      assert.not.ok(e.timedOut, p.ours.output());
      assert.is(e.code, 0, p.ours.output());
      assert.equal(await traces(p.name), []);
    } finally {
      await p.close();
    }
  });

  test("iperf3 TCP through the tunnel, both directions", async () => {
    const p = await pair({ endpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      const up = await iperf(L, { serverNs: L.a, clientNs: L.b, server: INNER.a4, port: 5201, seconds: 3, reverse: false });
      const down = await iperf(L, { serverNs: L.a, clientNs: L.b, server: INNER.a4, port: 5201, seconds: 3, reverse: true });
      console.log(`  iperf3 -t 3, Bun ${(await run([WG[0], "--version"])).stdout.trim()}: sending ${up.toFixed(0)} Mbit/s, receiving (-R) ${down.toFixed(0)} Mbit/s`);
      assert.ok(up > 20, `sending: ${up.toFixed(1)} Mbit/s`);
      assert.ok(down > 20, `receiving: ${down.toFixed(1)} Mbit/s`);
      assert.ok(p.ours.running, p.ours.output());
    } finally {
      await p.close();
    }
  });

  test("SIGTERM: exit 0 within a second, nothing left behind", async () => {
    const p = await pair({ endpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      const t = performance.now();
      const e = await p.ours.stop("SIGTERM", 5000);
      assert.not.ok(e.timedOut, `no exit within 5 s of SIGTERM\n${p.ours.output()}`);
      assert.is(e.code, 0, p.ours.output());
      assert.ok(performance.now() - t < 1000, `exit took ${Math.round(performance.now() - t)} ms`);
      assert.equal(await traces(p.name), []);
    } finally {
      await p.close();
    }
  });

  test("the interface deleted under it: exit 0, nothing left behind", async () => {
    const p = await pair({ endpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      await must(["ip", "link", "delete", p.name], { ns: L.b });
      const e = await Promise.race([p.ours.exited, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
      assert.ok(e, `still running 5 s after its interface was deleted\n${p.ours.output()}`);
      assert.is(e!.code, 0, p.ours.output());
      assert.equal(await traces(p.name), []);
    } finally {
      await p.close();
    }
  });

  test("cleanup: no namespace, process, socket or pid file left", async () => {
    await L.destroy();
    assert.equal(L.leftovers(), []);
  });
}
