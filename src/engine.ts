// The engine: one WireGuard interface, sans-IO.
//
// An adapter drives it with three calls and carries out what comes back:
//   fromTunnel(n, now)  - IP packets it wrote at packetOffset(i)  -> datagrams to send
//   fromNetwork(n, now) - datagrams it wrote at datagramOffset(i) -> packets for the tunnel,
//                         and datagrams to send (handshake answers, flushed queues)
//   tick(now)           - timers: retries, keepalives, rekeys, key expiry
// Each returns the same reused Output, valid until the next call, whose `wake`
// says when tick wants to run next. `now` is a monotonic clock in ms; the
// wall clock (for TAI64N and handshake times) is `epoch + now`, so a step of
// the host's wall clock never reaches the engine. A `now` that steps back
// anyway (an injected or broken clock) counts as no time passing: see clock().
//
// The way of a packet out: fromTunnel -> encap_batch in WASM (AllowedIPs
// route, keypair, counter, pad, seal, header) -> Output.datagrams. In:
// fromNetwork -> decap_batch in WASM (index, replay, open, trim, source
// check) -> per-packet bookkeeping here -> Output.packets. Handshake
// messages are rare and handled here in TypeScript.
import {
  DECAP_AUTH, DECAP_DATA, DECAP_EXPIRED, DECAP_KEEPALIVE, DECAP_MALFORMED, DECAP_NOT_DATA, DECAP_REPLAY,
  DECAP_SOURCE, DECAP_UNKNOWN, DESC_LEN, DESC_PEER, DESC_SLOT, DESC_STATUS, ENCAP_NO_KEY, ENCAP_NO_ROUTE, ENCAP_SEND,
  ENCAP_SEND_REKEY, HEADROOM, instantiate, type Wasm,
} from "./wasm.ts";
import {
  DEFAULT_MTU, MAX_STAGED_PACKETS, MAX_TIMER_HANDSHAKES, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_ON_RECEIVE_AGE, REKEY_TIMEOUT,
  UNDER_LOAD_AFTER_TIME,
} from "./constants.ts";
import { Keypair, Peer, Timer, type Endpoint } from "./peer.ts";
import { Offload } from "./offload.ts";
import * as timers from "./timers.ts";
import { randomU32, type X25519 } from "./crypto.ts";
import { wipe, equal } from "./crypto.ts";
import {
  LocalStatic, Noise, PeerHandshake, beginSession, consumeInitiation, consumeResponse, createInitiation, createResponse,
} from "./handshake.ts";
import { CookieChecker, CookieGenerator } from "./cookie.ts";
import { RateLimiter } from "./ratelimiter.ts";
import { tai64n } from "./tai64n.ts";
import {
  MESSAGE_COOKIE_REPLY, MESSAGE_COOKIE_REPLY_SIZE, MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE, MESSAGE_RESPONSE_SIZE,
} from "./messages.ts";
import { formatPrefix, maskPrefix, parseAddress, parsePrefix, type Prefix } from "./ip.ts";
import { type DeviceConfig, type DeviceStatus, type PeerConfig, type PeerStatus, keyHex } from "./config.ts";

export type { Endpoint } from "./peer.ts";

export interface EngineOptions {
  /** The compiled engine.wasm (WebAssembly.Module, so edge runtimes can import it). */
  wasm: WebAssembly.Module;
  /** X25519; adapters pass the runtime's fastest synchronous one. */
  x25519: X25519;
  /** Wall-clock ms at monotonic time 0 (Date.now() - performance.now()). */
  epoch: number;
  /** Inner MTU (default 1420). */
  mtu?: number;
  /** Packets per batch (default 128). */
  batch?: number;
  /**
   * Most peers (default 2^20, the kernel module's MAX_PEERS_PER_DEVICE).
   * A bound, not a size: the tables grow as peers are added.
   */
  maxPeers?: number;
  /** Most AllowedIPs prefixes, over all peers (default 2^22); also a bound, not a size. */
  maxAllowedIps?: number;
  /** Lay out the TUN offload area (src/offload.ts), for a TUN device with a vnet header (default false). */
  offload?: boolean;
  /** Handshake messages in one fromNetwork call from which the engine is under load (default 16). */
  underLoadBacklog?: number;
  /** Handshake messages per second from which the engine is under load (default 400). */
  underLoadRate?: number;
  /**
   * Handshake messages per second processed in all while under load (default
   * 1000), beyond those from an address that is a peer's current endpoint.
   */
  underLoadBudget?: number;
}

/** Why packets were dropped; counted, never thrown. */
export interface Drops {
  /** A tunnel packet no peer's AllowedIPs holds, or its peer has no endpoint. */
  noRoute: number;
  /** A tunnel packet that is no IP packet. */
  badPacket: number;
  /** Transport data for a receiver index this engine does not hold. */
  unknownIndex: number;
  /** Transport data on a keypair past REJECT_AFTER_TIME or its message limit. */
  expired: number;
  /** Transport data whose counter was seen or is behind the window. */
  replay: number;
  /** Transport data that fails authentication. */
  auth: number;
  /** Decrypted packets whose source the peer's AllowedIPs do not hold. */
  source: number;
  /** Datagrams too short or of no message type. */
  malformed: number;
  /**
   * Our own transport to a peer's endpoint, read back from the tunnel: the
   * endpoint is routed through the peer's own tunnel (the kernel module's
   * "routing loop" check, seen from userspace one lap later).
   */
  loop: number;
  /** Handshake messages whose mac1 is wrong (no proof of knowing our public key). */
  mac1: number;
  /** Handshake messages over a source's rate under load. */
  rateLimited: number;
  /** Handshake messages with a good mac1 that fail otherwise (no such peer, replayed timestamp, zero DH, unknown index, ...). */
  handshake: number;
  /** Packets queued for a handshake that never completed, or pushed out of the queue. */
  staged: number;
}

/** What the engine did for handshakes; counted, for an operator. */
export interface HandshakeCounters {
  /** Cookie replies sent (under load, to messages without a valid mac2). */
  cookieReplies: number;
  /** Initiations and responses that completed a handshake. */
  completed: number;
}

/** What the adapter must do after a call. Reused: valid until the next call. */
export class Output {
  /** Datagrams to send: datagramBuf[i] from datagramOff[i], datagramLen[i] bytes, to datagramTo[i]. */
  datagrams = 0;
  datagramBuf: Uint8Array[] = [];
  datagramOff: number[] = [];
  datagramLen: number[] = [];
  datagramTo: Endpoint[] = [];
  /** IP packets to write to the tunnel, one write each. */
  packets = 0;
  packetBuf: Uint8Array[] = [];
  packetOff: number[] = [];
  packetLen: number[] = [];
  /** When tick(now) wants to be called next (ms, on the caller's clock; Infinity: never). */
  wake = Infinity;

