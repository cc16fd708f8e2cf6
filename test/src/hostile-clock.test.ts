// Hostile input that needs a clock: a peer that vanishes, clocks that jump,
// cookies that go stale. Two real engines under the virtual clock of
// test/helpers/net.ts; every number asserted is the whitepaper's or
// wireguard-go's (REKEY_TIMEOUT 5 s + up to 333 ms,
// 18 + 1 retries, REJECT_AFTER_TIME 180 s, cookie secrets live 120 s).
// Each test adds one row to the table printed at the end.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { EPOCH, established, pair, ipv4, eq, type Datagram, type Net, type Node } from "../helpers/net.ts";
import {
  KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REKEY_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER,
} from "../../src/constants.ts";
import { COOKIE_REFRESH_TIME_MS } from "../../src/cookie.ts";
import { hash, mac, LABEL_COOKIE, LABEL_MAC1 } from "../../src/crypto.ts";
import { tai64n } from "../../src/tai64n.ts";

const A = "10.0.0.1", B = "10.0.0.2";
const HOUR = 3_600_000, DAY = 24 * HOUR;
const rows: [string, string, string][] = [];

/** Datagrams of a type that `from` put on the wire in [since, until]. */
function sent(net: Net, type: number, from: Node, since = -Infinity, until = Infinity): Datagram[] {
  return net.sent(type, from, since).filter((d) => d.at <= until);
}

/** Whether a packet from -> to arrives intact right now (no timers run). */
function through(net: Net, from: Node, to: Node, tag: number): boolean {
  const src = from.name === "b" ? B : A, dst = from.name === "b" ? A : B;
  const pkt = ipv4(src, dst, 90, tag);
  const before = to.tunnel.length;
  from.send(pkt);
  net.flush();
  return to.tunnel.length > before && eq(to.tunnel.at(-1)!.data, pkt);
}

/** Moves every node's view of time to a clock that just jumped: the adapter's next call to the engine. */
function jump(net: Net, ms: number): void {
  net.now += ms;
  for (const n of net.nodes) net.take(n, n.engine.tick(net.now));
  net.flush();
}

// ---- 1. a peer that vanishes ---------------------------------------------------

test("a peer that vanishes: 20 initiations 5 s apart, then give up, drop the queue, stay quiet", () => {
  const { net, a, b } = pair();
  let bGone = true;
  net.filter = (d) => !bGone || (d.to.port !== b.ep.port || d.to.address !== b.ep.address);
  const t0 = net.now;
  a.send(ipv4(A, B, 100, 1), ipv4(A, B, 100, 2), ipv4(A, B, 100, 3));
  assert.is(a.engine.peer(b.publicKey)!.staged.length, 3, "three packets wait for a session");
  const staged0 = a.engine.drops.staged;
  net.advance(10 * 60_000);
  const inits = sent(net, 1, a);
  // One initiation, then one retry per RETRANSMIT expiry while attempts <= MAX_TIMER_HANDSHAKES
  // (wireguard-go's expiredRetransmitHandshake, the kernel's "did not complete after 20 attempts").
  assert.is(inits.length, MAX_TIMER_HANDSHAKES + 2, "1 initiation + 19 retries");
  for (let i = 1; i < inits.length; i++) {
    const gap = inits[i].at - inits[i - 1].at;
    assert.ok(gap >= REKEY_TIMEOUT && gap < REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER, `retry ${i} came ${gap} ms after the last`);
  }
  const last = inits.at(-1)!.at - t0;
  assert.ok(last < (MAX_TIMER_HANDSHAKES + 1) * (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER), `last initiation at ${last} ms`);
  assert.is(a.engine.drops.staged - staged0, 3, "the staged packets are dropped when a gives up");
  assert.is(a.engine.peer(b.publicKey)!.staged.length, 0);
  assert.is(net.log.filter((d) => d.from.address === a.ep.address && d.at > inits.at(-1)!.at).length, 0, "nothing after giving up");
  assert.is(b.tunnel.length, 0);

  // b comes back; only new traffic starts a new handshake, and only the new packet arrives.
  bGone = false;
  const back = net.now;
  net.advance(60_000);
  assert.is(sent(net, 1, a, back).length, 0, "no initiation without new traffic");
  const sinceNew = net.now;
  a.send(ipv4(A, B, 100, 4));
  net.flush();
  assert.is(sent(net, 1, a, sinceNew).length, 1, "new traffic brings one initiation");
  assert.is(b.tunnel.length, 1, "and delivery");
  assert.ok(eq(b.tunnel[0].data, ipv4(A, B, 100, 4)), "of the new packet only");
  rows.push(["1 peer vanishes", `${inits.length} initiations, gaps 5000-5333 ms, last at ${(last / 1000).toFixed(1)} s, then silence 10 min; back: 1 init, delivered`, `a.drops.staged +3`]);
});

