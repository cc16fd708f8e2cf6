// struct sockaddr_in / sockaddr_in6 for an Endpoint, as sendmmsg's msg_name
// takes them (x86_64 and aarch64 Linux layouts).
import type { Endpoint } from "../../src/engine.ts";
import { parseAddress } from "../../src/ip.ts";

export const AF_INET = 2, AF_INET6 = 10;
export const SOCKADDR_IN = 16, SOCKADDR_IN6 = 28;

/**
 * The sockaddr for `to` on a socket of `family`: 16 bytes for an IPv4
 * socket, 28 for an IPv6 one (an IPv4 address as ::ffff:a.b.c.d, for a
 * dual-stack socket). Null when `to` is no literal that socket can reach.
 */
export function sockaddr(to: Endpoint, family: 4 | 6): Uint8Array | null {
  let ip: Uint8Array;
  try {
    ip = parseAddress(to.address.replace(/^\[|\]$/g, ""));
  } catch {
    return null;
  }
  if (family === 4) {
    if (ip.length !== 4) return null;
    const sa = new Uint8Array(SOCKADDR_IN);
    sa[0] = AF_INET;
    sa.set(ip, 4);
    sa[2] = to.port >> 8;
    sa[3] = to.port & 0xff;
    return sa;
  }
  const sa = new Uint8Array(SOCKADDR_IN6);
  sa[0] = AF_INET6;
  if (ip.length === 4) { sa[18] = sa[19] = 0xff; sa.set(ip, 20); } else sa.set(ip, 8);
  sa[2] = to.port >> 8;
  sa[3] = to.port & 0xff;
  return sa;
}

/**
 * sockaddrs by endpoint, made once each: the last endpoint object is
 * remembered (a burst to one peer looks nothing up), the rest in a bounded map.
 */
export class SockaddrCache {
  private last: Endpoint | null = null;
  private lastSa: Uint8Array | null = null;
  private readonly map = new Map<string, Uint8Array | null>();

  constructor(private readonly family: 4 | 6) {}

  get(to: Endpoint): Uint8Array | null {
    if (to === this.last) return this.lastSa;
    const key = `${to.address}|${to.port}`;
    let sa = this.map.get(key);
    if (sa === undefined) {
      sa = sockaddr(to, this.family);
      if (this.map.size >= 4096) this.map.clear();
      this.map.set(key, sa);
    }
    this.last = to;
    this.lastSa = sa;
    return sa;
  }
}
