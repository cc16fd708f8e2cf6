// Linux TUN offloads, the per-packet half: a TUN device opened with
// IFF_VNET_HDR puts a 10-byte virtio_net_hdr before every packet, and with
// TSO on it hands over TCP (and, with USO, UDP) "super-packets" of up to
// 64 KB that are to be cut into MTU-sized segments (virtio 1.x spec, 5.1.6.2;
// Linux include/linux/virtio_net.h). Splitting writes the segments straight
// into the engine's arena cells, where encap_batch seals them in place.
// The other way, decrypted TCP segments of one flow are joined into one
// super-packet with its header (GRO), so the kernel's TCP takes a batch of
// segments as one.
//
// virtio_net_hdr (host byte order, little-endian here):
//   0 flags u8 (NEEDS_CSUM: the checksum at csum_start + csum_offset holds
//     only the pseudo-header sum; the rest is to be added and complemented)
//   1 gso_type u8, 2 hdr_len u16, 4 gso_size u16, 6 csum_start u16, 8 csum_offset u16
//
// Checksums are summed over little-endian 16-bit words: the ones' complement
// sum is the byte swap of the big-endian one, so a folded, complemented sum
// stored little-endian lands in network order with no swap at all.

export const VNET_HDR: usize = 10;
import { heap_take } from "./heap";

const F_NEEDS_CSUM: u8 = 1;
export const GSO_NONE: u8 = 0;
export const GSO_TCPV4: u8 = 1;
export const GSO_TCPV6: u8 = 4;
export const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

const TCP_FIN: u8 = 0x01, TCP_SYN: u8 = 0x02, TCP_RST: u8 = 0x04, TCP_PSH: u8 = 0x08, TCP_ACK: u8 = 0x10;
const TCP_URG: u8 = 0x20, TCP_ECE: u8 = 0x40, TCP_CWR: u8 = 0x80;
const PROTO_TCP: u32 = 6, PROTO_UDP: u32 = 17;
/** The largest IP packet a coalesced segment train may make (IPv4's total length). */
const MAX_IP: usize = 65535;
/** A read of a TUN device with a vnet header never returns more. */
export const MAX_READ: usize = VNET_HDR + 65535;
/** Read staging: a few super-packets, or a batch's worth of small packets. */
const STAGE_BYTES: usize = 4 * 65600;
/** A UDP GRO buffer (64 KB) and the most a copy through a power-of-two view may write past it. */
const UDP_STAGE_BYTES: usize = 65536 + 4096;

// The area offload_init lays out past the engine's own memory.
let stage: usize = 0;
let items: usize = 0; // (offset u32, length u32) per staged read
let lens: usize = 0; // i32 per cell: the lengths split writes
let pkts: usize = 0; // (offset u32, length u32) per packet to coalesce
let chainNext: usize = 0; // i32 per packet: the next of its train, -1 at the end
let member: usize = 0; // u8 per packet: 1 if it rides in an earlier packet's train
let out: usize = 0; // coalesced output: vnet header + packet, one after another
let outBytes: usize = 0;
let results: usize = 0; // (offset u32, length u32) per output packet
let udpStage: usize = 0; // one UDP GRO buffer, cut into datagram cells by JS
let maxItems: u32 = 0;
let dropped: u32 = 0;
let resume: u32 = 0;

/**
 * Lays out the offload area after the engine's memory (call once, right
 * after init, before any view of memory is taken: it grows memory).
 * `batch` bounds the packets of one call, `stride` is the arena's cell size.
 * Returns the area's start, 0 when memory cannot grow.
 */
export function offload_init(batch: u32, stride: u32): usize {
  const n = <usize>batch;
  const bytes = STAGE_BYTES + n * 8 + n * 4 + n * 8 + n * 4 + ((n + 63) & ~63) + n * 8 +
    n * (<usize>stride + VNET_HDR + 16) + UDP_STAGE_BYTES;
  // From the heap the engine's tables grow in (assembly/heap.ts), so neither writes over the other.
  const start = heap_take(bytes);
  if (start == 0) return 0;
  let p = start;
  stage = p; p += STAGE_BYTES;
  items = p; p += n * 8;
  lens = p; p += n * 4;
  pkts = p; p += n * 8;
  chainNext = p; p += n * 4;
  member = p; p += (n + 63) & ~63;
  results = p; p += n * 8;
  out = p; outBytes = n * (<usize>stride + VNET_HDR + 16); p += outBytes;
  udpStage = p; p += UDP_STAGE_BYTES;
  maxItems = batch;
  return start;
}

