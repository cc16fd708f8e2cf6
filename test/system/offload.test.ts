// TUN offloads against a real peer: wireguard-go in namespace a, `wg up` in
// b on Node, Deno and Bun, once with offloads (TSO super-packets read from
// the device and split, TCP trains joined before they are written) and once
// with WG_OFFLOAD=off. 64 MB of random bytes cross the tunnel over TCP each
// way, and the SHA-256 of what arrived must be that of what was sent.
//
// Needs root and wireguard-go, wg, ip, ping: with CI=true their absence
// fails the suite; elsewhere one test says why nothing ran.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { INNER, Layout, OUTER, keypair, notRun, ping, poll, run, unavailable, wgQuickConf, type RuntimeName } from "../helpers/netns.ts";

const MB = 64;
const RUNTIMES: RuntimeName[] = ["node", "deno", "bun"];

// One program for both ends, run by this Node: `serve HOST PORT sink|source MB` or `connect HOST PORT sink|source MB`.
// A sink hashes what it reads and answers with the hash; a source sends MB of random bytes and reports their hash.
const XFER = `
const net = require("node:net"), crypto = require("node:crypto");
const [cmd, host, port, kind, mb] = process.argv.slice(1);
const send = (c, done) => {
  const h = crypto.createHash("sha256");
  let left = Number(mb) << 20;
  const pump = () => {
    while (left > 0) {
      const b = crypto.randomBytes(Math.min(1 << 20, left));
      h.update(b); left -= b.length;
      if (!c.write(b)) { c.once("drain", pump); return; }
    }
    done(h.digest("hex"));
  };
  pump();
};
const take = (c, done) => {
  const h = crypto.createHash("sha256");
  let n = 0;
  c.on("data", (d) => { h.update(d); n += d.length; });
  c.on("end", () => done(h.digest("hex") + " " + n));
};
if (cmd === "serve") {
  const s = net.createServer((c) => {
    if (kind === "sink") take(c, (r) => { c.end(r + "\\n"); console.log(r); s.close(); });
    else send(c, (r) => { c.end(); console.log(r); s.close(); });
  });
  s.listen(Number(port), host);
} else {
  const c = net.connect(Number(port), host, () => {
    if (kind === "sink") { send(c, (r) => { console.log(r + " " + (Number(mb) << 20)); c.end(); }); let reply = ""; c.on("data", (d) => { reply += d; }); c.on("end", () => console.log("peer " + reply.trim())); }
    else take(c, (r) => console.log(r));
  });
  c.setTimeout(60000, () => { console.error("timeout"); process.exit(1); });
}
`;

/** Moves MB through the tunnel, b to a ("up") or a to b ("down"); returns the two hashes (with byte counts) to compare. */
async function transfer(L: Layout, dir: "up" | "down", port: number): Promise<{ sent: string; got: string }> {
  // Up: a sinks what b sends. Down: a sources what b takes.
  const server = L.spawn(L.a, [process.execPath, "-e", XFER, "serve", INNER.a4, String(port), dir === "up" ? "sink" : "source", String(MB)]);
  try {
    await poll("transfer server listening", async () => !server.running ||
      (await run(["ss", "-Hltn", `sport = :${port}`], { ns: L.a })).stdout.includes(`:${port}`), 5000, 20);
    const r = await run([process.execPath, "-e", XFER, "connect", INNER.a4, String(port), dir === "up" ? "sink" : "source", String(MB)], { ns: L.b, timeout: 90_000 });
    assert.is(r.code, 0, `transfer ${dir}: ${r.stderr}${r.stdout}\n${server.output()}`);
    await server.exited;
    const lines = r.stdout.trim().split("\n");
    if (dir === "up") return { sent: lines[0], got: lines.find((l) => l.startsWith("peer "))!.slice(5) };
    return { sent: `${server.stdout.trim()} ${MB << 20}`, got: lines[0] };
  } finally {
    await server.stop("SIGTERM", 1000);
  }
}

const why = unavailable();
if (why !== null) {
  test("TUN offloads against wireguard-go", () => notRun(why));
} else {
  let L: Layout;
  test.before(async () => { L = await Layout.create(`wgof-${process.pid}`); });
  test.after(async () => { await L?.destroy(); });

  let port = 51850;
  for (const runtime of RUNTIMES) {
    for (const mode of ["on", "off"] as const) {
      test(`${runtime}, offloads ${mode}: ${MB} MB each way over TCP arrive intact`, async () => {
        const A = keypair(), B = keypair(), pa = port, pb = port + 1;
        port += 2;
        const go = await L.wireguardGo(L.a, L.name("a"), {
          priv: A.priv, listenPort: pa, addresses: [`${INNER.a4}/24`, `${INNER.a6}/64`],
          peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`, `${INNER.b6}/128`] }],
        });
        const env: Record<string, string> = mode === "off" ? { WG_OFFLOAD: "off" } : {};
        const ours = await L.ours(L.b, L.name("b"), wgQuickConf({
          priv: B.priv, listenPort: pb, addresses: [`${INNER.b4}/24`, `${INNER.b6}/64`],
          peers: [{ pub: A.pub, allowedIps: [`${INNER.a4}/32`, `${INNER.a6}/128`], endpoint: `${OUTER.a4}:${pa}` }],
        }), runtime, { env, timeout: 20_000 });
        try {
          const line = /^offloads: .*$/m.exec(ours.stderr)?.[0];
          if (mode === "on") assert.match(line ?? "", /^offloads: tso on, uso (on|off \(kernel refused: .*\)), udp-gso on, udp-gro on$/, ours.output());
          else assert.is(line, "offloads: tso off, uso off (turned off), udp-gso off (turned off), udp-gro off (turned off)", ours.output());
          assert.ok(await ping(L.b, INNER.a4), `no ping through the tunnel\n${ours.output()}\n${go.output()}`);
          for (const dir of ["up", "down"] as const) {
            const t = await transfer(L, dir, 6000 + port);
            assert.is(t.got, t.sent, `${dir}: what arrived is what was sent\n${ours.output()}`);
          }
          assert.ok(ours.running, ours.output());
        } finally {
          await ours.stop("SIGTERM", 3000);
          await go.stop("SIGTERM", 2000);
        }
      });
    }
  }
}

test.run();
