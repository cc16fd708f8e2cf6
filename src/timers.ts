// When each peer timer is armed or cleared, named after the protocol event
// that moves it (whitepaper section 6; wireguard-go's timers.go). What a
// timer does when it fires is the engine's business (engine.ts: tick).
import {
  KEEPALIVE_TIMEOUT, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER, ZERO_KEYS_AFTER,
} from "./constants.ts";
import { Timer, type Peer } from "./peer.ts";
import { randomU32 } from "./crypto.ts";

/** 0..333 ms of jitter, so peers that start together don't retry in lockstep. */
export function jitter(): number {
  return randomU32() % REKEY_TIMEOUT_JITTER;
}

const armed = (p: Peer, t: Timer) => p.timers[t] !== Infinity;

/**
 * Sets a deadline, and lowers the peer's shared wake hint to it if it is
 * earlier: the engine answers `wake` from that hint instead of a walk over
 * every peer after each batch. Every finite deadline is set here.
 */
function arm(p: Peer, t: Timer, at: number): void {
  p.timers[t] = at;
  if (at < p.wakeHint.at) p.wakeHint.at = at;
}

/** Data was sent: expect something back within KEEPALIVE + REKEY_TIMEOUT, else handshake. */
export function dataSent(p: Peer, now: number): void {
  if (!armed(p, Timer.NewHandshake)) arm(p, Timer.NewHandshake, now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter());
}

/** Data was received: answer with a keepalive if nothing else goes out in time. */
export function dataReceived(p: Peer, now: number): void {
  if (!armed(p, Timer.SendKeepalive)) arm(p, Timer.SendKeepalive, now + KEEPALIVE_TIMEOUT);
  else p.needAnotherKeepalive = true;
}

/** Any authenticated packet went out: it serves as the keepalive. */
export function anyAuthenticatedPacketSent(p: Peer): void {
  p.timers[Timer.SendKeepalive] = Infinity;
}

/** Any authenticated packet came in: the peer is alive, no new handshake needed. */
export function anyAuthenticatedPacketReceived(p: Peer): void {
  p.timers[Timer.NewHandshake] = Infinity;
}

/** Anything authenticated went either way: restart the persistent keepalive. */
export function anyAuthenticatedPacketTraversal(p: Peer, now: number): void {
  if (p.persistentKeepalive > 0) arm(p, Timer.PersistentKeepalive, now + p.persistentKeepalive * 1000);
}

/** An initiation went out: retry it after REKEY_TIMEOUT plus jitter. */
export function handshakeInitiated(p: Peer, now: number): void {
  p.timers[Timer.SendKeepalive] = Infinity;
  arm(p, Timer.RetransmitHandshake, now + REKEY_TIMEOUT + jitter());
}

/** A handshake completed (response consumed, or first data on a responder's session). */
export function handshakeComplete(p: Peer, wallNow: number): void {
  p.timers[Timer.RetransmitHandshake] = Infinity;
  p.handshakeAttempts = 0;
  p.sentLastMinuteHandshake = false;
  p.lastHandshakeWall = wallNow;
}

/** New keys exist: zero all key material if no newer session follows in time. */
export function sessionDerived(p: Peer, now: number): void {
  arm(p, Timer.ZeroKeyMaterial, now + ZERO_KEYS_AFTER);
}

/** The earliest armed deadline of a peer. */
export function nextDeadline(p: Peer): number {
  let t = Infinity;
  for (let i = 0; i < p.timers.length; i++) if (p.timers[i] < t) t = p.timers[i];
  return t;
}