export function offload_stage_ptr(): usize { return stage; }
export function offload_stage_bytes(): usize { return STAGE_BYTES; }
export function offload_items_ptr(): usize { return items; }
export function offload_lens_ptr(): usize { return lens; }
export function offload_pkts_ptr(): usize { return pkts; }
export function offload_results_ptr(): usize { return results; }
export function offload_udp_stage_ptr(): usize { return udpStage; }
export function offload_udp_stage_bytes(): usize { return UDP_STAGE_BYTES; }
/** Reads split dropped as malformed, since the start. */
export function offload_dropped(): u32 { return dropped; }

// ---- checksums ----

/** Adds len bytes at p to acc as little-endian 16-bit words (an odd last byte is padded with zero). */
@inline function sum(p: usize, len: usize, acc: u64): u64 {
  let i: usize = 0;
  while (i + 8 <= len) {
    const v = load<u64>(p + i);
    acc += (v & 0xFFFF_FFFF) + (v >> 32);
    i += 8;
  }
  if (i + 4 <= len) { acc += <u64>load<u32>(p + i); i += 4; }
  if (i + 2 <= len) { acc += <u64>load<u16>(p + i); i += 2; }
  if (i < len) acc += <u64>load<u8>(p + i);
  return acc;
}

@inline function fold(acc: u64): u32 {
  acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
  acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
  let s = <u32>acc;
  s = (s & 0xFFFF) + (s >> 16);
  s = (s & 0xFFFF) + (s >> 16);
  return s;
}

/** The pseudo-header's sum (RFC 793 3.1, RFC 8200 8.1) for the packet at ip whose upper layer is `l4len` bytes of `proto`. */
@inline function pseudo(ip: usize, v4: bool, proto: u32, l4len: usize): u64 {
  const acc = v4 ? sum(ip + 12, 8, 0) : sum(ip + 8, 32, 0);
  return acc + <u64>(proto << 8) + <u64>bswap<u16>(<u16>l4len);
}

@inline function ipv4_header_checksum(ip: usize): void {
  const ihl = (<usize>load<u8>(ip) & 15) << 2;
  store<u16>(ip + 10, 0);
  store<u16>(ip + 10, <u16>~fold(sum(ip, ihl, 0)));
}

// ---- read side: split ----

/**
 * Splits the `n` staged reads listed at items (offset, length; each a vnet
 * header and a packet) into IP packets at cells + k*stride, k from 0, with
 * their lengths at lens. A packet marked NEEDS_CSUM gets its checksum
 * completed; a super-packet is cut into segments of gso_size with their own
 * IP length, IPv4 identification and header checksum, TCP sequence number
 * and flags (FIN and PSH on the last, CWR on the first) or UDP length, and
 * a full TCP/UDP checksum. The first read starts at segment `first`, and
 * one whose segments outnumber the cells left stops there (offload_resume).
 * A read that is malformed, or whose segments would exceed `mtu`, is dropped
 * and counted. Returns the cells written.
 */
export function offload_split(n: u32, cells: usize, stride: usize, mtu: usize, max: u32, first: u32): u32 {
  let k: u32 = 0;
  resume = 0;
  for (let i: u32 = 0; i < n; i++) {
    const e = items + (<usize>i << 3);
    const r = split_one(load<u32>(e), load<u32>(e, 4), cells, stride, mtu, k, max, i == 0 ? first : 0);
    if (r < 0) dropped++;
    else k += <u32>r;
  }
  return k;
}

/**
 * After offload_split: 0, or the segment the last read's split stopped
 * before for want of cells (then only that one read was staged, and the next
 * call passes this as `first` for it).
 */
export function offload_resume(): u32 { return resume; }

