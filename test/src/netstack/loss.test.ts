// TCP recovery between two netstacks: retransmission timing (RFC 6298),
// backoff, fast retransmit (RFC 5681/6582), out-of-order reassembly, and
// transfers over a link that loses, reorders and duplicates.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { B4, F, Link, bytes, equalBytes, readAll, tcpOf, writeAll, type Packet } from "../../helpers/netstack.ts";
import { NetError } from "../../../src/netstack/index.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const tcp = (p: Packet) => tcpOf(p.data)!;
const dataFrom = (link: Link, from: "a" | "b") => link.log.filter((p) => p.from === link[from] && tcpOf(p.data) && tcp(p).len > 0);

/** Drops the first `times` packets from a that match. */
function dropFromA(link: Link, match: (p: Packet) => boolean, times = 1): Packet[] {
  const dropped: Packet[] = [];
  link.filter = (p) => {
    if (p.from === link.a && dropped.length < times && match(p)) { dropped.push(p); return false; }
    return true;
  };
  return dropped;
}

test("a lost data segment is retransmitted one RTO later (200 ms floor on a 10 ms path)", async () => {
  const link = new Link();
  const { client, server } = await link.connect();
  const dropped = dropFromA(link, (p) => tcp(p).len > 0);
  const r = server.readable.getReader();
  await client.writable.getWriter().write(bytes(1000));
  const got = await link.until(r.read());
  assert.ok(equalBytes(got.value!, bytes(1000)));
  const sent = dataFrom(link, "a");
  assert.is(sent.length, 2);
  assert.is(dropped[0], sent[0]);
  assert.is(tcp(sent[1]).seq, tcp(sent[0]).seq);
  assert.is(sent[1].at - sent[0].at, 200);
  assert.is(link.a.stats.tcpTimeouts, 1);
});

test("the RTO follows the measured RTT: 3 x RTT after one sample (SRTT + 4 RTTVAR)", async () => {
  const link = new Link();
  link.delay = 150;
  const { client, server } = await link.connect();
  dropFromA(link, (p) => tcp(p).len > 0);
  const r = server.readable.getReader();
  await client.writable.getWriter().write(bytes(100));
  await link.until(r.read());
  const sent = dataFrom(link, "a");
  assert.is(sent[1].at - sent[0].at, 900);
});

test("repeated loss backs the RTO off: 200, 400, 800 ms", async () => {
  const link = new Link();
  const { client, server } = await link.connect();
  dropFromA(link, (p) => tcp(p).len > 0, 3);
  const r = server.readable.getReader();
  await client.writable.getWriter().write(bytes(500));
  await link.until(r.read());
  const at = dataFrom(link, "a").map((p) => p.at);
  assert.equal(at.slice(1).map((t, i) => t - at[i]), [200, 400, 800]);
});

test("a lost SYN is sent again after 1 s, then 2 s (initial RTO, backoff)", async () => {
  const link = new Link();
  dropFromA(link, (p) => tcp(p).flags === F.SYN, 2);
  let server = false;
  link.b.listen(80, () => { server = true; });
  const c = await link.until(link.a.connect(B4, 80));
  const syns = link.log.filter((p) => p.from === link.a && tcp(p).flags === F.SYN);
  assert.equal(syns.map((p) => p.at), [0, 1000, 3000]);
  assert.is(c.state, "ESTABLISHED");
  await link.run(() => server, 100);
  assert.ok(server);
});

test("a lost SYN-ACK: the client's SYN retransmission brings it again", async () => {
  const link = new Link();
  let dropped = 0;
  link.filter = (p) => !(p.from === link.b && tcp(p).flags === (F.SYN | F.ACK) && dropped++ === 0);
  link.b.listen(80, () => {});
  const c = await link.until(link.a.connect(B4, 80));
  assert.is(c.state, "ESTABLISHED");
  // b's own RTO (1 s) and a's retransmitted SYN both send it again at 1005 ms.
  const synAcks = link.log.filter((p) => p.from === link.b && tcp(p).flags === (F.SYN | F.ACK));
  assert.equal(synAcks.map((p) => p.at), [5, 1005, 1005]);
  assert.is(link.now, 1010);
});

