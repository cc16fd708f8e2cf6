// The netstack's parts on their own: checksum, ring, reassembly ranges, RTO
// estimator, NewReno, sequence arithmetic, header parsing, DNS messages.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { finish, sum } from "../../../src/netstack/checksum.ts";
import { Ring } from "../../../src/netstack/ring.ts";
import { Assembler } from "../../../src/netstack/assembler.ts";
import { RttEstimator } from "../../../src/netstack/rtt.ts";
import { CC_NONE, CC_PARTIAL, CC_RETRANSMIT, NewReno } from "../../../src/netstack/congestion.ts";
import { Segment, parseTcp, seqDiff, seqGt, seqLt, seqAdd } from "../../../src/netstack/tcp.ts";
import { IP_CHECKSUM, IP_FRAGMENT, IP_MALFORMED, IP_OK, IP_UNSUPPORTED, IpHeader, parseIp } from "../../../src/netstack/ip.ts";
import { TYPE_A, TYPE_AAAA, encodeQuery, normalizeName, parseResponse } from "../../../src/netstack/dns.ts";
import { ipPacket, tcpSegment } from "../../helpers/netstack-craft.ts";
import { prng } from "../../helpers/netstack.ts";

test("checksum: RFC 1071's example, odd lengths, and independence of where the sum is split", () => {
  // RFC 1071 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
  const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.is(finish(sum(b, 0, 8)), ~0xddf2 & 0xffff);
  assert.is(finish(sum(Uint8Array.from([0xab]), 0, 1)), ~0xab00 & 0xffff);
  const r = prng(3), big = Uint8Array.from({ length: 9001 }, () => Math.floor(r() * 256));
  let naive = 0;
  for (let i = 0; i < big.length; i += 2) naive += (big[i] << 8) | (i + 1 < big.length ? big[i + 1] : 0);
  assert.is(finish(sum(big, 0, big.length)), finish(naive));
  assert.is(finish(sum(big, 1000, 8001, sum(big, 0, 1000))), finish(naive));
  // A sum whose fold carries: all ones.
  assert.is(finish(sum(new Uint8Array(70000).fill(0xff), 0, 70000)), 0);
});

test("sequence arithmetic wraps at 2^32", () => {
  assert.ok(seqLt(0xfffffff0, 0x10));
  assert.ok(seqGt(0x10, 0xfffffff0));
  assert.is(seqDiff(0x10, 0xfffffff0), 0x20);
  assert.is(seqAdd(0xffffffff, 2), 1);
});

test("ring: push, peek and take across the wrap; growth keeps content; the cap holds", () => {
  const r = new Ring(10_000);
  assert.is(r.allocated, 0, "nothing allocated while empty");
  const rnd = prng(5), model: number[] = [];
  let next = 0;
  for (let k = 0; k < 2000; k++) {
    const n = Math.floor(rnd() * Math.min(r.free, 3000) + 1) % (r.free + 1);
    const src = Uint8Array.from({ length: n + 7 }, (_, i) => (next + i) & 0xff);
    r.push(src, 0, n);
    for (let i = 0; i < n; i++) model.push((next + i) & 0xff);
    next += n;
    assert.is(r.len, model.length);
    if (r.len > 5) {
      const peek = new Uint8Array(5);
      r.peek(r.len - 5, peek, 0, 5);
      assert.equal([...peek], model.slice(-5));
    }
    const got = r.take(Math.floor(rnd() * (r.len + 1)));
    assert.equal([...got], model.splice(0, got.length));
    assert.ok(r.allocated <= 10_000);
  }
  r.take(r.len);
  r.release();
  assert.is(r.allocated, 0);
});

test("ring: bytes parked past the end keep their place when the readable part drains", () => {
  const r = new Ring(64 * 1024);
  const a = Uint8Array.from({ length: 100 }, (_, i) => i);
  r.push(a, 0, 10); // 0..9 readable
  r.writeAt(20, a, 30, 10); // bytes 30..39 parked at offset 20 past the end (stream offset 30)
  r.discard(10); // the reader drains everything readable
  r.writeAt(0, a, 10, 20); // the gap 10..29 arrives
  r.commit(30);
  assert.equal([...r.take(30)], [...a.subarray(10, 40)]);
});

