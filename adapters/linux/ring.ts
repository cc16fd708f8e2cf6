// The ring between a TUN reader thread and the main thread (Node and Bun read
// the device in a worker; Deno drains it on its main thread): one
// SharedArrayBuffer holding control words, packet lengths and packet slots.
// The reader owns W (and writes lengths and slots), the main thread owns R.
// Counters are int32 and wrap; every comparison is on their difference, so a
// long-running interface keeps going past 2^31 packets.
import { EAGAIN, EINTR, type Libc, type Pointer } from "./libc.ts";

/**
 * Packets the reader may run ahead of the main thread (a power of two), for
 * MTU-sized slots; a device with offloads reads up to 64 KB at a time, and
 * has fewer, larger slots (ring-tun.ts).
 */
export const SLOTS = 1024;

// Control words (Int32Array indices).
/** Packets published by the reader (wrapping). */
export const W = 0;
/** Packets consumed by the main thread (wrapping). */
export const R = 1;
/** Set by the main thread: the reader stops, closes the fd and leaves. */
export const STOP = 2;
/** Set when reading fails for good: read()'s errno, -1 for a hang-up seen by poll(), -2 for a reader that died. */
export const FATAL = 3;
/** Set by the main thread before it waits on W: the reader notifies only then. */
export const MAIN_WAITS = 4;
/** Set by the reader before it waits on R (ring full): the main thread notifies only then. */
export const READER_WAITS = 5;
/** Each side adds 1 when it is done with the fd; the one that makes it 2 closes it. */
export const DONE = 6;
const CTRL_WORDS = 8;

export const LENS_OFF = CTRL_WORDS * 4;

/** Where slot 0 starts, in a ring of `slots` slots. */
export function dataOffset(slots: number): number {
  return (LENS_OFF + slots * 4 + 63) & ~63;
}

export function ringBytes(slot: number, slots: number): number {
  return dataOffset(slots) + slots * slot;
}

export function control(sab: SharedArrayBuffer): Int32Array {
  return new Int32Array(sab, 0, CTRL_WORDS);
}

export function lengths(sab: SharedArrayBuffer, slots: number): Int32Array {
  return new Int32Array(sab, LENS_OFF, slots);
}

/** What the main thread posts to the reader to start it. */
export interface ReaderStart {
  fd: number;
  sab: SharedArrayBuffer;
  /** Bytes per slot: the most one read() may return. */
  slot: number;
  /** Slots in the ring, a power of two. */
  slots: number;
}

/** The blocking poll(2) a reader thread waits in (never on a main thread). */
export interface PollingLibc<P extends Pointer = Pointer> extends Libc<P> {
  poll(fds: Uint8Array, nfds: number, timeout: number): number;
}

const POLLIN = 0x1, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
/** How long poll() and the ring-full wait may hold a STOP unseen, ms. */
const TICK = 100;

/**
 * The TUN reader thread's loop (a worker on Node and Bun): read() packets
 * into the ring's slots, poll() when there are none, wait when the ring is
 * full. Leaves on STOP or a fatal error; the fd is closed by whichever of
 * the two threads is done with it last.
 */
export function runReader<P extends Pointer>(libc: PollingLibc<P>, { fd, sab, slot, slots }: ReaderStart): void {
  const ctrl = control(sab), lens = lengths(sab, slots), mask = slots - 1;
  // A SharedArrayBuffer never moves: the slots' addresses are fixed.
  const base = libc.add(libc.addressOf(new Uint8Array(sab)), dataOffset(slots));
  const pfd = new Uint8Array(8);
  const pv = new DataView(pfd.buffer);
  pv.setInt32(0, fd, true);
  pv.setInt16(4, POLLIN, true);
  let w = Atomics.load(ctrl, W);
  while (Atomics.load(ctrl, STOP) === 0) {
    const r = Atomics.load(ctrl, R);
    if (((w - r) | 0) >= slots) {
      Atomics.store(ctrl, READER_WAITS, 1);
      Atomics.wait(ctrl, R, r, TICK);
      continue;
    }
    const i = w & mask;
    const n = libc.read(fd, libc.add(base, i * slot), slot);
    if (n > 0) {
      lens[i] = n;
      w = (w + 1) | 0;
      publish(ctrl, w);
      continue;
    }
    const e = libc.errno();
    if (n < 0 && e !== EAGAIN && e !== EINTR) { fail(ctrl, e); break; }
    pv.setInt16(6, 0, true);
    if (libc.poll(pfd, 1, TICK) > 0 && (pv.getInt16(6, true) & (POLLERR | POLLHUP | POLLNVAL)) !== 0) {
      fail(ctrl, -1);
      break;
    }
  }
  if (Atomics.add(ctrl, DONE, 1) === 1) libc.close(fd);
}

/** The reader thread's side: slots up to `w` are written; wakes the main thread if it waits. */
export function publish(ctrl: Int32Array, w: number): void {
  Atomics.store(ctrl, W, w);
  if (Atomics.load(ctrl, MAIN_WAITS) !== 0) {
    Atomics.store(ctrl, MAIN_WAITS, 0);
    Atomics.notify(ctrl, W);
  }
}

/** The main thread's side: resolves once the reader has written past `consumed` (or failed), without blocking. */
export async function written(ctrl: Int32Array, consumed: number): Promise<void> {
  const w = Atomics.load(ctrl, W);
  if (w !== consumed) return;
  Atomics.store(ctrl, MAIN_WAITS, 1);
  const r = Atomics.waitAsync(ctrl, W, w);
  if (r.async) await r.value;
}

function fail(ctrl: Int32Array, e: number): void {
  Atomics.store(ctrl, FATAL, e);
  Atomics.store(ctrl, MAIN_WAITS, 0);
  Atomics.notify(ctrl, W);
}