  reset(): void {
    this.datagrams = 0;
    this.packets = 0;
  }
  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    const i = this.datagrams++;
    this.datagramBuf[i] = buf; this.datagramOff[i] = off; this.datagramLen[i] = len; this.datagramTo[i] = to;
  }
  deliver(buf: Uint8Array, off: number, len: number): void {
    const i = this.packets++;
    this.packetBuf[i] = buf; this.packetOff[i] = off; this.packetLen[i] = len;
  }
}

export class Engine {
  readonly mtu: number;
  readonly batch: number;
  /** The largest datagram fromNetwork accepts. */
  readonly maxDatagram: number;
  /** Lengths of the packets/datagrams the adapter wrote before fromTunnel/fromNetwork. */
  readonly packetLengths: Int32Array;
  readonly datagramLengths: Int32Array;
  /** The source of each datagram before fromNetwork. */
  readonly datagramFrom: Endpoint[];
  /** TUN offloads' split and coalesce, when asked for (EngineOptions.offload). */
  readonly offload: Offload | null;
  readonly drops: Drops = {
    noRoute: 0, badPacket: 0, unknownIndex: 0, expired: 0, replay: 0, auth: 0, source: 0, malformed: 0, loop: 0,
    mac1: 0, rateLimited: 0, handshake: 0, staged: 0,
  };
  readonly handshakes: HandshakeCounters = { cookieReplies: 0, completed: 0 };
  listenPort = 0;
  fwmark = 0;

  private readonly w: Wasm;
  private readonly dh: X25519;
  /** The handshake's primitives and buffers: X25519, and the AEAD and BLAKE2s of the WASM. */
  private readonly noise: Noise;
  private readonly epoch: number;
  private readonly out = new Output();
  private local: LocalStatic | null = null;
  private checker: CookieChecker | null = null;
  private readonly limiter = new RateLimiter();
  private readonly peers: (Peer | null)[] = [];
  private readonly byKey = new Map<string, Peer>();
  /**
   * Local indices of handshakes in flight -> peer (for responses and cookie
   * replies). At most one per peer: a new initiation forgets the peer's
   * previous index, so the table is bounded by maxPeers, whatever arrives.
   */
  private readonly pending = new Map<number, Peer>();
  private readonly freeSlots: number[] = [];
  /** Slots 0..slotCount-1 exist in WASM memory; more are made when freeSlots runs out. */
  private slotCount = 0;
  private readonly maxSlots: number;
  /**
   * Peer ids given back by removed peers, reused lowest first before new
   * ones (status lists peers by id); sorted highest first when freeSorted.
   */
  private readonly freeIds: number[] = [];
  private freeSorted = true;
  private readonly maxPeers: number;
  private underLoadUntil = -Infinity;
  private loadWindowStart = -Infinity;
  private loadCount = 0;
  private readonly underLoadBacklog: number;
  private readonly underLoadRate: number;
  /** The shared bucket under load, in messages; refilled at underLoadBudget a second, holding a tenth of a second's (at least one). */
  private readonly underLoadBudget: number;
  private budget = 0;
  private budgetMs = -Infinity;
  /** The peers' current endpoints as "address port", rebuilt when one has moved. */
  private endpoints: Set<string> | null = null;
  private closed = false;
  /** The caller's last `now`, and how far behind it has stepped in all (see clock()). */
  private lastNow = -Infinity;
  private skew = 0;
  /** At or before every peer's earliest deadline (engine clock): see nextWake. */
  private readonly wakeHint = { at: Infinity };

  constructor(opts: EngineOptions) {
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    if (!Number.isInteger(this.mtu) || this.mtu < 576 || this.mtu > 65535 - 80) throw new RangeError(`invalid MTU ${opts.mtu}`);
    this.batch = opts.batch ?? 128;
    this.maxPeers = opts.maxPeers ?? 1 << 20;
    const maxAllowedIps = opts.maxAllowedIps ?? 1 << 22;
    if (!Number.isInteger(this.maxPeers) || this.maxPeers < 1 || this.maxPeers > 1 << 24) throw new RangeError(`invalid maxPeers ${opts.maxPeers}`);
    if (!Number.isInteger(maxAllowedIps) || maxAllowedIps < 1 || maxAllowedIps > 1 << 25) throw new RangeError(`invalid maxAllowedIps ${opts.maxAllowedIps}`);
    this.dh = opts.x25519;
    this.epoch = opts.epoch;
    this.underLoadBacklog = opts.underLoadBacklog ?? 16;
    this.underLoadRate = opts.underLoadRate ?? 400;
    this.underLoadBudget = opts.underLoadBudget ?? 1000;
    if (!(this.underLoadBudget > 0)) throw new RangeError(`invalid underLoadBudget ${opts.underLoadBudget}`);
    // Three keypairs per peer plus the ones being rotated out.
    this.maxSlots = this.maxPeers * 3 + 16;
    // A cell holds the largest datagram: MTU + header + padding + tag, and any
    // peer's datagram up to 16 bytes of padding beyond our own MTU.
    this.maxDatagram = this.mtu + HEADROOM + 16 + 16;
    this.w = instantiate(opts.wasm, {
      maxPeers: this.maxPeers, maxSlots: this.maxSlots, batch: this.batch, cell: this.maxDatagram, aipNodes: 2 * maxAllowedIps,
      offload: opts.offload,
    });
    this.noise = new Noise(this.dh, this.w, this.w);
    this.offload = opts.offload ? new Offload(this.w, this.batch, this.mtu) : null;
    this.packetLengths = new Int32Array(this.batch);
    this.datagramLengths = new Int32Array(this.batch);
    this.datagramFrom = new Array(this.batch).fill(null);
  }

  /**
   * Linear memory: adapters write packets and datagrams into it, and read
   * results. A new view after a configuration change that grew memory: read
   * it again for each batch, never keep it across calls.
   */
  get memory(): Uint8Array {
    return this.w.mem;
  }

  /** Bytes of WASM memory the engine uses (the fixed part and its tables as they have grown). */
  get wasmBytes(): number {
    return this.w.bytesInUse;
  }

  /** Where the adapter writes IP packet i (at most `mtu` bytes) before fromTunnel. */
  packetOffset(i: number): number {
    return this.w.cell(i) + HEADROOM;
  }

