// IPv4 (RFC 791) and IPv6 (RFC 8200) headers: validation of what arrives,
// and the headers of what the stack sends. No fragmentation: the stack's
// segments fit the MTU, and arriving fragments are dropped (counted).
import { finish, sum } from "./checksum.ts";

export const IPV4_HEADER = 20;
export const IPV6_HEADER = 40;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;
/** TTL / hop limit of every packet the stack sends. */
export const HOP_LIMIT = 64;

// IPv6 extension headers the stack walks past (RFC 8200 4.1).
const EXT_HOP_BY_HOP = 0;
const EXT_ROUTING = 43;
const EXT_FRAGMENT = 44;
const EXT_DEST_OPTIONS = 60;
const MAX_EXT_HEADERS = 8;

/** Why parseIp refused a packet. */
export const IP_OK = 0;
export const IP_MALFORMED = 1;
export const IP_CHECKSUM = 2;
export const IP_FRAGMENT = 3;
export const IP_UNSUPPORTED = 4;

/** A parsed header: offsets into `packet`, which is not copied. Reused from packet to packet. */
export class IpHeader {
  packet: Uint8Array = new Uint8Array(0);
  version = 4;
  /** Upper-layer protocol (after any IPv6 extension headers). */
  proto = 0;
  /** Address length: 4 or 16. */
  alen = 4;
  srcOff = 0;
  dstOff = 0;
  /** The upper-layer data, excluding link padding past the IP length. */
  payloadOff = 0;
  payloadLen = 0;
}

/** Validates an IP packet and fills `h`; returns IP_OK or why it was refused. Never throws. */
export function parseIp(p: Uint8Array, h: IpHeader): number {
  if (p.length < 1) return IP_MALFORMED;
  const version = p[0] >> 4;
  h.packet = p;
  if (version === 4) {
    if (p.length < IPV4_HEADER) return IP_MALFORMED;
    const ihl = (p[0] & 0x0f) * 4;
    const total = (p[2] << 8) | p[3];
    if (ihl < IPV4_HEADER || total < ihl || total > p.length) return IP_MALFORMED;
    if (finish(sum(p, 0, ihl)) !== 0) return IP_CHECKSUM;
    // More Fragments, or a non-zero offset: a fragment.
    if ((p[6] & 0x20) !== 0 || (((p[6] & 0x1f) << 8) | p[7]) !== 0) return IP_FRAGMENT;
    h.version = 4; h.alen = 4; h.proto = p[9];
    h.srcOff = 12; h.dstOff = 16;
    h.payloadOff = ihl; h.payloadLen = total - ihl;
    return IP_OK;
  }
  if (version === 6) {
    if (p.length < IPV6_HEADER) return IP_MALFORMED;
    const end = IPV6_HEADER + ((p[4] << 8) | p[5]);
    if (end > p.length) return IP_MALFORMED;
    let next = p[6], off = IPV6_HEADER;
    for (let n = 0; ; n++) {
      if (next === EXT_FRAGMENT) return IP_FRAGMENT;
      if (next !== EXT_HOP_BY_HOP && next !== EXT_ROUTING && next !== EXT_DEST_OPTIONS) break;
      // Hop-by-hop options may only come first (RFC 8200 4.1).
      if (n >= MAX_EXT_HEADERS || (next === EXT_HOP_BY_HOP && n > 0) || off + 8 > end) return IP_MALFORMED;
      // A routing header with segments left means we are not the final destination.
      if (next === EXT_ROUTING && p[off + 3] !== 0) return IP_UNSUPPORTED;
      next = p[off];
      off += (p[off + 1] + 1) * 8;
      if (off > end) return IP_MALFORMED;
    }
    h.version = 6; h.alen = 16; h.proto = next;
    h.srcOff = 8; h.dstOff = 24;
    h.payloadOff = off; h.payloadLen = end - off;
    return IP_OK;
  }
  return IP_MALFORMED;
}

/** Header length for a family (by address length). */
export function ipHeaderLen(alen: number): number {
  return alen === 4 ? IPV4_HEADER : IPV6_HEADER;
}

/**
 * Writes an IP header at buf[off] for `payloadLen` bytes of `proto` from src
 * to dst (both 4 or 16 bytes). IPv4 gets Don't Fragment and `id`. Returns the
 * header length.
 */
export function writeIp(buf: Uint8Array, off: number, src: Uint8Array, dst: Uint8Array, proto: number, payloadLen: number, id: number): number {
  if (src.length === 4) {
    const total = IPV4_HEADER + payloadLen;
    buf[off] = 0x45; buf[off + 1] = 0;
    buf[off + 2] = total >> 8; buf[off + 3] = total & 0xff;
    buf[off + 4] = (id >> 8) & 0xff; buf[off + 5] = id & 0xff;
    buf[off + 6] = 0x40; buf[off + 7] = 0; // DF
    buf[off + 8] = HOP_LIMIT; buf[off + 9] = proto;
    buf[off + 10] = 0; buf[off + 11] = 0;
    buf.set(src, off + 12);
    buf.set(dst, off + 16);
    const c = finish(sum(buf, off, IPV4_HEADER));
    buf[off + 10] = c >> 8; buf[off + 11] = c & 0xff;
    return IPV4_HEADER;
  }
  buf[off] = 0x60; buf[off + 1] = 0; buf[off + 2] = 0; buf[off + 3] = 0;
  buf[off + 4] = payloadLen >> 8; buf[off + 5] = payloadLen & 0xff;
  buf[off + 6] = proto; buf[off + 7] = HOP_LIMIT;
  buf.set(src, off + 8);
  buf.set(dst, off + 24);
  return IPV6_HEADER;
}

/** A compact Map key for an address (4 or 16 bytes at off). */
export function addrKey(b: Uint8Array, off: number, alen: number): string {
  const w = (i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  if (alen === 4) return String(w(off));
  return `${w(off)}.${w(off + 4)}.${w(off + 8)}.${w(off + 12)}`;
}

/** Whether an address may be a unicast source (not unspecified, multicast or IPv4 broadcast). */
export function unicastSource(b: Uint8Array, off: number, alen: number): boolean {
  if (alen === 4) {
    if ((b[off] & 0xf0) === 0xe0) return false; // 224.0.0.0/4
    if (b[off] === 255 && b[off + 1] === 255 && b[off + 2] === 255 && b[off + 3] === 255) return false;
    return !(b[off] === 0 && b[off + 1] === 0 && b[off + 2] === 0 && b[off + 3] === 0);
  }
  if (b[off] === 0xff) return false; // ff00::/8
  for (let i = 0; i < 16; i++) if (b[off + i] !== 0) return true;
  return false;
}