function split_one(p: usize, len: usize, cells: usize, stride: usize, mtu: usize, k: u32, max: u32, first: u32): i32 {
  if (len <= VNET_HDR || k >= max) return -1;
  const flags = load<u8>(p);
  const gso = load<u8>(p, 1) & ~GSO_ECN;
  const gsoSize = <usize>load<u16>(p, 4);
  const cstart = <usize>load<u16>(p, 6);
  const coff = <usize>load<u16>(p, 8);
  const pkt = p + VNET_HDR;
  const plen = len - VNET_HDR;
  if (gso == GSO_NONE) {
    if (plen > mtu) return -1;
    const cell = cells + <usize>k * stride;
    memory.copy(cell, pkt, plen);
    if (flags & F_NEEDS_CSUM) {
      if (cstart + coff + 2 > plen) return -1;
      // The field holds the pseudo-header sum: add the rest and complement.
      let c = ~fold(sum(cell + cstart, plen - cstart, 0)) & 0xFFFF;
      if (c == 0) c = 0xFFFF;
      store<u16>(cell + cstart + coff, <u16>c);
    }
    store<i32>(lens + (<usize>k << 2), <i32>plen);
    return 1;
  }
  const v = load<u8>(pkt) >> 4;
  const v4 = v == 4;
  if (!v4 && v != 6) return -1;
  const tcp = gso == GSO_TCPV4 || gso == GSO_TCPV6;
  if (!tcp && gso != GSO_UDP_L4) return -1;
  if ((gso == GSO_TCPV4 && !v4) || (gso == GSO_TCPV6 && v4)) return -1;
  // csum_start is where the transport header begins; hdr_len is not
  // trusted (Linux has sent it short), the TCP data offset is.
  const l4 = cstart;
  const minL4: usize = v4 ? 20 : 40, minL4Hdr: usize = tcp ? 20 : 8;
  if (minL4 > l4 || l4 + minL4Hdr > plen) return -1;
  if (v4 && ((<usize>load<u8>(pkt) & 15) << 2) > l4) return -1;
  const hdr = tcp ? l4 + ((<usize>load<u8>(pkt + l4 + 12) >> 4) << 2) : l4 + 8;
  if ((tcp && hdr < l4 + 20) || hdr > plen || gsoSize == 0 || hdr + gsoSize > mtu) return -1;
  const payload = plen - hdr;
  const segs: u32 = payload == 0 ? 1 : <u32>((payload + gsoSize - 1) / gsoSize);
  if (first >= segs) return -1;
  let end = segs;
  if (end - first > max - k) { end = first + max - k; resume = end; }
  const id0 = v4 ? <u32>bswap<u16>(load<u16>(pkt + 4)) : 0;
  const seq0 = tcp ? bswap<u32>(load<u32>(pkt + l4 + 4)) : 0;
  const tflags = tcp ? load<u8>(pkt + l4 + 13) : 0;
  const proto = tcp ? PROTO_TCP : PROTO_UDP;
  for (let s: u32 = first; s < end; s++) {
    const c = k + s - first;
    const cell = cells + <usize>c * stride;
    const at = <usize>s * gsoSize;
    const chunk = payload - at < gsoSize ? payload - at : gsoSize;
    const total = hdr + chunk;
    memory.copy(cell, pkt, hdr);
    memory.copy(cell + hdr, pkt + hdr + at, chunk);
    if (v4) {
      store<u16>(cell + 2, bswap<u16>(<u16>total));
      store<u16>(cell + 4, bswap<u16>(<u16>(id0 + s)));
      ipv4_header_checksum(cell);
    } else {
      store<u16>(cell + 4, bswap<u16>(<u16>(total - 40)));
    }
    const th = cell + l4;
    let field: usize;
    if (tcp) {
      store<u32>(th + 4, bswap<u32>(seq0 + <u32>at));
      let f = tflags;
      if (s + 1 < segs) f &= ~(TCP_FIN | TCP_PSH);
      if (s > 0) f &= ~TCP_CWR;
      store<u8>(th + 13, f);
      field = th + 16;
    } else {
      store<u16>(th + 4, bswap<u16>(<u16>(total - l4)));
      field = th + 6;
    }
    store<u16>(field, 0);
    let ck = ~fold(sum(th, total - l4, pseudo(cell, v4, proto, total - l4))) & 0xFFFF;
    if (!tcp && ck == 0) ck = 0xFFFF; // UDP: zero means "no checksum"
    store<u16>(field, <u16>ck);
    store<i32>(lens + (<usize>c << 2), <i32>total);
  }
  return <i32>(end - first);
}

// ---- write side: coalesce ----

// Open trains: up to TRAINS flows being joined at once.
const TRAINS: u32 = 8;
const T_HEAD: usize = 0, T_TAIL: usize = 4, T_SEQ: usize = 8, T_SIZE: usize = 12, T_TOTAL: usize = 16, T_OPEN: usize = 20;
const T_BYTES: usize = 24;
const trains = memory.data(<i32>(TRAINS * <u32>T_BYTES));