test("ring: a stream through a small ring with parked data, against a model", () => {
  const cap = 5000, r = new Ring(cap), rnd = prng(11);
  const stream = Uint8Array.from({ length: 400_000 }, () => Math.floor(rnd() * 256));
  let readPos = 0, have = 0; // have: bytes committed (stream offset of readable end)
  const asm = new Assembler(8);
  while (readPos < stream.length) {
    // Random segments within the free space, some out of order.
    for (let k = 0; k < 4; k++) {
      const room = Math.min(r.free, stream.length - have);
      if (room <= 0) break;
      const pos = Math.floor(rnd() * room), len = Math.min(room - pos, 1 + Math.floor(rnd() * 1400));
      if (pos === 0) {
        r.writeAt(0, stream, have, len);
        const n = asm.advance(len);
        r.commit(n);
        have += n;
      } else if (asm.add(pos, pos + len)) r.writeAt(pos, stream, have + pos, len);
    }
    const got = r.take(Math.floor(rnd() * (r.len + 1)));
    for (let i = 0; i < got.length; i++) if (got[i] !== stream[readPos + i]) assert.unreachable(`byte ${readPos + i}`);
    readPos += got.length;
  }
  assert.ok(r.allocated <= cap);
});

test("assembler: merges, touches, limits and advances", () => {
  const a = new Assembler(3);
  assert.ok(a.add(10, 20));
  assert.ok(a.add(30, 40));
  assert.ok(a.add(20, 30), "touching ranges merge");
  assert.is(a.count, 1);
  assert.ok(a.add(50, 60));
  assert.ok(a.add(70, 80));
  assert.not.ok(a.add(90, 100), "a fourth range is refused");
  assert.ok(a.add(55, 75), "a merge needs no new range");
  assert.is(a.count, 2);
  assert.is(a.advance(5), 5, "nothing touches [0,5)");
  // Ranges are now [5,35) and [45,75).
  assert.is(a.advance(5), 35);
  assert.is(a.count, 1);
  assert.is(a.advance(100), 100, "covers the rest");
  assert.ok(a.empty);
});

test("RTO (RFC 6298): first sample, smoothing, floor, ceiling, backoff", () => {
  const e = new RttEstimator({ initial: 1000, min: 200, max: 60_000 });
  assert.is(e.rto, 1000);
  e.sample(100); // SRTT 100, RTTVAR 50 -> 300
  assert.is(e.srtt, 100);
  assert.is(e.rttvar, 50);
  assert.is(e.rto, 300);
  e.sample(200); // RTTVAR = .75*50 + .25*100 = 62.5; SRTT = 87.5 + 25 = 112.5; RTO = 362.5
  assert.is(e.rttvar, 62.5);
  assert.is(e.srtt, 112.5);
  assert.is(e.rto, 362.5);
  for (let i = 0; i < 50; i++) e.sample(1);
  assert.is(e.rto, 200, "floor");
  for (let i = 0; i < 20; i++) e.backoff();
  assert.is(e.rto, 60_000, "ceiling");
});

test("NewReno: slow start, congestion avoidance, fast retransmit on the third duplicate, partial and full ACKs, timeout", () => {
  const mss = 1000, c = new NewReno(mss, 0);
  assert.is(c.cwnd, 10 * mss, "initial window of 10 segments");
  c.onAck(1000, 1000, 9000);
  assert.is(c.cwnd, 11 * mss, "slow start grows by what was acked");
  c.ssthresh = 11 * mss;
  c.onAck(2000, 1000, 9000);
  assert.is(c.cwnd, 11 * mss, "congestion avoidance: not yet a whole window acked");
  for (let i = 0; i < 11; i++) c.onAck(3000 + i * 1000, 1000, 9000);
  assert.is(c.cwnd, 12 * mss, "one MSS per window");
  // Loss: SND.UNA 20000, 12 segments out, SND.MAX 32000.
  assert.is(c.onDupAck(20000, 12000, 32000), CC_NONE);
  assert.is(c.onDupAck(20000, 12000, 32000), CC_NONE);
  assert.is(c.onDupAck(20000, 12000, 32000), CC_RETRANSMIT);
  assert.is(c.ssthresh, 6000);
  assert.is(c.cwnd, 9000, "ssthresh + 3 MSS");
  c.onDupAck(20000, 12000, 32000);
  assert.is(c.cwnd, 10000, "inflated per further duplicate");
  assert.is(c.onAck(25000, 5000, 7000), CC_PARTIAL);
  assert.is(c.cwnd, 10000 - 5000 + 1000, "deflated by what was acked, one MSS back");
  assert.is(c.onAck(32000, 7000, 0), CC_NONE);
  assert.not.ok(c.inRecovery);
  assert.is(c.cwnd, 2000, "full ACK: min(ssthresh, max(flight, MSS) + MSS)");
  c.onTimeout(8000, 40000);
  assert.is(c.cwnd, mss, "loss window");
  assert.is(c.ssthresh, 4000);
  // Duplicates of data sent before the timeout do not start recovery (RFC 6582 step 2).
  c.onDupAck(33000, 7000, 40000); c.onDupAck(33000, 7000, 40000);
  assert.is(c.onDupAck(33000, 7000, 40000), CC_NONE);
});

