// A peer: its keys, handshake state, sessions (keypairs), timers and counters.
import type { PeerHandshake } from "./handshake.ts";
import type { CookieGenerator } from "./cookie.ts";

/** Where a datagram came from or goes to. Adapters may carry more in it. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** One session's keys live in a WASM slot; this is its JS-side record. */
export class Keypair {
  constructor(
    readonly slot: number,
    readonly localIndex: number,
    readonly remoteIndex: number,
    readonly created: number,
    readonly isInitiator: boolean,
  ) {}
}

/** The peer timers of whitepaper section 6, as deadlines (ms; Infinity: not armed). */
export const enum Timer {
  RetransmitHandshake = 0,
  SendKeepalive = 1,
  NewHandshake = 2,
  ZeroKeyMaterial = 3,
  PersistentKeepalive = 4,
}
export const TIMER_COUNT = 5;

export class Peer {
  readonly id: number;
  readonly publicKey: Uint8Array;
  handshake: PeerHandshake | null;
  readonly cookie: CookieGenerator;
  presharedKey: Uint8Array | null = null;
  endpoint: Endpoint | null = null;
  /** Seconds; 0 is off. */
  persistentKeepalive = 0;

  current: Keypair | null = null;
  previous: Keypair | null = null;
  next: Keypair | null = null;

  readonly timers: Float64Array = new Float64Array(TIMER_COUNT).fill(Infinity);
  /**
   * At or before the earliest deadline of every peer sharing it (the
   * engine's peers share one): timers.ts lowers it, the engine's tick sets it
   * exactly again. Early is harmless (a tick with nothing due), late never happens.
   */
  wakeHint: { at: number } = { at: Infinity };
  handshakeAttempts = 0;
  needAnotherKeepalive = false;
  sentLastMinuteHandshake = false;
  lastSentHandshake = -Infinity;
  /** Wall-clock ms of the last completed handshake; 0 when never. */
  lastHandshakeWall = 0;

  rxBytes = 0;
  txBytes = 0;
  /** IP packets waiting for a session, each with headroom for the header. */
  staged: { buf: Uint8Array; len: number }[] = [];

  constructor(id: number, publicKey: Uint8Array, handshake: PeerHandshake | null, cookie: CookieGenerator) {
    this.id = id;
    this.publicKey = publicKey;
    this.handshake = handshake;
    this.cookie = cookie;
  }

  /** The keypair living in `slot`, if it is one of this peer's. */
  keypairBySlot(slot: number): Keypair | null {
    if (this.current?.slot === slot) return this.current;
    if (this.next?.slot === slot) return this.next;
    if (this.previous?.slot === slot) return this.previous;
    return null;
  }
}
