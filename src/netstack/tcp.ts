// TCP segments (RFC 9293 3.1): header parsing and building, the options the
// stack speaks (MSS, RFC 9293 3.7.1; window scale, RFC 7323 2), and sequence
// number arithmetic modulo 2^32 (RFC 9293 3.4).
import { finish, pseudo, sum } from "./checksum.ts";
import { PROTO_TCP } from "./ip.ts";

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;

export const TCP_HEADER = 20;
/** Header length of a SYN we send: MSS (4) + NOP + window scale (3). */
export const TCP_SYN_HEADER = 28;
/** RFC 7323 2.3: shifts above 14 are treated as 14. */
export const MAX_WINDOW_SHIFT = 14;

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;

// ---- sequence numbers ----------------------------------------------------

/** a - b as a signed 32-bit distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}
export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

// ---- parsing ---------------------------------------------------------------

/** A parsed segment; data is packet[dataOff, dataOff + dataLen). Reused from packet to packet. */
export class Segment {
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  /** The raw 16-bit window field (unscaled). */
  wnd = 0;
  dataOff = 0;
  dataLen = 0;
  /** The MSS option, or 0 when absent. */
  mss = 0;
  /** The window scale option, or -1 when absent. */
  wscale = -1;
}

/**
 * Parses the TCP header at p[off, off + len) into `s`; false if it is
 * malformed. Options that do not parse are ignored from there on. The
 * checksum is checked separately (checksumOk).
 */
export function parseTcp(p: Uint8Array, off: number, len: number, s: Segment): boolean {
  if (len < TCP_HEADER) return false;
  const hl = (p[off + 12] >> 4) * 4;
  if (hl < TCP_HEADER || hl > len) return false;
  s.srcPort = (p[off] << 8) | p[off + 1];
  s.dstPort = (p[off + 2] << 8) | p[off + 3];
  s.seq = ((p[off + 4] << 24) | (p[off + 5] << 16) | (p[off + 6] << 8) | p[off + 7]) >>> 0;
  s.ack = ((p[off + 8] << 24) | (p[off + 9] << 16) | (p[off + 10] << 8) | p[off + 11]) >>> 0;
  s.flags = p[off + 13];
  s.wnd = (p[off + 14] << 8) | p[off + 15];
  s.dataOff = off + hl;
  s.dataLen = len - hl;
  s.mss = 0;
  s.wscale = -1;
  for (let i = off + TCP_HEADER, end = off + hl; i < end;) {
    const kind = p[i];
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) { i++; continue; }
    if (i + 1 >= end) break;
    const olen = p[i + 1];
    if (olen < 2 || i + olen > end) break;
    if (kind === OPT_MSS && olen === 4) s.mss = (p[i + 2] << 8) | p[i + 3];
    else if (kind === OPT_WSCALE && olen === 3) s.wscale = Math.min(p[i + 2], MAX_WINDOW_SHIFT);
    i += olen;
  }
  return true;
}

/** Whether the checksum over pseudo-header and segment holds (the segment at off, len bytes). */
export function checksumOk(p: Uint8Array, srcOff: number, dstOff: number, alen: number, off: number, len: number): boolean {
  return finish(sum(p, off, len, pseudo(p, srcOff, p, dstOff, alen, PROTO_TCP, len))) === 0;
}

// ---- building --------------------------------------------------------------

/**
 * Writes a TCP header at buf[off]. With `mss` > 0 (SYNs) it carries the MSS
 * option, and with `wscale` >= 0 the window scale option too. Returns the
 * header length. The checksum field is left zero: see setChecksum.
 */
export function writeTcp(
  buf: Uint8Array, off: number, srcPort: number, dstPort: number, seq: number, ack: number, flags: number, wnd: number,
  mss = 0, wscale = -1,
): number {
  const hl = mss > 0 ? TCP_SYN_HEADER : TCP_HEADER;
  buf[off] = srcPort >> 8; buf[off + 1] = srcPort & 0xff;
  buf[off + 2] = dstPort >> 8; buf[off + 3] = dstPort & 0xff;
  buf[off + 4] = seq >>> 24; buf[off + 5] = (seq >>> 16) & 0xff; buf[off + 6] = (seq >>> 8) & 0xff; buf[off + 7] = seq & 0xff;
  buf[off + 8] = ack >>> 24; buf[off + 9] = (ack >>> 16) & 0xff; buf[off + 10] = (ack >>> 8) & 0xff; buf[off + 11] = ack & 0xff;
  buf[off + 12] = (hl / 4) << 4;
  buf[off + 13] = flags;
  buf[off + 14] = wnd >> 8; buf[off + 15] = wnd & 0xff;
  buf[off + 16] = 0; buf[off + 17] = 0; // checksum
  buf[off + 18] = 0; buf[off + 19] = 0; // urgent pointer
  if (mss > 0) {
    buf[off + 20] = OPT_MSS; buf[off + 21] = 4; buf[off + 22] = mss >> 8; buf[off + 23] = mss & 0xff;
    if (wscale >= 0) {
      buf[off + 24] = OPT_NOP; buf[off + 25] = OPT_WSCALE; buf[off + 26] = 3; buf[off + 27] = wscale;
    } else {
      buf[off + 24] = OPT_NOP; buf[off + 25] = OPT_NOP; buf[off + 26] = OPT_NOP; buf[off + 27] = OPT_END;
    }
  }
  return hl;
}
