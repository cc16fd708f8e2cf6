// The WireGuard handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, as the
// whitepaper (section 5.4) writes it out message by message. Pure functions
// over one PeerHandshake per peer; the primitives (X25519, the AEAD, BLAKE2s)
// come in as one Noise per engine, and mac1/mac2 are cookie.ts's job.
//
// A message is computed in the Noise's own buffers (H, C, k, tau), not in
// new arrays, and each consume* function writes the peer's state only once
// the message has fully authenticated, so a bad message changes nothing.
// Every intermediate secret (DH results, KDF outputs, temporary keys) is
// wiped as soon as it has been used, and the buffers before returning.
//
// The whitepaper's lines are quoted above the code that implements them,
// with i = initiator, r = responder.
import {
  type Aead, type NoiseHash, type X25519, INITIAL_CHAIN_KEY, INITIAL_HASH, checkKey, equal, hash, nobleNoiseHash, wipe,
} from "./crypto.ts";
import { compareTai64n } from "./tai64n.ts";
import {
  INITIATION_EPHEMERAL, INITIATION_MAC1, INITIATION_SENDER, INITIATION_STATIC, INITIATION_TIMESTAMP,
  MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE, MESSAGE_RESPONSE_SIZE, RESPONSE_EMPTY,
  RESPONSE_EPHEMERAL, RESPONSE_MAC1, RESPONSE_RECEIVER, RESPONSE_SENDER, TIMESTAMP_SIZE, readU32, writeU32,
} from "./messages.ts";

/** Where a peer's handshake stands (wireguard-go: handshakeZeroed .. handshakeResponseConsumed). */
export const enum HandshakeState { None, InitiationSent, InitiationConsumed, ResponseCreated, ResponseConsumed }

/** A responder drops initiations from one peer that come less than this many ms apart (wireguard-go HandshakeInitationRate, 50/s). */
export const INITIATION_MIN_INTERVAL_MS = 20;

/** AEAD nonce for handshake messages: each key is used once, so counter 0. */
const ZERO_NONCE = new Uint8Array(12);
const EMPTY = new Uint8Array(0);

/**
 * What a handshake computes with, and the buffers it computes in. One per
 * engine, shared by its peers: the functions below run synchronously and
 * hold nothing in it between calls (every buffer is zero on return).
 */
export class Noise {
  /** H and C of the message in progress; the peer's copies are written only once it is good. */
  readonly h = new Uint8Array(32);
  readonly c = new Uint8Array(32);
  /** An AEAD key (k) and the PSK's tau. */
  readonly k = new Uint8Array(32);
  readonly tau = new Uint8Array(32);
  /** What an initiation decrypts to before it is known to be good. */
  readonly remoteStatic = new Uint8Array(32);
  readonly timestamp = new Uint8Array(TIMESTAMP_SIZE);

  /**
   * @param dh - X25519: the runtime's fastest synchronous one.
   * @param aead - ChaCha20-Poly1305 for the encrypted fields.
   * @param hash - HASH, MAC and KDF (the engine's WASM, or nobleNoiseHash).
   */
  constructor(readonly dh: X25519, readonly aead: Aead, readonly hash: NoiseHash) {}

  /** Zeroes every buffer. */
  wipe(): void {
    wipe(this.h);
    wipe(this.c);
    wipe(this.k);
    wipe(this.tau);
    wipe(this.remoteStatic);
    wipe(this.timestamp);
  }
}

/** This side's static key pair, and what can be computed from it once. */
export class LocalStatic {
  /** Our own copy of the private key. */
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** HASH(Hi || S_pub_r) with ourselves as responder: the hash every incoming initiation starts from. */
  readonly responderHash: Uint8Array;

  /**
   * @param privateKey - 32 bytes (copied).
   * @param dh - computes the public key.
   * @throws TypeError / RangeError if privateKey is not 32 bytes.
   */
  constructor(privateKey: Uint8Array, dh: X25519) {
    checkKey(privateKey, "privateKey");
    this.privateKey = privateKey.slice();
    this.publicKey = dh.publicKey(this.privateKey);
    this.responderHash = hash(INITIAL_HASH, this.publicKey);
  }
}