test("IP parsing: versions, lengths, checksum, fragments, extension headers", () => {
  const h = new IpHeader();
  const syn = tcpSegment("10.0.0.1", "10.0.0.2", { sport: 1, dport: 2, flags: 2 });
  assert.is(parseIp(syn, h), IP_OK);
  assert.is(h.proto, 6);
  assert.is(h.payloadLen, 20);
  // Link padding past the total length is ignored.
  const padded = new Uint8Array(syn.length + 6);
  padded.set(syn);
  assert.is(parseIp(padded, h), IP_OK);
  assert.is(h.payloadLen, 20);
  const bad = syn.slice(); bad[8] ^= 1;
  assert.is(parseIp(bad, h), IP_CHECKSUM);
  const frag = ipPacket("10.0.0.1", "10.0.0.2", 17, new Uint8Array(16));
  frag[6] = 0x20; // More Fragments
  frag[10] = frag[11] = 0;
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (frag[i] << 8) | frag[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  frag[10] = (~s >> 8) & 0xff; frag[11] = ~s & 0xff;
  assert.is(parseIp(frag, h), IP_FRAGMENT);
  assert.is(parseIp(syn.subarray(0, 19), h), IP_MALFORMED);
  assert.is(parseIp(new Uint8Array([0x50]), h), IP_MALFORMED);
  // IPv6: hop-by-hop then TCP; a fragment header; a routing header with segments left.
  const v6 = tcpSegment("fd00::1", "fd00::2", { sport: 1, dport: 2, flags: 2 });
  assert.is(parseIp(v6, h), IP_OK);
  const withExt = (next: number, ext: number[]) => {
    const p = new Uint8Array(v6.length + 8);
    p.set(v6.subarray(0, 40)); p.set(v6.subarray(40), 48);
    p[6] = next; p[5] += 8;
    p.set([6, 0, ...ext], 40);
    return p;
  };
  assert.is(parseIp(withExt(0, [1, 4, 0, 0, 0, 0]), h), IP_OK);
  assert.is(h.proto, 6);
  assert.is(h.payloadOff, 48);
  assert.is(parseIp(withExt(44, [0, 0, 0, 0, 0, 0]), h), IP_FRAGMENT);
  assert.is(parseIp(withExt(43, [0, 1, 0, 0, 0, 0]), h), IP_UNSUPPORTED);
  assert.is(parseIp(withExt(43, [0, 0, 0, 0, 0, 0]), h), IP_OK);
});

test("TCP options: MSS and window scale parsed; malformed options stop the walk without failing", () => {
  const s = new Segment();
  const p = tcpSegment("10.0.0.1", "10.0.0.2", { sport: 1, dport: 2, flags: 2, options: [2, 4, 5, 0xb4, 1, 3, 3, 7] });
  assert.ok(parseTcp(p, 20, p.length - 20, s));
  assert.is(s.mss, 1460);
  assert.is(s.wscale, 7);
  const big = tcpSegment("10.0.0.1", "10.0.0.2", { sport: 1, dport: 2, flags: 2, options: [3, 3, 30, 0] });
  assert.ok(parseTcp(big, 20, big.length - 20, s));
  assert.is(s.wscale, 14, "clamped to 14");
  for (const opts of [[2, 0, 1, 1], [2, 40, 0, 0], [3, 1, 0, 0], [2], [8, 10, 0, 0, 0, 0, 0, 0]]) {
    const q = tcpSegment("10.0.0.1", "10.0.0.2", { sport: 1, dport: 2, flags: 2, options: [...opts] });
    assert.ok(parseTcp(q, 20, q.length - 20, s));
  }
  // A data offset beyond the segment is malformed.
  const q = tcpSegment("10.0.0.1", "10.0.0.2", { sport: 1, dport: 2, flags: 2 });
  q[32] = 0xf0;
  assert.not.ok(parseTcp(q, 20, 20, s));
});

test("DNS: names are checked and normalized; a query encodes as RFC 1035 says", () => {
  assert.is(normalizeName("WWW.Example.COM."), "www.example.com");
  for (const bad of ["", ".", "a..b", "-".repeat(64) + ".com", "bad name", "é.com", "a".repeat(254)]) {
    assert.throws(() => normalizeName(bad), RangeError, bad);
  }
  // A name a proxy's client sent, newlines and all, is refused in one line, escaped and cut short.
  try {
    normalizeName("evil\r\nX-Injected: 1\u2028" + "a".repeat(300));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, RangeError);
    assert.match((e as Error).message, /^invalid DNS name 'evil\\x0d\\x0aX-Injected: 1\\u2028a+\.\.\.'$/);
    assert.ok((e as Error).message.length < 120);
  }
  const q = encodeQuery(0x1234, "a.bc", TYPE_AAAA);
  assert.equal([...q], [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 2, 98, 99, 0, 0, 28, 0, 1]);
});

