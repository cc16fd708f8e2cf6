// Every table the netstack keeps for the peer's packets, flooded past its
// bound: the size stays at the bound, the oldest or least useful entry is the
// one that goes, what it held is given back (the stack's own accounting), and
// a legitimate connection or datagram after the flood still works.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { A4, B4, B6, F, Link, bytes, readAll, tcpOf, writeAll } from "../../helpers/netstack.ts";
import { ipPacket, tcpSegment, udpPacket } from "../../helpers/netstack-craft.ts";
import { DEFAULT_BACKLOG, DEFAULT_MAX_CONNECTIONS, Stack, type TcpConn } from "../../../src/netstack/index.ts";
import { Assembler } from "../../../src/netstack/assembler.ts";
import { UDP_RX_BYTES, UDP_RX_QUEUE } from "../../../src/netstack/udpsocket.ts";

const forged = (i: number) => `10.9.${i >> 8}.${i & 0xff}`;
const syn = (i: number, dst = B4, dport = 80) => tcpSegment(forged(i), dst, { sport: 40000, dport, seq: i * 7919, flags: F.SYN });

/** SYN-ACK destinations among everything the stack has to send. */
function synAckTargets(s: Stack): Set<string> {
  const to = new Set<string>();
  for (let o = s.output(); o; o = s.output()) {
    const t = tcpOf(o);
    if (t && t.flags === (F.SYN | F.ACK)) to.add(`${o[16]}.${o[17]}.${o[18]}.${o[19]}`);
  }
  return to;
}

test("the defaults are the documented numbers", () => {
  assert.is(DEFAULT_MAX_CONNECTIONS, 4096);
  assert.is(DEFAULT_BACKLOG, 511);
});

test("SYN flood past the backlog: the oldest half-open connections give way, never more than the backlog, buffers given back", () => {
  const s = new Stack({ addresses: [B4] });
  s.listen(80, () => {}, { backlog: 64 });
  s.input(syn(0), 0);
  const one = s.usage().bufferBytes;
  for (let i = 1; i < 2000; i++) {
    s.input(syn(i), 0);
    assert.ok(s.usage().halfOpen <= 64);
  }
  const u = s.usage();
  assert.is(u.halfOpen, 64);
  assert.is(u.connections, 64);
  assert.is(u.bufferBytes, 64 * one, "only the 64 kept hold buffers");
  assert.is(s.stats.tcpHalfOpenEvicted, 2000 - 64);
  assert.is(s.stats.tcpListenDrops, 0, "no new SYN was refused");
  // The newest 64 SYNs are the ones answered.
  const answered = synAckTargets(s);
  assert.equal([...answered].sort(), Array.from({ length: 64 }, (_, k) => forged(2000 - 64 + k)).sort());
});

test("after a SYN flood a legitimate client still connects and moves data", async () => {
  const link = new Link({}, { maxConnections: 100 });
  let server: TcpConn | null = null;
  link.b.listen(80, (c) => { server = c; void c.readable.pipeTo(c.writable); }, { backlog: 16 });
  // The forged SYN-ACKs go nowhere: a's stack is not those sources.
  link.filter = (p) => !(p.from === link.b && tcpOf(p.data)?.flags === (F.SYN | F.ACK) && p.data[16] === 10 && p.data[17] === 9);
  for (let i = 0; i < 500; i++) link.b.input(syn(i), 0);
  assert.is(link.b.usage().halfOpen, 16);
  const c = await link.until(link.a.connect(B4, 80));
  await link.run(() => server !== null, 10_000);
  const back = readAll(c);
  await writeAll(c, bytes(20_000));
  assert.is((await link.until(back)).length, 20_000);
  assert.is(link.b.stats.tcpHalfOpenEvicted, 500 - 16 + 1, "the client's SYN took the oldest forged one's place");
});

test("at maxConnections a SYN evicts the oldest half-open connection of any listener, never an established one", async () => {
  const link = new Link({}, { maxConnections: 8 });
  const servers: TcpConn[] = [];
  link.b.listen(80, (c) => { servers.push(c); });
  link.b.listen(81, () => {});
  const clients: TcpConn[] = [];
  for (let i = 0; i < 4; i++) clients.push(await link.until(link.a.connect(B4, 80)));
  await link.run(() => servers.length === 4, 10_000);
  link.filter = (p) => !(p.from === link.b && p.data[16] === 10 && p.data[17] === 9);
  for (let i = 0; i < 4; i++) link.b.input(syn(i, B4, 81), link.now);
  assert.is(link.b.usage().connections, 8);
  // Table full: four established, four half-open on port 81. A flood on port 80 replaces the half-open ones, oldest first.
  for (let i = 100; i < 300; i++) {
    link.b.input(syn(i, B4, 80), link.now);
    assert.ok(link.b.usage().connections <= 8);
  }
  assert.is(link.b.usage().connections, 8);
  assert.is(link.b.usage().halfOpen, 4);
  assert.is(link.b.stats.tcpHalfOpenEvicted, 200);
  assert.ok(servers.every((c) => c.state === "ESTABLISHED"), "established connections stay");
  // All established and nothing half-open: a new SYN is dropped and counted.
  const full = new Link({}, { maxConnections: 2 });
  const done: TcpConn[] = [];
  full.b.listen(80, (c) => { done.push(c); });
  await full.until(full.a.connect(B4, 80));
  await full.until(full.a.connect(B4, 80));
  await full.run(() => done.length === 2, 10_000);
  full.b.input(syn(1), full.now);
  assert.is(full.b.usage().connections, 2);
  assert.is(full.b.stats.tcpListenDrops, 1);
  assert.is(full.b.stats.tcpHalfOpenEvicted, 0);
  for (const c of clients) c.abort();
});

