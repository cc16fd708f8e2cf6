// The userspace netstack (src/netstack) fed IP packets as the tunnel would
// hand them over, under a virtual clock, with a listener, an established
// connection, a connection being opened, a bound UDP port and a ping in
// flight, so that the TCP state machine, the UDP demultiplexer and ICMP are
// all reachable. (The resolver has the dns target.)
//
// The application side is played on the TCBs themselves (write, read,
// close, as TcpConn does), not through TcpConn's streams: Jazzer.js calls a
// synchronous target in a loop that never returns to the event loop, so
// every promise job a run queued would stay queued, holding that run's
// whole stack, until memory ran out (58k runs reached the 2 GiB limit).
//
// The input is a list of records, each starting with a control byte whose
// low 3 bits say what it is:
//   0-3  a packet: two bytes of length, then the packet; its IP header and
//        TCP/UDP/ICMP checksums are fixed first unless bit 3 is set (so
//        mutations reach past the checksum checks)
//   4    the clock moves on by the next byte x 16 ms, and the timers run
//   5    the application writes the next byte x 16 bytes on connection (bits 4-5)
//   6    the application reads everything on connection (bits 4-5)
//   7    the application closes (bits 6-7: 0), aborts (1) or stops reading (2) connection (bits 4-5)
// After each record every packet the stack has to send is pulled and checked.
//
// Defects: an exception; a packet sent that is not well-formed (IP header,
// checksums, lengths, within the MTU, from one of our addresses); a table
// past its cap (connections, the control queue, UDP queues, buffers).
import { Stack, type StackOptions } from "../../../src/netstack/index.ts";
import { storeChecksum, finish, sum } from "../../../src/netstack/checksum.ts";
import { IP_OK, IpHeader, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, parseIp, unicastSource, writeIp } from "../../../src/netstack/ip.ts";
import { ACK, SYN, Segment, TCP_HEADER, checksumOk, parseTcp, writeTcp } from "../../../src/netstack/tcp.ts";
import { IcmpHeader, parseIcmp } from "../../../src/netstack/icmp.ts";
import { UdpHeader, parseUdp } from "../../../src/netstack/udp.ts";
import type { Tcb } from "../../../src/netstack/tcb.ts";
import { parseAddress } from "../../../src/ip.ts";

export const LOCAL4 = "10.0.0.2", LOCAL6 = "fd00::2", PEER4 = "10.0.0.1", PEER6 = "fd00::1";
export const MTU = 1280;
export const LISTEN_PORT = 80, UDP_PORT = 5353, PEER_PORT = 40000, CONNECT_PORT = 443;
/** The peer's ISN for the connection the setup establishes. */
export const PEER_ISN = 1000;
export const START = 1000;
const MAX_CONNECTIONS = 8;
const BACKLOG = 4;
const BUFFER = 4096;
const CONTROL_QUEUE = 256;
const UDP_QUEUE = 64 + 64;

const OPTIONS: StackOptions = {
  addresses: [LOCAL4, LOCAL6], mtu: MTU,
  maxConnections: MAX_CONNECTIONS,
  tcp: { sendBuffer: BUFFER, receiveBuffer: BUFFER, timeWait: 1000, finWait2Timeout: 2000, synRetries: 2, retries: 3, keepalive: { idle: 3000, interval: 500, count: 2 } },
};

/** The same random bytes every run (ISNs, ports, DNS IDs), so that seeds can name them. */
function fixedRandom(): (b: Uint8Array) => void {
  let s = 0x9e3779b9;
  return (b) => {
    for (let i = 0; i < b.length; i++) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      b[i] = s & 0xff;
    }
  };
}

const quiet = () => {};

/** One run's stack after the setup, and what the seeds need to know of it. */
export interface Setup {
  stack: Stack;
  /** Our ISN on the established connection (PEER4:PEER_PORT to LOCAL4:LISTEN_PORT). */
  establishedIss: number;
  /** The SYN our connect() to [PEER6]:CONNECT_PORT sent: its source port and ISN. */
  connectPort: number;
  connectIss: number;
  /** The echo request our ping to PEER4 sent. */
  ping: { id: number; seq: number };
  sent: Uint8Array[];
}

/** A TCP segment from `src` to `dst` with a correct checksum. */
export function tcpPacket(src: string, dst: string, sport: number, dport: number, seq: number, ack: number, flags: number, data = new Uint8Array(0), wnd = 65535): Uint8Array {
  const s = parseAddress(src), d = parseAddress(dst), ihl = s.length === 4 ? 20 : 40;
  const p = new Uint8Array(ihl + TCP_HEADER + data.length);
  writeIp(p, 0, s, d, PROTO_TCP, TCP_HEADER + data.length, 1);
  writeTcp(p, ihl, sport, dport, seq, ack, flags, wnd);
  p.set(data, ihl + TCP_HEADER);
  storeChecksum(p, ihl, TCP_HEADER + data.length, s, d, PROTO_TCP, 16);
  return p;
}

