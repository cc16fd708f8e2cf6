// The tunnel's inside as the Device sees it: something that carries IP
// packets. A TUN device on Linux (adapters/linux, read by each host), the
// userspace TCP/IP stack (stack-tun.ts), or an in-memory fake (fake.ts).
import type { Engine, Output } from "../../src/engine.ts";

/** A TUN device, or anything else that carries IP packets in and out of the tunnel. */
export interface Tun {
  readonly name: string;
  readonly mtu: number;
  /** Starts reading; calls `readable` whenever packets are waiting. */
  start(readable: () => void): void;
  /**
   * Moves up to `max` waiting packets to engine.packetOffset(i) /
   * packetLengths[i]; returns how many (0: none now, wait for `readable`).
   */
  read(engine: Engine, max: number): number;
  /** Writes one IP packet (one write, one packet): `len` bytes of `buf` at `off`, which the engine reuses after. */
  write(buf: Uint8Array, off: number, len: number): void;
  /** Writes all of an Output's packets, for a device that joins them (TUN offloads); without it, write() each. */
  writeOutput?(engine: Engine, out: Output): void;
  /** Which offloads the device has, for the log ("tso on, uso off (kernel refused: ...)"). */
  readonly offloads?: string;
  /** Calls `gone` if the device disappears under us (the interface was deleted). */
  onGone?(gone: () => void): void;
  close(): void;
}