/** The handshake state of one peer. Fields are public for the engine and tests; only the functions below should write them. */
export class PeerHandshake {
  readonly local: LocalStatic;
  /** The peer's static public key (a copy). */
  readonly remoteStatic: Uint8Array;
  /** Q: 32 bytes, all zero when there is none. Update it in place with `.set()`. */
  readonly presharedKey: Uint8Array;
  /** DH(S_priv_local, S_pub_remote), or null if that is zero (a low-order peer key): this peer can never complete a handshake. */
  readonly precomputedStaticStatic: Uint8Array | null;
  /** HASH(Hi || S_pub_r) with the peer as responder: the hash every initiation we send starts from. */
  readonly initiatorHash: Uint8Array;

  state: HandshakeState = HandshakeState.None;
  /** H, the running transcript hash. */
  hash: Uint8Array = new Uint8Array(32);
  /** C, the chaining key. */
  chainKey: Uint8Array = new Uint8Array(32);
  /** Our ephemeral private key while an initiation of ours is in flight; zeros otherwise. */
  ephemeralPrivate: Uint8Array = new Uint8Array(32);
  /** The peer's ephemeral public key from the last initiation consumed. */
  remoteEphemeral: Uint8Array = new Uint8Array(32);
  /** Our index in the handshake in flight (the sender field we sent). */
  localIndex = 0;
  /** The peer's index (the sender field it sent). */
  remoteIndex = 0;
  /** The greatest TAI64N timestamp accepted from this peer (replay protection). */
  lastTimestamp: Uint8Array = new Uint8Array(TIMESTAMP_SIZE);
  /** When (ms, caller's clock) the last initiation from this peer was accepted (flood protection). */
  lastInitiationConsumedMs = -Infinity;

  /**
   * @param local - our static key.
   * @param remoteStatic - the peer's public key, 32 bytes (copied).
   * @param presharedKey - 32 bytes (copied), or null for none.
   * @param dh - computes the static-static DH once.
   * @param noise - computes the initiator hash (the engine passes its WASM; noble by default).
   * @throws TypeError / RangeError for keys that are not 32 bytes.
   */
  constructor(local: LocalStatic, remoteStatic: Uint8Array, presharedKey: Uint8Array | null, dh: X25519, noise: NoiseHash = nobleNoiseHash) {
    checkKey(remoteStatic, "remoteStatic");
    if (presharedKey !== null) checkKey(presharedKey, "presharedKey");
    this.local = local;
    this.remoteStatic = remoteStatic.slice();
    this.presharedKey = presharedKey === null ? new Uint8Array(32) : presharedKey.slice();
    this.precomputedStaticStatic = dh.shared(local.privateKey, this.remoteStatic);
    this.initiatorHash = new Uint8Array(32);
    noise.hash(INITIAL_HASH, this.remoteStatic, this.initiatorHash);
  }

  /**
   * Wipes every secret this holds, for good: the handshake in progress, the
   * preshared key and the precomputed static-static DH (when the peer goes,
   * or our private key changes).
   */
  destroy(): void {
    this.clear();
    wipe(this.presharedKey);
    if (this.precomputedStaticStatic) wipe(this.precomputedStaticStatic);
  }

  /** Forgets any handshake in progress (wipes H, C and the ephemerals; state None, localIndex 0). Keeps the replay and flood records. */
  clear(): void {
    wipe(this.hash);
    wipe(this.chainKey);
    wipe(this.ephemeralPrivate);
    wipe(this.remoteEphemeral);
    this.localIndex = 0;
    this.state = HandshakeState.None;
  }
}

