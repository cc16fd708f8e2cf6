// Two tunnels in one process, each a Device (engine + netstack as its Tun + UDP bind
// + one timer) on real loopback UDP sockets, opened through the library API
// (adapters/tunnel/tunnel.ts) with each runtime's host: TCP both ways with 20 MB
// checked end to end, UDP, ping over IPv4 and IPv6, DNS, and fetch of pages
// served inside the tunnel (Content-Length, chunked, POST), then status and
// an idle stack once everything has closed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "../../helpers/root.ts";
import { nodeHost } from "../../../adapters/node/host.ts";
import { openTunnel, type Tunnel, type TunnelDeps } from "../../../adapters/tunnel/tunnel.ts";
import { serveSocks5 } from "../../../adapters/proxy/socks5.ts";
import { serveHttpProxy } from "../../../adapters/proxy/http-proxy.ts";
import { serveHost, tcpClientTunnel, tcpServerTunnel } from "../../../adapters/proxy/forward.ts";
import { Slots } from "../../../adapters/proxy/connections.ts";
import type { Host, HostStream } from "../../../adapters/ports/host.ts";
import { formatShow } from "../../../src/show.ts";

// Each runtime with its own adapter: Deno and Bun load theirs from source.
const adapter = (path: string) => import(pathToFileURL(join(ROOT, "adapters", path)).href);
const rt: TunnelDeps = "Deno" in globalThis ? (await adapter("deno/host.ts")).denoHost()
  : process.versions.bun ? (await adapter("bun/host.ts")).bunHost() : nodeHost();
const MB = 1 << 20;
let A: Tunnel, B: Tunnel;

/** Deterministic bytes. */
function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function writeAll(w: WritableStream<Uint8Array>, data: Uint8Array, chunk = 60000): Promise<void> {
  const writer = w.getWriter();
  for (let o = 0; o < data.length; o += chunk) await writer.write(data.subarray(o, o + chunk));
  await writer.close();
}

