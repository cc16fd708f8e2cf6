// sendmmsg batches with UDP GSO (adapters/linux/mmsg.ts) over a fake libc
// that reads back the messages the queue built: which datagrams ride in one
// message with a UDP_SEGMENT size, and the fallback when the kernel refuses.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { EIO, storeNumberPointer, type Libc } from "../../../adapters/linux/libc.ts";
import { MmsgQueue } from "../../../adapters/linux/mmsg.ts";
import type { Endpoint } from "../../../src/engine.ts";

const SOL_UDP = 17, UDP_SEGMENT = 103;

interface Sent { to: number; datagrams: Uint8Array[]; segment: number }

/** Addresses are (buffer number << 32) + offset; sendmmsg decodes the messages it gets, or fails with `fail`. */
function fakeLibc(): Libc<number> & { sent: Sent[]; fail: number } {
  const bufs: ArrayBufferLike[] = [];
  const id = (b: ArrayBufferLike) => { let i = bufs.indexOf(b); if (i < 0) i = bufs.push(b) - 1; return i; };
  const view = (p: number) => new DataView(bufs[Math.floor(p / 2 ** 32)], p % 2 ** 32);
  const bytes = (p: number, n: number) => new Uint8Array(bufs[Math.floor(p / 2 ** 32)], p % 2 ** 32, n).slice();
  const ptr = (v: DataView, at: number) => v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
  let errno = 0;
  const c = {
    sent: [] as Sent[], fail: 0,
    open: () => -1, close: () => 0, ioctl: () => -1, ioctlValue: () => -1, read: () => -1, write: () => -1, setsockopt: () => 0,
    sendmmsg(_fd: number, vec: number, vlen: number): number {
      if (c.fail !== 0) { errno = c.fail; return -1; }
      for (let m = 0; m < vlen; m++) {
        const h = view(vec + m * 64);
        const name = bytes(ptr(h, 0), h.getUint32(8, true));
        const iov = ptr(h, 16), n = h.getUint32(24, true);
        const datagrams: Uint8Array[] = [];
        for (let i = 0; i < n; i++) {
          const v = view(iov + i * 16);
          datagrams.push(bytes(ptr(v, 0), v.getUint32(8, true)));
        }
        let segment = 0;
        if (h.getUint32(40, true) > 0) {
          const cm = view(ptr(h, 32));
          assert.is(cm.getInt32(8, true), SOL_UDP);
          assert.is(cm.getInt32(12, true), UDP_SEGMENT);
          segment = cm.getUint16(16, true);
        }
        c.sent.push({ to: name[3], datagrams, segment });
      }
      return vlen;
    },
    errno: () => errno, strerror: () => "error",
    addressOf: (b: Uint8Array) => id(b.buffer) * 2 ** 32 + b.byteOffset,
    add: (p: number, n: number) => p + n,
    storePointer: storeNumberPointer,
  };
  return c;
}

const A: Endpoint = { address: "10.0.0.1", port: 1 }, B: Endpoint = { address: "10.0.0.2", port: 2 };
const nameOf = (e: Endpoint) => Uint8Array.from([2, 0, 0, e.port, 10, 0, 0, e.port, 0, 0, 0, 0, 0, 0, 0, 0]);

function queue(c: ReturnType<typeof fakeLibc>, gso: boolean): { q: MmsgQueue<number>; add: (to: Endpoint, len: number) => void } {
  const q = new MmsgQueue(c, 3, 256);
  if (gso) q.enableGso();
  const mem = new Uint8Array(1 << 20);
  let at = 0, k = 0;
  return {
    q,
    add: (to, len) => {
      mem.fill(k++ & 0xff, at, at + len);
      q.add(mem, at, len, to, nameOf(to));
      at += len;
    },
  };
}

test("GSO: runs of one size to one endpoint go as one message with UDP_SEGMENT; a shorter one ends a run", () => {
  const c = fakeLibc();
  const { q, add } = queue(c, true);
  for (let i = 0; i < 3; i++) add(A, 100);
  add(A, 40); // ends the run
  add(A, 100);
  add(B, 100); // another endpoint
  add(B, 100);
  add(B, 120); // longer: a new run
  assert.is(q.send(), 8);
  assert.equal(c.sent.map((s) => [s.to, s.datagrams.map((d) => d.length), s.segment]), [
    [1, [100, 100, 100, 40], 100], [1, [100], 0], [2, [100, 100], 100], [2, [120], 0],
  ]);
  assert.equal(c.sent[0].datagrams.map((d) => d[0]), [0, 1, 2, 3], "the datagrams' own bytes, in order");
  assert.is(q.sent, 8);
});

test("GSO: at most 64 segments, and 65000 bytes, in one message", () => {
  const c = fakeLibc();
  const { q, add } = queue(c, true);
  for (let i = 0; i < 100; i++) add(A, 100);
  for (let i = 0; i < 50; i++) add(B, 1452);
  q.send();
  assert.equal(c.sent.map((s) => s.datagrams.length), [64, 36, 44, 6]);
});

test("without GSO each datagram is a message of its own", () => {
  const c = fakeLibc();
  const { q, add } = queue(c, false);
  for (let i = 0; i < 3; i++) add(A, 100);
  q.send();
  assert.equal(c.sent.map((s) => [s.datagrams.length, s.segment]), [[1, 0], [1, 0], [1, 0]]);
});

test("EIO for a GSO message (a device that cannot segment): GSO off, the rest left to send another way", () => {
  const c = fakeLibc();
  const { q, add } = queue(c, true);
  for (let i = 0; i < 3; i++) add(A, 100);
  c.fail = EIO;
  assert.is(q.send(), 0, "nothing went");
  assert.not.ok(q.gso);
  q.clear();
  c.fail = 0;
  for (let i = 0; i < 3; i++) add(A, 100);
  q.send();
  assert.equal(c.sent.map((s) => s.datagrams.length), [1, 1, 1]);
});

test.run();
