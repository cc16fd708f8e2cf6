// UDP sockets, ICMP/ICMPv6 echo and the DNS resolver between two netstacks;
// the DNS server is a small fake on the other stack's UDP port 53.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { A4, A6, B4, B6, Link, bytes, equalBytes, readAll, writeAll } from "../../helpers/netstack.ts";
import { echoRequest, udpPacket } from "../../helpers/netstack-craft.ts";
import { NetError, type Stack, type UdpMessage, type UdpSocket } from "../../../src/netstack/index.ts";
import { parseAddress } from "../../../src/ip.ts";

async function expectError(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, NetError);
    assert.is((e as NetError).code, code);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** Everything b sends, as it would leave the stack. */
function drainAll(s: Stack): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = s.output(); p; p = s.output()) out.push(p);
  return out;
}

for (const v6 of [false, true]) {
  test(`ping over ${v6 ? "ICMPv6" : "ICMP"}: the reply is matched and the RTT measured`, async () => {
    const link = new Link();
    link.delay = 7;
    const rtt = await link.until(link.a.ping(v6 ? B6 : B4, link.now));
    assert.is(rtt, 14);
    assert.is(link.log.length, 2);
    const [req, rep] = link.log.map((p) => p.data);
    const off = v6 ? 40 : 20;
    assert.is(req[off], v6 ? 128 : 8);
    assert.is(rep[off], v6 ? 129 : 0);
    assert.ok(equalBytes(req.subarray(off + 4), rep.subarray(off + 4)), "same id, sequence and data");
    assert.is(link.b.stats.icmpIn, 1);
    // Several in flight at once, each matched to its own reply.
    link.delay = 1;
    const rtts = await link.until(Promise.all([1, 2, 3].map(() => link.a.ping(v6 ? B6 : B4, link.now, { size: 100 }))));
    assert.equal(rtts, [2, 2, 2]);
  });
}

test("ping: no reply means ETIMEDOUT after the timeout; nothing is left behind", async () => {
  const link = new Link();
  link.filter = () => false;
  const p = link.a.ping(B4, 0, { timeout: 1500 });
  await expectError(link.until(p), "ETIMEDOUT");
  assert.is(link.now, 1500);
  assert.is(link.a.usage().pings, 0);
  try { await link.a.ping(B6, 0, { size: 5000 }); assert.unreachable(); } catch (e) { assert.instance(e, RangeError); }
  const only4 = new Link({ addresses: [A4] });
  await expectError(only4.a.ping(B6, 0), "ENETUNREACH");
});

test("echo requests to our addresses are answered; to other addresses, not", () => {
  const link = new Link();
  link.b.input(echoRequest(A4, B4, 0x4242, 7, bytes(64)), 0);
  link.b.input(echoRequest(A6, B6, 0x4343, 8, bytes(32)), 0);
  link.b.input(echoRequest(A4, "10.0.0.3", 1, 1, bytes(8)), 0);
  const out = drainAll(link.b);
  assert.is(out.length, 2);
  assert.is(out[0][20], 0);
  assert.equal([...out[0].subarray(24, 28)], [0x42, 0x42, 0, 7]);
  assert.ok(equalBytes(out[0].subarray(28), bytes(64)));
  assert.is(out[1][40], 129);
  assert.is(link.b.stats.dropNotForUs, 1);
});

for (const v6 of [false, true]) {
  test(`UDP both ways over IPv${v6 ? 6 : 4}, with the peer's address and port`, async () => {
    const link = new Link();
    const sa = link.a.udp(5000), sb = link.b.udp(6000);
    const ra = sa.readable.getReader(), rb = sb.readable.getReader();
    assert.ok(sa.send(new TextEncoder().encode("ping"), v6 ? B6 : B4, 6000));
    const m1 = (await link.until(rb.read())).value!;
    assert.is(new TextDecoder().decode(m1.data), "ping");
    assert.is(m1.address, v6 ? A6 : A4);
    assert.is(m1.port, 5000);
    sb.send(bytes(1000), m1.address, m1.port);
    const m2 = (await link.until(ra.read())).value!;
    assert.ok(equalBytes(m2.data, bytes(1000)));
    assert.is(m2.address, v6 ? B6 : B4);
    assert.is(m2.port, 6000);
    // Empty datagrams and the largest that fits the MTU.
    const max = 1420 - (v6 ? 40 : 20) - 8;
    sa.send(new Uint8Array(0), v6 ? B6 : B4, 6000);
    sa.send(bytes(max), v6 ? B6 : B4, 6000);
    assert.is((await link.until(rb.read())).value!.data.length, 0);
    assert.ok(equalBytes((await link.until(rb.read())).value!.data, bytes(max)));
    assert.throws(() => sa.send(bytes(max + 1), v6 ? B6 : B4, 6000), RangeError);
  });
}

