// TCP between two netstacks back to back: handshakes, data, closing, resets,
// windows, and what the stacks hold afterwards. Virtual clock, no sleeps.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { A4, A6, B4, B6, F, Link, bytes, equalBytes, readAll, settle, tcpOf, writeAll, type Packet } from "../../helpers/netstack.ts";
import { NetError, type TcpConn } from "../../../src/netstack/index.ts";
import { rstPacket, tcpSegment } from "../../helpers/netstack-craft.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const tcp = (p: Packet) => tcpOf(p.data)!;
const fromA = (link: Link) => link.log.filter((p) => p.from === link.a && tcpOf(p.data));
const fromB = (link: Link) => link.log.filter((p) => p.from === link.b && tcpOf(p.data));

/** The MSS and window scale options of a SYN. */
function synOptions(p: Uint8Array): { mss: number; ws: number } {
  const off = p[0] >> 4 === 4 ? 20 : 40;
  const hl = (p[off + 12] >> 4) * 4;
  let mss = 0, ws = -1;
  for (let i = off + 20; i < off + hl;) {
    if (p[i] === 0) break;
    if (p[i] === 1) { i++; continue; }
    if (p[i] === 2) mss = (p[i + 2] << 8) | p[i + 3];
    if (p[i] === 3) ws = p[i + 2];
    i += p[i + 1];
  }
  return { mss, ws };
}

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

for (const v6 of [false, true]) {
  test(`three-way handshake over IPv${v6 ? 6 : 4}: SYN with MSS and window scale, SYN-ACK, ACK`, async () => {
    const link = new Link();
    const { client, server } = await link.connect(80, v6);
    assert.is(client.state, "ESTABLISHED");
    assert.is(server.state, "ESTABLISHED");
    assert.is(client.remoteAddress, v6 ? B6 : B4);
    assert.is(client.remotePort, 80);
    assert.is(server.remoteAddress, v6 ? A6 : A4);
    assert.is(server.remotePort, client.localPort);
    assert.ok(client.localPort >= 49152);
    const segs = link.log.map(tcp);
    assert.is(segs.length, 3, "three segments");
    assert.is(segs[0].flags, F.SYN);
    assert.is(segs[1].flags, F.SYN | F.ACK);
    assert.is(segs[2].flags, F.ACK);
    assert.is(segs[1].ack, (segs[0].seq + 1) >>> 0);
    assert.is(segs[2].seq, (segs[0].seq + 1) >>> 0);
    assert.is(segs[2].ack, (segs[1].seq + 1) >>> 0);
    const o = synOptions(link.log[0].data);
    assert.is(o.mss, 1420 - (v6 ? 60 : 40), "MSS from the MTU");
    assert.is(o.ws, 3, "window scale for a 256 KiB buffer");
    assert.equal(synOptions(link.log[1].data), o);
  });
}

test("initial sequence numbers are random", async () => {
  const isns = new Set<number>();
  for (let seed = 1; seed <= 8; seed++) {
    const link = new Link({}, {}, seed);
    await link.connect();
    isns.add(tcp(link.log[0]).seq);
    isns.add(tcp(link.log[1]).seq);
  }
  assert.is(isns.size, 16);
});

test("data both ways over IPv4 and IPv6", async () => {
  for (const v6 of [false, true]) {
    const link = new Link();
    const { client, server } = await link.connect(80, v6);
    const enc = new TextEncoder(), dec = new TextDecoder();
    const cw = client.writable.getWriter(), sw = server.writable.getWriter();
    const sr = server.readable.getReader(), cr = client.readable.getReader();
    await cw.write(enc.encode("hello"));
    const got1 = await link.until(sr.read());
    assert.is(dec.decode(got1.value), "hello");
    await sw.write(enc.encode("world"));
    const got2 = await link.until(cr.read());
    assert.is(dec.decode(got2.value), "world");
  }
});

test("5 MB each way at once, intact (SHA-256)", async () => {
  const link = new Link();
  link.record = false;
  const { client, server } = await link.connect();
  const up = bytes(5 << 20, 1), down = bytes(5 << 20, 2);
  const done = Promise.all([writeAll(client, up), writeAll(server, down), readAll(server), readAll(client)]);
  const [, , atServer, atClient] = await link.until(done);
  assert.is(sha(atServer), sha(up));
  assert.is(sha(atClient), sha(down));
  assert.is(link.a.stats.tcpRetransmits + link.b.stats.tcpRetransmits, 0, "no loss, no retransmissions");
  await link.until(Promise.all([client.closed, server.closed]));
});

