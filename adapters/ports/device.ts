// A running interface: the engine plus a TUN, a UDP bind and one timer.
// Runtime-specific I/O sits behind the Tun and Bind interfaces; this file
// uses only web-standard timers, so every server adapter shares it.
import type { Engine, Endpoint, Output } from "../../src/engine.ts";

/** A TUN device (or anything that carries IP packets). */
export interface Tun {
  readonly name: string;
  readonly mtu: number;
  /** Starts reading; calls `readable` whenever packets are waiting. */
  start(readable: () => void): void;
  /** Moves up to `max` waiting packets to engine.packetOffset(i) / packetLengths[i]; returns how many. */
  read(engine: Engine, max: number): number;
  /** Writes one IP packet (one write, one packet). */
  write(buf: Uint8Array, off: number, len: number): void;
  /** Calls `gone` if the device disappears under us (the interface was deleted). */
  onGone?(gone: () => void): void;
  close(): void;
}

/** A UDP socket pair (v4 and v6) for the WireGuard port. */
export interface Bind {
  /** The port bound (the real one when 0 was asked for). */
  readonly port: number;
  /** Delivers each datagram; `idle` follows a burst, so the device can flush a batch. */
  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void;
  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void;
  /** Sends what `send` queued, if the bind batches (the engine's buffers are reused after this). */
  flush?(): void;
  /** Marks outgoing packets (SO_MARK), for policy routing of a default route. */
  setMark?(mark: number): void;
  close(): Promise<void> | void;
}

/**
 * For binds whose datagrams arrive as events (WebSocket messages, WebTransport
 * reads): a function to call after each datagram, which runs `fire` (the
 * Bind's `idle`) once, in a microtask, after the datagrams delivered so far.
 * A microtask because Chromium runs each WebSocket message as a task of its
 * own, and a later task (MessageChannel, setTimeout) waited behind the whole
 * burst, holding ACKs back: 18 against 54 Mbit/s for 10 MB through the relay.
 */
export function endOfBurst(fire: () => void): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; fire(); });
  };
}

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
}

/**
 * The WireGuard port, shared by Device and NetDevice: its Bind, the way in
 * (each datagram copied into the engine's next batch cell, the batch handed
 * over when full or when the bind reports the end of a burst) and the way
 * out (an Output's datagrams, then one flush).
 */
export class Port {
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
    if (this.pending === 0) return;
    const n = this.pending;
    this.pending = 0;
    this.handOver(n);
  }
}

export class Device {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private wakeAt = Infinity;
  private readonly port: Port;
  private closed = false;

  constructor(
    readonly engine: Engine,
    readonly tun: Tun,
    bind: Bind,
    private readonly clock: Clock,
  ) {
    this.port = new Port(engine, bind, (n) => { if (!this.closed) this.apply(engine.fromNetwork(n, clock.now())); });
  }

  /** The UDP socket(s) of the WireGuard port now. */
  get bind(): Bind { return this.port.bind; }

  start(): void {
    this.port.listen();
    this.tun.start(() => this.readTun());
    this.apply(this.engine.tick(this.clock.now()));
  }

  /** Swaps the UDP bind (a new listen port); datagrams in flight on the old one are lost, as in wireguard-go. */
  rebind(bind: Bind): Promise<void> {
    return this.port.rebind(bind);
  }

  private readTun(): void {
    const e = this.engine;
    for (;;) {
      if (this.closed) return;
      const n = this.tun.read(e, e.batch);
      if (n === 0) return;
      this.apply(e.fromTunnel(n, this.clock.now()));
    }
  }

  /** Carries out what the engine asked for. */
  apply(out: Output): void {
    for (let i = 0; i < out.packets; i++) this.tun.write(out.packetBuf[i], out.packetOff[i], out.packetLen[i]);
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

  /** Stops the timer, closes the TUN and the bind, and zeroes the engine's keys (Engine.close). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.tun.close();
    await this.port.close();
    this.engine.close();
  }
}
