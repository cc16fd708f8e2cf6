// The WebSocket framings (ports/framing.ts) and the relay's side of them, in
// process with fake sockets: subprotocol choice for every mix of old and new
// peers, batches written and read back intact, malformed batches refused
// whole and counted, the rate limit per datagram, and a batch client's
// downstream datagrams of one turn joined into one message.
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  BATCH_BYTES, BatchWriter, SUBPROTOCOL, chooseSubprotocol, countBatch, forEachInBatch, framingOf, joinBatch, parseSubprotocols,
} from "../../../adapters/ports/framing.ts";
import { AllowList, Relay, type UdpPort, type WsPort } from "../../../adapters/relay/relay.ts";

const both = [SUBPROTOCOL.datagram, SUBPROTOCOL.batch];

test("subprotocol choice: batch only where both sides speak it; an old page (no offer) gets none", () => {
  assert.is(chooseSubprotocol(both, true), SUBPROTOCOL.batch);
  assert.is(chooseSubprotocol(both, false), SUBPROTOCOL.datagram, "a server that will not batch answers the one-per-message name");
  assert.is(chooseSubprotocol([], true), null, "a page offering nothing gets no header, as before");
  assert.is(chooseSubprotocol(["chat"], true), null);
  assert.is(chooseSubprotocol([SUBPROTOCOL.batch], false), null);
  assert.is(framingOf(""), "datagram", "a server that answered none frames one per message");
  assert.is(framingOf(SUBPROTOCOL.datagram), "datagram", "an old server echoing the first name offered");
  assert.is(framingOf(SUBPROTOCOL.batch), "batch");
  assert.equal(parseSubprotocols("wg.datagram.v1, wg.batch.v1"), both);
  assert.equal(parseSubprotocols("wg.datagram.v1,wg.batch.v1"), both);
  assert.equal(parseSubprotocols(null), []);
});

test("BatchWriter and joinBatch write what countBatch and forEachInBatch read back", () => {
  // The fifth fills the message to exactly BATCH_BYTES: six 2-byte headers and the other five.
  const sizes = [1, 32, 148, 1452, BATCH_BYTES - 6 * 2 - (1 + 32 + 148 + 1452 + 600), 600];
  const parts = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (i * 31 + j) & 0xff));
  const w = new BatchWriter();
  for (const p of parts) {
    assert.ok(w.fits(p.length));
    const padded = new Uint8Array(p.length + 10);
    padded.set(p, 5);
    w.add(padded, 5, p.length);
  }
  assert.not.ok(w.fits(1), "the writer is full at BATCH_BYTES");
  const m = w.take().slice();
  assert.equal(m, joinBatch(parts, parts.length, parts.reduce((a, p) => a + p.length, 0)));
  assert.is(countBatch(m, 65535), parts.length);
  const got: Uint8Array[] = [];
  forEachInBatch(m, (off, len) => got.push(m.subarray(off, off + len)));
  assert.equal(got, parts);
  assert.is(w.count, 0);
  assert.is(w.bytes, 0);
});

test("countBatch refuses malformed batches whole: truncated, zero or oversized lengths, trailing bytes, over 64 KiB", () => {
  const ok = joinBatch([new Uint8Array(40), new Uint8Array(50)], 2, 90);
  assert.is(countBatch(ok, 1452), 2);
  assert.is(countBatch(ok.subarray(0, ok.length - 1), 1452), 0, "last datagram cut short");
  assert.is(countBatch(Uint8Array.of(...ok, 0), 1452), 0, "one byte of a length");
  assert.is(countBatch(Uint8Array.of(0, 0, ...ok), 1452), 0, "a zero length");
  assert.is(countBatch(ok, 45), 0, "a datagram over the largest allowed");
  assert.is(countBatch(new Uint8Array(0), 1452), 0, "an empty message");
  assert.is(countBatch(new Uint8Array(BATCH_BYTES + 2), 65535), 0);
  for (let i = 0; i < 2000; i++) {
    const junk = crypto.getRandomValues(new Uint8Array(1 + (i % 300)));
    const n = countBatch(junk, 1452);
    let seen = 0, end = 0;
    if (n > 0) forEachInBatch(junk, (off, len) => { seen++; end = off + len; });
    if (n > 0) { assert.is(seen, n); assert.is(end, junk.length); }
  }
});

class FakeWs implements WsPort {
  sent: Uint8Array[] = [];
  send(d: Uint8Array): void { this.sent.push(d); }
  close(): void {}
  buffered(): number { return 0; }
}

class FakeUdp implements UdpPort {
  readonly port = 40000;
  sent: Uint8Array[] = [];
  send(d: Uint8Array): void { this.sent.push(d.slice()); }
  close(): void {}
}

