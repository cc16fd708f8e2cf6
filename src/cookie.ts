// mac1, mac2 and cookie replies: WireGuard's defence against handshake
// floods (whitepaper 5.3, 5.4.4, 5.4.7).
//
// Every initiation and response carries
//   mac1 = MAC(HASH(LABEL_MAC1 || S_pub_receiver), msg[0 .. mac1])
//   mac2 = MAC(cookie, msg[0 .. mac2])    (zeros when the sender holds no fresh cookie)
// A responder under load answers messages without a valid mac2 with a
// cookie reply instead of doing any DH:
//   cookie = MAC(secret, source IP || source port), secret random, changed every 120 s
//   reply  = XAEAD(HASH(LABEL_COOKIE || S_pub_responder), random 24-byte nonce, cookie, mac1 of the message answered)
// The sender decrypts it only with the mac1 it really sent as AAD, and
// forgets the cookie 120 s later.
import { type Aead, type NoiseHash, LABEL_COOKIE, LABEL_MAC1, checkKey, equal, wipe } from "./crypto.ts";
import {
  COOKIE_NONCE_SIZE, COOKIE_REPLY_COOKIE, COOKIE_REPLY_NONCE, COOKIE_REPLY_RECEIVER, COOKIE_SIZE, INITIATION_MAC1,
  MAC_SIZE, MESSAGE_COOKIE_REPLY, MESSAGE_COOKIE_REPLY_SIZE, MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE_SIZE,
  RESPONSE_MAC1, TAG_SIZE, readU32, writeU32,
} from "./messages.ts";

/** How long a cookie secret (checker) and a received cookie (generator) stay valid: 120 s (whitepaper 6.1, COOKIE_REFRESH_TIME). */
export const COOKIE_REFRESH_TIME_MS = 120_000;

/** Offset of mac1 in a whole initiation or response (mac2 follows 16 bytes later), or -1 for any other length. */
function mac1Offset(msg: Uint8Array): number {
  if (msg.length === MESSAGE_INITIATION_SIZE) return INITIATION_MAC1;
  if (msg.length === MESSAGE_RESPONSE_SIZE) return RESPONSE_MAC1;
  return -1;
}

function checkSource(source: Uint8Array): void {
  if (!(source instanceof Uint8Array)) throw new TypeError("source must be a Uint8Array");
  if (source.length !== 6 && source.length !== 18) throw new RangeError("source must be IP (4 or 16 bytes) + port (2 bytes)");
}

/** The receiving side: checks mac1/mac2 of incoming handshake messages and makes cookie replies. One per local static key. */
export class CookieChecker {
  private readonly aead: Aead;
  private readonly h: NoiseHash;
  /** HASH(LABEL_MAC1 || S_pub_local) */
  private readonly mac1Key = new Uint8Array(32);
  /** HASH(LABEL_COOKIE || S_pub_local) */
  private readonly cookieKey = new Uint8Array(32);
  private readonly secret = new Uint8Array(32);
  private secretSetMs = -Infinity;
  /** The MAC being checked, and the cookie mac2 is checked with: written afresh for each message, wiped after. */
  private readonly expected = new Uint8Array(MAC_SIZE);
  private readonly cookie = new Uint8Array(COOKIE_SIZE);

  /**
   * @param localPublic - our static public key.
   * @param aead - for XChaCha20-Poly1305.
   * @param h - for the MACs.
   * @throws TypeError / RangeError if localPublic is not 32 bytes.
   */
  constructor(localPublic: Uint8Array, aead: Aead, h: NoiseHash) {
    checkKey(localPublic, "localPublic");
    this.aead = aead;
    this.h = h;
    h.hash(LABEL_MAC1, localPublic, this.mac1Key);
    h.hash(LABEL_COOKIE, localPublic, this.cookieKey);
  }

  /** Whether mac1 of a whole initiation (148 bytes) or response (92) is right. Constant time in the message content; false for other lengths. */
  checkMac1(msg: Uint8Array): boolean {
    const o = mac1Offset(msg);
    if (o < 0) return false;
    this.h.mac(this.mac1Key, msg.subarray(0, o), this.expected);
    return equal(this.expected, msg.subarray(o, o + MAC_SIZE));
  }

  /**
   * Whether mac2 is right for a cookie we gave `source` under the current secret.
   * Always false when no secret has been made in the last 120 s (none was handed out).
   * @param source - IP bytes (4 or 16) then the port, big-endian (2).
   * @param nowMs - the caller's clock.
   */
  checkMac2(msg: Uint8Array, source: Uint8Array, nowMs: number): boolean {
    checkSource(source);
    const o = mac1Offset(msg);
    if (o < 0) return false;
    if (!(nowMs - this.secretSetMs < COOKIE_REFRESH_TIME_MS)) return false;
    this.h.mac(this.secret, source, this.cookie);
    this.h.mac(this.cookie, msg.subarray(0, o + MAC_SIZE), this.expected);
    wipe(this.cookie);
    return equal(this.expected, msg.subarray(o + MAC_SIZE, o + 2 * MAC_SIZE));
  }