test("unanswered SYNs: connect fails with ETIMEDOUT after synRetries (1 + 2 + 4 + 8 s)", async () => {
  const link = new Link({ tcp: { synRetries: 3 } });
  link.filter = (p) => p.from !== link.a;
  const p = link.a.connect(B4, 80);
  try {
    await link.until(p);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, NetError);
    assert.is((e as NetError).code, "ETIMEDOUT");
  }
  assert.is(link.now, 15_000);
  assert.is(link.a.usage().connections, 0);
});

test("a lost FIN is retransmitted one RTO later", async () => {
  const link = new Link();
  const { client, server } = await link.connect();
  dropFromA(link, (p) => (tcp(p).flags & F.FIN) !== 0);
  const eof = readAll(server);
  await client.close();
  await link.until(eof);
  const fins = link.log.filter((p) => p.from === link.a && tcp(p).flags & F.FIN);
  assert.is(fins.length, 2);
  assert.is(fins[1].at - fins[0].at, 200);
  assert.is(tcp(fins[1]).seq, tcp(fins[0]).seq);
});

test("a dead path: the connection fails with ETIMEDOUT after `retries` backed-off retransmissions", async () => {
  const link = new Link({ tcp: { retries: 3 } });
  const { client } = await link.connect();
  link.filter = () => false;
  const t0 = link.now;
  const w = client.writable.getWriter();
  await w.write(bytes(100));
  try {
    await link.until(client.closed);
    assert.unreachable();
  } catch (e) {
    assert.is((e as NetError).code, "ETIMEDOUT");
  }
  assert.is(link.now - t0, 200 + 400 + 800 + 1600);
  assert.is(link.a.usage().connections, 0);
});

test("fast retransmit: three duplicate ACKs resend the lost segment well before the RTO", async () => {
  const link = new Link({ tcp: { delayedAck: 0 } }, { tcp: { delayedAck: 0 } });
  const { client, server } = await link.connect();
  let n = 0;
  const dropped = dropFromA(link, (p) => tcp(p).len > 0 && ++n === 3);
  const data = bytes(200_000);
  const got = readAll(server);
  await link.until(writeAll(client, data));
  assert.ok(equalBytes(await link.until(got), data));
  const lost = tcp(dropped[0]);
  const again = dataFrom(link, "a").filter((p) => tcp(p).seq === lost.seq);
  assert.is(again.length, 2);
  assert.ok(again[1].at - again[0].at <= 20, `resent after ${again[1].at - again[0].at} ms`);
  assert.ok(link.a.stats.tcpFastRetransmits >= 1);
  assert.is(link.a.stats.tcpTimeouts, 0, "no timeout was needed");
  const dupAcks = link.log.filter((p) => p.from === link.b && tcp(p).len === 0 && tcp(p).ack === lost.seq);
  assert.ok(dupAcks.length >= 4, `one ACK and at least three duplicates (${dupAcks.length})`);
});

