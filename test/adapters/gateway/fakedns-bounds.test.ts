// The gateway's fake DNS table flooded with names past its bound: it never
// holds more, the least recently used name is the one that goes, a name in
// use survives, and an address is not handed to a second name while the
// round of 131,070 addresses has not come back to it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FAKE_DNS_NAMES, FakeDns } from "../../../adapters/gateway/fakedns.ts";
import { MAX_CONNECTIONS, MAX_SESSIONS } from "../../../adapters/gateway/gateway.ts";

function query(name: string): Uint8Array {
  const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  return new Uint8Array([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}
const addressOf = (r: Uint8Array) => [...r.subarray(r.length - 4)].join(".");

test("the defaults are the documented numbers", () => {
  assert.is(FAKE_DNS_NAMES, 4096);
  assert.is(MAX_SESSIONS, 64);
  assert.is(MAX_CONNECTIONS, 256);
  assert.throws(() => new FakeDns(0), RangeError);
  assert.throws(() => new FakeDns(1 << 17), RangeError);
});

test("a name of 255 octets is answered, one of 256 is dropped (RFC 1035's limit, which a resolver holds answers to)", () => {
  const dns = new FakeDns();
  // Three labels of 63 and one of 61: 64 * 3 + 62 + the root's zero = 255 octets.
  const name = (last: number) => ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(last)].join(".");
  assert.ok(dns.answer(query(name(61))));
  assert.is(dns.answer(query(name(62))), null);
  assert.is(dns.size, 1);
});

test("10,000 names: at most FAKE_DNS_NAMES held, the least recently used go, a name in use stays", () => {
  const dns = new FakeDns();
  const kept = addressOf(dns.answer(query("kept.example"))!);
  const first = addressOf(dns.answer(query("n0.example"))!);
  const given = new Set<string>([kept, first]);
  for (let i = 1; i < 10_000; i++) {
    const r = dns.answer(query(`n${i}.example`))!;
    assert.is(r[3] & 0xf, 0, "every new name is answered");
    given.add(addressOf(r));
    assert.ok(dns.size <= FAKE_DNS_NAMES);
    // A page's flow to kept.example now and then keeps it recent.
    if (i % 1000 === 0) assert.is(dns.name(kept), "kept.example");
  }
  assert.is(dns.size, FAKE_DNS_NAMES);
  assert.is(dns.evicted, 10_001 - FAKE_DNS_NAMES);
  assert.is(given.size, 10_001, "no address was given to two names");
  assert.is(dns.name(first), undefined, "the oldest name gave way");
  assert.is(dns.name(kept), "kept.example", "the name in use did not");
  // A name asked for after the flood works, and an old one asked again gets a fresh address.
  const again = addressOf(dns.answer(query("n0.example"))!);
  assert.is.not(again, first);
  assert.is(dns.name(again), "n0.example");
  assert.is(dns.size, FAKE_DNS_NAMES);
});

test("the round of addresses skips the ones still held", () => {
  const dns = new FakeDns(2);
  const a = addressOf(dns.answer(query("a.example"))!);
  // Keep a.example recent while 200,000 other names come and go: its address is never given to another.
  for (let i = 0; i < 200_000; i++) {
    const r = addressOf(dns.answer(query(`x${i}.example`))!);
    assert.ok(r !== a);
    assert.is(dns.name(a), "a.example");
  }
  assert.is(dns.name(a), "a.example");
  assert.ok(dns.size <= 2);
});

test.run();
