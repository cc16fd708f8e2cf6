// Names for a gateway's pages. An edge function has no UDP, so the gateway
// cannot pass DNS queries on; instead it answers them itself: each name gets
// an address of its own from 198.18.0.0/15 (RFC 2544's benchmarking range,
// which nothing routes), and a flow to that address leaves through the
// platform's connect(name, port), so the platform resolves the name where the
// connection is made. A page's config points its DNS at the gateway's tunnel
// address. AAAA and other types get an empty answer, so clients use the A.

const TYPE_A = 1, CLASS_IN = 1;
const HEADER = 12;
/** 198.18.0.0/15: 131,072 addresses; .0 and the last are skipped. */
const BASE = ((198 << 24) | (18 << 16)) >>> 0;
const SIZE = 1 << 17;
/** Seconds a client may cache an answer; the mapping lives until the session ends or FAKE_DNS_NAMES newer names push it out. */
const TTL = 300;

/**
 * Names one session's table holds (4096): a page touching more distinct
 * names than that in one session is rare, and the table costs about 200
 * bytes a name. Past it the least recently used name gives way.
 */
export const FAKE_DNS_NAMES = 4096;

export class FakeDns {
  /** Least recently used first: Map keeps insertion order, and a use re-inserts. */
  private readonly byName = new Map<string, number>();
  private readonly byAddress = new Map<number, string>();
  /** Where the search for a free address starts: it goes round, so a freed address is the last to be given again. */
  private next = 1;
  /** Names dropped to make room for a newer one. */
  evicted = 0;

  /**
   * @param limit names one session may hold; a new name beyond it takes the
   *   place of the least recently used one (asked for, or used by a flow),
   *   whose address then answers no flow until the round of addresses comes back to it
   * @throws RangeError unless 1 <= limit < 131070
   */
  constructor(readonly limit = FAKE_DNS_NAMES) {
    if (!Number.isInteger(limit) || limit < 1 || limit >= SIZE - 2) throw new RangeError(`invalid fake DNS limit ${limit}`);
  }

  /** Names held now. */
  get size(): number {
    return this.byName.size;
  }

  /** Whether `address` (dotted quad) lies in the range the answers come from. */
  static owns(address: string): boolean {
    const a = parse4(address);
    return a !== null && (a >>> 17) === (BASE >>> 17);
  }

  /** The name an answered address stands for, if it is still held (a use: it becomes the most recent). */
  name(address: string): string | undefined {
    const a = parse4(address);
    const name = a === null ? undefined : this.byAddress.get(a);
    if (name !== undefined) this.touch(name, a!);
    return name;
  }

  private touch(name: string, address: number): void {
    this.byName.delete(name);
    this.byName.set(name, address);
  }

  /** A new name's address: the oldest name gives way at the limit; the next free address in the round. */
  private add(name: string): number {
    if (this.byName.size >= this.limit) {
      const [oldName, oldAddress] = this.byName.entries().next().value!;
      this.byName.delete(oldName);
      this.byAddress.delete(oldAddress);
      this.evicted++;
    }
    // .0 and the range's last address are never given; fewer names than addresses are held, so one is free.
    while (this.byAddress.has(BASE + this.next)) this.next = this.next >= SIZE - 2 ? 1 : this.next + 1;
    const address = BASE + this.next;
    this.next = this.next >= SIZE - 2 ? 1 : this.next + 1;
    this.byName.set(name, address);
    this.byAddress.set(address, name);
    return address;
  }

  /**
   * The response to one DNS query message, or null for what is not a
   * well-formed standard query with one question (dropped, as a server may).
   */
  answer(q: Uint8Array): Uint8Array | null {
    if (q.length < HEADER + 5 || q.length > 512) return null;
    const flags = (q[2] << 8) | q[3];
    if ((flags & 0x8000) !== 0 || ((flags >> 11) & 0xf) !== 0) return null; // a response, or not QUERY
    if (((q[4] << 8) | q[5]) !== 1) return null;
    // QNAME: labels only (a query has no compression pointers), at most 255 octets in all (RFC 1035 2.3.4).
    const labels: string[] = [];
    let off = HEADER;
    for (;;) {
      if (off >= q.length) return null;
      const n = q[off++];
      if (n === 0) break;
      if (n > 63 || off + n > q.length || off + n - HEADER + 1 > 255) return null;
      labels.push(String.fromCharCode(...q.subarray(off, off + n)).toLowerCase());
      off += n;
    }
    if (off + 4 > q.length || labels.length === 0) return null;
    const type = (q[off] << 8) | q[off + 1], cls = (q[off + 2] << 8) | q[off + 3];
    const qend = off + 4;
    const name = labels.join(".");
    let address = -1, rcode = 0;
    if (type === TYPE_A && cls === CLASS_IN) {
      address = this.byName.get(name) ?? -1;
      if (address >= 0) this.touch(name, address);
      else if (!/^[a-z0-9_.-]+$/.test(name)) rcode = 2; // SERVFAIL
      else address = this.add(name);
    }
    const withAnswer = address >= 0 && rcode === 0;
    const r = new Uint8Array(qend + (withAnswer ? 16 : 0));
    r.set(q.subarray(0, qend));
    r[2] = 0x80 | (q[2] & 0x01); // QR, RD as asked
    r[3] = 0x80 | rcode;         // RA
    r[6] = 0; r[7] = withAnswer ? 1 : 0;
    r.fill(0, 8, 12);            // no authority or additional records (EDNS is not echoed)
    if (withAnswer) {
      let o = qend;
      r[o++] = 0xc0; r[o++] = HEADER;            // the name: a pointer to the question's
      r[o++] = 0; r[o++] = TYPE_A; r[o++] = 0; r[o++] = CLASS_IN;
      r[o++] = 0; r[o++] = 0; r[o++] = TTL >> 8; r[o++] = TTL & 0xff;
      r[o++] = 0; r[o++] = 4;
      r[o++] = address >>> 24; r[o++] = (address >>> 16) & 0xff; r[o++] = (address >>> 8) & 0xff; r[o++] = address & 0xff;
    }
    return r;
  }
}

function parse4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return null;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}
