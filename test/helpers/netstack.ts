// Two netstacks back to back over an in-memory link under a virtual clock:
// delay, loss, duplication, reordering and a filter for dropping chosen
// packets. No sleeps: the clock jumps to the next delivery or timer, and the
// application's promises run between steps (setImmediate drains microtasks).
import { Stack, type StackOptions, type TcpConn } from "../../src/netstack/index.ts";

export const A4 = "10.0.0.1", B4 = "10.0.0.2", A6 = "fd00::1", B6 = "fd00::2";

export interface Packet {
  from: Stack;
  to: Stack;
  data: Uint8Array;
  /** When it was sent (virtual ms). */
  at: number;
}

interface InFlight extends Packet {
  due: number;
  n: number;
}

/** A seeded PRNG (mulberry32) so impaired runs repeat exactly. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A deterministic random fill for Stack's `random` option. */
export function seededRandom(seed: number): (b: Uint8Array) => void {
  const r = prng(seed);
  return (b) => { for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256); };
}

export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export class Link {
  now = 0;
  readonly a: Stack;
  readonly b: Stack;
  /** One-way delay in ms. */
  delay = 5;
  /** Probabilities per packet. */
  loss = 0;
  dup = 0;
  reorder = 0;
  /** Extra delay of a reordered packet (ms). */
  reorderDelay = 3;
  /** Sees every packet sent; return false to drop it. */
  filter: ((p: Packet) => boolean) | null = null;
  /** Every packet sent (kept when `record`). */
  readonly log: Packet[] = [];
  record = true;
  private q: InFlight[] = [];
  private n = 0;
  private readonly rng: () => number;

  constructor(aOpts: Partial<StackOptions> = {}, bOpts: Partial<StackOptions> = {}, seed = 1) {
    this.rng = prng(seed);
    this.a = new Stack({ addresses: [A4, A6], random: seededRandom(seed * 2 + 1), ...aOpts });
    this.b = new Stack({ addresses: [B4, B6], random: seededRandom(seed * 2 + 2), ...bOpts });
  }

  other(s: Stack): Stack {
    return s === this.a ? this.b : this.a;
  }

  /** Pulls everything both stacks have to send onto the wire; true if there was any. */
  drain(): boolean {
    let any = false;
    for (const s of [this.a, this.b]) {
      for (let p = s.output(this.now); p; p = s.output(this.now)) {
        any = true;
        this.send({ from: s, to: this.other(s), data: p, at: this.now });
      }
    }
    return any;
  }

  /** Puts a packet on the wire, as the impairments allow. */
  send(p: Packet): void {
    if (this.record) this.log.push(p);
    if (this.filter && !this.filter(p)) return;
    if (this.loss > 0 && this.rng() < this.loss) return;
    const copies = this.dup > 0 && this.rng() < this.dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const extra = this.reorder > 0 && this.rng() < this.reorder ? this.reorderDelay * (1 + this.rng()) : 0;
      this.enqueue({ ...p, due: this.now + this.delay + extra, n: this.n++ });
    }
  }

  /** Puts a packet on the wire to arrive at `due`, bypassing filter and impairments. */
  inject(p: Packet, due: number): void {
    this.enqueue({ ...p, due, n: this.n++ });
  }

  private enqueue(f: InFlight): void {
    const q = this.q;
    let lo = 0, hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q[mid].due < f.due || (q[mid].due === f.due && q[mid].n < f.n)) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, f);
  }

  /** Delivers what is due now; true if anything was. */
  deliver(): boolean {
    let k = 0;
    while (k < this.q.length && this.q[k].due <= this.now) k++;
    if (k === 0) return false;
    const due = this.q.splice(0, k);
    for (const f of due) f.to.input(f.data, this.now);
    return true;
  }

  get inFlight(): number {
    return this.q.length;
  }

  /**
   * Runs the network until `until()` holds (true) or nothing is left to
   * happen before `limit` ms from now (false).
   */
  async run(until: () => boolean = () => false, limit = 600_000): Promise<boolean> {
    const end = this.now + limit;
    for (;;) {
      await settle();
      if (until()) return true;
      if (this.drain()) continue;
      if (this.deliver()) continue;
      const next = Math.min(this.q.length ? this.q[0].due : Infinity, this.a.nextTimer(), this.b.nextTimer());
      if (next > end) { this.now = Math.max(this.now, Math.min(end, next === Infinity ? end : next)); return until(); }
      this.now = Math.max(this.now, next);
      for (const s of [this.a, this.b]) if (s.nextTimer() <= this.now) s.tick(this.now);
    }
  }

  /** Runs for `ms` of virtual time. */
  async runFor(ms: number): Promise<void> {
    await this.run(() => false, ms);
  }

  /** Waits for a promise while running the network (fails after `limit` ms). */
  async until<T>(p: Promise<T>, limit = 600_000): Promise<T> {
    let done = false, value: T | undefined, error: unknown, failed = false;
    p.then((v) => { done = true; value = v; }, (e) => { done = true; failed = true; error = e; });
    if (!(await this.run(() => done, limit))) throw new Error(`still pending after ${limit} ms of virtual time`);
    if (failed) throw error;
    return value as T;
  }

  /** a connects to b:port (b listening); both ends once established. */
  async connect(port = 80, v6 = false): Promise<{ client: TcpConn; server: TcpConn }> {
    let server: TcpConn | null = null;
    const l = this.b.listen(port, (c) => { server = c; });
    const client = await this.until(this.a.connect(v6 ? B6 : B4, port));
    await this.run(() => server !== null, 10_000);
    l.close();
    return { client, server: server! };
  }
}