/** Exactly n bytes from a stream (the reader is released after). */
async function readN(r: ReadableStream<Uint8Array>, n: number): Promise<Uint8Array> {
  const reader = r.getReader(), out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended after ${got} of ${n} bytes`);
    if (got + value.length > n) throw new Error("more bytes than expected");
    out.set(value, got);
    got += value.length;
  }
  reader.releaseLock();
  return out;
}

async function collect(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of r as unknown as AsyncIterable<Uint8Array>) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

async function readAll(r: ReadableStream<Uint8Array>): Promise<{ hash: string; length: number }> {
  const h = createHash("sha256");
  let length = 0;
  for await (const c of r as unknown as AsyncIterable<Uint8Array>) { h.update(c); length += c.length; }
  return { hash: h.digest("hex"), length };
}

test.before(async () => {
  const ka = rt.x25519.generate(), kb = rt.x25519.generate();
  const stack = { tcp: { timeWait: 200 } };
  A = await openTunnel(rt, {
    privateKey: ka.privateKey, listenPort: 0, addresses: ["10.91.0.1/24", "fd91::1/64"],
    peers: [{ publicKey: kb.publicKey, allowedIps: ["10.91.0.2/32", "fd91::2/128"] }],
  }, { stack });
  B = await openTunnel(rt, {
    privateKey: kb.privateKey, addresses: ["10.91.0.2", "fd91::2"], dns: ["10.91.0.1"],
    peers: [{ publicKey: ka.publicKey, endpoint: { address: "127.0.0.1", port: A.engine.listenPort }, allowedIps: ["10.91.0.0/24", "fd91::/64"] }],
  }, { stack });
});

test.after(async () => {
  await B?.close();
  await A?.close();
});

test("ping both ways, IPv4 and IPv6 (the first starts the handshake)", async () => {
  assert.ok((await B.ping("10.91.0.1")) >= 0);
  assert.ok((await A.ping("10.91.0.2")) >= 0);
  assert.ok((await A.ping("fd91::2")) >= 0);
  assert.ok((await B.ping("fd91::1", { size: 1000 })) >= 0);
});

test("TCP: 20 MB each way through an echo, and 20 MB from the listener's side, checksums equal", async () => {
  A.listen(7, (c) => { void c.readable.pipeTo(c.writable).catch(() => {}); });
  const data = bytes(20 * MB, 1);
  let t0 = performance.now();
  const c = await B.connect("10.91.0.1", 7);
  const [, back] = await Promise.all([writeAll(c.writable, data), readAll(c.readable)]);
  const echoMs = performance.now() - t0;
  assert.is(back.length, data.length);
  assert.is(back.hash, sha(data));

  // The other way: B listens (IPv6), A connects, B sends.
  const data2 = bytes(20 * MB, 2);
  B.listen(9000, (conn) => { void writeAll(conn.writable, data2); });
  t0 = performance.now();
  const c2 = await A.connect("fd91::2", 9000);
  const got = await readAll(c2.readable);
  const oneMs = performance.now() - t0;
  assert.is(got.length, data2.length);
  assert.is(got.hash, sha(data2));
  await c2.close();
  console.log(`  echo 2 x 20 MB: ${(2 * 20 * 8 * MB / 1e6 / (echoMs / 1000)).toFixed(0)} Mbit/s; 20 MB one way: ${(20 * 8 * MB / 1e6 / (oneMs / 1000)).toFixed(0)} Mbit/s`);
});

test("UDP datagrams there and back", async () => {
  const server = A.udp(5353);
  void (async () => {
    for await (const m of server.readable as unknown as AsyncIterable<{ data: Uint8Array; address: string; port: number }>) {
      server.send(Uint8Array.from(m.data).reverse(), m.address, m.port);
    }
  })();
  const client = B.udp();
  const r = client.readable.getReader();
  for (let i = 0; i < 20; i++) {
    const msg = bytes(100 + i * 50, 10 + i);
    assert.ok(client.send(msg, "10.91.0.1", 5353));
    const { value } = await r.read();
    assert.equal(value!.data, Uint8Array.from(msg).reverse());
    assert.is(value!.address, "10.91.0.1");
    assert.is(value!.port, 5353);
  }
  r.releaseLock();
  client.close();
  server.close();
});

test("DNS: names resolve through the tunnel's DNS server", async () => {
  // A tiny DNS server on A: one A record for every A question.
  const dns = A.udp(53);
  void (async () => {
    for await (const m of dns.readable as unknown as AsyncIterable<{ data: Uint8Array; address: string; port: number }>) {
      const q = m.data, isA = ((q[q.length - 4] << 8) | q[q.length - 3]) === 1;
      const ans = isA ? [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 91, 0, 1] : [];
      dns.send(Uint8Array.from([q[0], q[1], 0x81, 0x80, 0, 1, 0, isA ? 1 : 0, 0, 0, 0, 0, ...q.subarray(12), ...ans]), m.address, m.port);
    }
  })();
  assert.equal(await B.resolve("peer.wg"), ["10.91.0.1"]);
  assert.equal(await B.resolve("10.91.0.7"), ["10.91.0.7"]);
});

test("fetch: pages served inside the tunnel (Content-Length, chunked, POST, by name)", async () => {
  const big = bytes(3 * MB, 5);
  A.serve(80, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/hello") return new Response("hello through the tunnel\n", { headers: { "content-length": "25" } });
    if (path === "/big") return new Response(new Blob([big]).stream()); // a stream: chunked
    if (path === "/echo") return new Response(await req.arrayBuffer(), { status: 201, headers: { "x-method": req.method } });
    return new Response("no\n", { status: 404 });
  });
  let r = await B.fetch("http://10.91.0.1/hello");
  assert.is(r.status, 200);
  assert.is(await r.text(), "hello through the tunnel\n");
  r = await B.fetch("http://10.91.0.1/big");
  assert.is(r.headers.get("transfer-encoding"), "chunked");
  assert.is(sha(new Uint8Array(await r.arrayBuffer())), sha(big));
  const body = bytes(200_000, 6);
  r = await B.fetch("http://10.91.0.1/echo", { method: "POST", body });
  assert.is(r.status, 201, await r.clone().text());
  assert.is(r.status, 201);
  assert.is(r.headers.get("x-method"), "POST");
  assert.equal(new Uint8Array(await r.arrayBuffer()), body);
  r = await B.fetch("http://peer.wg/nothing");
  assert.is(r.status, 404);
  assert.is(await r.text(), "no\n");
  r = await B.fetch("http://[fd91::1]/hello", { method: "HEAD" });
  assert.is(r.status, 200);
  assert.is(await r.text(), "");
  let err: unknown = null;
  try { await B.fetch("https://10.91.0.1/"); } catch (e) { err = e; }
  // This tunnel's deps give no TLS: https: fails at once, with one line saying so.
  assert.instance(err, TypeError);
  assert.is(String(err), "TypeError: TLS is not available on this host: its TunnelDeps give no tls connector");
  err = null;
  try { await B.fetch("ftp://10.91.0.1/"); } catch (e) { err = e; }
  assert.match(String(err), /^TypeError: ftp: URLs are not supported/);
});

test("the proxies over this runtime's host sockets: SOCKS5 CONNECT and UDP ASSOCIATE, HTTP proxy, both forwards", async () => {
  const host = rt as Host;
  if (!host.listenTcp || !host.connectTcp || !host.bindUdp) { assert.unreachable("the runtime has no host TCP/UDP"); return; }
  const slots = new Slots(16);
  const servers = [
    await serveHost(host.listenTcp, "127.0.0.1", 0, slots, (c) => serveSocks5(c, B, { bindUdp: host.bindUdp, username: "u", password: "p" })),
    await serveHost(host.listenTcp, "127.0.0.1", 0, slots, (c) => serveHttpProxy(c, B)),
    await tcpClientTunnel(host.listenTcp, ["127.0.0.1", 0], ["10.91.0.1", 7], B, slots),
  ];
  const [socks, http, fwd] = servers.map((x) => x.port);
  try {
    // A host echo server, reached from inside the tunnel through a TCPServerTunnel on B.
    const echo = await host.listenTcp("127.0.0.1", 0, (s) => { void s.readable.pipeTo(s.writable).catch(() => s.close()); });
    servers.push(echo);
    const st = tcpServerTunnel(B, 2001, host.connectTcp, ["127.0.0.1", echo.port], slots);

    const talk = async (s: HostStream, send: number[], expect: number): Promise<Uint8Array> => {
      const w = s.writable.getWriter();
      await w.write(Uint8Array.from(send));
      w.releaseLock();
      return readN(s.readable, expect);
    };
    // SOCKS5 with username/password, CONNECT 10.91.0.1:7 (A's echo).
    let s = await host.connectTcp("127.0.0.1", socks);
    assert.equal([...await talk(s, [5, 1, 2], 2)], [5, 2]);
    assert.equal([...await talk(s, [1, 1, 117, 1, 112], 2)], [1, 0]);
    const rep = await talk(s, [5, 1, 0, 1, 10, 91, 0, 1, 0, 7], 10);
    assert.equal([...rep.subarray(0, 4)], [5, 0, 0, 1]);
    const data = bytes(1 << 20, 9);
    let [, back] = await Promise.all([writeAll(s.writable, data), readAll(s.readable)]);
    assert.is(back.hash, sha(data), "socks5 CONNECT: " + back.length);
    // A wrong password ends the connection after the failure status.
    s = await host.connectTcp("127.0.0.1", socks);
    await talk(s, [5, 1, 2], 2);
    assert.equal([...await talk(s, [1, 1, 117, 1, 113], 2)], [1, 1]);
    s.close();

    // UDP ASSOCIATE: a datagram to A's reversing UDP server (5353, from the UDP test) and back.
    s = await host.connectTcp("127.0.0.1", socks);
    await talk(s, [5, 1, 2], 2);
    await talk(s, [1, 1, 117, 1, 112], 2);
    const got: Uint8Array[] = [];
    let wake = () => {};
    const u = await host.bindUdp("127.0.0.1", 0, (d) => { got.push(d.slice()); wake(); });
    const ua = await talk(s, [5, 3, 0, 1, 127, 0, 0, 1, u.port >> 8, u.port & 0xff], 10);
    assert.is(ua[1], 0);
    const relayPort = (ua[8] << 8) | ua[9];
    const server = A.udp(5354);
    void (async () => {
      for await (const m of server.readable as unknown as AsyncIterable<{ data: Uint8Array; address: string; port: number }>) {
        server.send(Uint8Array.from(m.data).reverse(), m.address, m.port);
      }
    })();
    const arrived = new Promise<void>((r) => { wake = r; });
    u.send(Uint8Array.from([0, 0, 0, 1, 10, 91, 0, 1, 0x14, 0xea, 1, 2, 3]), "127.0.0.1", relayPort);
    await arrived;
    assert.equal([...got[0]], [0, 0, 0, 1, 10, 91, 0, 1, 0x14, 0xea, 3, 2, 1]);
    s.close();
    u.close();
    server.close();

    // HTTP proxy: an absolute URI, and CONNECT.
    s = await host.connectTcp("127.0.0.1", http);
    let w = s.writable.getWriter();
    await w.write(new TextEncoder().encode("GET http://10.91.0.1/hello HTTP/1.1\r\nHost: 10.91.0.1\r\nConnection: keep-alive\r\n\r\n"));
    w.releaseLock();
    const text = new TextDecoder().decode((await collect(s.readable)));
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /\r\nConnection: close\r\n/i);
    assert.match(text, /hello through the tunnel\n$/);
    s.close();
    s = await host.connectTcp("127.0.0.1", http);
    w = s.writable.getWriter();
    await w.write(new TextEncoder().encode("CONNECT 10.91.0.1:7 HTTP/1.1\r\nHost: 10.91.0.1:7\r\n\r\n"));
    w.releaseLock();
    assert.match(new TextDecoder().decode(await readN(s.readable, 39)), /^HTTP\/1\.1 200 Connection established\r\n\r\n$/);
    [, back] = await Promise.all([writeAll(s.writable, data), readAll(s.readable)]);
    assert.is(back.hash, sha(data), "http CONNECT: " + back.length);

    // TCPClientTunnel: host -> A's echo; TCPServerTunnel: A -> B:2001 -> host echo.
    s = await host.connectTcp("127.0.0.1", fwd);
    [, back] = await Promise.all([writeAll(s.writable, data), readAll(s.readable)]);
    assert.is(back.hash, sha(data), "TCPClientTunnel: " + back.length);
    const c = await A.connect("10.91.0.2", 2001);
    [, back] = await Promise.all([writeAll(c.writable, data), readAll(c.readable)]);
    assert.is(back.hash, sha(data), "TCPServerTunnel: " + back.length);
    st.close();
    for (let i = 0; i < 50 && slots.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.is(slots.active, 0);
  } finally {
    for (const x of servers) x.close();
  }
});

test("status: handshakes and transfer in wg show's form; both stacks idle once all is closed", async () => {
  const s = B.status();
  assert.is(s.peers.length, 1);
  assert.ok(s.peers[0].lastHandshakeTime > 0);
  assert.ok(s.peers[0].rxBytes > 20 * MB && s.peers[0].txBytes > 40 * MB, JSON.stringify(s.peers[0]));
  const text = formatShow("b", s, Date.now());
  assert.match(text, /latest handshake: /);
  assert.match(text, /transfer: .* received, .* sent/);
  assert.equal(s.addresses, ["10.91.0.2", "fd91::2"]);
  // TIME-WAIT is 200 ms here; wait for it to pass.
  const idle = async (t: Tunnel) => {
    for (let i = 0; i < 100; i++) {
      const u = t.stack.usage();
      if (u.connections === 0 && u.bufferBytes === 0 && u.controlQueue === 0 && u.pings === 0 && u.dnsQueries === 0) return u;
      await new Promise((r) => setTimeout(r, 50));
    }
    return t.stack.usage();
  };
  for (const t of [A, B]) {
    const u = await idle(t);
    assert.is(u.connections, 0, JSON.stringify(u));
    assert.is(u.bufferBytes, 0);
  }
  assert.is(A.stack.stats.dropChecksum + B.stack.stats.dropChecksum, 0);
});

test.run();