test("after a timeout moves SND.NXT back, bare ACKs still carry the highest sequence sent", async () => {
  // Both ends send three segments at once and each loses its first: two
  // duplicate ACKs are too few for a fast retransmit, so each RTO goes back
  // to SND.UNA with a window of one segment, and the bare ACKs each end
  // sends meanwhile must not be numbered below what the other already holds
  // (it would drop them as out of its window, and answer).
  const link = new Link();
  const { client, server } = await link.connect();
  let lostA = 0, lostB = 0;
  link.filter = (p) => {
    if (tcp(p).len === 0) return true;
    if (p.from === link.a) return lostA++ !== 0;
    return lostB++ !== 0;
  };
  const up = bytes(3 * 1380, 1), down = bytes(3 * 1380, 2);
  const [, , atServer, atClient] = await link.until(Promise.all([writeAll(client, up), writeAll(server, down), readAll(server), readAll(client)]));
  assert.ok(equalBytes(atServer, up) && equalBytes(atClient, down));
  await link.until(Promise.all([client.closed, server.closed]), 20_000);
  assert.is(link.a.stats.tcpTimeouts, 1, "client timeouts");
  assert.is(link.b.stats.tcpTimeouts, 1, "server timeouts");
  for (const side of [link.a, link.b]) {
    let max = -1;
    for (const p of link.log.filter((q) => q.from === side)) {
      const t = tcp(p), end = (t.seq + t.len + (t.flags & F.SYN ? 1 : 0) + (t.flags & F.FIN ? 1 : 0)) >>> 0;
      if (t.flags === F.ACK && t.len === 0 && max >= 0) assert.is(t.seq, max, `a bare ACK numbered ${t.seq}, below ${max}`);
      if (max < 0 || ((end - max) | 0) > 0) max = end;
    }
  }
  assert.ok(link.a.stats.tcpOutOfWindow + link.b.stats.tcpOutOfWindow < 20, "no storm of out-of-window segments");
});

test("out-of-order segments are reassembled without retransmission", async () => {
  const link = new Link();
  const { client, server } = await link.connect();
  const held: Packet[] = [];
  link.filter = (p) => {
    if (p.from === link.a && tcp(p).len > 0 && held.length < 6) { held.push(p); return false; }
    return true;
  };
  const data = bytes(6 * 1380);
  const got = readAll(server);
  await writeAll(client, data);
  await link.run(() => held.length === 6, 100);
  // Deliver them backwards, all at the same instant.
  for (const p of held.reverse()) link.inject(p, link.now + 1);
  assert.ok(equalBytes(await link.until(got), data));
  assert.is(link.b.stats.tcpOutOfOrder, 5);
  assert.is(link.a.stats.tcpRetransmits, 0);
});

test("more holes than the reassembly keeps: extra segments are dropped, the transfer still completes", async () => {
  const link = new Link({}, { tcp: { maxOutOfOrder: 2 } });
  const { client, server } = await link.connect();
  let k = 0;
  // Lose every other segment of the first flight: many holes at once.
  link.filter = (p) => !(p.from === link.a && tcp(p).len > 0 && k++ < 10 && k % 2 === 1);
  const data = bytes(100_000);
  const got = readAll(server);
  await link.until(writeAll(client, data));
  assert.ok(equalBytes(await link.until(got), data));
  assert.ok(link.b.stats.tcpOutOfOrderDropped > 0);
});

for (const seed of [1, 2, 3]) {
  test(`2 MB each way through 1% loss, 1% duplication and 5% reordering arrives intact (seed ${seed})`, async () => {
    const link = new Link({}, {}, seed);
    link.record = false;
    const { client, server } = await link.connect();
    link.loss = 0.01;
    link.dup = 0.01;
    link.reorder = 0.05;
    const up = bytes(2 << 20, seed), down = bytes(2 << 20, seed + 100);
    const [, , atServer, atClient] = await link.until(Promise.all([writeAll(client, up), writeAll(server, down), readAll(server), readAll(client)]));
    assert.is(sha(atServer), sha(up));
    assert.is(sha(atClient), sha(down));
    assert.ok(link.a.stats.tcpRetransmits > 0 && link.b.stats.tcpRetransmits > 0);
    assert.ok(link.b.stats.tcpOutOfOrder > 0);
    await link.until(Promise.all([client.closed, server.closed]));
  });
}

test("10% loss still gets 200 KB through", async () => {
  const link = new Link({}, {}, 9);
  link.record = false;
  const { client, server } = await link.connect();
  link.loss = 0.1;
  const data = bytes(200_000);
  const got = readAll(server);
  await link.until(writeAll(client, data));
  assert.ok(equalBytes(await link.until(got), data));
});

test.run();
