// TLS in a page, through the tunnel: Chromium (namespace b) through the
// WebSocket relay to wireguard-go (namespace a), where `openssl s_server`s
// serve a certificate from a CA this test makes with `openssl req`, one from
// another CA, and files.wg's certificate for a name asked as another. The
// page's TLS is subtls (adapters/browser/tls.ts), in the page's own thread
// (connect) and in the tunnel's Worker (connectWorker), in one page load.
//   Chromium (b) --WebSocket--> relay (b) --UDP--> wireguard-go (a) --> openssl s_server (a)
// Needs root, wireguard-go, ip, Chromium and openssl: with CI=true their
// absence fails the test (notRun), elsewhere it is skipped with one line.
import { accessSync, constants, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CLI, INNER, Layout, OUTER, keypair, must, notRun, poll, run, unavailable, type Proc } from "../helpers/netns.ts";
import { ChromiumPage, browserUnavailable } from "../helpers/browser.ts";

const RELAY_PORT = 8093;
/** s_server ports: files.wg's certificate from the test CA, one from a CA nobody gave the page; node:https with the first. */
const GOOD = 8443, ROGUE = 8444, BULK = 8446;
/** What the page downloads and uploads over TLS: many records each way, so the streams' backpressure is in play. */
const DOWN = 4 << 20, UP = 1 << 20;

/** GET /big?n= answers n random bytes, their SHA-256 in x-sha256; POST / answers the body's length and SHA-256. */
const BULK_JS = `
import https from "node:https"; import { createHash, randomBytes } from "node:crypto"; import { readFileSync } from "node:fs";
const [host, port, key, cert] = process.argv.slice(2);
https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
  const u = new URL(req.url, "https://x");
  if (u.pathname === "/big") { const b = randomBytes(Number(u.searchParams.get("n"))); res.setHeader("x-sha256", createHash("sha256").update(b).digest("hex")); res.end(b); return; }
  const h = createHash("sha256"); let n = 0;
  req.on("data", (d) => { h.update(d); n += d.length; });
  req.on("end", () => res.end(JSON.stringify({ bytes: n, sha256: h.digest("hex") })));
}).listen(Number(port), host);
`;

let L: Layout | null = null;
let why: string | null = null;
let caPem = "";
const A = keypair(), B = keypair();

function opensslMissing(): string | null {
  const path = (process.env.PATH ?? "/usr/bin:/bin").split(":");
  const has = path.some((d) => { try { accessSync(join(d, "openssl"), constants.X_OK); return true; } catch { return false; } });
  return has ? null : "missing openssl (apt-get install --no-install-recommends openssl)";
}

test.before(async () => {
  why = unavailable() ?? opensslMissing() ?? await browserUnavailable();
  if (why) return;
  L = await Layout.create(`wgbt-${process.pid}`);
  const d = L.dir, ssl = (args: string[]) => must(["openssl", ...args]);
  const key = (n: string) => ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(d, `${n}.key`)];
  for (const ca of ["ca", "rogue"]) await ssl(["req", "-x509", ...key(ca), "-out", join(d, `${ca}.pem`), "-days", "2", "-subj", `/CN=wg-js ${ca} test CA`]);
  for (const [n, ca] of [["good", "ca"], ["rogue-leaf", "rogue"]]) {
    await ssl(["req", ...key(n), "-out", join(d, `${n}.csr`), "-subj", "/CN=files.wg"]);
    L.file(`${n}.ext`, "subjectAltName=DNS:files.wg\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n", 0o644);
    await ssl(["x509", "-req", "-in", join(d, `${n}.csr`), "-CA", join(d, `${ca}.pem`), "-CAkey", join(d, `${ca}.key`), "-CAcreateserial",
      "-out", join(d, `${n}.pem`), "-days", "2", "-extfile", join(d, `${n}.ext`)]);
  }
  caPem = readFileSync(join(d, "ca.pem"), "utf8");
  await L.wireguardGo(L.a, L.name("a"), {
    priv: A.priv, listenPort: 51820, addresses: [`${INNER.a4}/24`],
    peers: [{ pub: B.pub, allowedIps: [`${INNER.b4}/32`] }],
  });
  const started: Proc[] = [];
  for (const [port, cert] of [[GOOD, "good"], [ROGUE, "rogue-leaf"]] as const) {
    started.push(L.spawn(L.a, ["openssl", "s_server", "-accept", `${INNER.a4}:${port}`, "-cert", join(d, `${cert}.pem`), "-key", join(d, `${cert}.key`), "-www", "-quiet"]));
  }
  started.push(L.spawn(L.a, [process.execPath, L.file("bulk.mjs", BULK_JS, 0o644), INNER.a4, String(BULK), join(d, "good.key"), join(d, "good.pem")]));
  const relay = L.spawn(L.b, [process.execPath, CLI, "relay", "--listen", `127.0.0.1:${RELAY_PORT}`, "--allow", `${OUTER.a4}:51820`]);
  started.push(relay);
  await poll("s_servers and the relay", async () => {
    for (const p of started) if (!p.running) throw new Error(p.output());
    const ss = (await run(["ss", "-Hltn"], { ns: L!.a })).stdout;
    return [GOOD, ROGUE, BULK].every((port) => ss.includes(`${INNER.a4}:${port} `)) && /listening/.test(relay.output());
  }, 10_000, 50);
});

