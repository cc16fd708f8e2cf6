// ICMP for IPv4 (RFC 792) and IPv6 (RFC 4443): echo request and reply, and
// the destination-unreachable message a datagram to a closed port earns
// (RFC 1122 4.1.3.1). Other messages are counted and dropped.
import { finish, pseudo, storeChecksum, sum } from "./checksum.ts";
import { PROTO_ICMP, PROTO_ICMPV6, ipHeaderLen, writeIp } from "./ip.ts";

export const ICMP_HEADER = 8;
export const ICMP4_ECHO_REPLY = 0;
export const ICMP4_UNREACHABLE = 3;
export const ICMP4_ECHO_REQUEST = 8;
export const ICMP4_PORT_UNREACHABLE = 3;
export const ICMP6_UNREACHABLE = 1;
export const ICMP6_PORT_UNREACHABLE = 4;
export const ICMP6_ECHO_REQUEST = 128;
export const ICMP6_ECHO_REPLY = 129;
/** RFC 4443 2.4 (c): an ICMPv6 error must fit the minimum IPv6 MTU. */
const IPV6_MIN_MTU = 1280;

/** A parsed ICMP message header; the body is packet[dataOff, dataOff + dataLen). */
export class IcmpHeader {
  type = 0;
  code = 0;
  /** Echo identifier and sequence number (meaningful for echo messages). */
  id = 0;
  seq = 0;
  dataOff = 0;
  dataLen = 0;
}

/**
 * Parses and checks the ICMP (alen 4) or ICMPv6 (alen 16, with the
 * pseudo-header) message at p[off, off + len). False when short or corrupt.
 */
export function parseIcmp(p: Uint8Array, off: number, len: number, srcOff: number, dstOff: number, alen: number, m: IcmpHeader): boolean {
  if (len < ICMP_HEADER) return false;
  const s = alen === 4 ? sum(p, off, len) : sum(p, off, len, pseudo(p, srcOff, p, dstOff, alen, PROTO_ICMPV6, len));
  if (finish(s) !== 0) return false;
  m.type = p[off];
  m.code = p[off + 1];
  m.id = (p[off + 4] << 8) | p[off + 5];
  m.seq = (p[off + 6] << 8) | p[off + 7];
  m.dataOff = off + ICMP_HEADER;
  m.dataLen = len - ICMP_HEADER;
  return true;
}

function finishIcmp(buf: Uint8Array, off: number, len: number, src: Uint8Array, dst: Uint8Array): void {
  if (src.length === 4) {
    const c = finish(sum(buf, off, len));
    buf[off + 2] = c >> 8; buf[off + 3] = c & 0xff;
  } else storeChecksum(buf, off, len, src, dst, PROTO_ICMPV6, 2);
}

/** A whole echo packet (request or reply by `reply`) from src to dst carrying data[dataOff, dataOff + dataLen). */
export function echoPacket(
  src: Uint8Array, dst: Uint8Array, reply: boolean, id: number, seq: number, data: Uint8Array, dataOff: number, dataLen: number, ipId: number,
): Uint8Array {
  const v4 = src.length === 4, ihl = ipHeaderLen(src.length), len = ICMP_HEADER + dataLen;
  const p = new Uint8Array(ihl + len);
  writeIp(p, 0, src, dst, v4 ? PROTO_ICMP : PROTO_ICMPV6, len, ipId);
  p[ihl] = v4 ? (reply ? ICMP4_ECHO_REPLY : ICMP4_ECHO_REQUEST) : (reply ? ICMP6_ECHO_REPLY : ICMP6_ECHO_REQUEST);
  p[ihl + 4] = id >> 8; p[ihl + 5] = id & 0xff;
  p[ihl + 6] = seq >> 8; p[ihl + 7] = seq & 0xff;
  p.set(data.subarray(dataOff, dataOff + dataLen), ihl + ICMP_HEADER);
  finishIcmp(p, ihl, len, src, dst);
  return p;
}

/**
 * A port-unreachable error from src to dst quoting the offending packet:
 * its IP header and first 8 payload bytes over IPv4 (RFC 792), as much as
 * fits in 1280 bytes over IPv6 (RFC 4443 3.1), and never more than `mtu`.
 */
export function portUnreachable(src: Uint8Array, dst: Uint8Array, offending: Uint8Array, offendingPayloadOff: number, mtu: number, ipId: number): Uint8Array {
  const v4 = src.length === 4, ihl = ipHeaderLen(src.length);
  const limit = Math.min(mtu, v4 ? ihl + ICMP_HEADER + offendingPayloadOff + 8 : IPV6_MIN_MTU);
  const quote = Math.max(0, Math.min(offending.length, limit - ihl - ICMP_HEADER));
  const len = ICMP_HEADER + quote;
  const p = new Uint8Array(ihl + len);
  writeIp(p, 0, src, dst, v4 ? PROTO_ICMP : PROTO_ICMPV6, len, ipId);
  p[ihl] = v4 ? ICMP4_UNREACHABLE : ICMP6_UNREACHABLE;
  p[ihl + 1] = v4 ? ICMP4_PORT_UNREACHABLE : ICMP6_PORT_UNREACHABLE;
  p.set(offending.subarray(0, quote), ihl + ICMP_HEADER);
  finishIcmp(p, ihl, len, src, dst);
  return p;
}
