// UDP GRO receives (adapters/linux/udp-ring.ts): the reader loop over a fake
// libc whose recvmmsg fills the buffers it is given as the kernel would (a
// coalesced buffer with a UDP_GRO segment size, or one datagram), then the
// main thread's side cutting them into an engine's datagram cells.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { EAGAIN, storeNumberPointer } from "../../../adapters/linux/libc.ts";
import { control, STOP } from "../../../adapters/linux/ring.ts";
import { runUdpReader, UdpRing, type RecvLibc } from "../../../adapters/linux/udp-ring.ts";
import { Engine } from "../../../src/engine.ts";
import { EPOCH, nobleX25519, wasmModule } from "../../helpers/net.ts";

const SOL_UDP = 17, UDP_GRO = 104;

interface Arrival { from: Uint8Array; data: Uint8Array; segment: number }

/**
 * recvmmsg hands out `arrivals`, up to `round.left` of them (then EAGAIN, as
 * an empty socket); the second poll() stops the loop.
 */
function fakeLibc(arrivals: Arrival[], sab: SharedArrayBuffer, round = { left: Infinity }): RecvLibc<number> {
  const bufs: ArrayBufferLike[] = [];
  const id = (b: ArrayBufferLike) => { let i = bufs.indexOf(b); if (i < 0) i = bufs.push(b) - 1; return i; };
  const view = (p: number) => new DataView(bufs[Math.floor(p / 2 ** 32)], p % 2 ** 32);
  const bytesAt = (p: number, n: number) => new Uint8Array(bufs[Math.floor(p / 2 ** 32)], p % 2 ** 32, n);
  const ptr = (v: DataView, at: number) => v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
  let errno = 0, polls = 0;
  return {
    open: () => -1, close: () => 0, ioctl: () => -1, ioctlValue: () => -1, read: () => -1, write: () => -1, setsockopt: () => 0, sendmmsg: () => -1,
    recvmmsg(_fd, vec, vlen) {
      if (arrivals.length === 0 || round.left <= 0) { errno = EAGAIN; return -1; }
      const n = Math.min(vlen, round.left, arrivals.length);
      round.left -= n;
      for (let m = 0; m < n; m++) {
        const a = arrivals.shift()!;
        const h = view(vec + m * 64);
        bytesAt(ptr(h, 0), a.from.length).set(a.from);
        const iov = view(ptr(h, 16));
        assert.ok(iov.getUint32(8, true) >= a.data.length);
        bytesAt(ptr(iov, 0), a.data.length).set(a.data);
        h.setUint32(56, a.data.length, true);
        if (a.segment > 0) {
          assert.ok(h.getUint32(40, true) >= 24, "room for the control message");
          const c = view(ptr(h, 32));
          c.setUint32(0, 20, true); c.setUint32(4, 0, true); c.setInt32(8, SOL_UDP, true); c.setInt32(12, UDP_GRO, true); c.setInt32(16, a.segment, true);
          h.setUint32(40, 24, true);
        } else h.setUint32(40, 0, true);
      }
      return n;
    },
    poll: () => { if (++polls % 2 === 0) Atomics.store(control(sab), STOP, 1); return 0; },
    errno: () => errno, strerror: () => "error",
    addressOf: (b) => id(b.buffer) * 2 ** 32 + b.byteOffset,
    add: (p, n) => p + n,
    storePointer: storeNumberPointer,
  };
}

const v4 = (a: number, port: number) => Uint8Array.from([2, 0, port >> 8, port & 0xff, 192, 168, 0, a, 0, 0, 0, 0, 0, 0, 0, 0]);
function v6(last: number, port: number, mapped = false): Uint8Array {
  const b = new Uint8Array(28);
  b[0] = 10; b[2] = port >> 8; b[3] = port & 0xff;
  if (mapped) { b[18] = b[19] = 0xff; b.set([10, 0, 0, last], 20); } else { b[8] = 0xfd; b[23] = last; }
  return b;
}
const fill = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

function engine(): Engine {
  return new Engine({ wasm: wasmModule, x25519: nobleX25519, epoch: EPOCH, batch: 64, offload: true });
}

/** All datagrams the ring gives, read in batches of up to `max`. */
function drain(ring: UdpRing, e: Engine, max = e.batch): { data: Uint8Array; address: string; port: number }[] {
  const out = [];
  for (;;) {
    const n = ring.read(e, 0, max);
    if (n === 0) return out;
    for (let i = 0; i < n; i++) {
      const at = e.datagramOffset(i);
      out.push({ data: e.memory.slice(at, at + e.datagramLengths[i]), address: e.datagramFrom[i].address, port: e.datagramFrom[i].port });
    }
  }
}

test("a coalesced buffer is cut at its segment size (a shorter last one too), a plain one is one datagram", () => {
  const ring = new UdpRing(false), e = engine();
  const big = fill(10 * 1000 + 300, 1);
  runUdpReader(fakeLibc([{ from: v4(1, 51820), data: big, segment: 1000 }, { from: v4(2, 9), data: fill(77, 2), segment: 0 }], ring.sab), { fd: 3, sab: ring.sab });
  const got = drain(ring, e, 4);
  assert.is(got.length, 12);
  for (let i = 0; i < 11; i++) {
    assert.equal(got[i].data, big.subarray(i * 1000, Math.min(big.length, (i + 1) * 1000)), `segment ${i}`);
    assert.equal([got[i].address, got[i].port], ["192.168.0.1", 51820]);
  }
  assert.equal(got[11].data, fill(77, 2));
  assert.equal([got[11].address, got[11].port], ["192.168.0.2", 9]);
  assert.is(got[0].data.length + got[10].data.length, 1300);
});

test("senders: IPv6, and IPv4 mapped on a dual-stack socket; one endpoint object per run from one sender", () => {
  const ring = new UdpRing(true), e = engine();
  runUdpReader(fakeLibc([
    { from: v6(5, 1000), data: fill(100, 3), segment: 0 },
    { from: v6(5, 1000), data: fill(100, 4), segment: 0 },
    { from: v6(7, 2000, true), data: fill(100, 5), segment: 0 },
  ], ring.sab), { fd: 3, sab: ring.sab });
  ring.read(e, 0, 8);
  assert.equal([e.datagramFrom[0].address, e.datagramFrom[0].port], ["fd00::5", 1000]);
  assert.ok(e.datagramFrom[0] === e.datagramFrom[1], "the same object for the same sender");
  assert.equal([e.datagramFrom[2].address, e.datagramFrom[2].port], ["10.0.0.7", 2000]);
});

test("datagrams larger than the engine takes are dropped and counted as malformed; the ring goes round", () => {
  const ring = new UdpRing(false), e = engine();
  const arrivals: Arrival[] = [{ from: v4(1, 1), data: fill(3 * 1800, 6), segment: 1800 }];
  for (let i = 0; i < 300; i++) arrivals.push({ from: v4(1, 1), data: fill(50, i), segment: 0 });
  const round = { left: 0 };
  const lib = fakeLibc(arrivals, ring.sab, round);
  // Rounds of 100 (fewer than the ring's slots): the reader fills, the main thread drains.
  let got = 0;
  while (arrivals.length > 0) {
    round.left = 100;
    Atomics.store(control(ring.sab), STOP, 0);
    runUdpReader(lib, { fd: 3, sab: ring.sab });
    got += drain(ring, e).length;
  }
  assert.is(e.drops.malformed, 3, "the three 1800-byte datagrams, each counted");
  assert.is(got, 300);
});

test.run();
