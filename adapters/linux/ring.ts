// The ring between the TUN reader thread and the main thread: one
// SharedArrayBuffer holding control words, packet lengths and packet slots.
// The reader owns W (and writes lengths and slots), the main thread owns R.
// Counters are int32 and wrap; every comparison is on their difference, so a
// long-running interface keeps going past 2^31 packets.

/** Packets the reader may run ahead of the main thread (a power of two). */
export const SLOTS = 1024;
export const MASK = SLOTS - 1;

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

/** Where slot i starts, for slots of `slot` bytes. */
export function dataOffset(): number {
  return (LENS_OFF + SLOTS * 4 + 63) & ~63;
}

export function ringBytes(slot: number): number {
  return dataOffset() + SLOTS * slot;
}

export function control(sab: SharedArrayBuffer): Int32Array {
  return new Int32Array(sab, 0, CTRL_WORDS);
}

export function lengths(sab: SharedArrayBuffer): Int32Array {
  return new Int32Array(sab, LENS_OFF, SLOTS);
}

/** What the main thread posts to the reader to start it. */
export interface ReaderStart {
  fd: number;
  sab: SharedArrayBuffer;
  slot: number;
}
