// WireGuard message layouts (whitepaper 5.4.2, 5.4.3, 5.4.7, 5.4.6): types,
// sizes and field offsets. All integers little-endian. Specification
// constants only; no parsing state.

/** Message types: the first byte, followed by three zero bytes (read the four as one u32). */
export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const MESSAGE_INITIATION_SIZE = 148;
export const MESSAGE_RESPONSE_SIZE = 92;
export const MESSAGE_COOKIE_REPLY_SIZE = 64;
/** Type, receiver and counter in front of the sealed payload. */
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16;
/** A keepalive: header plus the tag of an empty payload. */
export const MESSAGE_TRANSPORT_MIN_SIZE = 32;

export const KEY_SIZE = 32;
export const TAG_SIZE = 16;
export const MAC_SIZE = 16;
export const TIMESTAMP_SIZE = 12;
export const COOKIE_SIZE = 16;
export const COOKIE_NONCE_SIZE = 24;

// Handshake initiation (148): type u8, 3 zero, sender u32, ephemeral 32,
// static 32+16, timestamp 12+16, mac1 16, mac2 16.
export const INITIATION_SENDER = 4;
export const INITIATION_EPHEMERAL = 8;
export const INITIATION_STATIC = 40;
export const INITIATION_TIMESTAMP = 88;
export const INITIATION_MAC1 = 116;
export const INITIATION_MAC2 = 132;

// Handshake response (92): type u8, 3 zero, sender u32, receiver u32,
// ephemeral 32, empty 0+16, mac1 16, mac2 16.
export const RESPONSE_SENDER = 4;
export const RESPONSE_RECEIVER = 8;
export const RESPONSE_EPHEMERAL = 12;
export const RESPONSE_EMPTY = 44;
export const RESPONSE_MAC1 = 60;
export const RESPONSE_MAC2 = 76;

// Cookie reply (64): type u8, 3 zero, receiver u32, nonce 24, cookie 16+16.
export const COOKIE_REPLY_RECEIVER = 4;
export const COOKIE_REPLY_NONCE = 8;
export const COOKIE_REPLY_COOKIE = 32;

// Transport data (>= 32): type u8, 3 zero, receiver u32, counter u64, payload.
export const TRANSPORT_RECEIVER = 4;
export const TRANSPORT_COUNTER = 8;
export const TRANSPORT_CONTENT = 16;

/** Reads a little-endian u32 at `offset`. */
export function readU32(b: Uint8Array, offset: number): number {
  return (b[offset] | (b[offset + 1] << 8) | (b[offset + 2] << 16) | (b[offset + 3] << 24)) >>> 0;
}

/** Writes `v` (taken mod 2^32) as a little-endian u32 at `offset`. */
export function writeU32(b: Uint8Array, offset: number, v: number): void {
  b[offset] = v;
  b[offset + 1] = v >>> 8;
  b[offset + 2] = v >>> 16;
  b[offset + 3] = v >>> 24;
}

/** The first four bytes as a u32: the message type, or a value > 255 when the reserved bytes are not zero. 0 if too short. */
export function messageType(b: Uint8Array): number {
  return b.length >= 4 ? readU32(b, 0) : 0;
}
