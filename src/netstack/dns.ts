// A DNS stub resolver (RFC 1034/1035): A and AAAA queries over UDP through
// the stack to the configured servers, each query from a fresh random port
// with a random ID, retried on timeout across the servers; CNAME chains in
// the answer are followed; a small bounded cache keeps positive answers for
// their TTL. No TCP fallback: a truncated answer is used for what it holds.
import { NetError } from "./errors.ts";
import type { UdpSocket } from "./udpsocket.ts";
import { formatAddress, parseAddress } from "../ip.ts";

export const TYPE_A = 1;
export const TYPE_CNAME = 5;
export const TYPE_AAAA = 28;
const CLASS_IN = 1;
const DNS_PORT = 53;
const HEADER = 12;
const RCODE_OK = 0;
const RCODE_NXDOMAIN = 3;
/** Compression pointers followed in one name before it counts as a loop. */
const MAX_POINTERS = 32;
/** Longest TTL the cache honours, in seconds. */
const MAX_CACHE_TTL = 3600;

// ---- messages ----------------------------------------------------------------

/**
 * Lower-cases a name, drops one trailing dot and checks it (RFC 1035 2.3.4);
 * RangeError if it is not a name, its message one line whatever the name
 * holds (a proxy's client chooses it).
 */
export function normalizeName(name: string): string {
  let n = name.toLowerCase();
  if (n.endsWith(".")) n = n.slice(0, -1);
  const bad = () => new RangeError(`invalid DNS name '${shownName(name)}'`);
  if (n.length === 0 || n.length > 253) throw bad();
  for (const label of n.split(".")) {
    if (label.length === 0 || label.length > 63 || !/^[a-z0-9_-]+$/.test(label)) throw bad();
  }
  return n;
}

