// The TUN reader thread (a Worker): read() packets into the shared ring,
// poll() when there are none. bun:ffi calls block their thread, so they
// happen here and never on the main thread's event loop. Started by
// BunTun.start with a ReaderStart message; leaves on STOP or a fatal error.
// The fd is closed (and the interface goes with it) by whichever of the two
// threads is done with it last.
import { ptr } from "bun:ffi";
import { libc, errno, EAGAIN, EINTR } from "./libc.ts";
import { control, dataOffset, lengths, MASK, SLOTS, W, R, STOP, FATAL, MAIN_WAITS, READER_WAITS, DONE, type ReaderStart } from "../linux/ring.ts";

const POLLIN = 0x1, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
/** How long poll() and the ring-full wait may hold a STOP unseen, ms. */
const TICK = 100;

interface WorkerScope {
  onmessage: ((ev: MessageEvent<ReaderStart>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}
const scope = globalThis as unknown as WorkerScope;

function run({ fd, sab, slot }: ReaderStart): void {
  const ctrl = control(sab), lens = lengths(sab);
  // A SharedArrayBuffer never moves: the slots' addresses are fixed.
  const base = ptr(new Uint8Array(sab)) + dataOffset();
  const pfd = new Uint8Array(8);
  const pv = new DataView(pfd.buffer);
  pv.setInt32(0, fd, true);
  pv.setInt16(4, POLLIN, true);
  let w = Atomics.load(ctrl, W);
  while (Atomics.load(ctrl, STOP) === 0) {
    const r = Atomics.load(ctrl, R);
    if (((w - r) | 0) >= SLOTS) {
      Atomics.store(ctrl, READER_WAITS, 1);
      Atomics.wait(ctrl, R, r, TICK);
      continue;
    }
    const i = w & MASK;
    const n = libc.read(fd, base + i * slot, slot);
    if (n > 0) {
      lens[i] = n;
      w = (w + 1) | 0;
      Atomics.store(ctrl, W, w);
      if (Atomics.load(ctrl, MAIN_WAITS) !== 0) {
        Atomics.store(ctrl, MAIN_WAITS, 0);
        Atomics.notify(ctrl, W);
      }
      continue;
    }
    const e = errno();
    if (n < 0 && e !== EAGAIN && e !== EINTR) { fail(ctrl, e); break; }
    pv.setInt16(6, 0, true);
    if (libc.poll(pfd, 1, TICK) > 0 && (pv.getInt16(6, true) & (POLLERR | POLLHUP | POLLNVAL)) !== 0) {
      fail(ctrl, -1);
      break;
    }
  }
  if (Atomics.add(ctrl, DONE, 1) === 1) libc.close(fd);
  scope.postMessage("done");
  scope.close();
}

function fail(ctrl: Int32Array, e: number): void {
  Atomics.store(ctrl, FATAL, e);
  Atomics.store(ctrl, MAIN_WAITS, 0);
  Atomics.notify(ctrl, W);
}

scope.onmessage = (ev) => run(ev.data);
