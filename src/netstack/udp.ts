// UDP datagrams (RFC 768; over IPv6, RFC 8200 8.1).
import { finish, pseudo, sum } from "./checksum.ts";
import { PROTO_UDP } from "./ip.ts";

export const UDP_HEADER = 8;

/** A parsed datagram; data is packet[dataOff, dataOff + dataLen). Reused. */
export class UdpHeader {
  srcPort = 0;
  dstPort = 0;
  dataOff = 0;
  dataLen = 0;
}

/**
 * Parses and checks the datagram at p[off, off + len) (the IP payload) sent
 * from the address at srcOff to the one at dstOff. A zero checksum means
 * "none" over IPv4 and is refused over IPv6. False when malformed or corrupt.
 */
export function parseUdp(p: Uint8Array, off: number, len: number, srcOff: number, dstOff: number, alen: number, u: UdpHeader): boolean {
  if (len < UDP_HEADER) return false;
  const ulen = (p[off + 4] << 8) | p[off + 5];
  if (ulen < UDP_HEADER || ulen > len) return false;
  const check = (p[off + 6] << 8) | p[off + 7];
  if (check === 0) {
    if (alen === 16) return false;
  } else if (finish(sum(p, off, ulen, pseudo(p, srcOff, p, dstOff, alen, PROTO_UDP, ulen))) !== 0) return false;
  u.srcPort = (p[off] << 8) | p[off + 1];
  u.dstPort = (p[off + 2] << 8) | p[off + 3];
  u.dataOff = off + UDP_HEADER;
  u.dataLen = ulen - UDP_HEADER;
  return true;
}

/** Writes a UDP header for `dataLen` bytes at buf[off] (checksum left zero; see storeChecksum). */
export function writeUdp(buf: Uint8Array, off: number, srcPort: number, dstPort: number, dataLen: number): number {
  const len = UDP_HEADER + dataLen;
  buf[off] = srcPort >> 8; buf[off + 1] = srcPort & 0xff;
  buf[off + 2] = dstPort >> 8; buf[off + 3] = dstPort & 0xff;
  buf[off + 4] = len >> 8; buf[off + 5] = len & 0xff;
  buf[off + 6] = 0; buf[off + 7] = 0;
  return UDP_HEADER;
}