/** A response to `query` with the given answer records (name pointers to the question when owner is null). */
function response(query: Uint8Array, rcode: number, answers: { owner?: number[]; type: number; ttl: number; rdata: number[] }[]): Uint8Array {
  const out = [...query];
  out[2] = 0x81; out[3] = 0x80 | rcode;
  out[6] = answers.length >> 8; out[7] = answers.length & 0xff;
  for (const a of answers) {
    out.push(...(a.owner ?? [0xc0, 12]), a.type >> 8, a.type & 0xff, 0, 1, 0, 0, a.ttl >> 8, a.ttl & 0xff, a.rdata.length >> 8, a.rdata.length & 0xff, ...a.rdata);
  }
  return Uint8Array.from(out);
}

test("DNS: responses are matched by ID and question; CNAME chains are followed; hostile messages never throw", () => {
  const q = encodeQuery(7, "www.example.com", TYPE_A);
  // www.example.com CNAME web.example.com (web written as a label plus a pointer to "example.com" at 16)
  const cname = [3, 119, 101, 98, 0xc0, 16];
  const r = response(q, 0, [
    { type: 5, ttl: 300, rdata: cname },
    { owner: [3, 119, 101, 98, 0xc0, 16], type: TYPE_A, ttl: 60, rdata: [192, 0, 2, 1] },
    { owner: [5, 111, 116, 104, 101, 114, 0], type: TYPE_A, ttl: 60, rdata: [192, 0, 2, 99] }, // unrelated name
    { type: TYPE_AAAA, ttl: 60, rdata: new Array(16).fill(1) }, // other type
  ]);
  const a = parseResponse(r, 7, "www.example.com", TYPE_A)!;
  assert.is(a.rcode, 0);
  assert.equal(a.addresses.map((x) => [...x]), [[192, 0, 2, 1]]);
  assert.is(a.ttl, 60);
  assert.is(parseResponse(r, 8, "www.example.com", TYPE_A), null, "wrong ID");
  assert.is(parseResponse(r, 7, "www.example.org", TYPE_A), null, "another question");
  assert.is(parseResponse(q, 7, "www.example.com", TYPE_A), null, "a query is no response");
  // A pointer loop, and every truncation and many corruptions of a good response.
  const loop = response(q, 0, [{ owner: [0xc0, r.length], type: TYPE_A, ttl: 1, rdata: [1, 2, 3, 4] }]);
  loop[loop.length - 14] = 0xc0; loop[loop.length - 13] = loop.length - 14;
  assert.is(parseResponse(loop, 7, "www.example.com", TYPE_A), null);
  for (let n = 0; n < r.length; n++) parseResponse(r.subarray(0, n), 7, "www.example.com", TYPE_A);
  const rnd = prng(1);
  for (let k = 0; k < 5000; k++) {
    const m = r.slice();
    for (let j = 0; j < 3; j++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
    parseResponse(m, 7, "www.example.com", TYPE_A);
  }
});

test.run();