// ---- 2. clocks that jump -------------------------------------------------------

test("the wall clock jumping either way changes nothing: the engine never reads it", () => {
  const { net, a, b } = pair();
  const realNow = Date.now;
  const stamps: Uint8Array[] = [];
  try {
    for (const skew of [-HOUR, DAY, -DAY]) {
      Date.now = () => realNow() + skew;
      net.advance(REKEY_AFTER_TIME + 1000); // a new session each round: a new initiation
      const at = net.now;
      a.send(ipv4(A, B, 100, stamps.length));
      net.flush();
      const init = sent(net, 1, a, at);
      assert.is(init.length, 1);
      const ts = b.engine.peer(a.publicKey)!.handshake!.lastTimestamp.slice();
      // TAI64N is epoch + monotonic now, whatever Date.now says.
      assert.ok(eq(ts, tai64n(EPOCH + at)), "the initiation carries TAI64N(epoch + now)");
      stamps.push(ts);
      assert.ok(eq(b.tunnel.at(-1)!.data, ipv4(A, B, 100, stamps.length - 1)), "and is accepted");
    }
  } finally {
    Date.now = realNow;
  }
  rows.push(["2a wall clock -1 h/+1 d/-1 d", "3 initiations carry TAI64N(epoch + monotonic now), all accepted", `b.engine.handshakes.completed ${b.engine.handshakes.completed}`]);
});

test("a peer whose wall clock went back (restart): refused until its TAI64N passes the last one, replays never", () => {
  const { net, a, b } = established();
  const oldInit = sent(net, 1, a)[0].data;
  const key = a.engine.status().privateKey!;
  // a restarts after its wall clock was set back an hour: a new engine whose epoch is an hour earlier.
  net.nodes.splice(net.nodes.indexOf(a), 1);
  const a2 = net.add("a", { privateKey: key, epoch: EPOCH - HOUR, address: a.ep.address, port: a.ep.port });
  net.take(a2, a2.engine.set({ peers: [{ publicKey: b.publicKey, endpoint: b.ep, allowedIps: ["10.0.0.2/32"] }] }, net.now));
  net.advance(1000);
  const refused0 = b.engine.drops.handshake, done0 = b.engine.handshakes.completed;
  a2.send(ipv4(A, B, 100, 7));
  net.flush();
  assert.is(b.engine.drops.handshake - refused0, 1, "an initiation older than the last accepted is refused (wireguard-go: !After)");
  assert.is(b.engine.handshakes.completed, done0);
  assert.is(sent(net, 2, b, net.now).length, 0, "and gets no response");
  // A replay of the very first initiation is refused too: the refused one lowered nothing.
  b.receive(oldInit, a2.ep);
  net.queue = [];
  assert.is(b.engine.drops.handshake - refused0, 2, "a replayed initiation is refused");
  const refused = b.engine.drops.handshake - refused0;
  // a2's label passes the last accepted one (made at now 0) when its now passes an hour: refused just before, accepted just after.
  net.advance(HOUR - 2000 - net.now);
  const before = b.engine.drops.handshake, t = net.now;
  a2.send(ipv4(A, B, 100, 8));
  net.flush();
  assert.is(b.engine.drops.handshake - before, 1, "2 s short of the last timestamp: refused");
  assert.is(sent(net, 2, b, t).length, 0);
  net.advance(REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER);
  assert.is(sent(net, 2, b, t).length, 1, "a2's retry 5 s later is past it: accepted");
  assert.ok(eq(b.tunnel.at(-1)!.data, ipv4(A, B, 100, 8)), "and the waiting packet delivered");
  rows.push(["2b peer's clock back 1 h", "initiation and a replay refused; refused at now 1 h - 2 s, accepted at 1 h + 3 s", `b.drops.handshake +${refused} (then +1 per retry of a2)`]);
});