test("simultaneous open: two SYNs cross and both ends reach ESTABLISHED", async () => {
  const link = new Link();
  const pa = link.a.connect(B4, 7000, { localPort: 6000 });
  const pb = link.b.connect(A4, 6000, { localPort: 7000 });
  const [ca, cb] = await link.until(Promise.all([pa, pb]));
  assert.is(ca.state, "ESTABLISHED");
  assert.is(cb.state, "ESTABLISHED");
  const flags = link.log.map((p) => tcp(p).flags);
  assert.is(flags.filter((f) => f === F.SYN).length, 2, "two bare SYNs");
  assert.is(flags.filter((f) => f === (F.SYN | F.ACK)).length, 2, "two SYN-ACKs");
  const got = readAll(cb);
  await writeAll(ca, bytes(10_000));
  assert.ok(equalBytes(await link.until(got), bytes(10_000)));
});

test("simultaneous close: FIN-WAIT-1, CLOSING, TIME-WAIT on both sides, then CLOSED", async () => {
  const link = new Link({ tcp: { timeWait: 2000 } }, { tcp: { timeWait: 2000 } });
  const { client, server } = await link.connect();
  const states: string[] = [];
  const ca = client.close(), cb = server.close();
  // Both FINs are on the wire before either arrives.
  await link.run(() => link.inFlight === 2 && fromA(link).some((p) => tcp(p).flags & F.FIN) && fromB(link).some((p) => tcp(p).flags & F.FIN), 100);
  states.push(client.state, server.state);
  await link.run(() => client.state !== "FIN-WAIT-1", 100);
  states.push(client.state, server.state);
  await link.run(() => client.state === "TIME-WAIT" && server.state === "TIME-WAIT", 100);
  states.push(client.state, server.state);
  assert.equal(states, ["FIN-WAIT-1", "FIN-WAIT-1", "CLOSING", "CLOSING", "TIME-WAIT", "TIME-WAIT"]);
  const t = link.now;
  await link.until(Promise.all([ca, cb, client.closed, server.closed]));
  assert.ok(link.now - t >= 1990 && link.now - t <= 2000, `TIME-WAIT lasted ${link.now - t} ms`);
  assert.is(link.a.usage().connections, 0);
  assert.is(link.b.usage().connections, 0);
});

test("orderly close: the passive closer goes CLOSE-WAIT, LAST-ACK, CLOSED; the active one TIME-WAIT", async () => {
  const link = new Link();
  const { client, server } = await link.connect();
  const seen = new Set<string>();
  await client.close();
  await link.run(() => { seen.add(`s:${server.state}`); seen.add(`c:${client.state}`); return server.state === "CLOSE-WAIT" && client.state === "FIN-WAIT-2"; }, 1000);
  // The server still reads EOF, and can still write in CLOSE-WAIT.
  const r = client.readable.getReader();
  const w = server.writable.getWriter();
  await w.write(new Uint8Array([1, 2, 3]));
  assert.equal([...(await link.until(r.read())).value!], [1, 2, 3]);
  assert.is((await link.until(readAll(server))).length, 0, "server sees EOF");
  await w.close();
  await link.run(() => { seen.add(`s:${server.state}`); seen.add(`c:${client.state}`); return server.state === "CLOSED"; }, 1000);
  assert.ok(seen.has("s:LAST-ACK") || server.state === "CLOSED");
  assert.is(client.state, "TIME-WAIT");
  assert.is((await link.until(r.read())).done, true);
  await link.until(client.closed);
  assert.is(client.state, "CLOSED");
});