  /** Where the adapter writes datagram i (at most `maxDatagram` bytes) before fromNetwork. */
  datagramOffset(i: number): number {
    return this.w.cell(this.batch + i);
  }

  /** The engine's public key, or null before a private key is set. */
  get publicKey(): Uint8Array | null {
    return this.local ? this.local.publicKey : null;
  }

  // ---- the data path --------------------------------------------------------

  /** Encrypts the n packets written at packetOffset(0..n-1) with packetLengths. */
  fromTunnel(n: number, now: number): Output {
    const out = this.out, w = this.w, d = w.desc, mem = w.mem;
    out.reset();
    if (this.closed) return out;
    now = this.clock(now);
    if (n > this.batch) throw new RangeError(`batch of ${n} exceeds ${this.batch}`);
    let looped: Uint8Array[] | null = null;
    for (let i = 0; i < n; i++) {
      d[i * 4 + DESC_LEN] = this.packetLengths[i];
      // Rare: UDP from our own port. Its destination is kept to compare with
      // the endpoint of the peer it routes to, once encap has found that peer.
      const dst = this.listenPort !== 0 ? ownDatagramDestination(mem, this.packetOffset(i), this.packetLengths[i], this.listenPort) : null;
      if (dst !== null) (looped ??= [])[i] = dst;
    }
    w.x.encap_batch(0, n, now, this.mtu);
    for (let i = 0; i < n; i++) {
      const e = i * 4, status = d[e + DESC_STATUS];
      if (looped !== null && looped[i] !== undefined && (status === ENCAP_SEND || status === ENCAP_SEND_REKEY || status === ENCAP_NO_KEY)) {
        const ep = this.peers[d[e + DESC_PEER]]!.endpoint;
        const to = ep === null ? null : endpointBytes(ep);
        if (to !== null && equalBytes(to, looped[i])) { this.drops.loop++; continue; }
      }
      if (status === ENCAP_SEND || status === ENCAP_SEND_REKEY) {
        const peer = this.peers[d[e + DESC_PEER]]!;
        const len = d[e + DESC_LEN];
        if (peer.endpoint === null) { this.drops.noRoute++; continue; }
        out.send(mem, w.cell(i), len, peer.endpoint);
        peer.txBytes += len;
        timers.anyAuthenticatedPacketTraversal(peer, now);
        timers.anyAuthenticatedPacketSent(peer);
        timers.dataSent(peer, now);
        if (status === ENCAP_SEND_REKEY) this.sendInitiation(peer, false, now);
      } else if (status === ENCAP_NO_KEY) {
        const peer = this.peers[d[e + DESC_PEER]]!;
        this.stage(peer, mem, this.packetOffset(i), this.packetLengths[i]);
        this.sendInitiation(peer, false, now);
      } else if (status === ENCAP_NO_ROUTE) this.drops.noRoute++;
      else this.drops.badPacket++;
    }
    out.wake = this.nextWake();
    return out;
  }

  /** Handles the n datagrams written at datagramOffset(0..n-1), with datagramLengths and datagramFrom. */
  fromNetwork(n: number, now: number): Output {
    const out = this.out, w = this.w, d = w.desc, mem = w.mem, base = this.batch;
    out.reset();
    if (this.closed) return out;
    now = this.clock(now);
    if (n > this.batch) throw new RangeError(`batch of ${n} exceeds ${this.batch}`);
    for (let i = 0; i < n; i++) {
      const len = this.datagramLengths[i];
      d[(base + i) * 4 + DESC_LEN] = len > this.maxDatagram ? this.maxDatagram + 1 : len;
    }
    w.x.decap_batch(base, n, now);
    let handshakes = 0;
    for (let i = 0; i < n; i++) {
      const e = (base + i) * 4, status = d[e + DESC_STATUS];
      if (status === DECAP_DATA || status === DECAP_KEEPALIVE || status === DECAP_SOURCE || status === DECAP_MALFORMED) {
        const peer = this.peers[d[e + DESC_PEER]];
        // No peer: a type-4 datagram too short (or long) to be one, never authenticated.
        if (!peer) { this.drops.malformed++; continue; }
        this.authenticated(peer, d[e + DESC_SLOT], this.datagramFrom[i], this.datagramLengths[i], now);
        if (status === DECAP_KEEPALIVE) continue;
        timers.dataReceived(peer, now);
        if (status === DECAP_DATA) out.deliver(mem, w.cell(base + i) + HEADROOM, d[e + DESC_LEN]);
        else if (status === DECAP_SOURCE) this.drops.source++;
        else this.drops.malformed++;
      } else if (status === DECAP_NOT_DATA) {
        handshakes++;
      } else if (status === DECAP_UNKNOWN) this.drops.unknownIndex++;
      else if (status === DECAP_EXPIRED) this.drops.expired++;
      else if (status === DECAP_REPLAY) this.drops.replay++;
      else if (status === DECAP_AUTH) this.drops.auth++;
      else this.drops.malformed++;
    }
    if (handshakes > 0) {
      this.noteLoad(handshakes, now);
      for (let i = 0; i < n; i++) {
        if (d[(base + i) * 4 + DESC_STATUS] !== DECAP_NOT_DATA) continue;
        const off = w.cell(base + i);
        // Copy out: the message outlives this batch only as far as its handling.
        this.handshakeMessage(mem.slice(off, off + this.datagramLengths[i]), this.datagramFrom[i], now);
      }
    }
    out.wake = this.nextWake();
    return out;
  }

  /** Runs the timers that are due. */
  tick(now: number): Output {
    const out = this.out;
    out.reset();
    if (this.closed) return out;
    now = this.clock(now);
    for (const peer of this.peers) if (peer) this.runTimers(peer, now);
    // The one exact walk: the hint may have been early (a deadline since cleared or moved later).
    let t = Infinity;
    for (const peer of this.peers) if (peer) t = Math.min(t, timers.nextDeadline(peer));
    this.wakeHint.at = t;
    out.wake = this.nextWake();
    return out;
  }