test("a monotonic now that jumps back an hour: the session lives, timers and rekey keep elapsed time", () => {
  const { net, a, b } = established();
  const created = a.engine.peer(b.publicKey)!.current!.created;
  net.advance(30_000);
  const elapsedBefore = net.now - created;
  jump(net, -HOUR);
  assert.ok(through(net, a, b, 10), "a -> b right after the jump");
  assert.ok(through(net, b, a, 11), "b -> a right after the jump");
  const refused0 = b.engine.drops.handshake, done0 = b.engine.handshakes.completed, slot0 = a.engine.peer(b.publicKey)!.current!.slot;
  const after = net.now;
  // Log times before the jump are an hour "later": read the log from here on by position.
  const mark = net.log.length;
  const since = (type: number, from: Node) => net.log.slice(mark).filter((d) => d.data[0] === type && d.from.address === from.ep.address);
  // a keeps sending, b only keepalives: a must rekey at REKEY_AFTER_TIME of elapsed time.
  let rekeyAt = -1;
  for (let i = 0; i < 30 && rekeyAt < 0; i++) {
    net.advance(5000);
    a.send(ipv4(A, B, 100, 20 + i));
    net.flush();
    if (a.engine.peer(b.publicKey)!.current!.slot !== slot0) rekeyAt = elapsedBefore + (net.now - after);
  }
  assert.ok(rekeyAt >= REKEY_AFTER_TIME && rekeyAt <= REKEY_AFTER_TIME + 5000, `rekeyed at ${rekeyAt} ms of session age`);
  assert.is(b.engine.drops.handshake, refused0, "b accepts the initiation: its TAI64N did not go back");
  assert.is(b.engine.handshakes.completed, done0 + 1);
  assert.is(since(1, a).length, 1, "one initiation, no storm");
  const keepalives = since(4, b).filter((d) => d.data.length === 32);
  // b sent data right after the jump; a's next data, 5 s on, is answered by a keepalive KEEPALIVE_TIMEOUT later.
  assert.is(keepalives[0]?.at - after, 5000 + KEEPALIVE_TIMEOUT, "b's keepalive timer runs on elapsed time");
  rows.push(["2c monotonic now -1 h", `session lives; rekey at ${(rekeyAt / 1000).toFixed(1)} s of session age, 1 init, keepalive ${((keepalives[0].at - after) / 1000).toFixed(0)} s`, "b.engine.handshakes.completed +1, b.drops.handshake +0"]);
});

test("a monotonic now that jumps a day ahead: old keys are zeroed once, no timer storm, one handshake re-keys", () => {
  const { net, a, b } = established();
  net.advance(30_000); // quiet: the keepalives went, no timer but key zeroing is armed
  const index0 = a.engine.peer(b.publicKey)!.current!.localIndex; // slots are reused, indices are random
  // a's last packet before the jump is lost, so only a's new-handshake timer is due on the jump.
  net.filter = () => false;
  a.send(ipv4(A, B, 100, 29));
  net.filter = () => true;
  const refusedA = a.engine.drops.handshake, refusedB = b.engine.drops.handshake, done0 = b.engine.handshakes.completed;
  const mark = net.log.length;
  jump(net, DAY);
  const burst = net.log.length - mark;
  // Keys zeroed, then one handshake: initiation, response, keepalive.
  assert.equal(net.log.slice(mark).map((d) => d.data[0]), [1, 2, 4], "one handshake on the jump");
  assert.is(a.engine.drops.handshake - refusedA + b.engine.drops.handshake - refusedB, 0, "no initiation sent on the jump is forgotten at once");
  assert.ok(b.engine.handshakes.completed > done0, "a new session is made on the jump");
  for (const n of [a, b]) assert.ok(n.wake > net.now, `${n.name} wants no tick at once again`);
  net.advance(60_000);
  const minute = net.log.length - mark;
  assert.is(minute, burst, "and nothing more in the minute after");
  const expired0 = b.engine.drops.expired, at = net.now;
  a.send(ipv4(A, B, 100, 30));
  net.flush();
  assert.ok(b.tunnel.some((p) => p.at >= at && eq(p.data, ipv4(A, B, 100, 30))), "new traffic is delivered at once");
  assert.not.equal(a.engine.peer(b.publicKey)!.current!.localIndex, index0, "on a new session");
  assert.is(b.engine.drops.expired, expired0, "nothing went out on the expired keys");
  rows.push(["2d monotonic now +1 d", `keys zeroed, ${burst} datagrams (1 handshake) on the jump, none in the next minute; new packet delivered at once`, `b.engine.handshakes.completed +${b.engine.handshakes.completed - done0}, drops.handshake +0`]);
});