/** The transport header's offset of a TCP packet fit to join a train (IPv4 without options or fragments, IPv6 without extension headers), or 0. */
@inline function tcp_l4(p: usize, len: usize): usize {
  const v = load<u8>(p) >> 4;
  if (v == 4) {
    if (len < 40 || load<u8>(p) != 0x45 || <u32>load<u8>(p, 9) != PROTO_TCP) return 0;
    if ((bswap<u16>(load<u16>(p, 6)) & 0x3FFF) != 0) return 0;
    return 20;
  }
  if (v == 6) {
    if (len < 60 || <u32>load<u8>(p, 6) != PROTO_TCP) return 0;
    return 40;
  }
  return 0;
}

/** Same addresses and ports. */
@inline function same_flow(a: usize, b: usize, l4: usize): bool {
  if (l4 == 20) {
    if (load<u64>(a, 12) != load<u64>(b, 12)) return false;
  } else {
    if (load<u64>(a, 8) != load<u64>(b, 8) || load<u64>(a, 16) != load<u64>(b, 16) ||
      load<u64>(a, 24) != load<u64>(b, 24) || load<u64>(a, 32) != load<u64>(b, 32)) return false;
  }
  return load<u32>(a + l4) == load<u32>(b + l4);
}

/**
 * Whether b may follow a in one train: the IP fields a segmentation would
 * copy (TOS/traffic class, TTL/hop limit, DF, flow label), the ack number,
 * the flags, the header length and options all equal.
 */
@inline function joinable(a: usize, b: usize, l4: usize, thlen: usize): bool {
  if (l4 == 20) {
    if (load<u8>(a, 1) != load<u8>(b, 1) || load<u8>(a, 8) != load<u8>(b, 8) || (load<u8>(a, 6) & 0x40) != (load<u8>(b, 6) & 0x40)) return false;
  } else {
    if (load<u32>(a) != load<u32>(b) || load<u8>(a, 7) != load<u8>(b, 7)) return false;
  }
  const ta = a + l4, tb = b + l4;
  if (load<u32>(ta, 8) != load<u32>(tb, 8) || load<u8>(ta, 12) != load<u8>(tb, 12)) return false;
  if ((load<u8>(tb, 13) & ~TCP_PSH) != load<u8>(ta, 13)) return false;
  for (let i: usize = 20; i < thlen; i += 4) if (load<u32>(ta + i) != load<u32>(tb + i)) return false;
  return true;
}

/**
 * Writes the `n` packets listed at pkts (offset, length) to the out area,
 * each behind a vnet header, joining runs of TCP segments of one flow
 * (consecutive sequence numbers, equal sizes but a shorter last, same
 * headers, only ACK and a closing PSH, verified checksums) into one
 * super-packet of at most 64 KB marked GSO with a partial checksum. A
 * packet that cannot join goes alone, with a header of zeros (the kernel
 * checks its checksum itself). Within a flow the order is kept. Returns the
 * output packets, listed at results (offset, length).
 */
