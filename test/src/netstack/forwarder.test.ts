// Forward mode (Stack.forward): one stack stands in for every host the other
// connects to, as a gateway does. Two stacks back to back under the virtual
// clock: a connects to addresses that are not b's, b takes the connections.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { A4, A6, B4, F, Link, bytes, equalBytes, readAll, tcpOf, writeAll } from "../../helpers/netstack.ts";
import { NetError, type ForwardFlow, type TcpConn } from "../../../src/netstack/index.ts";

const FAR4 = "203.0.113.7", FAR6 = "2001:db8::7";

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

/** The source address of an IPv4 packet. */
const src4 = (p: Uint8Array) => `${p[12]}.${p[13]}.${p[14]}.${p[15]}`;

for (const v6 of [false, true]) {
  test(`a connection to ${v6 ? FAR6 : FAR4}:80 is taken by the forwarding stack, which answers as that host; data both ways`, async () => {
    const link = new Link();
    const far = v6 ? FAR6 : FAR4;
    const got: TcpConn[] = [];
    link.b.forward((c) => { got.push(c); });
    const client = await link.until(link.a.connect(far, 80));
    await link.run(() => got.length === 1, 10_000);
    const server = got[0];
    assert.is(server.localAddress, far, "the forwarded connection's local side is the destination asked for");
    assert.is(server.localPort, 80);
    assert.is(server.remoteAddress, v6 ? A6 : A4);
    assert.is(server.remotePort, client.localPort);
    assert.is(client.remoteAddress, far);
    if (!v6) {
      for (const p of link.log.filter((x) => x.from === link.b)) assert.is(src4(p.data), FAR4, "replies come from the destination");
    }
    const up = bytes(300_000, 1), down = bytes(200_000, 2);
    const [atServer, atClient] = await link.until(Promise.all([
      readAll(server), readAll(client), writeAll(client, up), writeAll(server, down),
    ]));
    assert.ok(equalBytes(atServer, up), "client to server");
    assert.ok(equalBytes(atClient, down), "server to client");
    assert.is(link.b.stats.dropNotForUs, 0);
  });
}

test("without forward mode the same SYN is not for us; with it, other protocols to foreign addresses still are not", async () => {
  const link = new Link({ tcp: { synRetries: 1, initialRto: 100 } });
  await expectError(link.until(link.a.connect(FAR4, 80)), "ETIMEDOUT");
  assert.ok(link.b.stats.dropNotForUs >= 2, "the SYNs were dropped as not for us");
  const f = link.b.forward(() => {});
  const before = link.b.stats.dropNotForUs;
  const u = link.a.udp();
  u.send(new Uint8Array([1, 2, 3]), FAR4, 53);
  await expectError(link.until(link.a.ping(FAR4, link.now, { timeout: 500 })), "ETIMEDOUT");
  await link.runFor(100);
  assert.is(link.b.stats.dropNotForUs, before + 2, "a datagram and a ping to a foreign address are dropped");
  assert.is(link.b.stats.icmpOut, 0, "and not answered");
  u.close();
  f.close();
});

test("the stack's own addresses keep their listeners; a closed port there is reset, not forwarded", async () => {
  const link = new Link();
  const forwarded: TcpConn[] = [], listened: TcpConn[] = [];
  link.b.forward((c) => { forwarded.push(c); });
  link.b.listen(80, (c) => { listened.push(c); });
  const c1 = await link.until(link.a.connect(B4, 80));
  await link.run(() => listened.length === 1, 10_000);
  await expectError(link.until(link.a.connect(B4, 81)), "ECONNREFUSED");
  const c2 = await link.until(link.a.connect(FAR4, 80));
  await link.run(() => forwarded.length === 1, 10_000);
  assert.is(listened.length, 1);
  assert.is(forwarded.length, 1);
  assert.is(forwarded[0].localAddress, FAR4);
  assert.is(listened[0].localAddress, B4);
  c1.abort(); c2.abort();
  assert.throws(() => link.b.forward(() => {}), (e: unknown) => e instanceof NetError && e.code === "EADDRINUSE");
});

test("admit refuses: the SYN gets RST|ACK and connect fails with ECONNREFUSED; retransmitted SYNs wait for the answer", async () => {
  const link = new Link();
  const asked: ForwardFlow[] = [];
  let answer!: (v: string | null) => void;
  link.b.forward<string>(() => assert.unreachable("refused flows never connect"), {
    admit: (flow) => { asked.push(flow); return new Promise((r) => { answer = r; }); },
  });
  const p = link.a.connect(FAR4, 443);
  // Three seconds of virtual time: the SYN is retransmitted while admit thinks.
  await link.runFor(3500);
  assert.is(asked.length, 1, "one question per flow");
  assert.is(asked[0].localAddress, FAR4);
  assert.is(asked[0].localPort, 443);
  assert.is(asked[0].remoteAddress, A4);
  const syns = link.log.filter((x) => x.from === link.a && tcpOf(x.data)?.flags === F.SYN).length;
  assert.ok(syns >= 2, `the SYN was retransmitted (${syns})`);
  assert.is(link.log.filter((x) => x.from === link.b).length, 0, "nothing answered yet");
  answer(null);
  await expectError(link.until(p), "ECONNREFUSED");
  const rst = link.log.filter((x) => x.from === link.b).map((x) => tcpOf(x.data)!);
  assert.is(rst.length, 1);
  assert.is(rst[0].flags, F.RST | F.ACK);
  assert.is(link.b.usage().connections, 0);
});

test("admit accepts: the token comes with the connection; one that fails before it opens is released", async () => {
  const link = new Link();
  const conns: [TcpConn, { n: number }][] = [], released: { n: number }[] = [];
  let n = 0;
  const f = link.b.forward<{ n: number }>((c, t) => { conns.push([c, t]); }, {
    admit: async () => ({ n: ++n }),
    release: (t) => { released.push(t); },
  });
  const c = await link.until(link.a.connect(FAR4, 80));
  await link.run(() => conns.length === 1, 10_000);
  assert.is(conns[0][1].n, 1);
  assert.is(link.b.stats.packetsIn, link.log.filter((x) => x.from === link.a).length, "the held SYN is counted once");
  // A second flow whose handshake never completes: the client's ACK is lost, then the forwarder closes.
  link.filter = (x) => !(x.from === link.a && tcpOf(x.data)?.flags === F.ACK && tcpOf(x.data)!.len === 0);
  void link.a.connect(FAR4, 81).catch(() => {});
  await link.runFor(50);
  assert.is(f.halfOpen, 1);
  f.close();
  assert.equal(released, [{ n: 2 }], "the half-open connection's token came back");
  assert.is(conns[0][0].state, "ESTABLISHED", "established connections stay");
  c.abort();
});

test("the backlog counts SYNs waiting for admit", async () => {
  const link = new Link();
  let asked = 0;
  link.b.forward(() => {}, { backlog: 2, admit: () => { asked++; return new Promise<true>(() => {}); } });
  for (let i = 0; i < 4; i++) void link.a.connect(FAR4, 1000 + i).catch(() => {});
  await link.runFor(100);
  assert.is(asked, 2);
  assert.is(link.b.stats.tcpListenDrops, 2);
});

test.run();