export function setup(): Setup {
  const stack = new Stack({ ...OPTIONS, random: fixedRandom() });
  const sent: Uint8Array[] = [];
  const drain = () => { for (let p = stack.output(); p; p = stack.output()) sent.push(p); };
  // Connections the listener opens stay with the harness (see the top); the listener's count of half-open ones is kept as it keeps it.
  const l = stack.listen(LISTEN_PORT, quiet, { backlog: BACKLOG });
  l.opened = () => { l.halfOpen--; };
  stack.udp(UDP_PORT);
  stack.input(tcpPacket(PEER4, LOCAL4, PEER_PORT, LISTEN_PORT, PEER_ISN, 0, SYN), START);
  const synAck = stack.output(START)!;
  const establishedIss = ((synAck[24] << 24) | (synAck[25] << 16) | (synAck[26] << 8) | synAck[27]) >>> 0;
  stack.input(tcpPacket(PEER4, LOCAL4, PEER_PORT, LISTEN_PORT, PEER_ISN + 1, (establishedIss + 1) >>> 0, ACK), START);
  stack.connect(PEER6, CONNECT_PORT).catch(quiet);
  for (const t of connections(stack)) if (t.stateName === "SYN-SENT") t.parent = { opened: quiet, failed: quiet };
  // A ping that never times out within a run: its answer settles it with a number, which holds nothing.
  stack.ping(PEER4, START, { timeout: 1e12, size: 8 }).catch(quiet);
  drain();
  let connectPort = 0, connectIss = 0, ping = { id: 0, seq: 0 };
  for (const p of sent) {
    if (p[0] >> 4 === 6 && p[6] === PROTO_TCP) {
      connectPort = (p[40] << 8) | p[41];
      connectIss = ((p[44] << 24) | (p[45] << 16) | (p[46] << 8) | p[47]) >>> 0;
    } else if (p[0] >> 4 === 4 && p[9] === PROTO_ICMP) ping = { id: (p[24] << 8) | p[25], seq: (p[26] << 8) | p[27] };
  }
  return { stack, establishedIss, connectPort, connectIss, ping, sent };
}

/** Puts right the IPv4 header checksum and the upper layer's checksum of a packet, where its headers say enough to find them. */
function fixChecksums(p: Uint8Array): void {
  const v = p[0] >> 4;
  let proto: number, off: number, len: number, srcOff: number, alen: number;
  if (v === 4 && p.length >= 20) {
    const ihl = (p[0] & 0x0f) * 4, total = (p[2] << 8) | p[3];
    if (ihl < 20 || ihl > p.length) return;
    p[10] = 0; p[11] = 0;
    const c = finish(sum(p, 0, ihl));
    p[10] = c >> 8; p[11] = c & 0xff;
    proto = p[9]; off = ihl; len = Math.min(total, p.length) - ihl; srcOff = 12; alen = 4;
  } else if (v === 6 && p.length >= 40) {
    proto = p[6]; off = 40; len = Math.min(40 + ((p[4] << 8) | p[5]), p.length) - 40; srcOff = 8; alen = 16;
  } else return;
  if (len <= 0) return;
  const field = proto === PROTO_TCP ? 16 : proto === PROTO_UDP ? 6 : proto === PROTO_ICMP || proto === PROTO_ICMPV6 ? 2 : -1;
  if (field < 0 || len < field + 2) return;
  if (proto === PROTO_UDP) len = Math.min(len, Math.max(8, (p[off + 4] << 8) | p[off + 5]));
  if (len < field + 2) return;
  const src = p.slice(srcOff, srcOff + alen), dst = p.slice(srcOff + alen, srcOff + 2 * alen);
  if (proto === PROTO_ICMP) {
    p[off + 2] = 0; p[off + 3] = 0;
    const c = finish(sum(p, off, len));
    p[off + 2] = c >> 8; p[off + 3] = c & 0xff;
  } else storeChecksum(p, off, len, src, dst, proto, field);
}

const ip = new IpHeader(), seg = new Segment(), udp = new UdpHeader(), icmp = new IcmpHeader();
const ours = [parseAddress(LOCAL4), parseAddress(LOCAL6)];

function isOurs(p: Uint8Array, off: number, alen: number): boolean {
  return ours.some((a) => a.length === alen && a.every((x, i) => x === p[off + i]));
}