test("forward mode: past the backlog the oldest half-open flow gives way and its token is released", async () => {
  const s = new Stack({ addresses: [B4] });
  const released: number[] = [];
  let n = 0;
  s.forward<number>(() => {}, { backlog: 8, admit: () => n++, release: (t) => { released.push(t); } });
  for (let i = 0; i < 50; i++) {
    s.input(syn(i, "198.51.100.7", 443), 0);
    await new Promise((r) => setTimeout(r, 0));
    assert.ok(s.usage().halfOpen <= 8);
  }
  assert.is(s.usage().halfOpen, 8);
  assert.equal(released, Array.from({ length: 42 }, (_, k) => k), "the oldest 42 tokens came back, in order");
  assert.is(s.stats.tcpHalfOpenEvicted, 42);
});

test("IP fragments are never held: none is reassembled, each is counted, nothing is retained", () => {
  const s = new Stack({ addresses: [B4, B6] });
  const sock = s.udp(53);
  const got: number[] = [];
  sock.handler = (d) => { got.push(d.length); };
  for (let i = 0; i < 5000; i++) {
    const p = udpPacket(A4, B4, 1000, 53, bytes(400));
    p[4] = i >> 8; p[5] = i & 0xff;              // identification
    p[6] = 0x20 | ((i % 3) << 3); p[7] = 0;      // MF, offsets 0, 512, 1024 x 8
    p[10] = p[11] = 0;
    let c = 0;
    for (let k = 0; k < 20; k += 2) c += (p[k] << 8) | p[k + 1];
    while (c > 0xffff) c = (c & 0xffff) + (c >>> 16);
    c = ~c & 0xffff; p[10] = c >> 8; p[11] = c & 0xff;
    s.input(p, 0);
    // An IPv6 Fragment header (44) in front of UDP.
    s.input(ipPacket("fd00::9", B6, 44, Uint8Array.from([17, 0, 0, 1, 0, 0, i >> 8, i & 0xff, ...bytes(300)])), 0);
  }
  assert.is(s.stats.dropFragment, 10_000);
  const u = s.usage();
  assert.is(u.connections + u.udpQueued + u.controlQueue, 0);
  assert.is(got.length, 0);
  s.input(udpPacket(A4, B4, 1000, 53, bytes(100)), 0);
  assert.equal(got, [100], "a whole datagram after the flood is delivered");
});

test("a UDP socket nobody reads holds at most UDP_RX_QUEUE datagrams and UDP_RX_BYTES bytes; the excess is counted", async () => {
  assert.is(UDP_RX_QUEUE, 64);
  assert.is(UDP_RX_BYTES, 256 * 1024);
  const s = new Stack({ addresses: [B4], mtu: 9000 });
  const small = s.udp(7);
  for (let i = 0; i < 1000; i++) s.input(udpPacket(A4, B4, 1000 + i, 7, bytes(100, i)), 0);
  assert.is(s.usage().udpQueued, UDP_RX_QUEUE);
  assert.is(s.stats.udpDropped, 1000 - UDP_RX_QUEUE);
  const big = s.udp(9);
  for (let i = 0; i < 100; i++) s.input(udpPacket(A4, B4, 2000 + i, 9, bytes(8000, i)), 0);
  const held = Math.floor(UDP_RX_BYTES / 8000);
  assert.is(s.usage().udpQueuedBytes, 64 * 100 + held * 8000);
  assert.is(s.stats.udpDropped, 1000 - UDP_RX_QUEUE + 100 - held);
  // What waits is what came first, in order; reading gives its bytes back, and new datagrams are taken again.
  const r = small.readable.getReader();
  for (let i = 0; i < UDP_RX_QUEUE; i++) assert.is((await r.read()).value!.port, 1000 + i);
  assert.is(s.usage().udpQueuedBytes, held * 8000);
  big.close();
  assert.is(big.queuedBytes, 0, "a closed socket lets go of what it held");
  assert.is(s.usage().udpQueuedBytes, 0);
  s.input(udpPacket(A4, B4, 5555, 7, bytes(10)), 0);
  assert.is((await r.read()).value!.port, 5555);
});

test("out-of-order ranges per connection stop at maxOutOfOrder; the edge still advances", () => {
  const a = new Assembler(8);
  let refused = 0;
  for (let i = 1; i <= 100; i++) if (!a.add(i * 100, i * 100 + 10)) refused++;
  assert.is(a.count, 8);
  assert.is(refused, 92);
  assert.ok(a.add(5, 100), "a segment that merges needs no new range");
  assert.is(a.count, 8);
  assert.is(a.advance(5), 110, "bytes 0..5 present join the ranges that touch them");
  assert.is(a.count, 7);
});

test.run();