  /** Bookkeeping for every authenticated transport message (wireguard-go: RoutineSequentialReceiver). */
  private authenticated(peer: Peer, slot: number, from: Endpoint, len: number, now: number): void {
    // Roaming: the endpoint follows the last authenticated packet.
    if (from) this.setEndpoint(peer, from);
    const kp = peer.keypairBySlot(slot);
    if (kp !== null && kp === peer.next) {
      // Key confirmation: the initiator used the new session, so the responder may too.
      this.retire(peer.previous);
      peer.previous = peer.current;
      peer.current = kp;
      peer.next = null;
      this.w.x.peer_set_slot(peer.id, kp.slot);
      timers.handshakeComplete(peer, this.epoch + now);
      this.flushStaged(peer, now);
    }
    // Whitepaper 6.2: an initiator whose current key is getting old rekeys on
    // receive, whichever of its keypairs the packet came on (wireguard-go's
    // keepKeyFreshReceiving looks at the current one).
    const cur = peer.current;
    if (kp !== null && cur !== null && cur.isInitiator && !peer.sentLastMinuteHandshake &&
      now - cur.created >= REKEY_ON_RECEIVE_AGE) {
      peer.sentLastMinuteHandshake = true;
      this.sendInitiation(peer, false, now);
    }
    timers.anyAuthenticatedPacketTraversal(peer, now);
    timers.anyAuthenticatedPacketReceived(peer);
    peer.rxBytes += len;
  }

  // ---- handshakes -----------------------------------------------------------

  private noteLoad(count: number, now: number): void {
    if (now - this.loadWindowStart >= 1000) { this.loadWindowStart = now; this.loadCount = 0; }
    this.loadCount += count;
    if (count >= this.underLoadBacklog || this.loadCount >= this.underLoadRate) this.underLoadUntil = now + UNDER_LOAD_AFTER_TIME;
  }

  /** Handshakes we initiated that await a response (at most one per peer). */
  get handshakesInFlight(): number {
    return this.pending.size;
  }

  /** Whether handshake messages must carry a valid mac2 (whitepaper 5.3) at the caller's `now`. */
  underLoad(now: number): boolean {
    return this.loadedAt(this.clock(now));
  }

  /** underLoad at `t` on the engine's own time (see clock()). */
  private loadedAt(t: number): boolean {
    return t < this.underLoadUntil;
  }

  private takeBudget(now: number): boolean {
    const cap = Math.max(1, this.underLoadBudget / 10);
    if (now > this.budgetMs) {
      this.budget = Math.min(cap, this.budget + (now - this.budgetMs) * this.underLoadBudget / 1000);
      this.budgetMs = now;
    }
    if (this.budget < 1) return false;
    this.budget--;
    return true;
  }

  private setEndpoint(peer: Peer, ep: Endpoint | null): void {
    const old = peer.endpoint;
    if (old !== null && ep !== null && old.address === ep.address && old.port === ep.port) return;
    peer.endpoint = ep;
    this.endpoints = null;
  }

  private isPeerEndpoint(from: Endpoint): boolean {
    if (this.endpoints === null) {
      this.endpoints = new Set();
      for (const p of this.peers) if (p?.endpoint) this.endpoints.add(`${p.endpoint.address} ${p.endpoint.port}`);
    }
    return this.endpoints.has(`${from.address} ${from.port}`);
  }

  private handshakeMessage(msg: Uint8Array, from: Endpoint, now: number): void {
    const type = msg.length >= 4 ? (msg[0] | (msg[1] << 8) | (msg[2] << 16) | (msg[3] << 24)) >>> 0 : 0;
    const local = this.local, checker = this.checker;
    if (local === null || checker === null) { this.drops.handshake++; return; }
    if (type === MESSAGE_COOKIE_REPLY && msg.length !== MESSAGE_COOKIE_REPLY_SIZE) { this.drops.malformed++; return; }
    if (type === MESSAGE_COOKIE_REPLY) {
      const receiver = (msg[4] | (msg[5] << 8) | (msg[6] << 16) | (msg[7] << 24)) >>> 0;
      const peer = this.pending.get(receiver);
      if (!peer || !peer.cookie.consumeReply(msg, now)) this.drops.handshake++;
      return;
    }
    const isInit = type === MESSAGE_INITIATION && msg.length === MESSAGE_INITIATION_SIZE;
    const isResp = type === MESSAGE_RESPONSE && msg.length === MESSAGE_RESPONSE_SIZE;
    // A handshake type of the wrong size is no handshake message at all.
    if (!isInit && !isResp) { this.drops.malformed++; return; }
    if (!checker.checkMac1(msg)) { this.drops.mac1++; return; }
    if (this.loadedAt(now)) {
      const source = endpointBytes(from);
      if (source === null) { this.drops.handshake++; return; }
      if (!checker.checkMac2(msg, source, now)) {
        // Whitepaper 5.4.7: under load, answer with a cookie instead of doing DH.
        const reply = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
        const sender = (msg[4] | (msg[5] << 8) | (msg[6] << 16) | (msg[7] << 24)) >>> 0;
        checker.createReply(msg, sender, source, now, reply);
        this.out.send(reply, 0, reply.length, from);
        this.handshakes.cookieReplies++;
        return;
      }
      if (!this.limiter.allow(from.address, now)) { this.drops.rateLimited++; return; }
      // Many sources, each within its own rate, still add up to more DH than
      // the one thread carrying the data path can do and keep reading its
      // socket: past a shared budget a message is dropped, unless it comes
      // from a peer's current endpoint (its valid mac2 proves it can receive
      // there, so it cannot be a spoof of that peer's address).
      if (!this.takeBudget(now) && !this.isPeerEndpoint(from)) { this.drops.rateLimited++; return; }
    }
    if (isInit) this.consumeInitiation(local, msg, from, now);
    else this.consumeResponse(local, msg, from, now);
  }

  private consumeInitiation(local: LocalStatic, msg: Uint8Array, from: Endpoint, now: number): void {
    const hs = consumeInitiation(local, msg, this.noise, (key) => this.byKey.get(keyHex(key))?.handshake ?? undefined, now);
    if (hs === null) { this.drops.handshake++; return; }
    const peer = this.byKey.get(keyHex(hs.remoteStatic))!;
    this.setEndpoint(peer, from);
    timers.anyAuthenticatedPacketTraversal(peer, now);
    timers.anyAuthenticatedPacketReceived(peer);
    // Answer with a response; the new session waits in `next` until the
    // initiator proves it has the keys by sending data on it.
    this.forgetPending(peer);
    const index = this.newIndex();
    const resp = new Uint8Array(MESSAGE_RESPONSE_SIZE);
    if (!createResponse(hs, this.noise, index, resp)) { this.drops.handshake++; return; }
    peer.cookie.addMacs(resp, now);
    const keys = beginSession(hs, this.noise);
    if (keys === null) { this.drops.handshake++; return; }
    const kp = this.openKeypair(peer, keys, now);
    if (kp === null) return;
    this.retire(peer.next);
    peer.next = kp;
    this.retire(peer.previous);
    peer.previous = null;
    timers.sessionDerived(peer, now);
    this.out.send(resp, 0, resp.length, from);
    // A response is a handshake sent (wireguard-go's SendHandshakeResponse, the kernel's
    // last_sent_handshake): data queued before the initiator confirms the keys waits for
    // that confirmation, not a second handshake started at once.
    peer.lastSentHandshake = now;
    timers.anyAuthenticatedPacketTraversal(peer, now);
    timers.anyAuthenticatedPacketSent(peer);
  }