/** A packet the stack sent: well-formed from its IP header down. */
function checkSent(p: Uint8Array): void {
  if (p.length > MTU) throw new Error(`sent ${p.length} bytes over the MTU ${MTU}`);
  if (parseIp(p, ip) !== IP_OK) throw new Error(`sent a packet that does not parse: ${hex(p)}`);
  if (ip.payloadOff + ip.payloadLen !== p.length) throw new Error(`IP length ${ip.payloadOff + ip.payloadLen} is not the packet's ${p.length}`);
  if (!isOurs(p, ip.srcOff, ip.alen)) throw new Error(`sent from an address not ours: ${hex(p)}`);
  if (!unicastSource(p, ip.dstOff, ip.alen)) throw new Error(`sent to a non-unicast address: ${hex(p)}`);
  if (ip.version === 4 && (p[6] & 0x40) === 0) throw new Error("IPv4 without Don't Fragment");
  if (ip.proto === PROTO_TCP) {
    if (!parseTcp(p, ip.payloadOff, ip.payloadLen, seg)) throw new Error(`sent TCP that does not parse: ${hex(p)}`);
    if (!checksumOk(p, ip.srcOff, ip.dstOff, ip.alen, ip.payloadOff, ip.payloadLen)) throw new Error(`sent TCP with a bad checksum: ${hex(p)}`);
    if (seg.srcPort === 0 || seg.dstPort === 0) throw new Error("sent TCP with port 0");
  } else if (ip.proto === PROTO_UDP) {
    if (!parseUdp(p, ip.payloadOff, ip.payloadLen, ip.srcOff, ip.dstOff, ip.alen, udp)) throw new Error(`sent UDP that does not parse or check: ${hex(p)}`);
    if (udp.dataOff + udp.dataLen !== p.length) throw new Error("UDP length is not the packet's");
  } else if (ip.proto === (ip.version === 4 ? PROTO_ICMP : PROTO_ICMPV6)) {
    if (!parseIcmp(p, ip.payloadOff, ip.payloadLen, ip.srcOff, ip.dstOff, ip.alen, icmp)) throw new Error(`sent ICMP that does not parse or check: ${hex(p)}`);
  } else throw new Error(`sent protocol ${ip.proto}`);
}

function checkBounds(stack: Stack): void {
  const u = stack.usage();
  if (u.connections > MAX_CONNECTIONS) throw new Error(`${u.connections} connections, the cap is ${MAX_CONNECTIONS}`);
  if (u.controlQueue > CONTROL_QUEUE) throw new Error(`${u.controlQueue} packets in the control queue`);
  if (u.bufferBytes > u.connections * 2 * BUFFER) throw new Error(`${u.bufferBytes} bytes of buffers for ${u.connections} connections`);
  if (u.udpQueued > u.udpSockets * UDP_QUEUE) throw new Error(`${u.udpQueued} datagrams queued in ${u.udpSockets} sockets`);
  if (u.listeners !== 1) throw new Error(`${u.listeners} listeners`);
  if (u.pings > 1 || u.dnsQueries > 0) throw new Error(`pings ${u.pings}, DNS queries ${u.dnsQueries}: more than were started`);
}

function hex(p: Uint8Array): string {
  return Array.from(p.subarray(0, 64), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The connections in the stack, in the order they were made (what the application would hold). */
function connections(stack: Stack): Tcb[] {
  return [...(stack as unknown as { tcbs: Map<string, Tcb> }).tcbs.values()];
}

const WRITE = new Uint8Array(255 * 16).map((_, i) => i & 0xff);

export function fuzz(data: Uint8Array): void {
  const { stack } = setup();
  let now = START;
  const pump = () => {
    for (let n = 0, p = stack.output(now); p; p = stack.output(now)) {
      checkSent(p);
      if (++n > 10_000) throw new Error("output never runs dry");
    }
    checkBounds(stack);
  };
  pump();
  for (let i = 0; i < data.length;) {
    const ctl = data[i++], op = ctl & 7;
    if (op < 4) {
      if (i + 2 > data.length) break;
      const len = Math.min((data[i] << 8) | data[i + 1], data.length - i - 2);
      const p = data.slice(i + 2, i + 2 + len);
      i += 2 + len;
      if ((ctl & 8) === 0) fixChecksums(p);
      stack.input(p, now);
    } else if (op === 4) {
      now += (data[i++] ?? 0) * 16;
      stack.tick(now);
    } else {
      const conns = connections(stack);
      const t = conns[(ctl >> 4) & 3];
      if (!t) continue;
      if (op === 5) t.write(WRITE.subarray(0, (data[i++] ?? 0) * 16), 0);
      else if (op === 6) while (t.read(65536)) { /* the application reads it all */ }
      else if (ctl >> 6 === 0) t.close();
      else if (ctl >> 6 === 1) t.abort();
      else t.shutdownRead();
    }
    pump();
  }
  // Time runs out for the connections: retransmissions give up, probes and TIME-WAIT end (the ping waits on).
  for (let k = 0; k < 40 && stack.nextTimer() < START + 1e9; k++) {
    now = Math.max(now, stack.nextTimer());
    stack.tick(now);
    pump();
  }
}