test("a SYN to a closed port earns RST|ACK and connect fails with ECONNREFUSED", async () => {
  const link = new Link();
  const p = link.a.connect(B4, 81);
  await expectError(link.until(p), "ECONNREFUSED");
  const rst = fromB(link).map(tcp);
  assert.is(rst.length, 1);
  assert.is(rst[0].flags, F.RST | F.ACK);
  assert.is(rst[0].ack, (tcp(link.log[0]).seq + 1) >>> 0);
  assert.ok(link.now < 50, "at once, no retries");
  assert.is(link.a.usage().connections, 0);
  // An ACK for no connection gets <SEQ=SEG.ACK><CTL=RST>.
  assert.is(link.b.stats.tcpResetsOut, 1);
});

test("RST during a transfer: the other side's streams fail with ECONNRESET, both stacks forget it", async () => {
  const link = new Link();
  const { client, server } = await link.connect();
  const w = writeAll(client, bytes(2 << 20));
  w.catch(() => {});
  const r = server.readable.getReader();
  let got = 0;
  while (got < 200_000) got += (await link.until(r.read())).value!.length;
  server.abort();
  await link.run(() => client.state === "CLOSED", 1000);
  await expectError(w, "ECONNRESET");
  await expectError(client.closed, "ECONNRESET");
  await expectError(server.closed, "ECONNABORTED");
  await expectError(client.readable.getReader().read(), "ECONNRESET");
  await expectError(r.read(), "ECONNABORTED");
  assert.ok(fromB(link).some((p) => tcp(p).flags & F.RST));
  assert.is(link.a.usage().connections, 0);
  assert.is(link.b.usage().connections, 0);
  assert.is(link.a.usage().bufferBytes, 0);
});

test("a reset outside the window is ignored; one at RCV.NXT closes", async () => {
  const link = new Link();
  const { client } = await link.connect();
  const synAck = tcp(link.log[1]);
  link.a.input(rstPacket(B4, A4, 80, client.localPort, (synAck.seq + 1 + 10_000_000) >>> 0), link.now);
  assert.is(client.state, "ESTABLISHED");
  link.a.input(rstPacket(B4, A4, 80, client.localPort, (synAck.seq + 1) >>> 0), link.now);
  assert.is(client.state, "CLOSED");
  await expectError(client.closed, "ECONNRESET");
});

test("out-of-window bare ACKs are answered once per 500 ms; out-of-window data every time", async () => {
  const link = new Link();
  const { client } = await link.connect();
  await link.runFor(1000);
  const synAck = tcp(link.log[1]);
  const stale = (synAck.seq + 1 - 5000) >>> 0; // well behind the client's RCV.NXT
  const ack = tcp(link.log[2]).ack;
  const acksFromA = () => link.log.filter((p) => p.from === link.a && tcp(p).flags === F.ACK).length;
  const before = acksFromA();
  // 100 stale bare ACKs over 1 s: a peer (or an attacker) that answers each
  // answer would keep two ends trading ACKs forever.
  for (let i = 0; i < 100; i++) {
    link.a.input(tcpSegment(B4, A4, { sport: 80, dport: client.localPort, seq: stale, ack, flags: F.ACK }), link.now);
    await link.runFor(10);
  }
  const answered = acksFromA() - before;
  assert.ok(answered >= 2 && answered <= 3, `${answered} ACKs for 100 stale bare ACKs in 1 s`);
  // Stale data is a retransmission whose ACK was lost: each one is answered.
  const before2 = acksFromA();
  for (let i = 0; i < 5; i++) {
    link.a.input(tcpSegment(B4, A4, { sport: 80, dport: client.localPort, seq: stale, ack, flags: F.ACK, data: new Uint8Array(10) }), link.now);
    await link.runFor(10);
  }
  assert.is(acksFromA() - before2, 5);
  assert.is(client.state, "ESTABLISHED");
});

test("the advertised right edge never moves left, even as a stalled reader's window closes in odd-sized steps", async () => {
  const link = new Link();
  const { client } = await link.connect();
  const wr = client.writable.getWriter();
  void (async () => { for (let i = 0; i < 400; i++) await wr.write(bytes(1001, i)); })().catch(() => {});
  await link.runFor(5_000);
  // Window scale 3 (256 KiB buffers): the edge is ACK + WND * 8.
  let prev: number | null = null, moves = 0;
  for (const p of fromB(link)) {
    const t = tcp(p);
    if (!(t.flags & F.ACK) || (t.flags & F.SYN)) continue;
    const edge = (t.ack + t.wnd * 8) >>> 0;
    if (prev !== null) assert.ok(((edge - prev) | 0) >= 0, `the edge moved left by ${(prev - edge) | 0} bytes`);
    if (prev !== null && edge !== prev) moves++;
    prev = edge;
  }
  assert.ok(prev !== null && moves > 0, "b advertised windows as data arrived");
  assert.ok(fromB(link).some((p) => tcp(p).wnd * 8 < 1001), "the window closed to less than a write: the reader never read");
});