test("UDP: a datagram to a closed port earns ICMP port unreachable", () => {
  const link = new Link();
  link.b.input(udpPacket(A4, B4, 1234, 9999, bytes(20)), 0);
  link.b.input(udpPacket(A6, B6, 1234, 9999, bytes(20)), 0);
  const out = drainAll(link.b);
  assert.is(out.length, 2);
  assert.equal([out[0][20], out[0][21]], [3, 3]);
  assert.equal([out[1][40], out[1][41]], [1, 4]);
  assert.is(link.b.stats.udpNoPort, 2);
});

test("UDP: both queues are bounded; a full socket drops, a full send queue says so", async () => {
  const link = new Link();
  const sb = link.b.udp(53);
  for (let i = 0; i < 100; i++) link.b.input(udpPacket(A4, B4, 1000 + i, 53, bytes(10, i)), 0);
  assert.is(link.b.stats.udpDropped, 36);
  assert.is(link.b.usage().udpQueued, 64);
  const r = sb.readable.getReader();
  const first = (await r.read()).value!;
  assert.is(first.port, 1000);
  const sa = link.a.udp();
  let accepted = 0;
  for (let i = 0; i < 100; i++) if (sa.send(bytes(10), B4, 53)) accepted++;
  assert.is(accepted, 64);
  assert.is(drainAll(link.a).length, 64);
  assert.ok(sa.send(bytes(10), B4, 53), "room again once drained");
});

test("UDP: ports are exclusive; close frees the port and ends the readable", async () => {
  const link = new Link();
  const s = link.a.udp(4000);
  assert.throws(() => link.a.udp(4000), (e: unknown) => e instanceof NetError && e.code === "EADDRINUSE");
  const eph = link.a.udp();
  assert.ok(eph.port >= 49152);
  const r = s.readable.getReader();
  s.close();
  assert.is((await r.read()).done, true);
  link.a.udp(4000).close();
  eph.close();
  assert.is(link.a.usage().udpSockets, 0);
});

// ---- DNS ----------------------------------------------------------------------------

interface Zone {
  [name: string]: { a?: string[]; aaaa?: string[]; cname?: string; ttl?: number };
}

/** A tiny DNS server on `stack`'s UDP port 53; `drop(n)` says whether to ignore the n-th query. */
function fakeDns(stack: Stack, zone: Zone, drop: (n: number) => boolean = () => false): { queries: { name: string; type: number; port: number }[]; sock: UdpSocket } {
  const sock = stack.udp(53), queries: { name: string; type: number; port: number }[] = [];
  void (async () => {
    const r = sock.readable.getReader();
    for (;;) {
      const { value, done } = await r.read();
      if (done) return;
      const m = (value as UdpMessage).data;
      const labels: string[] = [];
      let o = 12;
      while (m[o] !== 0) { labels.push(String.fromCharCode(...m.subarray(o + 1, o + 1 + m[o]))); o += 1 + m[o]; }
      const name = labels.join("."), type = (m[o + 1] << 8) | m[o + 2];
      queries.push({ name, type, port: value.port });
      if (drop(queries.length)) continue;
      const question = [...m.subarray(12, o + 5)];
      const answers: number[][] = [];
      let rcode = 0;
      let cur = name;
      const encode = (n: string) => [...n.split(".").flatMap((l) => [l.length, ...[...l].map((c) => c.charCodeAt(0))]), 0];
      for (let hops = 0; hops < 5; hops++) {
        const rec = zone[cur];
        if (!rec) { if (hops === 0) rcode = 3; break; }
        const ttl = rec.ttl ?? 300, owner = encode(cur);
        const rr = (t: number, rdata: number[]) => answers.push([...owner, t >> 8, t & 0xff, 0, 1, 0, 0, ttl >> 8, ttl & 0xff, rdata.length >> 8, rdata.length & 0xff, ...rdata]);
        if (rec.cname) { rr(5, encode(rec.cname)); cur = rec.cname; continue; }
        for (const a of type === 1 ? rec.a ?? [] : type === 28 ? rec.aaaa ?? [] : []) rr(type, [...parseAddress(a)]);
        break;
      }
      const resp = Uint8Array.from([m[0], m[1], 0x81, 0x80 | rcode, 0, 1, 0, answers.length, 0, 0, 0, 0, ...question, ...answers.flat()]);
      sock.send(resp, value.address, value.port);
    }
  })();
  return { queries, sock };
}

