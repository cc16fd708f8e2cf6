// Hostile input: random bytes, truncations, bit flips, lying length fields,
// well-formed segments with random fields in every TCP state, floods. The
// stack must never throw, must count what it drops, and must stay bounded.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { A4, A6, B4, B6, F, Link, bytes, equalBytes, prng, readAll, tcpOf, writeAll } from "../../helpers/netstack.ts";
import { echoRequest, ipPacket, tcpSegment, udpPacket } from "../../helpers/netstack-craft.ts";
import { Stack, type TcpConn } from "../../../src/netstack/index.ts";

/** Packets of a real exchange: handshakes, data, FINs, UDP, pings, over IPv4 and IPv6. */
async function samplePackets(): Promise<Uint8Array[]> {
  const link = new Link();
  link.b.listen(80, (c) => { void c.readable.pipeTo(c.writable); });
  link.b.udp(53);
  for (const dst of [B4, B6]) {
    const c = await link.until(link.a.connect(dst, 80));
    const back = readAll(c);
    await writeAll(c, bytes(3000));
    await link.until(back);
    await link.until(link.a.ping(dst, link.now));
    link.a.udp().send(bytes(50), dst, 53);
    await link.runFor(10);
  }
  return link.log.map((p) => p.data);
}

function stackWithListener(): Stack {
  const s = new Stack({ addresses: [B4, B6] });
  s.listen(80, () => {});
  s.udp(53);
  return s;
}

test("random bytes of every length 0..100 never throw", () => {
  const s = stackWithListener(), r = prng(42);
  let now = 0;
  for (let len = 0; len <= 100; len++) {
    for (let k = 0; k < 300; k++) {
      const p = Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
      // A third look like IPv4, a third like IPv6, to get past the version nibble.
      if (len > 0 && k % 3 === 1) p[0] = 0x45;
      if (len > 0 && k % 3 === 2) p[0] = 0x60;
      s.input(p, now++);
      for (let o = s.output(now); o; o = s.output(now)) void o;
      s.tick(now);
    }
  }
  const st = s.stats;
  assert.is(st.packetsIn, 101 * 300);
  assert.ok(st.dropMalformed + st.dropChecksum + st.dropNotForUs + st.dropFragment + st.dropUnsupported > 101 * 290);
});

test("every truncation and every single-bit flip of real packets never throws", async () => {
  const packets = await samplePackets();
  assert.ok(packets.length >= 20, `${packets.length} packets`);
  const s = stackWithListener();
  let now = 0;
  for (const p of packets) {
    for (let n = 0; n < p.length; n++) s.input(p.subarray(0, n), now);
    for (let bit = 0; bit < Math.min(p.length, 80) * 8; bit++) {
      const q = p.slice();
      q[bit >> 3] ^= 1 << (bit & 7);
      s.input(q, now);
    }
    now += 10;
    for (let o = s.output(now); o; o = s.output(now)) void o;
    s.tick(now);
  }
  assert.ok(s.stats.dropChecksum > 0 && s.stats.dropMalformed > 0);
});

test("length fields that lie are dropped, not trusted", () => {
  const s = stackWithListener();
  const syn = tcpSegment(A4, B4, { sport: 1000, dport: 80, flags: F.SYN });
  const cases: [string, Uint8Array][] = [];
  const v4 = (mut: (p: Uint8Array) => void) => {
    const p = syn.slice();
    mut(p);
    p[10] = p[11] = 0;
    let x = 0;
    for (let i = 0; i < 20; i += 2) x += (p[i] << 8) | p[i + 1];
    while (x > 0xffff) x = (x & 0xffff) + (x >>> 16);
    p[10] = (~x >> 8) & 0xff; p[11] = ~x & 0xff;
    return p;
  };
  cases.push(["total length past the end", v4((p) => { p[3] += 10; })]);
  cases.push(["total length inside the header", v4((p) => { p[2] = 0; p[3] = 10; })]);
  cases.push(["IHL past the end", v4((p) => { p[0] = 0x4f; })]);
  cases.push(["IHL below 5", v4((p) => { p[0] = 0x44; })]);
  const u = udpPacket(A4, B4, 1, 53, bytes(10));
  const ulen = u.slice(); ulen[25] += 20;
  cases.push(["UDP length past the datagram", ulen]);
  const t = tcpSegment(A4, B4, { sport: 1000, dport: 80, flags: F.SYN });
  t[32] = 0xf0;
  cases.push(["TCP data offset past the segment", t]);
  const v6 = tcpSegment(A6, B6, { sport: 1000, dport: 80, flags: F.SYN });
  const v6long = v6.slice(); v6long[5] += 8;
  cases.push(["IPv6 payload length past the end", v6long]);
  for (const [what, p] of cases) {
    const before = s.stats.dropMalformed + s.stats.dropChecksum;
    s.input(p, 0);
    assert.is(s.stats.dropMalformed + s.stats.dropChecksum, before + 1, what);
  }
  assert.is(s.output(), null, "nothing answered");
  assert.is(s.usage().connections, 0);
});