/** A name for a message: control characters escaped, at most 80 characters. */
function shownName(name: string): string {
  const s = name.replace(/[\x00-\x1f\x7f\x85\u2028\u2029]/g, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16)}`;
  });
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}

/** A standard query for (name, type, IN) with recursion desired. `name` must be normalized. */
export function encodeQuery(id: number, name: string, type: number): Uint8Array {
  const labels = name.split(".");
  const q = new Uint8Array(HEADER + name.length + 2 + 4);
  q[0] = id >> 8; q[1] = id & 0xff;
  q[2] = 0x01; // RD
  q[5] = 1; // QDCOUNT
  let o = HEADER;
  for (const l of labels) {
    q[o++] = l.length;
    for (let i = 0; i < l.length; i++) q[o++] = l.charCodeAt(i);
  }
  q[o++] = 0;
  q[o++] = type >> 8; q[o++] = type & 0xff;
  q[o++] = 0; q[o++] = CLASS_IN;
  return q;
}

/** Reads a possibly compressed name at off: [name, offset after it], or null when malformed. */
function readName(m: Uint8Array, off: number): [string, number] | null {
  let out = "", o = off, next = -1, jumps = 0, total = 0;
  for (;;) {
    if (o >= m.length) return null;
    const len = m[o];
    if ((len & 0xc0) === 0xc0) {
      if (o + 1 >= m.length || ++jumps > MAX_POINTERS) return null;
      if (next < 0) next = o + 2;
      o = ((len & 0x3f) << 8) | m[o + 1];
      continue;
    }
    if ((len & 0xc0) !== 0) return null;
    if (len === 0) { o++; break; }
    if (o + 1 + len > m.length || (total += len + 1) > 255) return null;
    let label = "";
    for (let i = 0; i < len; i++) label += String.fromCharCode(m[o + 1 + i]);
    out += (out ? "." : "") + label.toLowerCase();
    o += 1 + len;
  }
  return [out, next < 0 ? o : next];
}

/** What a response said. */
export interface DnsAnswer {
  rcode: number;
  truncated: boolean;
  /** Addresses of the asked type for the name or its CNAME targets. */
  addresses: Uint8Array[];
  /** The smallest TTL among them (s). */
  ttl: number;
}

/**
 * Parses a response to the query (id, name, type); null when it is not one
 * (wrong ID, not a response, another question) or is malformed. Never throws.
 */
export function parseResponse(m: Uint8Array, id: number, name: string, type: number): DnsAnswer | null {
  if (m.length < HEADER) return null;
  if (((m[0] << 8) | m[1]) !== id || (m[2] & 0x80) === 0 || (m[2] & 0x78) !== 0) return null;
  const qd = (m[4] << 8) | m[5], an = (m[6] << 8) | m[7];
  if (qd !== 1) return null;
  const q = readName(m, HEADER);
  if (!q || q[0] !== name || q[1] + 4 > m.length) return null;
  let o = q[1];
  if (((m[o] << 8) | m[o + 1]) !== type || ((m[o + 2] << 8) | m[o + 3]) !== CLASS_IN) return null;
  o += 4;
  const records: { owner: string; type: number; ttl: number; rdata: number; rdlen: number }[] = [];
  for (let i = 0; i < an; i++) {
    const r = readName(m, o);
    if (!r || r[1] + 10 > m.length) return null;
    o = r[1];
    const rtype = (m[o] << 8) | m[o + 1], rclass = (m[o + 2] << 8) | m[o + 3];
    const ttl = ((m[o + 4] << 24) | (m[o + 5] << 16) | (m[o + 6] << 8) | m[o + 7]) >>> 0;
    const rdlen = (m[o + 8] << 8) | m[o + 9];
    o += 10;
    if (o + rdlen > m.length) return null;
    if (rclass === CLASS_IN) records.push({ owner: r[0], type: rtype, ttl: ttl > 0x7fffffff ? 0 : ttl, rdata: o, rdlen });
    o += rdlen;
  }
  // Follow CNAMEs from the name asked (in any order they come, at most as many steps as records).
  const names = new Set([name]);
  for (let changed = true, n = 0; changed && n <= records.length; n++) {
    changed = false;
    for (const r of records) {
      if (r.type !== TYPE_CNAME || !names.has(r.owner)) continue;
      const t = readName(m, r.rdata);
      if (t && !names.has(t[0])) { names.add(t[0]); changed = true; }
    }
  }
  const size = type === TYPE_A ? 4 : 16, addresses: Uint8Array[] = [];
  let ttl = MAX_CACHE_TTL;
  for (const r of records) {
    if (r.type !== type || r.rdlen !== size || !names.has(r.owner)) continue;
    addresses.push(m.slice(r.rdata, r.rdata + size));
    ttl = Math.min(ttl, r.ttl);
  }
  return { rcode: m[3] & 0x0f, truncated: (m[2] & 0x02) !== 0, addresses, ttl };
}

// ---- the resolver --------------------------------------------------------------

export interface ResolverOptions {
  /** Server addresses (port 53). */
  servers: Uint8Array[];
  /** ms to wait for each answer before the next attempt (default 2000). */
  timeout: number;
  /** Attempts per query, rotating through the servers (default 4). */
  attempts: number;
  /** Names x types the cache holds (default 64; 0 disables it). */
  cacheSize: number;
  /** Queries in flight at once (default 32). */
  maxQueries: number;
}

/** What the resolver needs from the stack. */
export interface ResolverHost {
  readonly now: number;
  /** A UDP socket on a random free port. */
  openUdp(): UdpSocket;
  random16(): number;
}

interface Query {
  name: string;
  type: number;
  id: number;
  attempt: number;
  sock: UdpSocket;
  server: Uint8Array;
  deadline: number;
  resolve: (a: DnsAnswer | null) => void;
  reject: (e: NetError) => void;
}

export class Resolver {
  private readonly pending = new Set<Query>();
  private readonly cache = new Map<string, { addresses: string[]; expires: number }>();

  constructor(private readonly host: ResolverHost, private readonly opts: ResolverOptions) {}

  /** Queries in flight, for accounting. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Cache entries held. */
  get cached(): number {
    return this.cache.size;
  }

  /**
   * Addresses of `name` for the given families (4: A, 6: AAAA), A records
   * first. Rejects with ENOTFOUND when the name does not exist or has none,
   * ETIMEDOUT when no server answers, ESERVFAIL when they fail.
   */
  async resolve(name: string, families: (4 | 6)[]): Promise<string[]> {
    const n = normalizeName(name);
    if (this.opts.servers.length === 0) throw new NetError("ENOTFOUND", `no DNS servers to ask for '${name}'`);
    const results = await Promise.allSettled(families.map((f) => this.lookup(n, f === 4 ? TYPE_A : TYPE_AAAA)));
    const out: string[] = [];
    let nx = false, err: unknown = null;
    for (const r of results) {
      if (r.status === "rejected") err ??= r.reason;
      else if (r.value === null) nx = true;
      else out.push(...r.value);
    }
    if (out.length > 0) return out;
    if (nx) throw new NetError("ENOTFOUND", `'${name}' does not exist`);
    if (err) throw err;
    throw new NetError("ENOTFOUND", `'${name}' has no address`);
  }

  /** Addresses of one type (from the cache or a query); null for NXDOMAIN. */
  private async lookup(name: string, type: number): Promise<string[] | null> {
    const key = `${type} ${name}`, hit = this.cache.get(key);
    if (hit) {
      if (hit.expires > this.host.now) return hit.addresses;
      this.cache.delete(key);
    }
    const a = await this.query(name, type);
    if (a === null) return null;
    const addresses = a.addresses.map(formatAddress);
    if (this.opts.cacheSize > 0 && addresses.length > 0 && a.ttl > 0) {
      if (this.cache.size >= this.opts.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, { addresses, expires: this.host.now + a.ttl * 1000 });
    }
    return addresses;
  }

  private query(name: string, type: number): Promise<DnsAnswer | null> {
    if (this.pending.size >= this.opts.maxQueries) return Promise.reject(new NetError("EMFILE", "too many DNS queries in flight"));
    return new Promise((resolve, reject) => {
      const q: Query = {
        name, type, id: 0, attempt: 0, sock: this.host.openUdp(), server: this.opts.servers[0], deadline: Infinity, resolve, reject,
      };
      q.sock.handler = (data, src, port) => this.answer(q, data, src, port);
      this.pending.add(q);
      this.send(q);
    });
  }

  private send(q: Query): void {
    const servers = this.opts.servers;
    q.server = servers[q.attempt % servers.length];
    q.id = this.host.random16();
    q.deadline = Infinity;
    let queued = false;
    try {
      // The wait starts when the query actually leaves (the driver pulls output).
      queued = q.sock.sendTo(encodeQuery(q.id, q.name, q.type), q.server, DNS_PORT, (now) => { q.deadline = now + this.opts.timeout; });
    } catch (e) {
      this.finish(q);
      q.reject(e instanceof NetError ? e : new NetError("ENETUNREACH", `cannot reach DNS server ${formatAddress(q.server)}`));
      return;
    }
    if (!queued) q.deadline = this.host.now + this.opts.timeout;
  }

  private answer(q: Query, data: Uint8Array, src: Uint8Array, port: number): void {
    if (port !== DNS_PORT || !sameBytes(src, q.server)) return;
    const a = parseResponse(data, q.id, q.name, q.type);
    if (!a) return;
    if (a.rcode === RCODE_OK) { this.finish(q); q.resolve(a); return; }
    if (a.rcode === RCODE_NXDOMAIN) { this.finish(q); q.resolve(null); return; }
    // SERVFAIL, REFUSED and the like: the next server, if attempts remain.
    if (++q.attempt >= this.opts.attempts) {
      this.finish(q);
      q.reject(new NetError("ESERVFAIL", `DNS servers failed for '${q.name}' (rcode ${a.rcode})`));
      return;
    }
    this.send(q);
  }

  private finish(q: Query): void {
    this.pending.delete(q);
    q.sock.close();
  }

  /** The next query timeout or cache expiry. (Expiry is a timer so a long-idle stack never serves a stale answer.) */
  deadline(): number {
    let d = Infinity;
    for (const q of this.pending) if (q.deadline < d) d = q.deadline;
    for (const e of this.cache.values()) if (e.expires < d) d = e.expires;
    return d;
  }

  tick(now: number): void {
    for (const [k, e] of this.cache) if (e.expires <= now) this.cache.delete(k);
    for (const q of [...this.pending]) {
      if (q.deadline > now) continue;
      if (++q.attempt >= this.opts.attempts) {
        this.finish(q);
        q.reject(new NetError("ETIMEDOUT", `no DNS answer for '${q.name}'`));
      } else this.send(q);
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The address if `s` is an IP literal (normalized text), else null. */
export function ipLiteral(s: string): Uint8Array | null {
  const t = s.startsWith("[") && s.endsWith("]") ? s.slice(1, -1) : s;
  try { return parseAddress(t); } catch { return null; }
}
