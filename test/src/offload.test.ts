// TUN offloads' WASM half (assembly/offload.ts through src/offload.ts):
// super-packets with a virtio_net_hdr, built by hand, split into segments,
// and trains of segments joined back. Every checksum is checked here with
// a plain big-endian sum written apart from the one under test.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Engine, Output } from "../../src/engine.ts";
import { offloadsOff, VNET_HDR } from "../../src/offload.ts";
import { EPOCH, nobleX25519, wasmModule } from "../helpers/net.ts";

const F_NEEDS_CSUM = 1, GSO_NONE = 0, GSO_TCPV4 = 1, GSO_TCPV6 = 4, GSO_UDP_L4 = 5;
const FIN = 0x01, PSH = 0x08, ACK = 0x10, CWR = 0x80;

function engine(mtu = 1420): Engine {
  return new Engine({ wasm: wasmModule, x25519: nobleX25519, epoch: EPOCH, mtu, offload: true });
}

/** The Internet checksum's folded sum of big-endian 16-bit words (RFC 1071), from the bytes given. */
function sum16(parts: Uint8Array[]): number {
  let s = 0;
  for (const b of parts) {
    for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) | (i + 1 < b.length ? b[i + 1] : 0);
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudoBytes(pkt: Uint8Array, proto: number, l4len: number): Uint8Array {
  const v4 = pkt[0] >> 4 === 4;
  const addrs = v4 ? pkt.subarray(12, 20) : pkt.subarray(8, 40);
  const tail = v4 ? [0, proto, l4len >> 8, l4len & 0xff] : [l4len >>> 24, (l4len >> 16) & 0xff, l4len >> 8 & 0xff, l4len & 0xff, 0, 0, 0, proto];
  return Uint8Array.from([...addrs, ...tail]);
}

/** Whether the TCP/UDP checksum of an IP packet (transport header at l4) verifies. */
function l4ChecksumOk(pkt: Uint8Array, l4: number, proto: number): boolean {
  return sum16([pseudoBytes(pkt, proto, pkt.length - l4), pkt.subarray(l4)]) === 0xffff;
}

function ipv4ChecksumOk(pkt: Uint8Array): boolean {
  return sum16([pkt.subarray(0, (pkt[0] & 15) * 4)]) === 0xffff;
}

const be16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const be32 = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
const put16 = (b: Uint8Array, at: number, v: number) => { b[at] = v >> 8; b[at + 1] = v & 0xff; };
const put32 = (b: Uint8Array, at: number, v: number) => { put16(b, at, v >>> 16); put16(b, at + 2, v & 0xffff); };

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

/** An IPv4 or IPv6 header for `l4len` bytes of `proto`, its checksum done. */
function ipHeader(v6: boolean, proto: number, l4len: number, id = 0x1234): Uint8Array {
  if (v6) {
    const h = new Uint8Array(40);
    h[0] = 0x60; h[1] = 0x0a; put16(h, 4, l4len); h[6] = proto; h[7] = 64;
    h[8] = 0xfd; h[23] = 1; h[24] = 0xfd; h[39] = 2;
    return h;
  }
  const h = new Uint8Array(20);
  h[0] = 0x45; h[1] = 0x10; put16(h, 2, 20 + l4len); put16(h, 4, id); h[6] = 0x40; h[8] = 64; h[9] = proto;
  h.set([10, 0, 0, 1, 10, 0, 0, 2], 12);
  put16(h, 10, 0xffff - sum16([h]));
  return h;
}

/** A TCP header with a timestamp option (32 bytes). */
function tcpHeader(seq: number, flags: number, ack = 777, window = 500): Uint8Array {
  const t = new Uint8Array(32);
  put16(t, 0, 40000); put16(t, 2, 5201); put32(t, 4, seq); put32(t, 8, ack);
  t[12] = 8 << 4; t[13] = flags; put16(t, 14, window);
  t.set([1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7], 20);
  return t;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** A TCP segment with correct checksums. */
function tcpSegment(v6: boolean, seq: number, payload: Uint8Array, flags = ACK, ack = 777, window = 500): Uint8Array {
  const th = tcpHeader(seq, flags, ack, window);
  const pkt = concat([ipHeader(v6, 6, th.length + payload.length), th, payload]);
  const l4 = v6 ? 40 : 20;
  put16(pkt, l4 + 16, 0xffff - sum16([pseudoBytes(pkt, 6, pkt.length - l4), pkt.subarray(l4)]));
  return pkt;
}

function vnetHeader(flags: number, gso: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): Uint8Array {
  const h = new Uint8Array(VNET_HDR);
  const v = new DataView(h.buffer);
  h[0] = flags; h[1] = gso; v.setUint16(2, hdrLen, true); v.setUint16(4, gsoSize, true);
  v.setUint16(6, csumStart, true); v.setUint16(8, csumOffset, true);
  return h;
}

/** A super-packet as Linux hands one over: one header, the whole payload, the checksum field holding the pseudo-header sum. */
function tcpSuper(v6: boolean, payload: Uint8Array, mss: number, flags: number, seq = 1000): Uint8Array {
  const th = tcpHeader(seq, flags);
  const pkt = concat([ipHeader(v6, 6, th.length + payload.length), th, payload]);
  const l4 = v6 ? 40 : 20;
  put16(pkt, l4 + 16, sum16([pseudoBytes(pkt, 6, pkt.length - l4)]));
  return concat([vnetHeader(F_NEEDS_CSUM, v6 ? GSO_TCPV6 : GSO_TCPV4, l4 + 32, mss, l4, 16), pkt]);
}

/** Stages each read in e's offload area and splits them; the packets, copied out. */
function split(e: Engine, reads: Uint8Array[], max = e.batch): Uint8Array[] {
  const o = e.offload!;
  for (const r of reads) {
    assert.ok(o.fits(r.length, 1, max), "fits");
    e.memory.set(r, o.stageAt + o.stagedBytes);
    o.staged(r.length, 1);
  }
  const n = o.split(e.packetLengths, max);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(e.memory.slice(e.packetOffset(i), e.packetOffset(i) + e.packetLengths[i]));
  return out;
}

/** Puts packets where decap leaves them and joins them; the writes, copied out. */
function coalesce(e: Engine, pkts: Uint8Array[]): Uint8Array[] {
  const out = new Output();
  pkts.forEach((p, i) => {
    const at = e.datagramOffset(i) + 16;
    e.memory.set(p, at);
    out.deliver(e.memory, at, p.length);
  });
  const m = e.offload!.coalesce(out);
  const r = e.offload!.results;
  return Array.from({ length: m }, (_, i) => e.memory.slice(r[2 * i], r[2 * i] + r[2 * i + 1]));
}

for (const v6 of [false, true]) {
  const fam = v6 ? "IPv6" : "IPv4";
  test(`${fam} TSO super-packet: MSS-sized segments with their own lengths, IDs, sequence numbers, flags and checksums`, () => {
    const e = engine();
    const l4 = v6 ? 40 : 20, payload = random(10_000), mss = 1420 - l4 - 32;
    const segs = split(e, [tcpSuper(v6, payload, mss, ACK | PSH | FIN | CWR)]);
    assert.is(segs.length, Math.ceil(payload.length / mss));
    const got: Uint8Array[] = [];
    segs.forEach((s, i) => {
      const last = i === segs.length - 1;
      const chunk = last ? payload.length - mss * i : mss;
      assert.is(s.length, l4 + 32 + chunk, `segment ${i} length`);
      if (v6) assert.is(be16(s, 4), 32 + chunk, "payload length");
      else {
        assert.is(be16(s, 2), s.length, "total length");
        assert.is(be16(s, 4), 0x1234 + i, "identification");
        assert.ok(ipv4ChecksumOk(s), `segment ${i} IPv4 header checksum`);
      }
      assert.ok(l4ChecksumOk(s, l4, 6), `segment ${i} TCP checksum`);
      assert.is(be32(s, l4 + 4), 1000 + mss * i, "sequence number");
      assert.is(s[l4 + 13], ACK | (last ? PSH | FIN : 0) | (i === 0 ? CWR : 0), `segment ${i} flags`);
      got.push(s.subarray(l4 + 32));
    });
    assert.equal(concat(got), payload, "the payload, in order");
  });

  test(`${fam} USO super-packet: datagrams with their own UDP length and checksum`, () => {
    const e = engine();
    const payload = random(5000), size = 1200, l4 = v6 ? 40 : 20;
    const udp = new Uint8Array(8);
    put16(udp, 0, 5353); put16(udp, 2, 9999); put16(udp, 4, 8 + payload.length);
    const pkt = concat([ipHeader(v6, 17, 8 + payload.length), udp, payload]);
    put16(pkt, l4 + 6, sum16([pseudoBytes(pkt, 17, pkt.length - l4)]));
    const segs = split(e, [concat([vnetHeader(F_NEEDS_CSUM, GSO_UDP_L4, l4 + 8, size, l4, 6), pkt])]);
    assert.is(segs.length, 5);
    segs.forEach((s, i) => {
      const chunk = i === 4 ? 200 : size;
      assert.is(s.length, l4 + 8 + chunk);
      assert.is(be16(s, l4 + 4), 8 + chunk, "UDP length");
      assert.ok(l4ChecksumOk(s, l4, 17), `datagram ${i} UDP checksum`);
      if (!v6) assert.ok(ipv4ChecksumOk(s));
      assert.equal(s.subarray(l4 + 8), payload.subarray(i * size, i * size + chunk));
    });
  });
}

test("a plain packet with NEEDS_CSUM gets its checksum completed; one without is left as it is", () => {
  const e = engine();
  const payload = random(333);
  const good = tcpSegment(false, 5, payload);
  const partial = good.slice();
  put16(partial, 36, sum16([pseudoBytes(partial, 6, partial.length - 20)]));
  const [a, b] = split(e, [concat([vnetHeader(F_NEEDS_CSUM, GSO_NONE, 0, 0, 20, 16), partial]), concat([new Uint8Array(VNET_HDR), good])]);
  assert.equal(a, good, "completed");
  assert.equal(b, good, "untouched");
});

test("a super-packet with more segments than cells is split over several batches", () => {
  const e = engine();
  const payload = random(8 * 1000);
  const o = e.offload!;
  const first = split(e, [tcpSuper(false, payload, 1000, ACK | PSH)], 3);
  assert.is(first.length, 3);
  assert.ok(o.pending, "the rest is pending");
  const all = [...first];
  while (o.pending) {
    const n = o.split(e.packetLengths, 3);
    for (let i = 0; i < n; i++) all.push(e.memory.slice(e.packetOffset(i), e.packetOffset(i) + e.packetLengths[i]));
  }
  assert.is(all.length, 8);
  all.forEach((s, i) => {
    assert.is(be32(s, 24), 1000 + 1000 * i);
    assert.is(be16(s, 4), 0x1234 + i);
    assert.is(s[33], ACK | (i === 7 ? PSH : 0));
    assert.ok(l4ChecksumOk(s, 20, 6) && ipv4ChecksumOk(s));
  });
  assert.equal(concat(all.map((s) => s.subarray(52))), payload);
});

test("malformed reads are dropped and counted: a TCPv4 header on IPv6, a segment over the MTU, a header alone", () => {
  const e = engine();
  const v6super = tcpSuper(true, random(3000), 1000, ACK);
  v6super[1] = GSO_TCPV4;
  const huge = tcpSuper(false, random(3000), 1400, ACK);
  const segs = split(e, [v6super, huge, new Uint8Array(VNET_HDR), concat([new Uint8Array(VNET_HDR), tcpSegment(false, 1, random(10))])]);
  assert.is(segs.length, 1, "only the good one");
  assert.is(e.offload!.dropped, 3);
});

/** The coalesced packet's TCP checksum, completed as the kernel would (NEEDS_CSUM), verifies. */
function partialChecksumOk(w: Uint8Array): boolean {
  const v = new DataView(w.buffer, w.byteOffset);
  const start = v.getUint16(6, true), off = v.getUint16(8, true);
  const pkt = w.slice(VNET_HDR);
  const c = 0xffff - sum16([pkt.subarray(start)]);
  put16(pkt, start + off, c);
  return l4ChecksumOk(pkt, start, 6);
}

for (const v6 of [false, true]) {
  const fam = v6 ? "IPv6" : "IPv4";
  test(`${fam} GRO: a train of one flow's segments becomes one GSO super-packet with a partial checksum`, () => {
    const e = engine();
    const mss = 1368, l4 = v6 ? 40 : 20;
    const payloads = Array.from({ length: 40 }, (_, i) => random(i === 39 ? 100 : mss));
    let seq = 7;
    const pkts = payloads.map((p, i) => {
      const s = tcpSegment(v6, seq, p, ACK | (i === 39 ? PSH : 0), 777, 500 + i);
      seq += p.length;
      return s;
    });
    const w = coalesce(e, pkts);
    assert.is(w.length, 1);
    const v = new DataView(w[0].buffer);
    assert.is(w[0][0], F_NEEDS_CSUM);
    assert.is(w[0][1], v6 ? GSO_TCPV6 : GSO_TCPV4);
    assert.is(v.getUint16(2, true), l4 + 32, "hdr_len");
    assert.is(v.getUint16(4, true), mss, "gso_size");
    assert.is(v.getUint16(6, true), l4, "csum_start");
    assert.is(v.getUint16(8, true), 16, "csum_offset");
    const pkt = w[0].subarray(VNET_HDR);
    const total = l4 + 32 + 39 * mss + 100;
    assert.is(pkt.length, total);
    if (v6) assert.is(be16(pkt, 4), total - 40);
    else { assert.is(be16(pkt, 2), total); assert.ok(ipv4ChecksumOk(pkt)); }
    assert.is(be32(pkt, l4 + 4), 7, "the first sequence number");
    assert.is(pkt[l4 + 13], ACK | PSH, "PSH from the last");
    assert.is(be16(pkt, l4 + 14), 539, "the last window");
    assert.ok(partialChecksumOk(w[0]), "the partial checksum completes right");
    assert.equal(pkt.subarray(l4 + 32), concat(payloads));
  });
}

test("GRO keeps apart what may not join: other flows, gaps, bad checksums, other flags; order within a flow holds", () => {
  const e = engine();
  const p = () => random(1000);
  const a = (seq: number, flags = ACK) => tcpSegment(false, seq, p(), flags);
  const other = (seq: number) => { const s = tcpSegment(false, seq, p()); s[19] = 3; put16(s, 10, 0); put16(s, 10, 0xffff - sum16([s.subarray(0, 20)])); put16(s, 36, 0); put16(s, 36, 0xffff - sum16([pseudoBytes(s, 6, s.length - 20), s.subarray(20)])); return s; };
  const bad = a(3000);
  bad[100] ^= 1;
  const udp = concat([ipHeader(false, 17, 8 + 20), new Uint8Array(28)]);
  const pkts = [a(0), other(0), a(1000), other(1000), a(2000), bad, a(4000), udp, a(5000, ACK | FIN), a(6000), a(7000)];
  const w = coalesce(e, pkts);
  const desc = w.map((x) => {
    const pk = x.subarray(VNET_HDR);
    return `${x[1]}:${pk[19]}:${pk[9] === 6 ? be32(pk, 24) : "udp"}:${pk.length}`;
  });
  // Flow a: 0,1000,2000 join; the bad one alone; 4000 alone (it follows the gap, and the bad one closed the train);
  // udp alone; a FIN alone; 6000 and 7000 join. Flow "other": 0 and 1000 join.
  assert.equal(desc, [
    `${GSO_TCPV4}:2:0:${52 + 3000}`, `${GSO_TCPV4}:3:0:${52 + 2000}`, `0:2:3000:1052`, `0:2:4000:1052`, `0:2:udp:48`,
    `0:2:5000:1052`, `${GSO_TCPV4}:2:6000:${52 + 2000}`,
  ]);
  assert.equal(w[2].subarray(VNET_HDR), bad, "the bad one as it was");
  for (const x of w) if (x[1] !== 0) assert.ok(partialChecksumOk(x));
});

test("GRO stops a train at 64 KB", () => {
  const e = engine();
  const pkts = Array.from({ length: 60 }, (_, i) => tcpSegment(false, i * 1368, random(1368)));
  const w = coalesce(e, pkts);
  assert.ok(w.length >= 2);
  for (const x of w) assert.ok(x.length - VNET_HDR <= 65535);
  assert.is(w.reduce((n, x) => n + x.length - VNET_HDR - 52, 0), 60 * 1368);
});

test("WG_OFFLOAD values that turn offloads off", () => {
  for (const v of ["off", "0", "no", "false", "OFF"]) assert.ok(offloadsOff(v), v);
  for (const v of [undefined, "", "on", "1"]) assert.not.ok(offloadsOff(v), String(v));
});

test("the offload area and the growing tables share one heap: a read staged before a big set is split intact after it", () => {
  const e = engine();
  const payload = random(6 * 1000);
  const o = e.offload!;
  const r = tcpSuper(false, payload, 1000, ACK);
  e.memory.set(r, o.stageAt + o.stagedBytes);
  o.staged(r.length, 1);
  const before = e.wasmBytes;
  // 2000 peers with 50 prefixes each: memory grows many chunks past the offload area.
  const key = (i: number) => { const k = new Uint8Array(32); k[0] = 9; k[1] = i & 255; k[2] = i >> 8; return k; };
  e.set({ peers: Array.from({ length: 2000 }, (_, i) => ({ publicKey: key(i), allowedIps: Array.from({ length: 50 }, (_, j) => `172.${16 + (i >> 8)}.${i & 255}.${j}/32`) })) }, 0);
  assert.ok(e.wasmBytes > before + 100_000 * 64, "the tables grew");
  const n = o.split(e.packetLengths, e.batch);
  assert.is(n, 6);
  const segs = Array.from({ length: n }, (_, i) => e.memory.slice(e.packetOffset(i), e.packetOffset(i) + e.packetLengths[i]));
  assert.equal(concat(segs.map((s) => s.subarray(52))), payload, "what was staged before the growth");
  segs.forEach((s) => assert.ok(l4ChecksumOk(s, 20, 6) && ipv4ChecksumOk(s)));
  // The coalesce side's views are fresh too.
  assert.is(o.coalesce(new Output()), 0);
  assert.ok(o.results.buffer === e.memory.buffer);
});

test.run();
