// The engine's tables fed by the network, flooded past their bounds: the
// handshake rate limiter's sources, a peer's packets staged for a session,
// and the handshakes in flight. The size stays at the bound, the oldest (or
// least recently used) entry is what goes, and a legitimate one after the
// flood works.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { pair, ipv4, eq, nodeX25519 } from "../helpers/net.ts";
import { MAX_STAGED_PACKETS } from "../../src/constants.ts";
import { RATELIMITER_MAX_ENTRIES, RateLimiter } from "../../src/ratelimiter.ts";

const A = "10.0.0.1", B = "10.0.0.2";

test("the defaults are the documented numbers", () => {
  assert.is(RATELIMITER_MAX_ENTRIES, 4096);
  assert.is(new RateLimiter().maxEntries, 4096);
  assert.is(MAX_STAGED_PACKETS, 128);
});

test("rate limiter: 20,000 sources in one second; at most 4096 tracked, the least recently used go, a new source is never refused", () => {
  const rl = new RateLimiter();
  // A busy legitimate source, and one that spent its burst at the start.
  for (let i = 0; i < 5; i++) rl.allow("198.51.100.1", 0);
  assert.not.ok(rl.allow("198.51.100.1", 0), "its burst is spent");
  for (let i = 0; i < 20_000; i++) {
    assert.ok(rl.allow(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 500), "a new source starts with a full bucket");
    assert.ok(rl.size <= RATELIMITER_MAX_ENTRIES);
  }
  assert.is(rl.size, RATELIMITER_MAX_ENTRIES);
  assert.is(rl.evicted, 20_001 - RATELIMITER_MAX_ENTRIES, "each went while still in debt");
  // The spent source was the least recently used: it was forgotten, and starts again full.
  assert.ok(rl.allow("198.51.100.1", 500));
  // The flood's newest source is still tracked, and still in debt for this instant.
  const last = `10.0.${(19_999 >> 8) & 255}.${19_999 & 255}`;
  for (let i = 0; i < 4; i++) rl.allow(last, 500);
  assert.not.ok(rl.allow(last, 500));
  // A second later everything is idle and collected.
  rl.collect(1600);
  assert.is(rl.size, 0);
});

test("a peer with no session holds MAX_STAGED_PACKETS; the oldest give way, the newest arrive once it has one", () => {
  const { net, a, b } = pair();
  net.filter = () => false; // b unreachable for now
  const sizes: number[] = [];
  for (let i = 0; i < 1000; i++) {
    a.send(ipv4(A, B, 60 + i, i));
    sizes.push(60 + i);
    assert.ok(a.engine.peer(b.publicKey)!.staged.length <= MAX_STAGED_PACKETS);
  }
  assert.is(a.engine.peer(b.publicKey)!.staged.length, MAX_STAGED_PACKETS);
  assert.is(a.engine.drops.staged, 1000 - MAX_STAGED_PACKETS);
  assert.is(a.engine.handshakesInFlight, 1, "one handshake for the peer, however many packets wait");
  net.filter = () => true;
  net.advance(6_000); // the retry after REKEY_TIMEOUT gets through
  assert.equal(b.tunnel.map((p) => p.data.length), sizes.slice(-MAX_STAGED_PACKETS), "the newest 128, in order");
  assert.is(a.engine.peer(b.publicKey)!.staged.length, 0, "nothing held after the flush");
  assert.is(a.engine.handshakesInFlight, 0);
  const fresh = ipv4(A, B, 100, 7);
  a.send(fresh);
  net.flush();
  assert.ok(eq(b.tunnel[b.tunnel.length - 1].data, fresh), "a packet after the flood goes through");
});

test("packets re-queued to another peer during a flush stay within that peer's bound", () => {
  const { net, a, b } = pair();
  const kc = nodeX25519.generate();
  const c = net.add("c", { privateKey: kc.privateKey, x25519: nodeX25519 });
  net.take(a, a.engine.set({ peers: [{ publicKey: c.publicKey, endpoint: c.ep, allowedIps: ["10.0.0.3/32"] }] }, net.now));
  net.filter = () => false;
  for (let i = 0; i < MAX_STAGED_PACKETS; i++) a.send(ipv4(A, B, 60 + i, i), ipv4(A, "10.0.0.3", 60 + i, i));
  assert.is(a.engine.peer(c.publicKey)!.staged.length, MAX_STAGED_PACKETS);
  // 10.0.0.2 now routes to c; b's queue, flushed when b's handshake completes, goes to c, still without a session.
  net.take(a, a.engine.set({ peers: [{ publicKey: c.publicKey, allowedIps: ["10.0.0.3/32", "10.0.0.2/32"], replaceAllowedIps: true }, { publicKey: b.publicKey, allowedIps: ["fd00::2/128"], replaceAllowedIps: true }] }, net.now));
  net.filter = (d) => d.to.address === b.ep.address || d.from.address === b.ep.address;
  net.advance(6_000);
  assert.ok(a.engine.peer(b.publicKey)!.current !== null, "b's handshake completed");
  assert.is(a.engine.peer(c.publicKey)!.staged.length, MAX_STAGED_PACKETS);
  assert.is(a.engine.drops.staged, MAX_STAGED_PACKETS, "the oldest of c's queue gave way to the re-queued ones");
});

test.run();