// ---- 3. cookies ------------------------------------------------------------

/** A batch of 16 initiations with a valid mac1 from elsewhere: b is under load for 1 s. */
function load(net: Net, b: Node): void {
  const e = b.engine, key = hash(LABEL_MAC1, b.publicKey);
  for (let i = 0; i < 16; i++) {
    const m = crypto.getRandomValues(new Uint8Array(148));
    m.set([1, 0, 0, 0]);
    m.set(mac(key, m.subarray(0, 116)), 116);
    e.memory.set(m, e.datagramOffset(i));
    e.datagramLengths[i] = m.length;
    e.datagramFrom[i] = { address: "203.0.113.5", port: 1000 + i };
  }
  const replies = e.handshakes.cookieReplies;
  net.take(b, e.fromNetwork(16, net.now));
  net.queue = net.queue.filter((d) => d.to.address !== "203.0.113.5");
  assert.ok(e.underLoad(net.now) && e.handshakes.cookieReplies === replies + 16);
}

/** The cookie inside a reply, decrypted as its recipient would (the test knows b's public key and a's mac1). */
function openCookie(net: Net, b: Node, reply: Uint8Array, answered: Uint8Array): Uint8Array {
  const cookie = new Uint8Array(16);
  const ok = b.engine.wasm.xopen(hash(LABEL_COOKIE, b.publicKey), reply.subarray(8, 32), answered.subarray(116, 132), reply.subarray(32, 64), cookie);
  assert.ok(ok, "the reply decrypts");
  return cookie;
}

const mac2Of = (init: Uint8Array) => init.subarray(132, 148);
const mac2With = (cookie: Uint8Array, init: Uint8Array) => mac(cookie, init.subarray(0, 132));

/** Runs the clock to just before a's next timer, loads b, and lets the timer fire. */
function retryUnderLoad(net: Net, a: Node, b: Node): void {
  net.advance(Math.max(0, a.wake - net.now - 1));
  load(net, b);
  net.advance(2);
}

