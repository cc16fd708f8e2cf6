// Packets built by hand for the netstack tests, independently of
// src/netstack's own builders: IPv4/IPv6 with TCP, UDP or ICMP, with correct
// (or deliberately wrong) checksums.
import { parseAddress } from "../../src/ip.ts";

function sum16(b: Uint8Array, acc = 0): number {
  for (let i = 0; i < b.length; i += 2) acc += (b[i] << 8) | (i + 1 < b.length ? b[i + 1] : 0);
  return acc;
}

function cksum(...parts: Uint8Array[]): number {
  let s = 0;
  for (const p of parts) s = sum16(p, s);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return ~s & 0xffff;
}

function be16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function be32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** An IP packet from src to dst carrying `payload` of protocol `proto`; the upper checksum at `ckField` is filled in. */
export function ipPacket(src: string, dst: string, proto: number, payload: Uint8Array, ckField = -1): Uint8Array {
  const s = parseAddress(src), d = parseAddress(dst), v4 = s.length === 4;
  const body = payload.slice();
  if (ckField >= 0) {
    body[ckField] = 0; body[ckField + 1] = 0;
    const pseudo = v4
      ? Uint8Array.from([...s, ...d, 0, proto, ...be16(body.length)])
      : Uint8Array.from([...s, ...d, ...be32(body.length), 0, 0, 0, proto]);
    const c = v4 && proto === 1 ? cksum(body) : cksum(pseudo, body);
    body[ckField] = c >> 8; body[ckField + 1] = c & 0xff;
  }
  if (v4) {
    const h = Uint8Array.from([0x45, 0, ...be16(20 + body.length), 0, 1, 0x40, 0, 64, proto, 0, 0, ...s, ...d]);
    const c = cksum(h);
    h[10] = c >> 8; h[11] = c & 0xff;
    const p = new Uint8Array(20 + body.length);
    p.set(h); p.set(body, 20);
    return p;
  }
  const h = Uint8Array.from([0x60, 0, 0, 0, ...be16(body.length), proto, 64, ...s, ...d]);
  const p = new Uint8Array(40 + body.length);
  p.set(h); p.set(body, 40);
  return p;
}

export interface TcpFields {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags: number;
  wnd?: number;
  options?: number[];
  data?: Uint8Array;
}

export function tcpSegment(src: string, dst: string, f: TcpFields): Uint8Array {
  const opts = f.options ?? [];
  while (opts.length % 4) opts.push(0);
  const hl = 20 + opts.length, data = f.data ?? new Uint8Array(0);
  const t = new Uint8Array(hl + data.length);
  t.set([...be16(f.sport), ...be16(f.dport), ...be32(f.seq ?? 0), ...be32(f.ack ?? 0), (hl / 4) << 4, f.flags, ...be16(f.wnd ?? 65535), 0, 0, 0, 0, ...opts]);
  t.set(data, hl);
  return ipPacket(src, dst, 6, t, 16);
}

export function rstPacket(src: string, dst: string, sport: number, dport: number, seq: number): Uint8Array {
  return tcpSegment(src, dst, { sport, dport, seq, flags: 0x04 });
}

export function udpPacket(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u.set([...be16(sport), ...be16(dport), ...be16(u.length), 0, 0]);
  u.set(data, 8);
  return ipPacket(src, dst, 17, u, 6);
}

export function echoRequest(src: string, dst: string, id: number, seq: number, data: Uint8Array): Uint8Array {
  const v4 = !src.includes(":");
  const m = new Uint8Array(8 + data.length);
  m.set([v4 ? 8 : 128, 0, 0, 0, ...be16(id), ...be16(seq)]);
  m.set(data, 8);
  return ipPacket(src, dst, v4 ? 1 : 58, m, 2);
}