/** c := KDF1(c, DH(priv, pub)), or false (the DH was zero) with c unchanged. The DH result is wiped. */
function mixDh(n: Noise, priv: Uint8Array, pub: Uint8Array): boolean {
  const ss = n.dh.shared(priv, pub);
  if (ss === null) return false;
  n.hash.kdf(n.c, ss, n.c);
  wipe(ss);
  return true;
}

/**
 * Writes a handshake initiation (whitepaper 5.4.2) into bytes 0..116 of
 * `out`: type, reserved zeros, sender, ephemeral, encrypted static,
 * encrypted timestamp. mac1 and mac2 (bytes 116..148) are left to
 * CookieGenerator.addMacs. On success the peer is in InitiationSent, holding
 * the ephemeral private key and `localIndex`.
 * @param timestamp - 12-byte TAI64N (see tai64n.ts), strictly increasing per peer.
 * @param out - at least 116 bytes (normally a 148-byte message buffer).
 * @returns false, with the peer's state untouched, if a DH is zero (the peer's key is low-order). `out` is then unspecified.
 * @throws RangeError if `out` or `timestamp` is too short.
 */
export function createInitiation(hs: PeerHandshake, n: Noise, localIndex: number, timestamp: Uint8Array, out: Uint8Array): boolean {
  if (out.length < INITIATION_MAC1) throw new RangeError(`createInitiation: out needs ${INITIATION_MAC1} bytes`);
  if (timestamp.length !== TIMESTAMP_SIZE) throw new RangeError("createInitiation: timestamp must be 12 bytes");
  const staticStatic = hs.precomputedStaticStatic;
  if (staticStatic === null) return false;
  const { h, c, k, hash } = n;

  // Ci := HASH(CONSTRUCTION); Hi := HASH(Ci || IDENTIFIER); Hi := HASH(Hi || S_pub_r)
  //   (precomputed: INITIAL_CHAIN_KEY and hs.initiatorHash)
  // (E_priv_i, E_pub_i) := DH-GENERATE(); msg.ephemeral := E_pub_i
  const e = n.dh.generate();
  const ephemeral = out.subarray(INITIATION_EPHEMERAL, INITIATION_STATIC);
  ephemeral.set(e.publicKey);
  // Ci := KDF1(Ci, msg.ephemeral)
  hash.kdf(INITIAL_CHAIN_KEY, ephemeral, c);
  // Hi := HASH(Hi || msg.ephemeral)
  hash.hash(hs.initiatorHash, ephemeral, h);
  // (Ci, k) := KDF2(Ci, DH(E_priv_i, S_pub_r))
  const es = n.dh.shared(e.privateKey, hs.remoteStatic);
  if (es === null) { wipe(e.privateKey); n.wipe(); return false; }
  hash.kdf(c, es, c, k);
  wipe(es);
  // msg.static := AEAD(k, 0, S_pub_i, Hi)
  const encStatic = out.subarray(INITIATION_STATIC, INITIATION_TIMESTAMP);
  n.aead.seal(k, ZERO_NONCE, h, hs.local.publicKey, encStatic);
  wipe(k);
  // Hi := HASH(Hi || msg.static)
  hash.hash(h, encStatic, h);
  // (Ci, k) := KDF2(Ci, DH(S_priv_i, S_pub_r))   (the DH is precomputed)
  hash.kdf(c, staticStatic, c, k);
  // msg.timestamp := AEAD(k, 0, TAI64N(), Hi)
  const encTimestamp = out.subarray(INITIATION_TIMESTAMP, INITIATION_MAC1);
  n.aead.seal(k, ZERO_NONCE, h, timestamp, encTimestamp);
  wipe(k);
  // Hi := HASH(Hi || msg.timestamp)
  hash.hash(h, encTimestamp, h);
  // msg.type := 1; msg.reserved := 0^3; msg.sender := I_i
  writeU32(out, 0, MESSAGE_INITIATION);
  writeU32(out, INITIATION_SENDER, localIndex);

  hs.hash.set(h);
  hs.chainKey.set(c);
  n.wipe();
  wipe(hs.ephemeralPrivate);
  hs.ephemeralPrivate = e.privateKey;
  hs.localIndex = localIndex >>> 0;
  hs.state = HandshakeState.InitiationSent;
  return true;
}