test("zero window: the writer blocks, probes back off, and a probe reopens the window when the update is lost", async () => {
  const link = new Link({}, { tcp: { receiveBuffer: 64 * 1024 } });
  const { client, server } = await link.connect();
  const data = bytes(600_000);
  let written = 0;
  const w = (async () => {
    const wr = client.writable.getWriter();
    for (let i = 0; i < data.length; i += 10_000) { await wr.write(data.subarray(i, i + 10_000)); written = i + 10_000; }
    await wr.close();
  })();
  // Nobody reads: the window closes and the writer blocks once the send buffer is full.
  await link.runFor(10_000);
  const zero = fromB(link).filter((p) => tcp(p).wnd === 0);
  assert.ok(zero.length > 0, "b advertised a zero window");
  assert.ok(written < 64 * 1024 + 256 * 1024 + 20_000, `writes block (${written} written)`);
  // Probes: zero-length segments one below SND.UNA, at doubling intervals.
  let highest = 0;
  const probes = fromA(link).filter((p) => {
    const t = tcp(p), end = (t.seq + t.len) >>> 0, probe = t.len === 0 && t.seq === ((highest - 1) >>> 0);
    if (t.len > 0 && (highest === 0 || ((end - highest) | 0) > 0)) highest = end;
    return probe;
  });
  assert.ok(probes.length >= 4, `probes sent (${probes.length})`);
  const gaps = probes.slice(1).map((p, i) => p.at - probes[i].at);
  for (let i = 1; i < gaps.length; i++) assert.ok(Math.abs(gaps[i] - 2 * gaps[i - 1]) <= 1 || gaps[i] === 60_000, `backoff ${gaps}`);
  // The reader starts; b's window updates are lost until the next probe passes.
  let dropping = true, dropped = 0;
  link.filter = (p) => {
    const t = tcp(p);
    if (p.from === link.b && dropping && t.len === 0 && t.wnd > 0) { dropped++; return false; }
    if (p.from === link.a && dropping && dropped > 0 && t.len === 0) dropping = false;
    return true;
  };
  const got = await link.until(readAll(server));
  await link.until(w);
  assert.ok(dropped > 0, "window updates were lost");
  assert.ok(equalBytes(got, data), "everything arrived");
});

test("bounded buffers: a reader that stops makes the writer block; memory stays under the caps", async () => {
  const sendBuffer = 128 * 1024, receiveBuffer = 128 * 1024;
  const link = new Link({ tcp: { sendBuffer, receiveBuffer } }, { tcp: { sendBuffer, receiveBuffer } });
  link.record = false;
  const { client, server } = await link.connect();
  let accepted = 0;
  const w = (async () => {
    const wr = client.writable.getWriter();
    for (let i = 0; i < 100; i++) { await wr.write(bytes(65536, i)); accepted += 65536; }
    await wr.close();
  })();
  const r = server.readable.getReader();
  let read = 0;
  while (read < 300_000) read += (await link.until(r.read())).value!.length;
  // The reader stops. Run a long time.
  await link.runFor(120_000);
  const stalled = accepted;
  await link.runFor(120_000);
  assert.is(accepted, stalled, "the writer is blocked");
  assert.ok(accepted - read <= sendBuffer + receiveBuffer + 65536, `in the stacks: ${accepted - read}`);
  assert.ok(link.a.usage().bufferBytes <= sendBuffer + receiveBuffer);
  assert.ok(link.b.usage().bufferBytes <= sendBuffer + receiveBuffer);
  assert.is(link.inFlight, 0);
  // It resumes and everything arrives in order.
  for (;;) {
    const { value, done } = await link.until(r.read());
    if (done) break;
    read += value.length;
  }
  await link.until(w);
  assert.is(read, 100 * 65536);
});