/** Random well-formed segments (correct checksums) at one connection, with sequence numbers from seq(). */
function fuzzSegments(r: () => number, src: string, dst: string, sport: number, dport: number, seq: () => number, ack: () => number, n: number, flagsOf?: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const flags = flagsOf ? flagsOf() : r() < 0.5 ? F.ACK | (r() < 0.2 ? F.FIN : 0) | (r() < 0.1 ? F.RST : 0) | (r() < 0.1 ? F.SYN : 0) : Math.floor(r() * 64);
    const options: number[] = [];
    if (r() < 0.3) for (let j = Math.floor(r() * 20); j > 0; j--) options.push(Math.floor(r() * 256));
    const data = r() < 0.4 ? bytes(Math.floor(r() * 1400), i) : undefined;
    out.push(tcpSegment(src, dst, { sport, dport, seq: seq(), ack: ack(), flags, wnd: Math.floor(r() * 65536), options, data }));
  }
  return out;
}

const near = (r: () => number, x: number) => () => {
  const k = r();
  if (k < 0.3) return x;
  if (k < 0.8) return (x + Math.floor((r() - 0.5) * 200_000)) >>> 0;
  return Math.floor(r() * 4294967296);
};

test("forged segments outside the window, with any flags and ACK, change nothing in a transfer", async () => {
  for (const seed of [1, 2, 3]) {
    const link = new Link({}, {}, seed);
    const r = prng(seed);
    let server: TcpConn | null = null;
    link.b.listen(80, (c) => { server = c; });
    const c = await link.until(link.a.connect(B4, 80));
    await link.run(() => server !== null, 100);
    // b's sequence numbers seen by a stay within [irs, irs + 300 KB]; 2^30 past that is outside any window.
    const far = (tcpOf(link.log[1].data)!.seq + (1 << 30)) >>> 0;
    const data = bytes(300_000, seed);
    const w = writeAll(server!, data), got = readAll(c);
    let i = 0, forged = 0;
    link.filter = () => {
      if (i++ % 5 === 0) {
        for (const p of fuzzSegments(r, B4, A4, 80, c.localPort, () => (far + Math.floor(r() * 100_000)) >>> 0, () => Math.floor(r() * 4294967296), 4)) {
          link.a.input(p, link.now);
          forged++;
        }
      }
      return true;
    };
    const [, back] = await link.until(Promise.all([w, got]));
    assert.ok(equalBytes(back, data), `seed ${seed}: intact`);
    assert.ok(forged > 100 && link.a.stats.tcpOutOfWindow >= forged * 0.9, `${forged} forged, ${link.a.stats.tcpOutOfWindow} out of window`);
    assert.is(link.a.stats.tcpResetsIn, 0);
  }
});

test("forged segments near the window, in every state, never throw; the stacks end clean", async () => {
  for (const seed of [1, 2, 3, 4]) {
    const link = new Link({}, {}, seed);
    const r = prng(seed);
    let server: TcpConn | null = null;
    link.b.listen(80, (c) => { server = c; void readAll(c).catch(() => {}); });
    const c = await link.until(link.a.connect(B4, 80));
    await link.run(() => server !== null, 100);
    const synAck = tcpOf(link.log[1].data)!, syn = tcpOf(link.log[0].data)!;
    const w = writeAll(c, bytes(200_000, seed));
    w.catch(() => {});
    let i = 0;
    link.filter = () => {
      if (i++ % 7 === 0) {
        for (const p of fuzzSegments(r, B4, A4, 80, c.localPort, near(r, (synAck.seq + 1) >>> 0), near(r, (syn.seq + 1) >>> 0), 2)) link.a.input(p, link.now);
        for (const p of fuzzSegments(r, A4, B4, c.localPort, 80, near(r, (syn.seq + 1) >>> 0), near(r, (synAck.seq + 1) >>> 0), 2)) link.b.input(p, link.now);
      }
      return true;
    };
    await link.run(() => c.state === "CLOSED", 100_000);
    c.abort();
    server!.abort();
    link.filter = null;
    await link.runFor(300_000);
    assert.is(link.a.usage().connections + link.b.usage().connections, 0);
    assert.is(link.a.usage().bufferBytes + link.b.usage().bufferBytes, 0);
  }
  // Junk at SYN-SENT, at a listener (SYN-RECEIVED), at closed ports.
  for (const seed of [5, 6, 7]) {
    const r = prng(seed);
    const link = new Link({}, {}, seed);
    link.b.listen(80, () => {});
    const pending = link.a.connect(B4, 80);
    pending.catch(() => {});
    const syn = tcpOf(link.a.output(0)!)!; // the SYN leaves: a is in SYN-SENT
    for (const p of fuzzSegments(r, B4, A4, 80, syn.srcPort, near(r, 0), near(r, (syn.seq + 1) >>> 0), 500)) link.a.input(p, 0);
    for (const p of fuzzSegments(r, A4, B4, 40000, 80, near(r, 0), near(r, 0), 500)) link.b.input(p, 0);
    for (const p of fuzzSegments(r, A6, B6, 40001, 81, near(r, 0), near(r, 0), 500)) link.b.input(p, 0);
    assert.ok(link.b.usage().controlQueue <= 256);
    await link.runFor(300_000);
    assert.is(link.a.usage().connections + link.b.usage().connections, 0);
  }
});