/**
 * Consumes a handshake initiation (whitepaper 5.4.2, responder side). The
 * caller has checked mac1 (and mac2 under load).
 * @param msg - the whole 148-byte message.
 * @param findPeer - the peer with this static public key, if we know it (the key is lent: copy it to keep it).
 * @param nowMs - the caller's clock, for flood protection.
 * @returns the peer, now in InitiationConsumed; or null, with no peer
 *   changed, if the message is malformed, the static key does not decrypt,
 *   the peer is unknown, a DH is zero, the timestamp is not newer than the
 *   last accepted one (replay), or the last initiation from this peer was
 *   accepted less than 20 ms ago (flood).
 */
export function consumeInitiation(
  local: LocalStatic, msg: Uint8Array, n: Noise,
  findPeer: (remoteStatic: Uint8Array) => PeerHandshake | undefined, nowMs: number,
): PeerHandshake | null {
  if (msg.length !== MESSAGE_INITIATION_SIZE || readU32(msg, 0) !== MESSAGE_INITIATION) return null;
  const { h, c, k, hash, remoteStatic, timestamp } = n;
  const ephemeral = msg.subarray(INITIATION_EPHEMERAL, INITIATION_STATIC);
  const encStatic = msg.subarray(INITIATION_STATIC, INITIATION_TIMESTAMP);
  const encTimestamp = msg.subarray(INITIATION_TIMESTAMP, INITIATION_MAC1);

  // Cr := HASH(CONSTRUCTION); Hr := HASH(Cr || IDENTIFIER); Hr := HASH(Hr || S_pub_r)
  //   (precomputed: INITIAL_CHAIN_KEY and local.responderHash)
  // Cr := KDF1(Cr, msg.ephemeral)
  hash.kdf(INITIAL_CHAIN_KEY, ephemeral, c);
  // Hr := HASH(Hr || msg.ephemeral)
  hash.hash(local.responderHash, ephemeral, h);
  // (Cr, k) := KDF2(Cr, DH(S_priv_r, msg.ephemeral))
  const se = n.dh.shared(local.privateKey, ephemeral);
  if (se === null) { n.wipe(); return null; }
  hash.kdf(c, se, c, k);
  wipe(se);
  // S_pub_i := AEAD-DEC(k, 0, msg.static, Hr)
  const staticOk = n.aead.open(k, ZERO_NONCE, h, encStatic, remoteStatic);
  wipe(k);
  if (!staticOk) { n.wipe(); return null; }
  // Hr := HASH(Hr || msg.static)
  hash.hash(h, encStatic, h);

  // (find the peer whose static key that is)
  const hs = findPeer(remoteStatic);
  if (hs === undefined || !equal(hs.remoteStatic, remoteStatic) || hs.precomputedStaticStatic === null) {
    n.wipe();
    return null;
  }
  // (Cr, k) := KDF2(Cr, DH(S_priv_r, S_pub_i))   (the DH is precomputed)
  hash.kdf(c, hs.precomputedStaticStatic, c, k);
  // timestamp := AEAD-DEC(k, 0, msg.timestamp, Hr)
  const timestampOk = n.aead.open(k, ZERO_NONCE, h, encTimestamp, timestamp);
  wipe(k);
  if (!timestampOk) { n.wipe(); return null; }
  // Hr := HASH(Hr || msg.timestamp)
  hash.hash(h, encTimestamp, h);

  // Replay: the timestamp must be greater than any accepted before (whitepaper 5.1).
  // Flood: at most one initiation per 20 ms from one peer.
  if (compareTai64n(timestamp, hs.lastTimestamp) <= 0 || nowMs - hs.lastInitiationConsumedMs < INITIATION_MIN_INTERVAL_MS) {
    n.wipe();
    return null;
  }

  hs.hash.set(h);
  hs.chainKey.set(c);
  // An initiation of our own that was in flight is superseded: its response can no longer be consumed.
  wipe(hs.ephemeralPrivate);
  hs.remoteEphemeral.set(ephemeral);
  hs.remoteIndex = readU32(msg, INITIATION_SENDER);
  hs.lastTimestamp.set(timestamp);
  if (nowMs > hs.lastInitiationConsumedMs) hs.lastInitiationConsumedMs = nowMs;
  hs.state = HandshakeState.InitiationConsumed;
  n.wipe();
  return hs;
}