test("100 concurrent connections, each echoing 20 KB", async () => {
  const link = new Link();
  link.record = false;
  link.b.listen(7, (c) => { void c.readable.pipeTo(c.writable); });
  const one = async (i: number) => {
    const c = await link.a.connect(i % 2 ? B6 : B4, 7);
    const data = bytes(20_000, i);
    const [, back] = await Promise.all([writeAll(c, data, 4096), readAll(c)]);
    return equalBytes(back, data);
  };
  const all = await link.until(Promise.all(Array.from({ length: 100 }, (_, i) => one(i))));
  assert.is(all.filter(Boolean).length, 100);
  await link.runFor(10_000);
  assert.is(link.a.usage().connections, 0);
  assert.is(link.b.usage().connections, 0);
});

test("100 connections opened and closed: no connection state left, buffers back to idle", async () => {
  const link = new Link();
  link.record = false;
  const idleA = link.a.usage(), idleB = link.b.usage();
  const conns: TcpConn[] = [];
  link.b.listen(9, (c) => { conns.push(c); void readAll(c).then(() => c.close()); });
  for (let i = 0; i < 100; i++) {
    const c = await link.until(link.a.connect(B4, 9));
    await writeAll(c, bytes(3000, i));
    conns.push(c);
  }
  await link.until(Promise.all(conns.map((c) => c.closed)));
  await link.runFor(10_000);
  const { listeners: _l, ...a } = link.a.usage(), { listeners: _m, ...b } = link.b.usage();
  const { listeners: _n, ...ia } = idleA, { listeners: _o, ...ib } = idleB;
  assert.equal(a, ia);
  assert.equal(b, ib);
  assert.is(a.connections, 0);
  assert.is(a.bufferBytes, 0);
  assert.is(link.a.nextTimer(), Infinity, "no timers");
  assert.is(link.b.nextTimer(), Infinity);
});

test("TIME-WAIT: a retransmitted FIN is acknowledged again", async () => {
  const link = new Link();
  const { client, server } = await link.connect();
  await client.close();
  await link.run(() => server.state === "CLOSE-WAIT", 1000);
  await server.close();
  // Drop the client's last ACK so the server retransmits its FIN.
  let dropped = 0;
  link.filter = (p) => !(p.from === link.a && tcp(p).flags === F.ACK && dropped++ === 0);
  await link.run(() => server.state === "CLOSED", 5000);
  const fins = fromB(link).filter((p) => tcp(p).flags & F.FIN);
  assert.is(fins.length, 2, "the FIN went twice");
  assert.is(client.state, "TIME-WAIT");
  await link.until(client.closed);
});

test("listen: EADDRINUSE for a taken port; close() stops accepting", async () => {
  const link = new Link();
  const l = link.b.listen(80, () => {});
  assert.throws(() => link.b.listen(80, () => {}), (e: unknown) => e instanceof NetError && e.code === "EADDRINUSE");
  assert.throws(() => link.b.listen(0, () => {}), RangeError);
  l.close();
  await expectError(link.until(link.a.connect(B4, 80)), "ECONNREFUSED");
});

test("connect rejects bad arguments and unreachable families", async () => {
  const link = new Link({ addresses: [A4] });
  await expectError(link.a.connect(B6, 80), "ENETUNREACH");
  try { await link.a.connect(B4, 0); assert.unreachable(); } catch (e) { assert.instance(e, RangeError); }
  try { await link.a.connect(B4, 70000); assert.unreachable(); } catch (e) { assert.instance(e, RangeError); }
});

test("writes after close fail with EPIPE; non-Uint8Array chunks with TypeError", async () => {
  const link = new Link();
  const { client } = await link.connect();
  const w = client.writable.getWriter();
  try { await w.write("text" as unknown as Uint8Array); assert.unreachable(); } catch (e) { assert.instance(e, TypeError); }
  const link2 = new Link();
  const { client: c2 } = await link2.connect();
  const w2 = c2.writable.getWriter();
  await c2.close(); // with the writer held: FIN now
  await expectError(w2.write(new Uint8Array(1)), "EPIPE");
});

