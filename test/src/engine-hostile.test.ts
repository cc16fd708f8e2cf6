// Hostile input: whatever arrives, no exception escapes, nothing is answered
// except a cookie reply where the protocol says so, and a live session lives on.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { established, pair, ipv4, eq, hex, type Net, type Node } from "../helpers/net.ts";
import { hash, mac, LABEL_MAC1 } from "../../src/crypto.ts";

const A = "10.0.0.1", B = "10.0.0.2";

/** An established pair, plus one real message of each type captured on the wire. */
function capturing() {
  const p = established();
  const { net, a, b } = p;
  const init = net.sent(1, a)[0].data;
  const resp = net.sent(2, b)[0].data;
  const data = net.sent(4, a).at(-1)!.data;
  return { ...p, init, resp, data };
}

/** Feeds b one datagram from a's endpoint; returns what b sent in answer. */
function poke(net: Net, b: Node, from: Node, msg: Uint8Array): Uint8Array[] {
  const before = net.log.length;
  b.receive(msg, from.ep);
  const out = net.log.slice(before).map((d) => d.data);
  net.queue = [];
  return out;
}

/** The session a<->b still works both ways, on the same keypairs as before. */
function alive(net: Net, a: Node, b: Node, slots: { a: number; b: number }, tag: number): void {
  a.send(ipv4(A, B, 120, tag));
  net.flush();
  assert.ok(eq(b.tunnel.at(-1)!.data, ipv4(A, B, 120, tag)), "a -> b still works");
  b.send(ipv4(B, A, 120, tag));
  net.flush();
  assert.ok(eq(a.tunnel.at(-1)!.data, ipv4(B, A, 120, tag)), "b -> a still works");
  assert.is(a.engine.peer(b.publicKey)!.current!.slot, slots.a, "a's session was not reset");
  assert.is(b.engine.peer(a.publicKey)!.current!.slot, slots.b, "b's session was not reset");
}

function slotsOf(a: Node, b: Node) {
  return { a: a.engine.peer(b.publicKey)!.current!.slot, b: b.engine.peer(a.publicKey)!.current!.slot };
}

test("every length 0..200 of message types 1-4 with random bytes", () => {
  const { net, a, b } = capturing();
  const slots = slotsOf(a, b);
  for (let type = 1; type <= 4; type++) {
    for (let len = 0; len <= 200; len++) {
      const m = crypto.getRandomValues(new Uint8Array(len));
      if (len > 0) m[0] = type;
      if (len > 1) m[1] = m[2] = m[3] = 0;
      if (type === 4 && len >= 8) m.set(net.sent(4, a).at(-1)!.data.subarray(4, 8), 4); // a live receiver index
      const answer = poke(net, b, a, m.subarray(0, len));
      assert.equal(answer, [], `type ${type} length ${len} got an answer`);
    }
  }
  alive(net, a, b, slots, 1);
});

test("non-zero reserved bytes make any message not a message", () => {
  const { net, a, b, init, data } = capturing();
  const slots = slotsOf(a, b);
  for (const real of [init, data]) {
    for (let i = 1; i < 4; i++) {
      const m = real.slice();
      m[i] = 1;
      assert.equal(poke(net, b, a, m), []);
    }
  }
  alive(net, a, b, slots, 2);
});

test("a flipped bit anywhere in an initiation, response or data message", () => {
  const { net, a, b, init, resp, data } = capturing();
  const slots = slotsOf(a, b);
  const before = b.tunnel.length;
  for (const [real, to, from] of [[init, b, a], [resp, a, b], [data, b, a]] as const) {
    for (let bit = 0; bit < real.length * 8; bit++) {
      const m = real.slice();
      m[bit >> 3] ^= 1 << (bit & 7);
      const answer = poke(net, to, from, m);
      // The protocol's one exception: under load, a valid mac1 with a bad mac2 earns a cookie reply.
      const cookieOnly = answer.every((x) => x[0] === 3 && x.length === 64) && to.engine.underLoad(net.now) && bit >= (real[0] === 1 ? 132 : 76) * 8 && real[0] !== 4;
      assert.ok(answer.length === 0 || cookieOnly, `bit ${bit} of type ${real[0]} got an answer`);
    }
  }
  assert.is(b.tunnel.length, before, "nothing corrupted was delivered");
  alive(net, a, b, slots, 3);
});

test("replayed initiations and data are dropped", () => {
  const { net, a, b, init, data } = capturing();
  const slots = slotsOf(a, b);
  net.now += 1000;
  assert.equal(poke(net, b, a, init), [], "an old initiation gets no response");
  const replays = b.engine.drops.replay;
  const n = b.tunnel.length;
  poke(net, b, a, data);
  assert.is(b.engine.drops.replay, replays + 1);
  assert.is(b.tunnel.length, n);
  alive(net, a, b, slots, 4);
});

test("forged huge counters cost a drop and move no window", () => {
  const { net, a, b, data } = capturing();
  const slots = slotsOf(a, b);
  for (const c of [(1n << 64n) - 1n, (1n << 64n) - (1n << 13n) - 1n, (1n << 64n) - (1n << 13n) - 2n, 1n << 60n, 1n << 53n]) {
    const m = data.slice();
    new DataView(m.buffer).setBigUint64(8, c, true);
    assert.equal(poke(net, b, a, m), []);
  }
  assert.is(b.engine.drops.auth + b.engine.drops.replay, 5);
  alive(net, a, b, slots, 5);
});

test("an initiation with a low-order or zero ephemeral is refused", () => {
  const { net, a, b, init } = capturing();
  const slots = slotsOf(a, b);
  const lowOrder = [
    new Uint8Array(32),
    Uint8Array.from([1, ...new Array(31).fill(0)]),
    hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
  ];
  const mac1Key = hash(LABEL_MAC1, b.publicKey);
  for (const e of lowOrder) {
    const m = init.slice();
    m.set(e, 8);
    net.now += 1000;
    m.set(mac(mac1Key, m.subarray(0, 116)), 116); // a valid mac1: anyone can make one
    assert.equal(poke(net, b, a, m), [], "no response to a low-order ephemeral");
  }
  alive(net, a, b, slots, 6);
});

test("a flood of initiations in one batch gets cookie replies only, and the session lives on", () => {
  const { net, a, b, init } = capturing();
  const slots = slotsOf(a, b);
  const mac1Key = hash(LABEL_MAC1, b.publicKey);
  const e = b.engine;
  const n = 32;
  for (let i = 0; i < n; i++) {
    const m = init.slice();
    crypto.getRandomValues(m.subarray(4, 116));
    m.set(mac(mac1Key, m.subarray(0, 116)), 116);
    e.memory.set(m, e.datagramOffset(i));
    e.datagramLengths[i] = m.length;
    e.datagramFrom[i] = { address: "203.0.113.5", port: 1000 + i };
  }
  const before = net.log.length;
  net.take(b, e.fromNetwork(n, net.now));
  const out = net.log.slice(before);
  net.queue = [];
  assert.ok(e.underLoad(net.now), "a backlog of handshakes puts the engine under load");
  assert.is(out.length, n, "each gets a cookie reply");
  for (const d of out) {
    assert.is(d.data[0], 3, "only cookie replies");
    assert.is(d.data.length, 64);
    assert.is(d.to.address, "203.0.113.5");
  }
  alive(net, a, b, slots, 7);
});

test.run();