/**
 * Writes a handshake response (whitepaper 5.4.3) into bytes 0..60 of `out`:
 * type, reserved zeros, sender, receiver, ephemeral, encrypted empty. mac1
 * and mac2 (bytes 60..92) are left to CookieGenerator.addMacs. On success the
 * peer is in ResponseCreated, ready for beginSession.
 * @param out - at least 60 bytes (normally a 92-byte message buffer).
 * @returns false, with the state untouched, unless the peer is in
 *   InitiationConsumed and both DHs are non-zero. `out` is then unspecified.
 * @throws RangeError if `out` is too short.
 */
export function createResponse(hs: PeerHandshake, n: Noise, localIndex: number, out: Uint8Array): boolean {
  if (out.length < RESPONSE_MAC1) throw new RangeError(`createResponse: out needs ${RESPONSE_MAC1} bytes`);
  if (hs.state !== HandshakeState.InitiationConsumed) return false;
  const { h, c, k, tau, hash } = n;

  // (E_priv_r, E_pub_r) := DH-GENERATE(); msg.ephemeral := E_pub_r
  const e = n.dh.generate();
  const ephemeral = out.subarray(RESPONSE_EPHEMERAL, RESPONSE_EMPTY);
  ephemeral.set(e.publicKey);
  // Cr := KDF1(Cr, E_pub_r)
  hash.kdf(hs.chainKey, ephemeral, c);
  // Hr := HASH(Hr || msg.ephemeral)
  hash.hash(hs.hash, ephemeral, h);
  // Cr := KDF1(Cr, DH(E_priv_r, E_pub_i))
  // Cr := KDF1(Cr, DH(E_priv_r, S_pub_i))
  const ok = mixDh(n, e.privateKey, hs.remoteEphemeral) && mixDh(n, e.privateKey, hs.remoteStatic);
  wipe(e.privateKey); // the responder's ephemeral is not needed after this
  if (!ok) { n.wipe(); return false; }
  // (Cr, tau, k) := KDF3(Cr, Q)
  hash.kdf(c, hs.presharedKey, c, tau, k);
  // Hr := HASH(Hr || tau)
  hash.hash(h, tau, h);
  wipe(tau);
  // msg.empty := AEAD(k, 0, e, Hr)
  const encEmpty = out.subarray(RESPONSE_EMPTY, RESPONSE_MAC1);
  n.aead.seal(k, ZERO_NONCE, h, EMPTY, encEmpty);
  wipe(k);
  // Hr := HASH(Hr || msg.empty)
  hash.hash(h, encEmpty, h);
  // msg.type := 2; msg.reserved := 0^3; msg.sender := I_r; msg.receiver := I_i
  writeU32(out, 0, MESSAGE_RESPONSE);
  writeU32(out, RESPONSE_SENDER, localIndex);
  writeU32(out, RESPONSE_RECEIVER, hs.remoteIndex);

  hs.hash.set(h);
  hs.chainKey.set(c);
  n.wipe();
  hs.localIndex = localIndex >>> 0;
  hs.state = HandshakeState.ResponseCreated;
  return true;
}

/**
 * Consumes a handshake response (whitepaper 5.4.3, initiator side). The
 * caller has checked mac1 (and mac2 under load).
 * @param msg - the whole 92-byte message.
 * @param findByIndex - the peer whose initiation used this index as sender.
 * @returns the peer, now in ResponseConsumed (ready for beginSession); or
 *   null, with no peer changed, if the message is malformed, no peer has an
 *   initiation in flight under that receiver index, a DH is zero, or the
 *   empty payload does not authenticate.
 */
