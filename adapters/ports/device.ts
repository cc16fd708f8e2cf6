// A running interface: the engine between a Tun (the tunnel's inside: a TUN
// device, the userspace stack, a fake) and a Bind (the WireGuard port), with
// one timer for the engine's deadlines. The one Device of every host and
// application; only web-standard timers, so it runs anywhere.
//
// The way of a packet:
//   Tun readable -> tun.read into engine memory (packetOffset) -> fromTunnel
//     -> Output.datagrams -> bind.send each, then one flush
//   Bind datagram -> engine memory (datagramOffset), a batch per burst (or
//     bind.readBatch, for a bind that fills the cells itself)
//     -> fromNetwork -> Output.packets -> tun.write each (tun.writeOutput
//     for a device that joins them: TUN offloads)
//   one timer at Output.wake -> tick
import type { Engine, Endpoint, Output } from "../../src/engine.ts";
import type { Bind } from "./bind.ts";
import type { Clock } from "./host.ts";
import type { Tun } from "./tun.ts";

/**
 * The WireGuard port: its Bind, the way in (each datagram copied into the
 * engine's next batch cell, the batch handed over when full or when the bind
 * reports the end of a burst) and the way out (an Output's datagrams, then
 * one flush).
 */
class Port {
  private pending = 0;
  constructor(private readonly engine: Engine, public bind: Bind, private readonly handOver: (n: number) => void) {}

  /** Starts receiving. */
  listen(): void {
    this.pending = 0;
    this.bind.start((buf, off, len, from) => this.datagram(buf, off, len, from), () => this.flush());
  }

  /** Swaps the bind (a new listen port); what the old one left half-batched or in flight is lost, as in wireguard-go. */
  async rebind(bind: Bind): Promise<void> {
    const old = this.bind;
    this.bind = bind;
    await old.close();
    this.listen();
  }

  /** Sends the Output's datagrams (before the engine's memory is reused). */
  send(out: Output): void {
    if (out.datagrams === 0) return;
    for (let i = 0; i < out.datagrams; i++) {
      this.bind.send(out.datagramBuf[i], out.datagramOff[i], out.datagramLen[i], out.datagramTo[i]);
    }
    this.bind.flush?.();
  }

  close(): Promise<void> | void {
    return this.bind.close();
  }

  private datagram(buf: Uint8Array, off: number, len: number, from: Endpoint): void {
    const e = this.engine;
    if (len > e.maxDatagram) { e.drops.malformed++; return; }
    const i = this.pending++;
    e.memory.set(len === buf.length && off === 0 ? buf : buf.subarray(off, off + len), e.datagramOffset(i));
    e.datagramLengths[i] = len;
    e.datagramFrom[i] = from;
    if (this.pending === e.batch) this.flush();
  }

  private flush(): void {
    const e = this.engine;
    if (this.bind.readBatch) {
      // A bind that fills the engine's cells itself: batches until it has no more (a few at most, so
      // the event loop gets its turn; the bind calls `idle` again for the rest).
      for (let b = 0; b < 8; b++) {
        this.pending += this.bind.readBatch(e, this.pending, e.batch - this.pending);
        if (this.pending === 0) return;
        const full = this.pending === e.batch, n = this.pending;
        this.pending = 0;
        this.handOver(n);
        if (!full) return;
      }
      return;
    }
    if (this.pending === 0) return;
    const n = this.pending;
    this.pending = 0;
    this.handOver(n);
  }
}

export class Device {
  /** Batches handed to the engine from each side. */
  readonly counters = { fromNetwork: 0, fromTunnel: 0 };
  private timer: ReturnType<typeof setTimeout> | null = null;
  private wakeAt = Infinity;
  private readonly port: Port;
  private closed = false;

  /**
   * @param engine a configured Engine (Engine.set before or after start; pass its Output to apply)
   * @param tun the tunnel's inside; its MTU may not exceed the engine's
   * @param bind the WireGuard port
   * @param clock the monotonic clock `now` comes from (ms)
   * @throws RangeError when the Tun's MTU exceeds the engine's
   */
  constructor(readonly engine: Engine, readonly tun: Tun, bind: Bind, private readonly clock: Clock) {
    if (tun.mtu > engine.mtu) throw new RangeError(`the tunnel's MTU ${tun.mtu} exceeds the engine's ${engine.mtu}`);
    this.port = new Port(engine, bind, (n) => {
      if (this.closed) return;
      this.counters.fromNetwork++;
      this.apply(engine.fromNetwork(n, clock.now()));
    });
  }

  /** The socket(s) of the WireGuard port now. */
  get bind(): Bind { return this.port.bind; }

  /** Starts receiving from both sides and timing. */
  start(): void {
    this.bind.setOffload?.(this.engine.offload !== null);
    this.watchPath(this.bind);
    this.port.listen();
    this.tun.start(() => this.readTun());
    this.apply(this.engine.tick(this.clock.now()));
  }

  /** Swaps the UDP bind (a new listen port); datagrams in flight on the old one are lost, as in wireguard-go. */
  rebind(bind: Bind): Promise<void> {
    bind.setOffload?.(this.engine.offload !== null);
    this.watchPath(bind);
    return this.port.rebind(bind);
  }

  private watchPath(bind: Bind): void {
    bind.onPathChange = (to) => {
      if (!this.closed) this.apply(this.engine.announce(to, this.clock.now()));
    };
  }

  private readTun(): void {
    const e = this.engine;
    for (;;) {
      if (this.closed) return;
      const n = this.tun.read(e, e.batch);
      if (n === 0) return;
      this.counters.fromTunnel++;
      this.apply(e.fromTunnel(n, this.clock.now()));
    }
  }

  /**
   * Carries out what the engine asked for (any Output: from set, tick,
   * fromNetwork, fromTunnel, a UAPI request): packets into the tunnel,
   * datagrams to the network, the timer at its wake.
   */
  apply(out: Output): void {
    if (this.closed) return;
    if (out.packets > 0 && this.tun.writeOutput) this.tun.writeOutput(this.engine, out);
    else for (let i = 0; i < out.packets; i++) this.tun.write(out.packetBuf[i], out.packetOff[i], out.packetLen[i]);
    this.port.send(out);
    this.arm(out.wake);
  }

  private arm(at: number): void {
    if (this.closed || at === this.wakeAt) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.wakeAt = at;
    if (at === Infinity) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wakeAt = Infinity;
      this.apply(this.engine.tick(this.clock.now()));
    }, Math.max(0, at - this.clock.now()));
  }

  /** Stops the timer, closes the Tun and the bind, and zeroes the engine's keys (Engine.close). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.tun.close();
    await this.port.close();
    this.engine.close();
  }
}
