// The userspace TCP/IP stack (src/netstack) as one more Tun, as wireguard-go's
// netstack is one more tun.Device: the Device writes decrypted packets into
// it and reads what it has to send straight into the engine's memory (one
// copy). No root, no /dev/net/tun; only web-standard timers and
// queueMicrotask, so every runtime (and a page) shares it.
//
// The stack asks to send (an application's write, a read that opens the
// window, an ACK owed for a packet written in) through onoutput; each ask
// queues one `readable` in a microtask, so a burst of packets is answered by
// one read. The stack's own timers (retransmission, delayed ACKs, TIME-WAIT)
// run on a timer of this Tun's.
import type { Engine } from "../../src/engine.ts";
import type { Stack } from "../../src/netstack/index.ts";
import type { Clock } from "./host.ts";
import type { Tun } from "./tun.ts";

/** Full batches one wake-up reads before it lets I/O in (the rest waits for a later task). */
const READ_BATCHES = 8;

export class StackTun implements Tun {
  readonly name = "netstack";
  readonly mtu: number;
  /** Wake-ups that gave way to I/O after READ_BATCHES full batches. */
  yields = 0;
  private readable: (() => void) | null = null;
  private queued = false;
  private batches = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;
  private yieldTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(readonly stack: Stack, private readonly clock: Clock) {
    this.mtu = stack.mtu;
  }

  start(readable: () => void): void {
    this.readable = readable;
    this.stack.onoutput = () => this.wake();
    this.wake();
  }

  /** Queues one `readable` in a microtask. */
  private wake(): void {
    if (this.queued || this.closed) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      if (this.closed) return;
      this.batches = 0;
      this.readable?.();
      this.arm();
    });
  }

  read(engine: Engine, max: number): number {
    if (this.closed) return 0;
    if (this.batches === READ_BATCHES) {
      // Let datagrams (ACKs) in before sending more; the stack keeps the rest.
      this.yields++;
      this.batches++;
      this.yieldTimer ??= setTimeout(() => { this.yieldTimer = null; this.wake(); }, 0);
      return 0;
    }
    if (this.batches > READ_BATCHES) return 0;
    const s = this.stack, now = this.clock.now();
    let n = 0, len: number;
    while (n < max && (len = s.outputInto(engine.memory, engine.packetOffset(n), now)) > 0) engine.packetLengths[n++] = len;
    if (n === max) this.batches++;
    else this.batches = READ_BATCHES + 1; // empty now: nothing more this wake-up
    return n;
  }

  write(buf: Uint8Array, off: number, len: number): void {
    if (this.closed) return;
    this.stack.input(buf.subarray(off, off + len), this.clock.now());
    // What the packet calls for (an ACK, data the window now lets go) goes out in one read after the batch.
    this.wake();
  }

  /** One timer at the stack's next deadline. */
  private arm(): void {
    const at = this.stack.nextTimer();
    if (this.closed || (at === this.timerAt && this.timer !== null)) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      if (this.closed) return;
      this.stack.tick(this.clock.now());
      this.wake();
    }, Math.max(0, at - this.clock.now()));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.yieldTimer !== null) clearTimeout(this.yieldTimer);
    this.timer = this.yieldTimer = null;
    this.stack.onoutput = null;
    this.readable = null;
  }
}