  private consumeResponse(local: LocalStatic, msg: Uint8Array, from: Endpoint, now: number): void {
    const hs = consumeResponse(local, msg, this.noise, (index) => this.pending.get(index)?.handshake ?? undefined);
    if (hs === null) { this.drops.handshake++; return; }
    const peer = this.pending.get(hs.localIndex)!;
    this.pending.delete(hs.localIndex);
    this.setEndpoint(peer, from);
    timers.anyAuthenticatedPacketTraversal(peer, now);
    timers.anyAuthenticatedPacketReceived(peer);
    const keys = beginSession(hs, this.noise);
    if (keys === null) { this.drops.handshake++; return; }
    const kp = this.openKeypair(peer, keys, now);
    if (kp === null) return;
    // The initiator may send at once: the session becomes current.
    if (peer.next !== null) {
      this.retire(peer.previous);
      peer.previous = peer.next;
      peer.next = null;
      this.retire(peer.current);
    } else {
      this.retire(peer.previous);
      peer.previous = peer.current;
    }
    peer.current = kp;
    this.w.x.peer_set_slot(peer.id, kp.slot);
    timers.sessionDerived(peer, now);
    timers.handshakeComplete(peer, this.epoch + now);
    // Confirm the keys to the responder: queued data, or else a keepalive.
    if (peer.staged.length === 0) this.sendKeepalive(peer, now);
    else this.flushStaged(peer, now);
  }

  /** Sends a handshake initiation unless one went out less than REKEY_TIMEOUT ago. */
  private sendInitiation(peer: Peer, isRetry: boolean, now: number): void {
    if (!isRetry) peer.handshakeAttempts = 0;
    if (now - peer.lastSentHandshake < REKEY_TIMEOUT) return;
    const hs = peer.handshake;
    if (hs === null || peer.endpoint === null || this.local === null) return;
    peer.lastSentHandshake = now;
    this.forgetPending(peer);
    const index = this.newIndex();
    const msg = new Uint8Array(MESSAGE_INITIATION_SIZE);
    if (!createInitiation(hs, this.noise, index, tai64n(this.epoch + now), msg)) { this.drops.handshake++; return; }
    peer.cookie.addMacs(msg, now);
    this.pending.set(index, peer);
    this.out.send(msg, 0, msg.length, peer.endpoint);
    timers.anyAuthenticatedPacketTraversal(peer, now);
    timers.anyAuthenticatedPacketSent(peer);
    timers.handshakeInitiated(peer, now);
  }

  private forgetPending(peer: Peer): void {
    const hs = peer.handshake;
    if (hs !== null && this.pending.get(hs.localIndex) === peer) this.pending.delete(hs.localIndex);
  }

  // ---- keypairs ---------------------------------------------------------------

  /** A random receiver index, unique among live sessions and handshakes in flight. */
  private newIndex(): number {
    for (;;) {
      const i = randomU32();
      if (!this.pending.has(i) && this.w.x.index_lookup(i) < 0) return i;
    }
  }

  private openKeypair(peer: Peer, keys: { sendKey: Uint8Array; recvKey: Uint8Array; isInitiator: boolean; localIndex: number; remoteIndex: number }, now: number): Keypair | null {
    if (this.freeSlots.length === 0) this.moreSlots();
    const slot = this.freeSlots.pop();
    if (slot === undefined) { wipe(keys.sendKey); wipe(keys.recvKey); this.drops.handshake++; return null; }
    const ok = this.w.openSlot(slot, peer.id, keys.sendKey, keys.recvKey, keys.localIndex, keys.remoteIndex, keys.isInitiator, now);
    wipe(keys.sendKey);
    wipe(keys.recvKey);
    if (!ok) { this.w.x.slot_close(slot); this.freeSlots.push(slot); this.drops.handshake++; return null; }
    this.handshakes.completed++;
    return new Keypair(slot, keys.localIndex, keys.remoteIndex, now, keys.isInitiator);
  }

  /** Makes new slots (a chunk of them) when every one is in use, up to maxSlots. */
  private moreSlots(): void {
    const was = this.slotCount;
    this.slotCount = this.w.growSlots(Math.min(this.maxSlots, was + 256));
    for (let i = this.slotCount - 1; i >= was; i--) this.freeSlots.push(i);
  }

  /** Zeroes a keypair's keys and frees its slot. */
  private retire(kp: Keypair | null): void {
    if (kp === null) return;
    this.w.x.slot_close(kp.slot);
    this.freeSlots.push(kp.slot);
  }

  private zeroKeys(peer: Peer): void {
    this.retire(peer.previous);
    this.retire(peer.current);
    this.retire(peer.next);
    peer.previous = peer.current = peer.next = null;
    this.w.x.peer_set_slot(peer.id, -1);
    this.forgetPending(peer);
    peer.handshake?.clear();
  }

  // ---- queued packets and keepalives ----------------------------------------

  private stage(peer: Peer, mem: Uint8Array, off: number, len: number): void {
    const buf = new Uint8Array(HEADROOM + len + 32);
    buf.set(mem.subarray(off, off + len), HEADROOM);
    this.queue(peer, { buf, len });
  }

  /** Queues a packet for a peer with no session: at MAX_STAGED_PACKETS the oldest gives way (wireguard-go drops the oldest too). */
  private queue(peer: Peer, p: { buf: Uint8Array; len: number }): void {
    if (peer.staged.length >= MAX_STAGED_PACKETS) { peer.staged.shift(); this.drops.staged++; }
    peer.staged.push(p);
  }

