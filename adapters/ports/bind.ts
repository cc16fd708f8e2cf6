// The WireGuard port as the Device sees it: datagrams in and out. UDP
// sockets on servers (each host's udp.ts), a relay's WebSocket in a page
// (adapters/browser), a WebSocket session at the edge (adapters/gateway), or
// an in-memory fake (fake.ts).
import type { Endpoint, Engine } from "../../src/engine.ts";

/** The socket(s) of the WireGuard port. */
export interface Bind {
  /** The port bound (the real one when 0 was asked for; 0 where there is no UDP). */
  readonly port: number;
  /** Delivers each datagram; `idle` follows a burst, so the device can hand the batch over. */
  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void;
  /**
   * For a bind that writes datagrams into the engine itself (UDP GRO): up to
   * `max` of them at engine.datagramOffset(first + i), with datagramLengths
   * and datagramFrom; returns how many. The device calls it at each `idle`.
   */
  readBatch?(engine: Engine, first: number, max: number): number;
  /** Sends one datagram (or queues it, for a bind that batches: see flush). */
  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void;
  /** Sends what `send` queued, if the bind batches (the engine's buffers are reused after this). */
  flush?(): void;
  /** Marks outgoing packets (SO_MARK), for policy routing of a default route. */
  setMark?(mark: number): void;
  /** Turns UDP offloads (GSO sends, GRO receives) on where the kernel has them, or off; the Device calls it with the engine's choice. */
  setOffload?(on: boolean): void;
  /** Which UDP offloads are on, for the log ("udp-gso on, udp-gro off (...)"). */
  readonly offloads?: string;
  /**
   * Set by the Device. A bind whose path to an endpoint can change under the
   * peer (a relay's WebSocket opened again: the relay's UDP port for us is a
   * new one) calls it, so that the peer hears from us at once and roams to
   * the new path, instead of sending into the old one until our next packet.
   */
  onPathChange?: (to: Endpoint) => void;
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