async function session(protocols: string[], o: { rate?: number; burst?: number; batch?: boolean } = {}) {
  const queued: (() => void)[] = [];
  const relay = new Relay(await AllowList.from(["192.0.2.1:51820"], async () => []), {
    rate: 1e6, burst: 1e6, ...o, defer: (f) => { queued.push(f); },
  });
  const v = relay.admit({ url: "/?to=192.0.2.1:51820", websocket: true, origin: null, remote: "198.51.100.1:5000", protocols });
  if (!v.ok) throw new Error(v.message);
  const ws = new FakeWs(), udp = new FakeUdp();
  const s = relay.open(v, ws, "198.51.100.1:5000", 0)!;
  s.attach(udp);
  return { relay, v, s, ws, udp, turn: () => { for (const f of queued.splice(0)) f(); } };
}

test("relay: a batch client's datagrams go out one by one; its downstream of one turn comes back as one message", async () => {
  const { relay, v, s, ws, udp, turn } = await session(both);
  assert.is(v.ok && v.protocol, SUBPROTOCOL.batch);
  const parts = [new Uint8Array(148).fill(1), new Uint8Array(92).fill(2), new Uint8Array(1452).fill(3)];
  s.message(joinBatch(parts, 3, 148 + 92 + 1452), 1);
  assert.equal(udp.sent, parts);
  for (let i = 0; i < 50; i++) s.datagram(new Uint8Array(1452).fill(i), "192.0.2.1", 51820, 2);
  assert.is(ws.sent.length, 1, "a full message left at once, the rest waits for the end of the turn");
  turn();
  assert.is(ws.sent.length, 2);
  const back: number[] = [];
  for (const m of ws.sent) forEachInBatch(m, (off, len) => { assert.is(len, 1452); back.push(m[off]); });
  assert.equal(back, Array.from({ length: 50 }, (_, i) => i));
  const st = relay.stats();
  assert.equal(st.down, { datagrams: 50, bytes: 50 * 1452, messages: 2 });
  assert.equal(st.up, { datagrams: 3, bytes: 148 + 92 + 1452, messages: 1 });
  assert.equal(st.framing, { datagram: 0, batch: 1 });
});

test("relay: a malformed batch is dropped whole and counted; the session goes on", async () => {
  const { relay, s, udp } = await session(both);
  const good = joinBatch([new Uint8Array(148).fill(9)], 1, 148);
  s.message(good.subarray(0, 100), 1);
  s.message(Uint8Array.of(0, 0), 1);
  s.message(joinBatch([new Uint8Array(5000)], 1, 5000), 1); // a datagram over maxMessage (4096)
  assert.is(udp.sent.length, 0);
  assert.is(relay.stats().drops.malformed, 3);
  s.message(good, 2);
  assert.is(udp.sent.length, 1);
});

test("relay: datagrams of a batch queued while the UDP socket binds are copies, not views of their message", async () => {
  const relay = new Relay(await AllowList.from(["192.0.2.1:51820"], async () => []), { rate: 1e6, burst: 1e6, defer: () => {} });
  const v = relay.admit({ url: "/?to=192.0.2.1:51820", websocket: true, origin: null, remote: "198.51.100.1:5000", protocols: both });
  if (!v.ok) throw new Error(v.message);
  const s = relay.open(v, new FakeWs(), "198.51.100.1:5000", 0)!;
  const m = joinBatch(Array.from({ length: 30 }, (_, i) => new Uint8Array(2000).fill(i)), 30, 60000);
  s.message(m, 0);
  assert.is(s.queued, 30);
  const udp = new (class extends FakeUdp { send(d: Uint8Array): void { this.sent.push(d); } })();
  s.attach(udp);
  assert.ok(udp.sent.every((d, i) => d.length === 2000 && d.buffer.byteLength === 2000 && d[0] === i), "each its own buffer, in order");
});

test("relay: the rate limit counts datagrams, not messages", async () => {
  const { relay, s, udp } = await session(both, { rate: 10, burst: 10 });
  s.message(joinBatch(Array.from({ length: 25 }, () => new Uint8Array(32)), 25, 25 * 32), 0);
  assert.is(udp.sent.length, 10);
  assert.is(relay.stats().drops.rate, 15);
});

test("relay: an old page (no subprotocol) and a relay with batch off both frame one datagram per message", async () => {
  for (const [protocols, batch] of [[[], true], [both, false]] as const) {
    const { v, s, ws, udp, turn } = await session([...protocols], { batch });
    assert.is(v.ok && v.framing, "datagram");
    s.message(new Uint8Array(148).fill(4), 1);
    assert.is(udp.sent[0].length, 148, "the message went out as it came");
    s.datagram(new Uint8Array(92), "192.0.2.1", 51820, 1);
    s.datagram(new Uint8Array(92), "192.0.2.1", 51820, 1);
    turn();
    assert.is(ws.sent.length, 2, "one message per datagram");
    assert.is(ws.sent[0].length, 92);
  }
});

test.run();