// ---- looking at packets -----------------------------------------------------------

export interface TcpView {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  wnd: number;
  len: number;
}

/** The TCP header of an IPv4/IPv6 packet, or null if it carries no TCP. */
export function tcpOf(p: Uint8Array): TcpView | null {
  let off: number, end: number;
  if (p[0] >> 4 === 4) {
    if (p[9] !== 6) return null;
    off = (p[0] & 15) * 4; end = (p[2] << 8) | p[3];
  } else {
    if (p[6] !== 6) return null;
    off = 40; end = 40 + ((p[4] << 8) | p[5]);
  }
  const hl = (p[off + 12] >> 4) * 4;
  return {
    srcPort: (p[off] << 8) | p[off + 1],
    dstPort: (p[off + 2] << 8) | p[off + 3],
    seq: ((p[off + 4] << 24) | (p[off + 5] << 16) | (p[off + 6] << 8) | p[off + 7]) >>> 0,
    ack: ((p[off + 8] << 24) | (p[off + 9] << 16) | (p[off + 10] << 8) | p[off + 11]) >>> 0,
    flags: p[off + 13],
    wnd: (p[off + 14] << 8) | p[off + 15],
    len: end - off - hl,
  };
}

export const F = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 } as const;

// ---- application helpers ----------------------------------------------------------------

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n), r = prng(seed);
  for (let i = 0; i < n; i += 4) {
    const v = Math.floor(r() * 4294967296);
    out[i] = v; out[i + 1] = v >> 8; out[i + 2] = v >> 16; out[i + 3] = v >> 24;
  }
  return out;
}

/** Writes data in chunks of `chunk` bytes, awaiting each write, then closes if asked. */
export async function writeAll(conn: TcpConn, data: Uint8Array, chunk = 65536, close = true): Promise<void> {
  const w = conn.writable.getWriter();
  for (let i = 0; i < data.length; i += chunk) await w.write(data.subarray(i, i + chunk));
  if (close) await w.close();
  else w.releaseLock();
}

/** Reads until the peer's FIN; everything read, concatenated. */
export async function readAll(conn: TcpConn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const r = conn.readable.getReader();
  for (;;) {
    const { value, done } = await r.read();
    if (done) break;
    parts.push(value);
    total += value.length;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