export function offload_coalesce(n: u32): u32 {
  memory.fill(trains, 0, <usize>TRAINS * T_BYTES);
  let victim: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    store<i32>(chainNext + (<usize>i << 2), -1);
    store<u8>(member + <usize>i, 0);
    const e = pkts + (<usize>i << 3);
    const p = <usize>load<u32>(e);
    const len = <usize>load<u32>(e, 4);
    const l4 = tcp_l4(p, len);
    if (l4 == 0) continue;
    const th = p + l4;
    const thlen = (<usize>load<u8>(th, 12) >> 4) << 2;
    // The open train of this flow, if any.
    let t: usize = 0;
    for (let j: u32 = 0; j < TRAINS; j++) {
      const c = trains + <usize>j * T_BYTES;
      if (load<i32>(c + T_OPEN) == 0) continue;
      const h = pkts + (<usize>load<i32>(c + T_HEAD) << 3);
      if (same_flow(<usize>load<u32>(h), p, l4)) { t = c; break; }
    }
    const flags = load<u8>(th, 13);
    const bad = TCP_FIN | TCP_SYN | TCP_RST | TCP_URG | TCP_ECE | TCP_CWR;
    const payload = len - l4 - thlen;
    let fit = thlen >= 20 && l4 + thlen < len && (flags & TCP_ACK) != 0 && (flags & bad) == 0;
    if (fit && l4 == 20 && <usize>bswap<u16>(load<u16>(p, 2)) != len) fit = false;
    if (fit && l4 == 40 && <usize>bswap<u16>(load<u16>(p, 4)) + 40 != len) fit = false;
    if (fit) fit = fold(sum(th, len - l4, pseudo(p, l4 == 20, PROTO_TCP, len - l4))) == 0xFFFF;
    if (!fit) {
      // It goes alone, and nothing of its flow may overtake it.
      if (t != 0) store<i32>(t + T_OPEN, 0);
      continue;
    }
    const seq = bswap<u32>(load<u32>(th, 4));
    if (t != 0) {
      const head = <u32>load<i32>(t + T_HEAD);
      const hp = <usize>load<u32>(pkts + (<usize>head << 3));
      const size = <usize>load<i32>(t + T_SIZE);
      const total = <usize>load<i32>(t + T_TOTAL);
      if (<u32>load<i32>(t + T_SEQ) == seq && payload <= size && total + payload <= MAX_IP && joinable(hp, p, l4, thlen)) {
        const tail = <u32>load<i32>(t + T_TAIL);
        store<i32>(chainNext + (<usize>tail << 2), <i32>i);
        store<u8>(member + <usize>i, 1);
        store<i32>(t + T_TAIL, <i32>i);
        store<i32>(t + T_SEQ, <i32>(seq + <u32>payload));
        store<i32>(t + T_TOTAL, <i32>(total + payload));
        // A short segment or a PSH ends the train.
        if (payload < size || (flags & TCP_PSH) != 0) store<i32>(t + T_OPEN, 0);
        continue;
      }
      // Not next in line: its train ends, and this packet starts the flow's next one there.
    } else {
      for (let j: u32 = 0; j < TRAINS; j++) {
        const c = trains + <usize>j * T_BYTES;
        if (load<i32>(c + T_OPEN) == 0) { t = c; break; }
      }
      if (t == 0) { t = trains + <usize>victim * T_BYTES; victim = (victim + 1) % TRAINS; }
    }
    store<i32>(t + T_HEAD, <i32>i);
    store<i32>(t + T_TAIL, <i32>i);
    store<i32>(t + T_SEQ, <i32>(seq + <u32>payload));
    store<i32>(t + T_SIZE, <i32>payload);
    store<i32>(t + T_TOTAL, <i32>len);
    store<i32>(t + T_OPEN, (flags & TCP_PSH) != 0 ? 0 : 1);
  }

  let used: usize = 0;
  let m: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    if (load<u8>(member + <usize>i) != 0) continue;
    const e = pkts + (<usize>i << 3);
    const p = <usize>load<u32>(e);
    const len = <usize>load<u32>(e, 4);
    const dst = out + used;
    const ip = dst + VNET_HDR;
    store<u64>(dst, 0);
    store<u16>(dst, 0, 8);
    memory.copy(ip, p, len);
    let total = len;
    let next = load<i32>(chainNext + (<usize>i << 2));
    if (next >= 0) {
      const l4 = tcp_l4(p, len);
      const thlen = (<usize>load<u8>(p + l4, 12) >> 4) << 2;
      const hdr = l4 + thlen;
      let last = p;
      while (next >= 0) {
        const f = pkts + (<usize>next << 3);
        const q = <usize>load<u32>(f);
        const qlen = <usize>load<u32>(f, 4);
        memory.copy(ip + total, q + hdr, qlen - hdr);
        total += qlen - hdr;
        last = q;
        next = load<i32>(chainNext + (<usize>next << 2));
      }
      const v4 = l4 == 20;
      if (v4) {
        store<u16>(ip + 2, bswap<u16>(<u16>total));
        ipv4_header_checksum(ip);
      } else {
        store<u16>(ip + 4, bswap<u16>(<u16>(total - 40)));
      }
      const th = ip + l4;
      // The train's last segment may carry PSH, and has the latest window.
      store<u8>(th + 13, load<u8>(th, 13) | (load<u8>(last + l4, 13) & TCP_PSH));
      store<u16>(th + 14, load<u16>(last + l4, 14));
      // NEEDS_CSUM: the field holds the pseudo-header sum over the whole length, not complemented.
      store<u16>(th + 16, <u16>fold(pseudo(ip, v4, PROTO_TCP, total - l4)));
      store<u8>(dst, F_NEEDS_CSUM);
      store<u8>(dst, v4 ? GSO_TCPV4 : GSO_TCPV6, 1);
      store<u16>(dst, <u16>hdr, 2);
      store<u16>(dst, <u16>(len - hdr), 4);
      store<u16>(dst, <u16>l4, 6);
      store<u16>(dst, 16, 8);
    }
    const r = results + (<usize>m << 3);
    store<u32>(r, <u32>dst);
    store<u32>(r, <u32>(VNET_HDR + total), 4);
    used += (VNET_HDR + total + 7) & ~7;
    m++;
  }
  return m;
}