test("keepalive: an idle connection is probed and stays up; a dead peer is detected (ETIMEDOUT)", async () => {
  const keepalive = { idle: 10_000, interval: 1000, count: 3 };
  const link = new Link({ tcp: { keepalive } });
  const { client } = await link.connect();
  // The last segment a received was the SYN-ACK, at 10 ms.
  await link.runFor(35_000);
  assert.is(client.state, "ESTABLISHED");
  const probes = fromA(link).filter((p) => p.at > 10 && tcp(p).len === 0);
  assert.equal(probes.map((p) => p.at), [10_010, 20_020, 30_030], "one probe per idle period, each answered 10 ms later");
  link.filter = () => false;
  try {
    await link.until(client.closed);
    assert.unreachable();
  } catch (e) {
    assert.is((e as NetError).code, "ETIMEDOUT");
  }
  // The last answer came at 30 040; then idle, and three unanswered probes a second apart.
  assert.is(link.now, 30_040 + 10_000 + 3000);
});

test("a peer without window scaling and with a small MSS is honoured", async () => {
  const link = new Link();
  let server: TcpConn | null = null;
  link.b.listen(80, (c) => { server = c; });
  // A hand-made SYN: MSS 536, no window scale option.
  link.b.input(tcpSegment(A4, B4, { sport: 5555, dport: 80, seq: 1000, flags: F.SYN, wnd: 4096, options: [2, 4, 2, 24] }), 0);
  const synAck = link.b.output(0)!;
  const t = tcpOf(synAck)!;
  assert.is(t.flags, F.SYN | F.ACK);
  assert.is(t.ack, 1001);
  assert.is(synOptions(synAck).ws, -1, "no window scale when the SYN had none");
  assert.is(t.wnd, 65535, "unscaled window, capped at 65535");
  link.b.input(tcpSegment(A4, B4, { sport: 5555, dport: 80, seq: 1001, ack: (t.seq + 1) >>> 0, flags: F.ACK, wnd: 4096 }), 1);
  await link.run(() => server !== null, 10);
  const w = server!.writable.getWriter();
  void w.write(bytes(20_000));
  await settle(); // the write reaches the send buffer; nothing is pulled yet
  const sent: Uint8Array[] = [];
  for (let p = link.b.output(2); p; p = link.b.output(2)) sent.push(p);
  const lens = sent.map((p) => tcpOf(p)!.len);
  assert.ok(lens.every((n) => n <= 536), `segments of at most 536 bytes (${lens})`);
  // Seven full segments fill 3752 of the 4096 bytes; the 344 left wait (sender SWS avoidance, RFC 1122 4.2.3.4).
  assert.is(lens.reduce((x, y) => x + y, 0), 7 * 536, "within the unscaled 4096-byte window");
  const ack = tcpOf(sent[0])!;
  assert.is(ack.wnd, 65535);
});

test("TIME-WAIT: a new SYN above the old sequence space opens a new connection; one below gets an ACK", async () => {
  const link = new Link();
  let server: TcpConn | null = null;
  link.b.listen(80, (c) => { server = c; });
  const client = await link.until(link.a.connect(B4, 80, { localPort: 4321 }));
  await link.run(() => server !== null, 100);
  await server!.close(); // b closes first: b ends in TIME-WAIT
  await link.run(() => client.state === "CLOSE-WAIT", 100);
  await client.close();
  await link.run(() => server!.state === "TIME-WAIT", 100);
  const lastFromA = tcpOf(link.log.filter((p) => p.from === link.a).at(-1)!.data)!;
  const old = (lastFromA.seq - 5000) >>> 0, fresh = (lastFromA.seq + 100_000) >>> 0;
  link.b.input(tcpSegment(A4, B4, { sport: 4321, dport: 80, seq: old, flags: F.SYN }), link.now);
  const ack = tcpOf(link.b.output(link.now)!)!;
  assert.is(ack.flags, F.ACK, "an old SYN is answered with an ACK");
  assert.is(server!.state, "TIME-WAIT");
  link.b.input(tcpSegment(A4, B4, { sport: 4321, dport: 80, seq: fresh, flags: F.SYN }), link.now);
  const synAck = tcpOf(link.b.output(link.now)!)!;
  assert.is(synAck.flags, F.SYN | F.ACK, "a new one reopens");
  assert.is(synAck.ack, (fresh + 1) >>> 0);
  assert.is(server!.state, "CLOSED");
});

test.run();