const ZONE: Zone = {
  "example.test": { a: ["192.0.2.10", "192.0.2.11"], aaaa: ["2001:db8::10"] },
  "www.example.test": { cname: "example.test" },
  "v4only.test": { a: ["10.0.0.2"] },
  "b.test": { a: [B4] },
};

test("DNS: A and AAAA through the stack, CNAMEs followed, NXDOMAIN as ENOTFOUND", async () => {
  const link = new Link({ dns: [B4] });
  const dns = fakeDns(link.b, ZONE);
  assert.equal(await link.until(link.a.resolve("example.test")), ["192.0.2.10", "192.0.2.11", "2001:db8::10"]);
  assert.equal(await link.until(link.a.resolve("WWW.example.test.")), ["192.0.2.10", "192.0.2.11", "2001:db8::10"]);
  assert.equal(await link.until(link.a.resolve("example.test", { family: 6 })), ["2001:db8::10"]);
  assert.equal(await link.until(link.a.resolve("v4only.test")), ["10.0.0.2"]);
  await expectError(link.until(link.a.resolve("nope.test")), "ENOTFOUND");
  assert.equal(await link.a.resolve("192.0.2.1"), ["192.0.2.1"], "a literal needs no query");
  // Each query came from its own random port.
  const ports = new Set(dns.queries.map((q) => q.port));
  assert.ok(ports.size >= dns.queries.length - 1);
  assert.is(link.a.usage().udpSockets, 0, "query sockets are closed");
});

test("DNS: answers are cached for their TTL, bounded", async () => {
  const link = new Link({ dns: { servers: [B4], cacheSize: 2 } });
  const dns = fakeDns(link.b, { ...ZONE, "short.test": { a: ["192.0.2.5"], ttl: 2 } });
  await link.until(link.a.resolve("example.test", { family: 4 }));
  await link.until(link.a.resolve("example.test", { family: 4 }));
  assert.is(dns.queries.length, 1, "the second came from the cache");
  await link.until(link.a.resolve("short.test", { family: 4 }));
  await link.runFor(2500);
  await link.until(link.a.resolve("short.test", { family: 4 }));
  assert.is(dns.queries.length, 3, "expired after its TTL");
  await link.until(link.a.resolve("v4only.test", { family: 4 }));
  assert.is(link.a.usage().dnsCache, 2, "never more than cacheSize");
});

test("DNS: a lost query is retried after the timeout, then the next server is asked", async () => {
  const link = new Link({ dns: { servers: ["10.0.0.99", B4], timeout: 1000 } });
  const dns = fakeDns(link.b, ZONE, (n) => n === 1);
  const t0 = link.now;
  // 10.0.0.99 is nobody (b drops it); then b, whose first answer is lost; then 10.0.0.99 again; then b answers.
  const got = await link.until(link.a.resolve("example.test", { family: 4 }));
  assert.equal(got, ["192.0.2.10", "192.0.2.11"]);
  assert.is(dns.queries.length, 2);
  assert.is(link.now - t0, 3000 + 10);
});

test("DNS: no answer at all is ETIMEDOUT after the attempts; a forged reply with the wrong ID is ignored", async () => {
  const link = new Link({ dns: { servers: [B4], timeout: 500, attempts: 3 } });
  const sock = link.b.udp(53);
  let forged = 0;
  void (async () => {
    const r = sock.readable.getReader();
    for (;;) {
      const { value, done } = await r.read();
      if (done) return;
      const m = value.data.slice();
      m[0] ^= 0xff; // wrong ID
      m[2] = 0x81; m[3] = 0x80;
      sock.send(m, value.address, value.port);
      forged++;
    }
  })();
  await expectError(link.until(link.a.resolve("example.test", { family: 4 })), "ETIMEDOUT");
  assert.is(forged, 3);
  assert.is(link.a.usage().dnsQueries, 0);
  assert.is(link.a.usage().udpSockets, 0);
});

test("connect by name: resolved through the stack, then TCP", async () => {
  const link = new Link({ dns: [B4] });
  fakeDns(link.b, ZONE);
  link.b.listen(8080, (c) => { void writeAll(c, new TextEncoder().encode("hi from b")); });
  const c = await link.until(link.a.connect("b.test", 8080));
  assert.is(c.remoteAddress, B4);
  assert.is(new TextDecoder().decode(await link.until(readAll(c))), "hi from b");
  await expectError(link.until(link.a.connect("nope.test", 80)), "ENOTFOUND");
});

test.run();