test.after(async () => { await L?.destroy(); });

const config = () => `[Interface]
PrivateKey = ${B.priv}
Address = ${INNER.b4}/32

[Peer]
PublicKey = ${A.pub}
AllowedIPs = ${INNER.a4}/32
Endpoint = ${OUTER.a4}:51820
`;

test("Chromium -> relay -> wireguard-go: https fetch and connectTls verify against the CA given, in the page and in the Worker (there as tlsRoots); 4 MB down and 1 MB up intact; another CA, another name, no CA each fail in one line", async () => {
  if (why) return notRun(why);
  const page = await ChromiumPage.open(L!.b);
  try {
    const r = await page.page.evaluate(async (o) => {
      const wg = await import(o.module);
      const fail = async (p: Promise<unknown>) => { try { await p; return "no error"; } catch (e) { return `${(e as Error).name}: ${(e as Error).message}`; } };
      const tls = { servername: "files.wg", ca: o.ca };
      // The tunnel in this thread.
      const t = await wg.connect(o.config, { relay: o.relay });
      const res = await t.fetch(o.good, { tls });
      const body = await res.text();
      const rogue = await fail(t.fetch(o.rogue, { tls }));
      const name = await fail(t.fetch(o.good, { tls: { servername: "other.wg", ca: o.ca } }));
      const none = await fail(t.fetch(o.good, { tls: { servername: "files.wg" } }));
      const s = await t.connectTls(o.peer, o.goodPort, tls);
      const w = s.writable.getWriter();
      await w.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
      let raw = "";
      for await (const c of s.readable) raw += new TextDecoder().decode(c);
      // Bulk: 4 MB down, 1 MB up, each compared by SHA-256.
      const hex = async (b: Uint8Array<ArrayBuffer>) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", b))].map((x) => x.toString(16).padStart(2, "0")).join("");
      const t0 = performance.now();
      const big = await t.fetch(`${o.bulk}big?n=${o.down}`, { tls });
      const down = new Uint8Array(await big.arrayBuffer());
      const downMs = performance.now() - t0;
      const downOk = down.length === o.down && await hex(down) === big.headers.get("x-sha256");
      const upBody = new Uint8Array(o.up);
      for (let i = 0; i < o.up; i += 65536) crypto.getRandomValues(upBody.subarray(i, i + 65536));
      const t1 = performance.now();
      const echo = await (await t.fetch(o.bulk, { method: "POST", body: upBody, tls })).json();
      const upMs = performance.now() - t1;
      const upOk = echo.bytes === o.up && echo.sha256 === await hex(upBody);
      await t.close();
      // The tunnel in its Worker: the handshake runs there, the CA given once for the tunnel (tlsRoots).
      const r = await wg.connectWorker(o.config, { relay: o.relay, tlsRoots: [o.ca] });
      const named = { servername: "files.wg" };
      const wres = await r.fetch(o.good, { tls: named });
      const wbody = await wres.text();
      const wrogue = await fail(r.fetch(o.rogue, { tls: named }));
      const ws = await r.connectTls(o.peer, o.goodPort, named);
      const ww = ws.writable.getWriter();
      await ww.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
      let wraw = "";
      for await (const c of ws.readable) wraw += new TextDecoder().decode(c);
      await r.close();
      return { status: res.status, body, rogue, name, none, raw, alpn: s.alpn, wstatus: wres.status, wbody, wrogue, wraw, downOk, downMs, upOk, upMs };
    }, {
      module: "./wg.js", config: config(), relay: `ws://127.0.0.1:${RELAY_PORT}/`, ca: caPem, peer: INNER.a4, goodPort: GOOD,
      good: `https://${INNER.a4}:${GOOD}/`, rogue: `https://${INNER.a4}:${ROGUE}/`, bulk: `https://${INNER.a4}:${BULK}/`, down: DOWN, up: UP,
    });
    assert.is(r.status, 200);
    assert.match(r.body, "TLSv1.3", "s_server's page names the protocol");
    assert.is(r.rogue, "Error: TLS with files.wg failed: certificate not trusted (no chain to a given CA)");
    assert.is(r.name, "Error: TLS with other.wg failed: the certificate is not for other.wg");
    assert.is(r.none, "Error: TLS with files.wg failed: no trusted certificates: a page has no system roots, give ca (PEM) or roots");
    assert.match(r.raw, /^HTTP\/1\.0 200 ok\r\n/);
    assert.is(r.alpn, null);
    assert.ok(r.downOk, "the 4 MB body differs from what the server sent");
    assert.ok(r.upOk, "the server got other than the 1 MB the page sent");
    console.log(`  over TLS in the page: 4 MB down at ${(DOWN * 8 / r.downMs / 1000).toFixed(1)} Mbit/s, 1 MB up at ${(UP * 8 / r.upMs / 1000).toFixed(1)} Mbit/s`);
    assert.is(r.wstatus, 200);
    assert.match(r.wbody, "TLSv1.3");
    assert.is(r.wrogue, "Error: TLS with files.wg failed: certificate not trusted (no chain to a given CA)");
    assert.match(r.wraw, /^HTTP\/1\.0 200 ok\r\n/);
    assert.equal(page.errors, []);
  } finally {
    await page.close();
  }
});

test.run();
