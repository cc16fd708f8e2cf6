// Configuration and status in the model of the cross-platform userspace API
// (wg(8)'s set=1 / get=1), as plain objects.
import type { Endpoint } from "./peer.ts";
import type { Prefix } from "./ip.ts";

export interface PeerConfig {
  publicKey: Uint8Array;
  /** Remove this peer. */
  remove?: boolean;
  /** Only change the peer if it exists already. */
  updateOnly?: boolean;
  /** null removes the preshared key. */
  presharedKey?: Uint8Array | null;
  endpoint?: Endpoint;
  /** Seconds; 0 turns it off. */
  persistentKeepalive?: number;
  /** Drop the peer's prefixes before adding `allowedIps`. */
  replaceAllowedIps?: boolean;
  allowedIps?: (string | Prefix)[];
}

export interface DeviceConfig {
  /** null (or all zeros) removes the private key. */
  privateKey?: Uint8Array | null;
  listenPort?: number;
  fwmark?: number;
  /** Remove every peer before applying `peers`. */
  replacePeers?: boolean;
  peers?: PeerConfig[];
}

export interface PeerStatus {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  endpoint: Endpoint | null;
  /** Wall-clock ms of the last handshake; 0 when never. */
  lastHandshakeTime: number;
  rxBytes: number;
  txBytes: number;
  persistentKeepalive: number;
  allowedIps: string[];
}

export interface DeviceStatus {
  privateKey: Uint8Array | null;
  publicKey: Uint8Array | null;
  listenPort: number;
  fwmark: number;
  peers: PeerStatus[];
}

// Hex digits into a reused byte buffer, decoded in one call: a 64-digit key
// costs about a tenth of building the string two digits at a time (10,000
// keys: 5.5 ms against 27-65), which a set of many peers does several times
// per peer. The buffer is zeroed after each use: the UAPI writes private
// and preshared keys through here too.
const DIGITS = Uint8Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
const hexBytes = new Uint8Array(64);
const hexText = new TextDecoder(); // hex digits are ASCII: UTF-8, the one label every runtime has

/** Lowercase hex, as the UAPI writes keys; also the engine's map key for peers. */
export function keyHex(k: Uint8Array): string {
  const out = k.length === 32 ? hexBytes : new Uint8Array(2 * k.length);
  for (let i = 0; i < k.length; i++) {
    const x = k[i];
    out[2 * i] = DIGITS[x >> 4];
    out[2 * i + 1] = DIGITS[x & 15];
  }
  const s = hexText.decode(out);
  out.fill(0); // it may have been a private or preshared key
  return s;
}

/** Parses a 32-byte key from 64 hex digits (UAPI). Throws RangeError. */
export function keyFromHex(s: string, what = "key"): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(s)) throw new RangeError(`invalid ${what}: expected 64 hex digits`);
  const k = new Uint8Array(32);
  for (let i = 0; i < 32; i++) k[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return k;
}

/** Parses a 32-byte key from base64 (wg(8) and wg-quick). Throws RangeError. */
export function keyFromBase64(s: string, what = "key"): Uint8Array {
  const t = s.trim();
  if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(t)) throw new RangeError(`invalid ${what}: expected 44 base64 characters`);
  const bin = atob(t);
  const k = new Uint8Array(32);
  for (let i = 0; i < 32; i++) k[i] = bin.charCodeAt(i);
  return k;
}

export function keyToBase64(k: Uint8Array): string {
  let s = "";
  for (let i = 0; i < k.length; i++) s += String.fromCharCode(k[i]);
  return btoa(s);
}