  /** Encrypts and sends a peer's queued packets, if it has a usable session. */
  private flushStaged(peer: Peer, now: number): void {
    if (peer.staged.length === 0 || peer.endpoint === null) return;
    const w = this.w, d = w.desc, mem = w.mem, first = 2 * this.batch;
    while (peer.staged.length > 0) {
      const chunk = peer.staged.splice(0, this.batch);
      for (let j = 0; j < chunk.length; j++) {
        const p = chunk[j];
        mem.set(p.buf.subarray(HEADROOM, HEADROOM + p.len), w.cell(first + j) + HEADROOM);
        d[(first + j) * 4 + DESC_LEN] = p.len;
      }
      w.x.encap_batch(first, chunk.length, now, this.mtu);
      for (let j = 0; j < chunk.length; j++) {
        const e = (first + j) * 4, status = d[e + DESC_STATUS], p = chunk[j];
        if (status === ENCAP_SEND || status === ENCAP_SEND_REKEY) {
          // Copy out of the shared cells: several peers may flush in one call.
          const len = d[e + DESC_LEN];
          p.buf.set(mem.subarray(w.cell(first + j), w.cell(first + j) + len));
          const target = this.peers[d[e + DESC_PEER]]!;
          if (target.endpoint === null) continue;
          this.out.send(p.buf, 0, len, target.endpoint);
          target.txBytes += len;
          timers.anyAuthenticatedPacketTraversal(target, now);
          timers.anyAuthenticatedPacketSent(target);
          timers.dataSent(target, now);
        } else if (status === ENCAP_NO_KEY) {
          // Still no session (e.g. it routes to another peer now): queue again.
          const target = this.peers[d[e + DESC_PEER]]!;
          if (target === peer) { peer.staged.unshift(...chunk.slice(j)); this.sendInitiation(peer, false, now); return; }
          this.queue(target, p);
          this.sendInitiation(target, false, now);
        } else this.drops.noRoute++;
      }
    }
  }

  private sendKeepalive(peer: Peer, now: number): void {
    const kp = peer.current;
    if (kp === null || peer.endpoint === null) {
      // No session yet: start one; the keepalive is its first message's job.
      this.sendInitiation(peer, false, now);
      return;
    }
    const at = this.w.cell(2 * this.batch);
    const len = this.w.x.keepalive(kp.slot, at, now);
    if (len === 0) { this.sendInitiation(peer, false, now); return; }
    this.out.send(this.w.mem.slice(at, at + len), 0, len, peer.endpoint);
    peer.txBytes += len;
    timers.anyAuthenticatedPacketTraversal(peer, now);
    timers.anyAuthenticatedPacketSent(peer);
    // A keepalive is a packet sent like any other: the same rekey-on-send check
    // (wireguard-go's keepKeyFreshSending), or an initiator that only sends
    // keepalives would rekey at 165 s on receive instead of at 120 s.
    if ((kp.isInitiator && now - kp.created >= REKEY_AFTER_TIME) || this.w.sendCounter(kp.slot) >= REKEY_AFTER_MESSAGES) {
      this.sendInitiation(peer, false, now);
    }
  }

  // ---- timers -------------------------------------------------------------------

  private runTimers(peer: Peer, now: number): void {
    const t = peer.timers;
    // Zeroing first: after a long gap several timers fall due in one tick,
    // and an initiation the others send must not be forgotten right away.
    if (t[Timer.ZeroKeyMaterial] <= now) {
      t[Timer.ZeroKeyMaterial] = Infinity;
      this.zeroKeys(peer);
    }
    if (t[Timer.RetransmitHandshake] <= now) {
      t[Timer.RetransmitHandshake] = Infinity;
      if (peer.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
        // Whitepaper 6.4: give up after REKEY_ATTEMPT_TIME, drop what waited.
        // (Counted as the kernel and wireguard-go count: 18 + 1 retries.)
        this.drops.staged += peer.staged.length;
        peer.staged = [];
        t[Timer.SendKeepalive] = Infinity;
        if (t[Timer.ZeroKeyMaterial] === Infinity) timers.sessionDerived(peer, now);
      } else {
        peer.handshakeAttempts++;
        peer.lastSentHandshake = -Infinity; // a retry is never rate-limited away
        this.sendInitiation(peer, true, now);
      }
    }
    if (t[Timer.SendKeepalive] <= now) {
      t[Timer.SendKeepalive] = Infinity;
      this.sendKeepalive(peer, now);
      if (peer.needAnotherKeepalive) {
        peer.needAnotherKeepalive = false;
        timers.dataReceived(peer, now);
      }
    }
    if (t[Timer.NewHandshake] <= now) {
      // Data went out but nothing came back: the session may be dead.
      t[Timer.NewHandshake] = Infinity;
      this.sendInitiation(peer, false, now);
    }
    if (t[Timer.PersistentKeepalive] <= now) {
      t[Timer.PersistentKeepalive] = Infinity;
      if (peer.persistentKeepalive > 0) this.sendKeepalive(peer, now);
    }
  }

  /**
   * The earliest deadline (or a little before it), on the caller's clock:
   * O(1), from the hint every peer's timers lower (see Peer.wakeHint); tick
   * makes it exact.
   */
  private nextWake(): number {
    return this.wakeHint.at - this.skew;
  }

  /**
   * The engine's time for a caller's `now`. Deadlines, key ages, handshake
   * rate limits and TAI64N labels are all kept on it, so it must not run
   * backwards: a caller's clock that steps back (by an hour, say) counts as
   * no time passing. Taken as is, such a step would hold every timer, rekey
   * and new initiation back by its size, keep keys in use that long past
   * REJECT_AFTER_TIME, and label initiations with a TAI64N the peer refuses.
   * A step forward is time passing; no clock can tell it from a long sleep.
   * @throws RangeError if `now` is not a finite number.
   */
  private clock(now: number): number {
    if (!Number.isFinite(now)) throw new RangeError(`now must be a finite number of milliseconds, not ${now}`);
    if (now < this.lastNow) this.skew += this.lastNow - now;
    this.lastNow = now;
    return now + this.skew;
  }

  // ---- configuration (the UAPI model) --------------------------------------

  /**
   * Applies a configuration change with the semantics of the UAPI's set=1.
   * Throws RangeError naming the bad field; nothing is applied then.
   */
  set(config: DeviceConfig, now: number): Output {
    if (this.closed) throw new TypeError("the engine is closed");
    // Each prefix is parsed once: here, to refuse a bad one before any change, and kept for setPeer.
    const prefixes = this.check(config);
    now = this.clock(now);
    const out = this.out;
    out.reset();
    if (config.privateKey !== undefined) this.setPrivateKey(config.privateKey);
    if (config.listenPort !== undefined) this.listenPort = config.listenPort;
    if (config.fwmark !== undefined) this.fwmark = config.fwmark;
    if (config.replacePeers) for (const p of [...this.byKey.values()]) this.removePeer(p);
    (config.peers ?? []).forEach((pc, i) => this.setPeer(pc, prefixes[i], now));
    out.wake = this.nextWake();
    return out;
  }