test("stale cookies: after 120 s the old cookie's mac2 is refused, the initiator stops using it, a fresh round trip works", () => {
  const { net, a, b } = pair();
  load(net, b);
  const t0 = net.now;
  a.send(ipv4(A, B, 100, 1));
  const init1 = sent(net, 1, a)[0].data;
  assert.equal([...mac2Of(init1)], new Array(16).fill(0), "no cookie yet: mac2 is zero");
  net.flush();
  const r1 = sent(net, 3, b).filter((d) => d.to.address === a.ep.address);
  assert.is(r1.length, 1, "under load, a cookie reply instead of a response");
  const c1 = openCookie(net, b, r1[0].data, init1);
  retryUnderLoad(net, a, b);
  const init2 = sent(net, 1, a).at(-1)!.data;
  assert.ok(eq(mac2Of(init2), mac2With(c1, init2)), "the retry carries mac2 under the cookie");
  assert.is(b.tunnel.length, 1, "and is accepted under load");

  // Past 120 s: a rekeys on send; b is loaded again.
  net.advance(t0 + COOKIE_REFRESH_TIME_MS + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER + 1000 - net.now);
  load(net, b);
  const t3 = net.now;
  net.filter = (d) => !(d.data[0] === 1 && d.from.address === a.ep.address && d.at === t3); // hold a's initiation
  a.send(ipv4(A, B, 100, 2));
  net.flush();
  net.filter = () => true;
  const init3 = sent(net, 1, a, t3);
  assert.is(init3.length, 1, "a rekeys after REKEY_AFTER_TIME");
  assert.equal([...mac2Of(init3[0].data)], new Array(16).fill(0), "a's cookie is older than 120 s: not used");
  // The same initiation with mac2 under the old cookie: b's secret has rotated, so it is refused with a new cookie.
  const forged = init3[0].data.slice();
  forged.set(mac2With(c1, forged), 132);
  const replies0 = b.engine.handshakes.cookieReplies, done0 = b.engine.handshakes.completed;
  b.receive(forged, a.ep);
  assert.is(b.engine.handshakes.cookieReplies - replies0, 1, "an old-cookie mac2 earns a cookie reply");
  assert.is(sent(net, 2, b, t3).length, 0, "and no response");
  const r3 = net.queue.find((d) => d.data[0] === 3)!;
  const c2 = openCookie(net, b, r3.data, forged);
  assert.not.ok(eq(c1, c2), "the secret rotated: a different cookie for the same source");
  net.flush(); // a takes the fresh cookie
  retryUnderLoad(net, a, b);
  const init4 = sent(net, 1, a).at(-1)!.data;
  assert.ok(eq(mac2Of(init4), mac2With(c2, init4)), "the retry uses the fresh cookie");
  assert.is(b.engine.handshakes.completed, done0 + 1, "and completes a handshake under load");
  assert.ok(eq(b.tunnel.at(-1)!.data, ipv4(A, B, 100, 2)));
  rows.push(["3a stale cookie", "mac2 under a 126 s old cookie refused (cookie reply, no response); a sent mac2 = 0; fresh cookie accepted", "b.engine.handshakes.cookieReplies +1, completed +1"]);
});

test("forged cookie replies: a wrong nonce, tag, receiver or a replay is dropped and counted, no cookie kept", () => {
  const { net, a, b } = pair();
  load(net, b);
  // b's replies to a are held back, for the test to hand over.
  net.filter = (d) => !(d.data[0] === 3 && d.to.address === a.ep.address);
  a.send(ipv4(A, B, 100, 1));
  net.flush();
  const reply = sent(net, 3, b).find((d) => d.to.address === a.ep.address)!.data;
  const drops0 = a.engine.drops.handshake;
  const forgeries: [string, (m: Uint8Array) => void][] = [
    ["nonce", (m) => { m[8] ^= 1; }],
    ["ciphertext", (m) => { m[40] ^= 1; }],
    ["tag", (m) => { m[63] ^= 0x80; }],
    ["receiver", (m) => { m[4] ^= 1; }],
  ];
  for (const [, f] of forgeries) {
    const m = reply.slice();
    f(m);
    a.receive(m, b.ep);
  }
  assert.is(a.engine.drops.handshake - drops0, forgeries.length, "each forgery is a counted drop");
  retryUnderLoad(net, a, b);
  const init2 = sent(net, 1, a).at(-1)!.data;
  assert.equal([...mac2Of(init2)], new Array(16).fill(0), "no forged cookie was kept");
  assert.is(b.tunnel.length, 0, "so the retry gets only a cookie reply");
  // The genuine reply came for the first initiation; a takes replies only for its last one.
  a.receive(reply, b.ep);
  assert.is(a.engine.drops.handshake - drops0, forgeries.length + 1, "a reply to an older initiation is refused");
  const reply2 = sent(net, 3, b).filter((d) => d.to.address === a.ep.address).at(-1)!.data;
  a.receive(reply2, b.ep);
  a.receive(reply2, b.ep);
  assert.is(a.engine.drops.handshake - drops0, forgeries.length + 2, "the genuine reply counts once, its replay is refused");
  net.filter = () => true;
  retryUnderLoad(net, a, b);
  assert.is(b.tunnel.length, 1, "with the genuine cookie the next retry gets through");
  rows.push(["3b forged cookie reply", "wrong nonce/ciphertext/tag/receiver, stale and replayed replies dropped; genuine one used", `a.drops.handshake +${a.engine.drops.handshake - drops0}`]);
});

test.after(() => {
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), ["class", "what happened", "counters"][i].length));
  const line = (r: string[]) => "| " + r.map((c, i) => c.padEnd(w[i])).join(" | ") + " |";
  console.log("\n" + [line(["class", "what happened", "counters"]), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n"));
});

test.run();
