// Two Devices on the in-memory fakes (ports/fake.ts): a FakeTun each and a
// bindPair between them, so the whole path (Tun -> engine -> Bind -> engine
// -> Tun, handshake included) runs without root, sockets or a TUN device,
// on Node, Deno and Bun alike.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Engine } from "../../../src/engine.ts";
import { Device } from "../../../adapters/ports/device.ts";
import { bindPair, describePacket, FAKE_ENDPOINTS, FakeTun, pingPacket } from "../../../adapters/ports/fake.ts";
import { nobleX25519, wasmModule } from "../../helpers/net.ts";

const clock = { now: () => performance.now() };
const A = { v4: "10.44.0.1", v6: "fd44::1" }, B = { v4: "10.44.0.2", v6: "fd44::2" };

function pairOfDevices(mtu = 1420) {
  const ka = nobleX25519.generate(), kb = nobleX25519.generate();
  const [ba, bb] = bindPair();
  const ta = new FakeTun({ name: "a", mtu, addresses: [A.v4, A.v6] }), tb = new FakeTun({ name: "b", mtu, addresses: [B.v4, B.v6] });
  const ea = new Engine({ wasm: wasmModule, x25519: nobleX25519, epoch: Date.now() - clock.now(), mtu });
  const eb = new Engine({ wasm: wasmModule, x25519: nobleX25519, epoch: Date.now() - clock.now(), mtu });
  const da = new Device(ea, ta, ba, clock), db = new Device(eb, tb, bb, clock);
  da.apply(ea.set({
    privateKey: ka.privateKey, listenPort: ba.port,
    peers: [{ publicKey: kb.publicKey, endpoint: FAKE_ENDPOINTS[1], allowedIps: [`${B.v4}/32`, `${B.v6}/128`] }],
  }, clock.now()));
  db.apply(eb.set({
    privateKey: kb.privateKey, listenPort: bb.port,
    peers: [{ publicKey: ka.publicKey, allowedIps: [`${A.v4}/32`, `${A.v6}/128`] }],
  }, clock.now()));
  da.start();
  db.start();
  return { da, db, ta, tb, ba, bb, ea, eb };
}

/** Resolves once `tun` has had `n` packets written matching `pred`, or rejects after `ms`. */
function written(tun: FakeTun, n: number, pred: (p: Uint8Array) => boolean, ms = 5000): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${tun.written.filter(pred).length} of ${n} packets in ${tun.name} after ${ms} ms`)), ms);
    const check = () => {
      const got = tun.written.filter(pred);
      if (got.length >= n) { clearTimeout(t); tun.onwrite = null; resolve(got); }
    };
    tun.onwrite = check;
    check();
  });
}

test("a Device pair pings over IPv4 and IPv6 both ways: handshake, then every echo answered", async () => {
  const { da, db, ta, tb, ba, ea, eb } = pairOfDevices();
  try {
    for (let seq = 1; seq <= 20; seq++) ta.inject(pingPacket(A.v4, B.v4, seq));
    for (let seq = 1; seq <= 20; seq++) ta.inject(pingPacket(A.v6, B.v6, seq));
    const replies = await written(ta, 40, (p) => describePacket(p)?.echo === "reply");
    const seen = replies.map((p) => describePacket(p)!).map((d) => `${d.src}>${d.dst}#${d.seq}`);
    for (let seq = 1; seq <= 20; seq++) {
      assert.ok(seen.includes(`${B.v4}>${A.v4}#${seq}`), `v4 reply ${seq}`);
      assert.ok(seen.includes(`${B.v6}>${A.v6}#${seq}`), `v6 reply ${seq}`);
    }
    assert.is(tb.answered, 40);
    // And from the other side, now that a session exists.
    for (let seq = 1; seq <= 5; seq++) tb.inject(pingPacket(B.v4, A.v4, seq));
    await written(tb, 5, (p) => describePacket(p)?.echo === "reply");
    assert.is(ea.status().peers[0].lastHandshakeTime > 0, true);
    assert.is(eb.status().peers[0].endpoint?.address, FAKE_ENDPOINTS[0].address);
    assert.ok(ba.sent >= 46, `datagrams sent by a: ${ba.sent}`);
    assert.ok(da.counters.fromTunnel > 0 && db.counters.fromNetwork > 0);
  } finally {
    await da.close();
    await db.close();
  }
});

test("a packet to an address no peer has is dropped and counted, the session lives on", async () => {
  const { da, db, ta, ea } = pairOfDevices();
  try {
    ta.inject(pingPacket(A.v4, "10.99.0.9", 1));
    ta.inject(pingPacket(A.v4, B.v4, 2));
    const [reply] = await written(ta, 1, (p) => describePacket(p)?.echo === "reply");
    assert.is(describePacket(reply)!.seq, 2);
    assert.is(ea.drops.noRoute, 1);
  } finally {
    await da.close();
    await db.close();
  }
});

test("datagrams lost on the wire: the pings that got through are answered, nothing else", async () => {
  const { da, db, ta, ba, bb } = pairOfDevices();
  try {
    ta.inject(pingPacket(A.v4, B.v4, 1));
    await written(ta, 1, (p) => describePacket(p)?.echo === "reply");
    let n = 0;
    ba.drop = () => (++n % 2) === 0; // every other datagram from a is lost
    for (let seq = 2; seq <= 11; seq++) ta.inject(pingPacket(A.v4, B.v4, seq));
    await new Promise((r) => setTimeout(r, 200));
    const replies = ta.written.filter((p) => describePacket(p)?.echo === "reply").length;
    assert.is(replies, 1 + 10 - ba.dropped);
    assert.ok(ba.dropped >= 4, `dropped ${ba.dropped}`);
    assert.is(bb.received, bb.peer!.sent - ba.dropped);
  } finally {
    await da.close();
    await db.close();
  }
});

test("close: both sides closed, the keys zeroed, nothing more written", async () => {
  const { da, db, ta, tb, ba, ea } = pairOfDevices();
  ta.inject(pingPacket(A.v4, B.v4, 1));
  await written(ta, 1, (p) => describePacket(p)?.echo === "reply");
  await da.close();
  assert.ok(ta.closed && ba.closed);
  assert.ok(ea.isClosed);
  assert.is(ea.status().privateKey, null);
  assert.ok(ea.memory.every((b) => b === 0), "the engine's memory is zeroed");
  const before = tb.written.length;
  ta.inject(pingPacket(A.v4, B.v4, 2));
  await new Promise((r) => setTimeout(r, 50));
  assert.is(tb.written.length, before);
  await db.close();
});

test("a Tun whose MTU exceeds the engine's is refused", () => {
  const e = new Engine({ wasm: wasmModule, x25519: nobleX25519, epoch: 0, mtu: 1280 });
  const [a] = bindPair();
  assert.throws(() => new Device(e, new FakeTun({ mtu: 1420 }), a, clock), /MTU 1420 exceeds the engine's 1280/);
  e.close();
});

test.run();