test("SYN flood: half-open connections stay under the backlog and all expire", async () => {
  const s = new Stack({ addresses: [B4] });
  s.listen(80, () => {}, { backlog: 64 });
  const r = prng(9);
  for (let i = 0; i < 2000; i++) {
    s.input(tcpSegment(`10.1.${i >> 8}.${i & 0xff}`, B4, { sport: 1024 + Math.floor(r() * 60000), dport: 80, seq: Math.floor(r() * 4294967296), flags: F.SYN }), 0);
  }
  assert.is(s.usage().connections, 64);
  assert.is(s.stats.tcpHalfOpenEvicted, 2000 - 64, "each newer SYN took the oldest one's place");
  assert.is(s.stats.tcpListenDrops, 0);
  let now = 0, packets = 0;
  // Timers are armed as packets leave: drain, then sleep until the next one.
  for (;;) {
    for (let o = s.output(now); o; o = s.output(now)) packets++;
    if (s.nextTimer() === Infinity) break;
    now = Math.max(now, s.nextTimer());
    s.tick(now);
  }
  assert.is(now, 123_000, "1 + 2 + 4 + ... + 32 s, then the 60 s ceiling");
  assert.is(s.usage().connections, 0, "SYN-RECEIVED gives up after the SYN-ACK retries");
  assert.is(packets, 64 * 7, "one SYN-ACK and six retransmissions each");
  assert.is(s.usage().bufferBytes, 0);
});

test("floods of pings, closed-port SYNs and UDP: the control queue stays bounded", () => {
  const s = new Stack({ addresses: [B4, B6] });
  for (let i = 0; i < 1000; i++) {
    s.input(echoRequest(A4, B4, 1, i, bytes(100)), 0);
    s.input(tcpSegment(A6, B6, { sport: 1000 + i, dport: 9, flags: F.SYN }), 0);
    s.input(udpPacket(A4, B4, 1000 + i, 9, bytes(10)), 0);
  }
  assert.is(s.usage().controlQueue, 256);
  assert.is(s.stats.dropQueueFull, 3000 - 256);
  let n = 0;
  for (let o = s.output(); o; o = s.output()) n++;
  assert.is(n, 256);
  assert.is(s.usage().controlQueue, 0);
});

test("the stack refuses bad API input with TypeError or RangeError", () => {
  assert.throws(() => new Stack({ addresses: [] }), TypeError);
  assert.throws(() => new Stack({ addresses: ["10.0.0.300"] }), RangeError);
  assert.throws(() => new Stack({ addresses: [A4], mtu: 100 }), RangeError);
  assert.throws(() => new Stack({ addresses: [A6], mtu: 1000 }), RangeError);
  assert.throws(() => new Stack({ addresses: [A4], tcp: { receiveBuffer: -1 } }), RangeError);
  const s = new Stack({ addresses: [A4] });
  assert.throws(() => s.input("x" as unknown as Uint8Array, 0), TypeError);
  assert.throws(() => s.input(new Uint8Array(20), NaN), RangeError);
  assert.throws(() => s.outputInto(new Uint8Array(100)), RangeError);
  assert.throws(() => s.udp(70000), RangeError);
  // Packets to other addresses, from multicast, of other protocols: counted.
  s.input(ipPacket("224.0.0.1", A4, 17, new Uint8Array(8)), 0);
  s.input(ipPacket(B4, A4, 99, new Uint8Array(8)), 0);
  assert.is(s.stats.dropNotForUs, 1);
  assert.is(s.stats.dropUnsupported, 1);
});

test.run();