  /**
   * Writes a cookie reply (whitepaper 5.4.7) to `msg` into `out`. Makes a new
   * random secret first if the current one is 120 s old (or there is none).
   * @param msg - the whole initiation or response being answered (its mac1 is bound into the reply).
   * @param receiverIndex - the sender field of `msg`.
   * @param source - where `msg` came from: IP bytes (4 or 16) then the port, big-endian (2).
   * @param out - 64 bytes.
   * @throws RangeError if `msg` is not 148 or 92 bytes, `out` is shorter than 64, or `source` is malformed.
   */
  createReply(msg: Uint8Array, receiverIndex: number, source: Uint8Array, nowMs: number, out: Uint8Array): void {
    checkSource(source);
    const o = mac1Offset(msg);
    if (o < 0) throw new RangeError("createReply: msg must be a whole initiation or response");
    if (out.length < MESSAGE_COOKIE_REPLY_SIZE) throw new RangeError("createReply: out needs 64 bytes");
    // Rm is changed every 120 s (whitepaper 6.1).
    if (!(nowMs - this.secretSetMs < COOKIE_REFRESH_TIME_MS)) {
      crypto.getRandomValues(this.secret);
      this.secretSetMs = nowMs;
    }
    // tau := MAC(Rm, A_m')
    const cookie = this.cookie;
    this.h.mac(this.secret, source, cookie);
    // msg.type := 3; msg.reserved := 0^3; msg.receiver := I_m
    writeU32(out, 0, MESSAGE_COOKIE_REPLY);
    writeU32(out, COOKIE_REPLY_RECEIVER, receiverIndex);
    // msg.nonce := random 24 bytes
    const nonce = out.subarray(COOKIE_REPLY_NONCE, COOKIE_REPLY_NONCE + COOKIE_NONCE_SIZE);
    crypto.getRandomValues(nonce);
    // msg.cookie := XAEAD(HASH(LABEL_COOKIE || S_pub_m), msg.nonce, tau, M)   (M: the mac1 of the message answered)
    this.aead.xseal(this.cookieKey, nonce, msg.subarray(o, o + MAC_SIZE), cookie,
      out.subarray(COOKIE_REPLY_COOKIE, COOKIE_REPLY_COOKIE + COOKIE_SIZE + TAG_SIZE));
    wipe(cookie);
  }
}

/** The sending side, one per peer: adds mac1/mac2 to our handshake messages and takes the peer's cookie replies. */
export class CookieGenerator {
  private readonly aead: Aead;
  private readonly h: NoiseHash;
  /** HASH(LABEL_MAC1 || S_pub_remote) */
  private readonly mac1Key = new Uint8Array(32);
  /** HASH(LABEL_COOKIE || S_pub_remote) */
  private readonly cookieKey = new Uint8Array(32);
  private readonly lastMac1 = new Uint8Array(MAC_SIZE);
  private hasLastMac1 = false;
  private readonly cookie = new Uint8Array(COOKIE_SIZE);
  private cookieSetMs = -Infinity;

  /**
   * @param remotePublic - the peer's static public key.
   * @param aead - for XChaCha20-Poly1305.
   * @param h - for the MACs.
   * @throws TypeError / RangeError if remotePublic is not 32 bytes.
   */
  constructor(remotePublic: Uint8Array, aead: Aead, h: NoiseHash) {
    checkKey(remotePublic, "remotePublic");
    this.aead = aead;
    this.h = h;
    h.hash(LABEL_MAC1, remotePublic, this.mac1Key);
    h.hash(LABEL_COOKIE, remotePublic, this.cookieKey);
  }

  /**
   * Writes mac1, and mac2 if we hold a cookie from this peer less than 120 s old
   * (else 16 zero bytes), into a whole initiation (148) or response (92).
   * Remembers the mac1, the only one a cookie reply will be accepted for.
   * @throws RangeError for any other length.
   */
  addMacs(msg: Uint8Array, nowMs: number): void {
    const o = mac1Offset(msg);
    if (o < 0) throw new RangeError("addMacs: msg must be a whole initiation or response");
    // msg.mac1 := MAC(HASH(LABEL_MAC1 || S_pub_m'), msg_alpha)
    const mac1 = msg.subarray(o, o + MAC_SIZE);
    this.h.mac(this.mac1Key, msg.subarray(0, o), mac1);
    this.lastMac1.set(mac1);
    this.hasLastMac1 = true;
    // if Lm = e or Lm older than 120 s: msg.mac2 := 0^16, else msg.mac2 := MAC(Lm, msg_beta)
    const mac2 = msg.subarray(o + MAC_SIZE, o + 2 * MAC_SIZE);
    if (nowMs - this.cookieSetMs < COOKIE_REFRESH_TIME_MS) {
      this.h.mac(this.cookie, msg.subarray(0, o + MAC_SIZE), mac2);
    } else {
      mac2.fill(0);
      wipe(this.cookie);
      this.cookieSetMs = -Infinity; // forgotten for good
    }
  }

  /**
   * Takes a cookie reply (64 bytes) to the last message we sent. Accepted once
   * per mac1: a second reply to the same message, a reply to an older one, or
   * one that does not decrypt is refused.
   * @returns whether the cookie was stored.
   */
  consumeReply(msg: Uint8Array, nowMs: number): boolean {
    if (msg.length !== MESSAGE_COOKIE_REPLY_SIZE || readU32(msg, 0) !== MESSAGE_COOKIE_REPLY) return false;
    if (!this.hasLastMac1) return false;
    // tau := XAEAD-DEC(HASH(LABEL_COOKIE || S_pub_m), msg.nonce, msg.cookie, M)
    const cookie = new Uint8Array(COOKIE_SIZE);
    const ok = this.aead.xopen(this.cookieKey, msg.subarray(COOKIE_REPLY_NONCE, COOKIE_REPLY_NONCE + COOKIE_NONCE_SIZE),
      this.lastMac1, msg.subarray(COOKIE_REPLY_COOKIE, COOKIE_REPLY_COOKIE + COOKIE_SIZE + TAG_SIZE), cookie);
    if (!ok) return false;
    this.cookie.set(cookie);
    wipe(cookie);
    this.cookieSetMs = nowMs;
    this.hasLastMac1 = false;
    return true;
  }
}