  /**
   * Throws the RangeError set() would throw before applying anything: a bad
   * field, or more peers than maxPeers once the change is made. For a caller
   * that applies one change as several set() calls.
   * @param opts.allowedIps false: the caller has checked the AllowedIPs text
   *   itself (the UAPI parser does), so it is not parsed here
   * @returns each peer's AllowedIPs, parsed (empty lists with allowedIps false)
   */
  check(config: DeviceConfig, opts: { allowedIps?: boolean } = {}): Prefix[][] {
    const steps = this.checking(config, opts, Infinity);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /**
   * check() a part at a time, for a change of many peers: yields after each
   * `every` of the change's peers, returns what check() returns (or throws
   * as it does, at the end). A change made to the engine between steps is
   * counted where the walk meets it, not before; set() checks each part
   * again.
   */
  *checking(config: DeviceConfig, opts: { allowedIps?: boolean } = {}, every = 1024): Generator<void, Prefix[][], undefined> {
    const parsed = validate(config, opts.allowedIps !== false);
    // Only the peers the change names can change the count: O(change), not O(peers).
    let count = config.replacePeers ? 0 : this.byKey.size;
    const present = new Map<string, boolean>();
    let n = 0;
    for (const p of config.peers ?? []) {
      if (++n % every === 0) yield;
      const hex = keyHex(p.publicKey);
      const was = present.get(hex) ?? (!config.replacePeers && this.byKey.has(hex));
      const is = p.remove ? false : was || !p.updateOnly;
      count += +is - +was;
      present.set(hex, is);
    }
    if (count > this.maxPeers) throw new RangeError(`too many peers: ${count} (at most ${this.maxPeers})`);
    return parsed;
  }

  private setPrivateKey(key: Uint8Array | null): void {
    if (key !== null && this.local !== null && equal(key, this.local.privateKey)) return;
    if (this.local) { wipe(this.local.privateKey); wipe(this.local.responderHash); }
    this.local = key === null || key.every((b) => b === 0) ? null : new LocalStatic(key, this.dh);
    this.checker = this.local ? new CookieChecker(this.local.publicKey, this.w, this.w) : null;
    for (const peer of [...this.byKey.values()]) {
      // A peer with our own public key is meaningless (wireguard-go removes it).
      if (this.local && equal(peer.publicKey, this.local.publicKey)) { this.removePeer(peer); continue; }
      this.zeroKeys(peer);
      const old = peer.handshake;
      peer.handshake = this.local ? new PeerHandshake(this.local, peer.publicKey, peer.presharedKey, this.dh, this.w) : null;
      if (old && peer.handshake) {
        peer.handshake.lastTimestamp = old.lastTimestamp;
        peer.handshake.lastInitiationConsumedMs = old.lastInitiationConsumedMs;
      }
      // The old key's static-static DH goes with it.
      old?.destroy();
    }
  }

  private setPeer(pc: PeerConfig, prefixes: Prefix[], now: number): void {
    const hex = keyHex(pc.publicKey);
    let peer = this.byKey.get(hex) ?? null;
    if (pc.remove) { if (peer) this.removePeer(peer); return; }
    if (peer === null) {
      if (pc.updateOnly) return;
      if (this.local && equal(pc.publicKey, this.local.publicKey)) return;
      if (!this.freeSorted) { this.freeIds.sort((x, y) => y - x); this.freeSorted = true; }
      const id = this.freeIds.length > 0 ? this.freeIds[this.freeIds.length - 1] : this.peers.length;
      if (id >= this.maxPeers || this.w.growPeers(id + 1) <= id) throw new RangeError(`too many peers (at most ${this.maxPeers})`);
      if (id !== this.peers.length) this.freeIds.pop();
      const key = pc.publicKey.slice();
      const hs = this.local ? new PeerHandshake(this.local, key, null, this.dh, this.w) : null;
      peer = new Peer(id, key, hs, new CookieGenerator(key, this.w, this.w));
      peer.wakeHint = this.wakeHint;
      this.peers[id] = peer;
      this.byKey.set(hex, peer);
    }
    if (pc.presharedKey !== undefined) {
      if (peer.presharedKey) wipe(peer.presharedKey); // the replaced key is not left behind
      peer.presharedKey = pc.presharedKey && !pc.presharedKey.every((b) => b === 0) ? pc.presharedKey.slice() : null;
      peer.handshake?.presharedKey.set(peer.presharedKey ?? new Uint8Array(32));
    }
    if (pc.endpoint !== undefined) this.setEndpoint(peer, pc.endpoint);
    if (pc.replaceAllowedIps) this.w.x.aip_remove_peer(peer.id);
    // The trie masks host bits itself.
    for (const p of prefixes) {
      if (!this.w.insertPrefix(p, peer.id)) throw new RangeError(`AllowedIPs table full adding ${formatPrefix(maskPrefix(p))}`);
    }
    if (pc.persistentKeepalive !== undefined) {
      const was = peer.persistentKeepalive;
      peer.persistentKeepalive = pc.persistentKeepalive;
      if (was === 0 && pc.persistentKeepalive > 0) this.sendKeepalive(peer, now);
      if (pc.persistentKeepalive === 0) peer.timers[Timer.PersistentKeepalive] = Infinity;
    }
  }

  private removePeer(peer: Peer): void {
    this.zeroKeys(peer);
    if (peer.presharedKey) wipe(peer.presharedKey);
    peer.handshake?.destroy();
    this.w.x.aip_remove_peer(peer.id);
    this.byKey.delete(keyHex(peer.publicKey));
    this.peers[peer.id] = null;
    this.freeIds.push(peer.id);
    this.freeSorted = false;
    this.endpoints = null;
    peer.staged = [];
  }

  /**
   * Zeroes every key the engine holds (sessions, handshakes in flight,
   * preshared keys, the private key) and then all of its WASM memory, for the
   * end of an interface or a session. Afterwards the data path and tick
   * return empty Outputs, set throws, and status shows no peers.
   */
  close(): void {
    if (this.closed) return;
    for (const p of [...this.byKey.values()]) this.removePeer(p);
    this.pending.clear();
    this.setPrivateKey(null);
    this.w.mem.fill(0);
    this.closed = true;
  }

  /** Whether close() has run. */
  get isClosed(): boolean { return this.closed; }

  /** The device and its peers, as the UAPI's get=1 reports them. */
  status(): DeviceStatus {
    const peers: PeerStatus[] = [];
    for (let id = 0; id < this.peers.length; id++) {
      const p = this.peerStatus(id);
      if (p) peers.push(p);
    }
    return { ...this.deviceStatus(), peers };
  }

  /** status() without its peers. */
  deviceStatus(): Omit<DeviceStatus, "peers"> {
    return {
      privateKey: this.local ? this.local.privateKey.slice() : null,
      publicKey: this.local ? this.local.publicKey.slice() : null,
      listenPort: this.listenPort,
      fwmark: this.fwmark,
    };
  }

  /** Peer ids are below this (some may be free). */
  get peerIdBound(): number {
    return this.peers.length;
  }

  /**
   * One peer's entry of status(), by id; null for a free id. With
   * `allowedIps: false` its allowedIps are left empty, for a caller that
   * pages through them (pageAllowedIps) instead.
   */
  peerStatus(id: number, opts: { allowedIps?: boolean } = {}): PeerStatus | null {
    const peer = this.peers[id];
    if (!peer) return null;
    return {
      publicKey: peer.publicKey.slice(),
      presharedKey: peer.presharedKey ? peer.presharedKey.slice() : null,
      endpoint: peer.endpoint,
      lastHandshakeTime: peer.lastHandshakeWall,
      rxBytes: peer.rxBytes,
      txBytes: peer.txBytes,
      persistentKeepalive: peer.persistentKeepalive,
      allowedIps: opts.allowedIps === false ? [] : this.w.listPrefixes(peer.id).map(formatPrefix),
    };
  }

  /**
   * Up to `max` of peer `id`'s AllowedIPs, in the order given, from the start
   * (`from` 0) or the cursor the last page returned. `bytes` (the masked
   * address) is valid only during the call.
   * @returns the cursor for the next page, 0 when done (also for a free id)
   */
  pageAllowedIps(id: number, from: number, max: number, fn: (bytes: Uint8Array, cidr: number) => void): number {
    if (!this.peers[id]) return 0;
    return this.w.pagePrefixes(id, from, max, fn);
  }

  /** For tests and benchmarks: the WASM half. */
  get wasm(): Wasm {
    return this.w;
  }

  /**
   * The path to `to` changed under its peers (a relay reconnected: the peer
   * would see us from a new address, but only once we send). Sends each peer
   * at `to` a keepalive now (an initiation where there is no session), so it
   * roams to the new path at once, as it would on any authenticated packet.
   */
  announce(to: Endpoint, now: number): Output {
    const out = this.out;
    out.reset();
    if (this.closed) return out;
    now = this.clock(now);
    for (const peer of this.peers) {
      if (peer && peer.endpoint !== null && peer.endpoint.address === to.address && peer.endpoint.port === to.port) this.sendKeepalive(peer, now);
    }
    out.wake = this.nextWake();
    return out;
  }

  /**
   * Initiations sent to a peer that are still unanswered: 0 while none is
   * pending (or none was ever sent), 1 after the first, one more for each
   * retry. What endpoint re-resolution watches: a peer whose handshakes go
   * unanswered may have moved. null for an unknown key.
   */
  unansweredHandshakes(publicKey: Uint8Array): number | null {
    const p = this.byKey.get(keyHex(publicKey));
    if (p === undefined) return null;
    return p.timers[Timer.RetransmitHandshake] === Infinity ? 0 : p.handshakeAttempts + 1;
  }

  /** A peer's current endpoint (configured, or learned from its packets); null when it has none or the key is unknown. */
  endpointOf(publicKey: Uint8Array): Endpoint | null {
    return this.byKey.get(keyHex(publicKey))?.endpoint ?? null;
  }

  /** For tests: a peer's record by public key. */
  peer(publicKey: Uint8Array): Peer | undefined {
    return this.byKey.get(keyHex(publicKey));
  }
}

/**
 * If the IP packet at mem[off..off+len) is a UDP datagram (a first fragment)
 * from source port `port`, its destination address and port as
 * endpointBytes writes them; else null.
 */
function ownDatagramDestination(mem: Uint8Array, off: number, len: number, port: number): Uint8Array | null {
  const v = mem[off] >> 4;
  let udp: number, alen: number, dst: number;
  if (v === 4) {
    const ihl = (mem[off] & 15) * 4;
    if (mem[off + 9] !== 17 || ((mem[off + 6] & 0x1f) | mem[off + 7]) !== 0 || len < ihl + 8) return null;
    udp = off + ihl; alen = 4; dst = off + 16;
  } else if (v === 6) {
    if (mem[off + 6] !== 17 || len < 48) return null;
    udp = off + 40; alen = 16; dst = off + 24;
  } else return null;
  if (((mem[udp] << 8) | mem[udp + 1]) !== port) return null;
  const b = new Uint8Array(alen + 2);
  b.set(mem.subarray(dst, dst + alen));
  b[alen] = mem[udp + 2];
  b[alen + 1] = mem[udp + 3];
  return b;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Source address and port as bytes, for cookies (whitepaper 5.4.7). */
function endpointBytes(ep: Endpoint): Uint8Array | null {
  let ip: Uint8Array;
  try { ip = parseAddress(ep.address.replace(/^\[|\]$/g, "")); } catch { return null; }
  const b = new Uint8Array(ip.length + 2);
  b.set(ip);
  b[ip.length] = ep.port >> 8;
  b[ip.length + 1] = ep.port & 0xff;
  return b;
}

/** Checks every field; returns each peer's AllowedIPs parsed (when `prefixes`), else empty lists. */
function validate(c: DeviceConfig, prefixes: boolean): Prefix[][] {
  const key = (k: unknown, what: string) => {
    if (!(k instanceof Uint8Array) || k.length !== 32) throw new RangeError(`${what} must be 32 bytes`);
  };
  if (c.privateKey != null) key(c.privateKey, "private key");
  if (c.listenPort !== undefined && (!Number.isInteger(c.listenPort) || c.listenPort < 0 || c.listenPort > 65535)) {
    throw new RangeError(`invalid listen port ${c.listenPort}`);
  }
  for (const p of c.peers ?? []) {
    key(p.publicKey, "public key");
    if (p.presharedKey != null) key(p.presharedKey, "preshared key");
    if (p.persistentKeepalive !== undefined &&
      (!Number.isInteger(p.persistentKeepalive) || p.persistentKeepalive < 0 || p.persistentKeepalive > 65535)) {
      throw new RangeError(`invalid persistent keepalive interval ${p.persistentKeepalive}`);
    }
  }
  return (c.peers ?? []).map((p) => prefixes ? (p.allowedIps ?? []).map((a) => typeof a === "string" ? parsePrefix(a) : a) : []);
}

export type { Prefix };