export function consumeResponse(
  local: LocalStatic, msg: Uint8Array, n: Noise,
  findByIndex: (receiverIndex: number) => PeerHandshake | undefined,
): PeerHandshake | null {
  if (msg.length !== MESSAGE_RESPONSE_SIZE || readU32(msg, 0) !== MESSAGE_RESPONSE) return null;
  const receiver = readU32(msg, RESPONSE_RECEIVER);
  const hs = findByIndex(receiver);
  if (hs === undefined || hs.state !== HandshakeState.InitiationSent || hs.localIndex !== receiver) return null;
  const { h, c, k, tau, hash } = n;
  const ephemeral = msg.subarray(RESPONSE_EPHEMERAL, RESPONSE_EMPTY);
  const encEmpty = msg.subarray(RESPONSE_EMPTY, RESPONSE_MAC1);

  // Cr := KDF1(Cr, msg.ephemeral)   (Cr and Hr as the initiation left them)
  hash.kdf(hs.chainKey, ephemeral, c);
  // Hr := HASH(Hr || msg.ephemeral)
  hash.hash(hs.hash, ephemeral, h);
  // Cr := KDF1(Cr, DH(E_priv_i, msg.ephemeral))
  // Cr := KDF1(Cr, DH(S_priv_i, msg.ephemeral))
  if (!mixDh(n, hs.ephemeralPrivate, ephemeral) || !mixDh(n, local.privateKey, ephemeral)) { n.wipe(); return null; }
  // (Cr, tau, k) := KDF3(Cr, Q)
  hash.kdf(c, hs.presharedKey, c, tau, k);
  // Hr := HASH(Hr || tau)
  hash.hash(h, tau, h);
  wipe(tau);
  // e := AEAD-DEC(k, 0, msg.empty, Hr)
  const ok = n.aead.open(k, ZERO_NONCE, h, encEmpty, EMPTY);
  wipe(k);
  if (!ok) { n.wipe(); return null; }
  // Hr := HASH(Hr || msg.empty)
  hash.hash(h, encEmpty, h);

  hs.hash.set(h);
  hs.chainKey.set(c);
  n.wipe();
  wipe(hs.ephemeralPrivate); // the initiator's ephemeral is not needed after this
  hs.remoteIndex = readU32(msg, RESPONSE_SENDER);
  hs.state = HandshakeState.ResponseConsumed;
  return hs;
}

/**
 * Derives the transport keys (whitepaper 5.4.5) once a handshake is complete:
 * (T_send_i, T_recv_i) := KDF2(Ci, e) for the initiator (after consumeResponse),
 * (T_recv_r, T_send_r) := KDF2(Cr, e) for the responder (after createResponse).
 * Then wipes H, C and the ephemerals, resets localIndex to 0 (the index now
 * belongs to the session) and returns the state to None.
 * @returns the keys and indices (the caller owns and should eventually wipe the keys), or null in any other state.
 */
export function beginSession(hs: PeerHandshake, n: Noise): {
  sendKey: Uint8Array; recvKey: Uint8Array; isInitiator: boolean; localIndex: number; remoteIndex: number;
} | null {
  const isInitiator = hs.state === HandshakeState.ResponseConsumed;
  if (!isInitiator && hs.state !== HandshakeState.ResponseCreated) return null;
  const sendKey = new Uint8Array(32), recvKey = new Uint8Array(32);
  if (isInitiator) n.hash.kdf(hs.chainKey, EMPTY, sendKey, recvKey);
  else n.hash.kdf(hs.chainKey, EMPTY, recvKey, sendKey);
  const session = { sendKey, recvKey, isInitiator, localIndex: hs.localIndex, remoteIndex: hs.remoteIndex };
  hs.clear();
  return session;
}
