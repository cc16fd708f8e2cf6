// This project against a real WireGuard peer: wireguard-go in namespace a,
// `node build/lib/adapters/entries/wg-node.js up NAME.conf` in namespace b, a veth between them
// (test/_netns.ts). Handshakes from either side, both inner and both outer
// address families, a preshared key, persistent keepalives, roaming, the
// stock wg(8) against our UAPI socket (show, peers and listen port changed
// live), iperf3 both ways, `down`, SIGTERM and the interface deleted under
// it, and the errors `up` reports (one line, non-zero exit, nothing left).
//
// Needs root and wireguard-go, wg, ip, ping, iperf3: with CI=true their
// absence fails the suite; elsewhere one test says why nothing ran.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CLI, INNER, Layout, OUTER, RUN_DIR, iperf, keypair, must, ping, psk, run, sleep, unavailable, wgQuickConf, type Proc,
} from "../helpers/netns.ts";

const PORT_A = 51820, PORT_B = 51821;

const why = unavailable();
if (why !== null) {
  test("interop with wireguard-go", () => {
    if (process.env.CI === "true") assert.unreachable(`${why} (required when CI=true)`);
    console.log(`  interop not run: ${why}`);
  });
} else {
  suite();
}
test.run();

function suite(): void {
  let L: Layout;
  const A = keypair(), B = keypair();
  const stuck: string[] = [];

  test.before(async () => {
    L = await Layout.create(`wgt-${process.pid}`);
  });
  test.after(async () => {
    await L?.destroy();
  });

  interface Pair {
    go: Proc;
    ours: Proc;
    goName: string;
    name: string;
    close(): Promise<void>;
  }

  /**
   * wireguard-go in a, this project in b, as peers of each other. `goEndpoint`
   * and `ourEndpoint` say who knows where the other is (and so can initiate).
   */
  async function pair(o: {
    goEndpoint?: string; ourEndpoint?: string; goKeepalive?: number; ourKeepalive?: number; goPsk?: string; ourPsk?: string;
  } = {}): Promise<Pair> {
    const goName = L.name("a"), name = L.name("b");
    const go = await L.wireguardGo(L.a, goName, {
      priv: A.priv, listenPort: PORT_A, addresses: [`${INNER.a4}/24`, `${INNER.a6}/64`],
      peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`, `${INNER.b6}/128`], endpoint: o.goEndpoint, keepalive: o.goKeepalive, psk: o.goPsk }],
    });
    let ours: Proc;
    try {
      ours = await L.ours(L.b, name, wgQuickConf({
        priv: B.priv, listenPort: PORT_B, addresses: [`${INNER.b4}/24`, `${INNER.b6}/64`],
        peers: [{ pub: A.pub, allowedIps: [`${INNER.a4}/32`, `${INNER.a6}/128`], endpoint: o.ourEndpoint, keepalive: o.ourKeepalive, psk: o.ourPsk }],
      }));
    } catch (e) {
      await go.stop();
      throw e;
    }
    return {
      go, ours, goName, name,
      // Never throws, so a test's own failure is the one reported; the last test checks `stuck`.
      close: async () => {
        const r = await ours.stop("SIGTERM", 3000);
        await go.stop("SIGTERM", 2000);
        if (r.timedOut) stuck.push(`wg up did not exit within 3 s of SIGTERM\n${ours.output()}`);
      },
    };
  }

  /** `wg show NAME FIELD` in `ns`: the lines, each split at tabs. */
  async function show(ns: string, name: string, field: string): Promise<string[][]> {
    const out = await must(["wg", "show", name, field], { ns });
    return out.trim().split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
  }

  async function endpointOf(ns: string, name: string, pub: string): Promise<string | undefined> {
    const e = (await show(ns, name, "endpoints")).find((r) => r[0] === pub)?.[1];
    return e === "(none)" ? undefined : e;
  }

  async function pings(from: string, addrs: string[], p: Pair): Promise<void> {
    for (const addr of addrs) {
      assert.ok(await ping(from, addr), `no reply from ${addr} (ping in ${from})\n${p.ours.output()}\n${p.go.output()}`);
    }
  }

  test("this side initiates: IPv4 and IPv6 inside, over IPv4", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4, INNER.a6], p);
      assert.is(await endpointOf(L.a, p.goName, B.pub), `${OUTER.b4}:${PORT_B}`);
      await pings(L.a, [INNER.b4, INNER.b6], p);
    } finally {
      await p.close();
    }
  });

  test("wireguard-go initiates: IPv4 and IPv6 inside, over IPv4; this side learns the endpoint", async () => {
    const p = await pair({ goEndpoint: `${OUTER.b4}:${PORT_B}` });
    try {
      assert.is(await endpointOf(L.b, p.name, A.pub), undefined, "no endpoint before the handshake");
      await pings(L.a, [INNER.b4, INNER.b6], p);
      assert.is(await endpointOf(L.b, p.name, A.pub), `${OUTER.a4}:${PORT_A}`);
      await pings(L.b, [INNER.a4, INNER.a6], p);
    } finally {
      await p.close();
    }
  });

  test("this side initiates over IPv6 (Endpoint = [fd77::1]:port)", async () => {
    const p = await pair({ ourEndpoint: `[${OUTER.a6}]:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4, INNER.a6], p);
      assert.is(await endpointOf(L.a, p.goName, B.pub), `[${OUTER.b6}]:${PORT_B}`);
      await pings(L.a, [INNER.b6, INNER.b4], p);
    } finally {
      await p.close();
    }
  });

  test("wireguard-go initiates over IPv6", async () => {
    const p = await pair({ goEndpoint: `[${OUTER.b6}]:${PORT_B}` });
    try {
      await pings(L.a, [INNER.b6, INNER.b4], p);
      assert.is(await endpointOf(L.b, p.name, A.pub), `[${OUTER.a6}]:${PORT_A}`);
      await pings(L.b, [INNER.a4], p);
    } finally {
      await p.close();
    }
  });

  test("PresharedKey on both sides; a different one on each side gets no handshake", async () => {
    const k = psk();
    let p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}`, ourPsk: k, goPsk: k });
    try {
      await pings(L.b, [INNER.a4, INNER.a6], p);
      await pings(L.a, [INNER.b4], p);
      assert.is((await show(L.b, p.name, "preshared-keys"))[0]?.[1], k, "wg show NAME preshared-keys");
    } finally {
      await p.close();
    }
    p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}`, ourPsk: psk(), goPsk: psk() });
    try {
      assert.not.ok(await ping(L.b, INNER.a4, 1500), "a ping went through with mismatched preshared keys");
      assert.equal(await show(L.a, p.goName, "latest-handshakes"), [[B.pub, "0"]]);
      assert.equal(await show(L.b, p.name, "latest-handshakes"), [[A.pub, "0"]]);
    } finally {
      await p.close();
    }
  });

  // A keepalive timer restarts on any authenticated packet either way (as in
  // wireguard-go), so with both sides at 1 s one may never fire: one side at a time.
  test("PersistentKeepalive: 32-byte keepalives with no traffic, each way, set live with wg set", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}`, ourKeepalive: 1 });
    try {
      await pings(L.b, [INNER.a4], p);
      const rx = async (ns: string, name: string) => Number((await show(ns, name, "transfer"))[0][1]);
      const window = async (ns: string, name: string, who: string, ms: number, min: number) => {
        const r0 = await rx(ns, name);
        await sleep(ms);
        const d = (await rx(ns, name)) - r0;
        console.log(`  ${who} received ${d} bytes in ${ms} ms`);
        assert.ok(d >= min * 32, `${who} received ${d} bytes in ${ms} ms: expected at least ${min} 32-byte keepalives`);
        assert.is(d % 32, 0, `${who} received ${d} bytes: not a whole number of 32-byte keepalives`);
        assert.ok(d <= (ms / 1000 + 1) * 32, `${who} received ${d} bytes in ${ms} ms: more than one keepalive a second`);
      };
      assert.equal(await show(L.b, p.name, "persistent-keepalive"), [[A.pub, "1"]]);
      await window(L.a, p.goName, "wireguard-go (ours at PersistentKeepalive = 1)", 2500, 2);
      // Now wireguard-go keeps the link alive, every 2 s, and this side stops.
      await must(["wg", "set", p.name, "peer", A.pub, "persistent-keepalive", "off"], { ns: L.b });
      await must(["wg", "set", p.goName, "peer", B.pub, "persistent-keepalive", "2"], { ns: L.a });
      assert.equal(await show(L.b, p.name, "persistent-keepalive"), [[A.pub, "off"]]);
      await sleep(200);
      const go0 = await rx(L.a, p.goName);
      await window(L.b, p.name, "this side (wireguard-go at persistent-keepalive 2)", 4500, 2);
      const go1 = await rx(L.a, p.goName);
      assert.ok(go1 - go0 <= 32, `this side sent ${go1 - go0} bytes after its keepalive was turned off`);
    } finally {
      await p.close();
    }
  });

  /** Moves the IPv4 address of the veth in `ns` from `from` to `to` (same subnet); returns the undo. */
  async function moveAddress(ns: string, dev: string, from: string, to: string): Promise<() => Promise<void>> {
    // Keep the new address when the old (primary) one goes.
    await must(["sh", "-c", `echo 1 > /proc/sys/net/ipv4/conf/${dev}/promote_secondaries`], { ns });
    await must(["ip", "address", "add", `${to}/${OUTER.v4cidr}`, "dev", dev], { ns });
    await must(["ip", "address", "delete", `${from}/${OUTER.v4cidr}`, "dev", dev], { ns });
    return async () => {
      await run(["ip", "address", "add", `${from}/${OUTER.v4cidr}`, "dev", dev], { ns });
      await run(["ip", "address", "delete", `${to}/${OUTER.v4cidr}`, "dev", dev], { ns });
    };
  }

  test("roaming: this side's outer address changes, wireguard-go learns it; then wireguard-go's, this side learns it", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}` });
    const undo: (() => Promise<void>)[] = [];
    try {
      await pings(L.b, [INNER.a4], p);
      assert.is(await endpointOf(L.a, p.goName, B.pub), `${OUTER.b4}:${PORT_B}`);
      undo.push(await moveAddress(L.b, "vb", OUTER.b4, "192.168.77.3"));
      await pings(L.b, [INNER.a4, INNER.a6], p);
      assert.is(await endpointOf(L.a, p.goName, B.pub), `192.168.77.3:${PORT_B}`);
      await pings(L.a, [INNER.b4, INNER.b6], p);

      undo.push(await moveAddress(L.a, "va", OUTER.a4, "192.168.77.4"));
      // wireguard-go keeps sending from the address it last used (a sticky
      // source) and fails with ENETUNREACH once that is gone; setting the
      // endpoint again clears it.
      await must(["wg", "set", p.goName, "peer", B.pub, "endpoint", `192.168.77.3:${PORT_B}`], { ns: L.a });
      await pings(L.a, [INNER.b4], p);
      assert.is(await endpointOf(L.b, p.name, A.pub), `192.168.77.4:${PORT_A}`);
      await pings(L.b, [INNER.a4, INNER.a6], p);
    } finally {
      for (const u of undo.reverse()) await u();
      await p.close();
    }
  });

  test("stock wg(8) on our socket: show; add and remove a peer, change the listen port, live", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      const text = await must(["wg", "show", p.name], { ns: L.b });
      assert.match(text, `interface: ${p.name}`);
      assert.match(text, `peer: ${A.pub}`);
      assert.match(text, `listening port: ${PORT_B}`);
      assert.match(text, `endpoint: ${OUTER.a4}:${PORT_A}`);
      assert.match(text, /latest handshake: (Now|\d+ seconds? ago)/);
      assert.match(text, /transfer: [\d.]+ [KMG]?i?B received, [\d.]+ [KMG]?i?B sent/);
      const hs = Number((await show(L.b, p.name, "latest-handshakes"))[0][1]);
      assert.ok(Math.abs(hs - Date.now() / 1000) < 30, `latest handshake ${hs} is not now`);
      const [, rxb, txb] = (await show(L.b, p.name, "transfer"))[0];
      assert.ok(Number(rxb) > 0 && Number(txb) > 0, `transfer ${rxb} received, ${txb} sent`);

      const C = keypair();
      await must(["wg", "set", p.name, "peer", C.pub, "allowed-ips", "10.77.5.0/24,fd79::/64"], { ns: L.b });
      assert.equal((await show(L.b, p.name, "peers")).map((r) => r[0]).sort(), [A.pub, C.pub].sort());
      const aips = await show(L.b, p.name, "allowed-ips");
      assert.is(aips.find((r) => r[0] === C.pub)?.[1], "10.77.5.0/24 fd79::/64");
      await must(["wg", "set", p.name, "peer", C.pub, "remove"], { ns: L.b });
      assert.equal((await show(L.b, p.name, "peers")).map((r) => r[0]), [A.pub]);
      await pings(L.b, [INNER.a4], p);

      // A new listen port: the socket moves, and wireguard-go sees the new source port.
      await must(["wg", "set", p.name, "listen-port", String(PORT_B + 4)], { ns: L.b });
      assert.is((await show(L.b, p.name, "listen-port"))[0][0], String(PORT_B + 4));
      await pings(L.b, [INNER.a4], p);
      assert.is(await endpointOf(L.a, p.goName, B.pub), `${OUTER.b4}:${PORT_B + 4}`);
      await pings(L.a, [INNER.b4], p);
    } finally {
      await p.close();
    }
  });

  test("iperf3 TCP through the tunnel, both directions", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      const up = await iperf(L, { serverNs: L.a, clientNs: L.b, server: INNER.a4, port: 5201, seconds: 3, reverse: false });
      const down = await iperf(L, { serverNs: L.a, clientNs: L.b, server: INNER.a4, port: 5201, seconds: 3, reverse: true });
      console.log(`  iperf3 -t 3: this side sending ${up.toFixed(0)} Mbit/s, receiving (-R) ${down.toFixed(0)} Mbit/s`);
      assert.ok(up > 20, `sending: ${up.toFixed(1)} Mbit/s`);
      assert.ok(down > 20, `receiving: ${down.toFixed(1)} Mbit/s`);
      assert.ok(p.ours.running, p.ours.output());
    } finally {
      await p.close();
    }
  });

  /** What `up` leaves in namespace b for interface `name`: link, routes, files. */
  async function traces(name: string): Promise<string[]> {
    const out: string[] = [];
    if ((await run(["ip", "link", "show", "dev", name], { ns: L.b })).code === 0) out.push(`interface ${name}`);
    for (const [f, r] of [["-4", `${INNER.a4}/32`], ["-6", `${INNER.a6}/128`], ["-4", "10.77.0.0/24"], ["-6", "fd78::/64"]]) {
      const s = (await must(["ip", f, "route", "show", r], { ns: L.b })).split("\n").filter((l) => l.includes(` dev ${name} `));
      out.push(...s.map((l) => `route ${l}`));
    }
    for (const ext of ["sock", "pid"]) if (existsSync(`${RUN_DIR}/${name}.${ext}`)) out.push(`${RUN_DIR}/${name}.${ext}`);
    return out;
  }

  test("down NAME: the up process exits 0 and leaves no interface, route or file", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      const r = await run([process.execPath, CLI, "down", p.name], { ns: L.b, timeout: 10_000 });
      assert.is(r.code, 0, `down: exit ${r.code ?? r.signal}: ${r.stderr}`);
      const e = await Promise.race([p.ours.exited, sleep(5000).then(() => null)]);
      assert.ok(e, `the up process still runs 5 s after down\n${p.ours.output()}`);
      assert.is(e!.code, 0, p.ours.output());
      assert.equal(await traces(p.name), []);
    } finally {
      await p.close();
    }
  });

  test("SaveConfig = true: a peer added live with wg set is in the file after SIGTERM, which is the owner's only (0600) even if it was not", async () => {
    const goName = L.name("a"), name = L.name("b"), C = keypair();
    const go = await L.wireguardGo(L.a, goName, {
      priv: A.priv, listenPort: PORT_A, addresses: [`${INNER.a4}/24`], peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`] }],
    });
    const ours = await L.ours(L.b, name, wgQuickConf({
      priv: B.priv, listenPort: PORT_B, addresses: [`${INNER.b4}/24`], extra: "SaveConfig = true\n",
      peers: [{ pub: A.pub, allowedIps: [`${INNER.a4}/32`], endpoint: `${OUTER.a4}:${PORT_A}` }],
    }), "node", { mode: 0o644 });
    try {
      assert.is(statSync(join(L.dir, `${name}.conf`)).mode & 0o777, 0o644, "written world-readable");
      await must(["wg", "set", name, "peer", C.pub, "allowed-ips", "10.99.0.0/24"], { ns: L.b });
      const e = await ours.stop("SIGTERM", 5000);
      assert.is(e.code, 0, ours.output());
      const saved = readFileSync(join(L.dir, `${name}.conf`), "utf8");
      assert.match(saved, `Address = ${INNER.b4}/24\n`);
      assert.match(saved, "SaveConfig = true\n");
      assert.match(saved, `ListenPort = ${PORT_B}\n`);
      assert.match(saved, `PrivateKey = ${B.priv}\n`);
      assert.match(saved, `[Peer]\nPublicKey = ${C.pub}\nAllowedIPs = 10.99.0.0/24\n`);
      assert.match(saved, `PublicKey = ${A.pub}\n`);
      assert.is((statSync(join(L.dir, `${name}.conf`)).mode & 0o777).toString(8), "600", "the saved file holds the private key: the owner's only");
      assert.not.ok(existsSync(join(L.dir, `${name}.conf.tmp`)));
    } finally {
      await ours.stop("SIGTERM", 2000);
      await go.stop("SIGTERM", 2000);
    }
  });

  test("SIGTERM to the up process: exit 0, nothing left behind", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      const e = await p.ours.stop("SIGTERM", 5000);
      assert.not.ok(e.timedOut, `the up process did not exit within 5 s of SIGTERM\n${p.ours.output()}`);
      assert.is(e.code, 0, p.ours.output());
      assert.equal(await traces(p.name), []);
    } finally {
      await p.close();
    }
  });

  test("the interface deleted under it (ip link delete): the up process exits 0, nothing left behind", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await pings(L.b, [INNER.a4], p);
      await must(["ip", "link", "delete", p.name], { ns: L.b });
      const e = await Promise.race([p.ours.exited, sleep(5000).then(() => null)]);
      assert.ok(e, `the up process still runs 5 s after its interface was deleted\n${p.ours.output()}`);
      assert.is(e!.code, 0, p.ours.output());
      assert.equal(await traces(p.name), []);
    } finally {
      await p.close();
    }
  });

  /** `wg up` on `conf` in b must fail: one line on stderr matching each of `expect`, non-zero exit, nothing left. */
  async function failsUp(conf: string, expect: RegExp[], o: { name?: string; asNobody?: boolean } = {}): Promise<void> {
    const name = o.name ?? L.name("b");
    let path: string;
    if (o.asNobody) {
      const dir = join(L.dir, "public");
      mkdirSync(dir, { recursive: true });
      chmodSync(L.dir, 0o711);
      chmodSync(dir, 0o755);
      path = join(dir, `${name}.conf`);
      writeFileSync(path, conf, { mode: 0o644 });
    } else {
      path = L.file(`${name}.conf`, conf);
    }
    const argv = [process.execPath, CLI, "up", path];
    if (o.asNobody) argv.unshift("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups");
    const r = await run(argv, { ns: L.b, timeout: 10_000 });
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("[#] "));
    assert.ok(r.code !== 0 && r.code !== null, `exit ${r.code ?? r.signal}, expected a failure: ${r.stderr}`);
    assert.is(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
    assert.not.match(r.stderr, /^\s+at /m, `a stack trace:\n${r.stderr}`);
    for (const x of expect) assert.match(lines[0], x);
    console.log(`  ${lines[0]}`);
    if (!o.name) assert.equal(await traces(name), []);
  }

  const conf = (o: { iface?: string; peer?: string; priv?: string; port?: number } = {}) =>
    `[Interface]\nPrivateKey = ${o.priv ?? B.priv}\nListenPort = ${o.port ?? PORT_B}\nAddress = ${INNER.b4}/24\n${o.iface ?? ""}` +
    `\n[Peer]\nPublicKey = ${A.pub}\nAllowedIPs = ${INNER.a4}/32\n${o.peer ?? ""}`;

  test("errors: bad PrivateKey, unknown key, bad Endpoint, bad AllowedIPs, missing file", async () => {
    await failsUp(conf({ priv: "c2hvcnQ=" }), [/line 2\b/, /PrivateKey/]);
    await failsUp(conf({ iface: "Frobnicate = 1\n" }), [/line 5\b/, /Frobnicate/]);
    await failsUp(conf({ peer: "Endpoint = 192.168.77.1\n" }), [/line 9\b/, /Endpoint/]);
    await failsUp(conf({ peer: "Endpoint = [fd77::1:51820\n" }), [/line 9\b/, /Endpoint/]);
    await failsUp(conf({ peer: "AllowedIPs = 10.77.0.0/33\n" }), [/line 9\b/, /AllowedIPs/]);
    await failsUp(conf({ peer: "AllowedIPs = 10.77.0.256/32\n" }), [/line 9\b/, /AllowedIPs/]);
    const r = await run([process.execPath, CLI, "up", join(L.dir, "absent", "wgx.conf")], { ns: L.b });
    assert.ok(r.code !== 0 && r.stderr.trim().split("\n").length === 1 && !/^\s+at /m.test(r.stderr), r.stderr);
  });

  test("errors: not root", async () => {
    await failsUp(conf(), [/root|CAP_NET_ADMIN/], { asNobody: true });
  });

  test("errors: UDP port in use, interface that already exists (the running one untouched)", async () => {
    const p = await pair({ ourEndpoint: `${OUTER.a4}:${PORT_A}` });
    try {
      await failsUp(conf({ port: PORT_B }), [/\b51821\b/, /in use/]);
      await failsUp(conf({ port: PORT_B + 1 }), [/already exists/, new RegExp(p.name)], { name: p.name });
      assert.ok(p.ours.running, p.ours.output());
      assert.ok(existsSync(`${RUN_DIR}/${p.name}.sock`) && existsSync(`${RUN_DIR}/${p.name}.pid`), "the running interface lost its socket or pid file");
      await pings(L.b, [INNER.a4], p);
      assert.is((await show(L.b, p.name, "listen-port"))[0][0], String(PORT_B));
    } finally {
      await p.close();
    }
  });

  test("cleanup: every up process stopped on SIGTERM; no namespace, process, socket or pid file left", async () => {
    await L.destroy();
    assert.equal(L.leftovers(), []);
    assert.equal(stuck, []);
  });
}
