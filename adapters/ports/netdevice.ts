// A running tunnel whose inside is the userspace TCP/IP stack (src/netstack)
// instead of a TUN device: the engine, a Stack, a UDP Bind and one timer.
// No root, no /dev/net/tun; only web-standard timers and queueMicrotask,
// so every runtime (and a browser, given a Bind) shares it.
//
// The way of a packet:
//   UDP datagram -> engine memory (datagramOffset) -> fromNetwork (a batch)
//     -> Output.packets -> stack.input, the whole batch, then one pump
//   pump: stack.outputInto(engine.memory, packetOffset(n)) until the batch
//     is full or the stack is empty -> fromTunnel -> Output.datagrams -> UDP
//   one timer at min(engine wake, stack.nextTimer()): engine.tick, stack.tick, pump
// The application's calls (a write, a read that opens the window, connect)
// reach the stack's onoutput, which queues one pump in a microtask.
import type { Engine, Output } from "../../src/engine.ts";
import type { Stack } from "../../src/netstack/index.ts";
import { Port, type Bind, type Clock } from "./device.ts";

/** Batches one pump moves before it lets I/O in (the rest goes in a later task). */
const PUMP_BATCHES = 8;

export class NetDevice {
  /** Batches handed to the engine in each direction, and pumps that gave way to I/O. */
  readonly counters = { fromNetwork: 0, fromTunnel: 0, yields: 0 };
  private timer: ReturnType<typeof setTimeout> | null = null;
  private wakeAt = Infinity;
  private engineWake = Infinity;
  private readonly port: Port;
  private pumpQueued = false;
  private yieldTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  /**
   * @param engine a configured Engine (Engine.set before or after start)
   * @param stack a Stack with the tunnel's addresses and the engine's MTU
   * @param bind the UDP socket(s) of the WireGuard port
   * @param clock the monotonic clock `now` comes from (ms)
   */
  constructor(readonly engine: Engine, readonly stack: Stack, bind: Bind, private readonly clock: Clock) {
    if (stack.mtu > engine.mtu) throw new RangeError(`the stack's MTU ${stack.mtu} exceeds the engine's ${engine.mtu}`);
    this.port = new Port(engine, bind, (n) => {
      if (this.closed) return;
      this.counters.fromNetwork++;
      this.apply(engine.fromNetwork(n, clock.now()));
    });
  }

  /** The UDP socket(s) of the WireGuard port now. */
  get bind(): Bind { return this.port.bind; }

  /** Starts receiving, pumping and timing. */
  start(): void {
    this.stack.onoutput = () => this.schedulePump();
    this.port.listen();
    this.apply(this.engine.tick(this.clock.now()));
  }

  /** Swaps the UDP bind (a new listen port); datagrams in flight on the old one are lost, as in wireguard-go. */
  rebind(bind: Bind): Promise<void> {
    return this.port.rebind(bind);
  }

  /**
   * Carries out what the engine asked for (any Output: from set, tick,
   * fromNetwork, a UAPI request): datagrams to the network first (they may
   * lie in engine memory the pump reuses), then the packets into the stack,
   * then one pump for what the stack has to say.
   */
  apply(out: Output): void {
    if (this.closed) return;
    this.send(out);
    const n = out.packets;
    if (n === 0) { this.arm(); return; }
    const now = this.clock.now();
    for (let i = 0; i < n; i++) {
      const buf = out.packetBuf[i], off = out.packetOff[i];
      this.stack.input(buf.subarray(off, off + out.packetLen[i]), now);
    }
    this.pump(now);
  }

  private send(out: Output): void {
    this.engineWake = out.wake;
    this.port.send(out);
  }

  private schedulePump(): void {
    if (this.pumpQueued || this.closed) return;
    this.pumpQueued = true;
    queueMicrotask(() => { this.pumpQueued = false; this.pump(this.clock.now()); });
  }

  /** Drains the stack into the engine, a batch at a time, straight into its memory (one copy). */
  private pump(now: number): void {
    if (this.closed) return;
    const e = this.engine, s = this.stack;
    for (let round = 0; ; round++) {
      if (round === PUMP_BATCHES) {
        // Let datagrams (ACKs) in before sending more; the stack keeps the rest.
        this.counters.yields++;
        this.yieldTimer ??= setTimeout(() => { this.yieldTimer = null; this.pump(this.clock.now()); }, 0);
        break;
      }
      let n = 0, len: number;
      while (n < e.batch && (len = s.outputInto(e.memory, e.packetOffset(n), now)) > 0) e.packetLengths[n++] = len;
      if (n === 0) break;
      this.counters.fromTunnel++;
      this.send(e.fromTunnel(n, now));
      if (n < e.batch) break;
    }
    this.arm();
  }

  /** One timer for both: the engine's wake and the stack's next timer. */
  private arm(): void {
    const at = Math.min(this.engineWake, this.stack.nextTimer());
    if (this.closed || (at === this.wakeAt && (this.timer !== null || at === Infinity))) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.wakeAt = at;
    if (at === Infinity) return;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - this.clock.now()));
  }

  private fire(): void {
    this.timer = null;
    this.wakeAt = Infinity;
    if (this.closed) return;
    const now = this.clock.now();
    if (this.engineWake <= now) this.send(this.engine.tick(now));
    if (this.stack.nextTimer() <= now) this.stack.tick(now);
    this.pump(now);
  }

  /** Stops timing, closes the bind and zeroes the engine's keys (Engine.close); the stack's connections get no more packets. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.yieldTimer !== null) clearTimeout(this.yieldTimer);
    this.timer = this.yieldTimer = null;
    this.stack.onoutput = null;
    await this.port.close();
    this.engine.close();
  }
}
