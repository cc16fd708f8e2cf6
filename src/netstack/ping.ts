// Echo requests in flight (ping): each waits for the reply with its
// identifier and sequence number from the address it went to, or times out.
import { NetError } from "./errors.ts";
import { formatAddress } from "../ip.ts";

/** Pings in flight at once, per stack. */
export const MAX_PINGS = 64;

interface Pending {
  dst: Uint8Array;
  sentAt: number;
  deadline: number;
  resolve: (rtt: number) => void;
  reject: (e: NetError) => void;
}

export class Pinger {
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 0;

  /** @param id the ICMP identifier of this stack's requests */
  constructor(readonly id: number) {}

  get inFlight(): number {
    return this.pending.size;
  }

  /** A free sequence number, or -1 when MAX_PINGS are in flight. */
  take(): number {
    if (this.pending.size >= MAX_PINGS) return -1;
    while (this.pending.has(this.nextSeq)) this.nextSeq = (this.nextSeq + 1) & 0xffff;
    const seq = this.nextSeq;
    this.nextSeq = (seq + 1) & 0xffff;
    return seq;
  }

  /** Waits for the reply to request `seq` sent to dst at `now`: the RTT in ms, or ETIMEDOUT at now + timeout. */
  wait(seq: number, dst: Uint8Array, now: number, timeout: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { dst, sentAt: now, deadline: now + timeout, resolve, reject });
    });
  }

  /** An echo reply with our identifier and `seq` came from the address at p[srcOff, srcOff + alen). */
  reply(seq: number, p: Uint8Array, srcOff: number, alen: number, now: number): void {
    const ping = this.pending.get(seq);
    if (!ping || ping.dst.length !== alen) return;
    for (let i = 0; i < alen; i++) if (ping.dst[i] !== p[srcOff + i]) return;
    this.pending.delete(seq);
    ping.resolve(now - ping.sentAt);
  }

  deadline(): number {
    let d = Infinity;
    for (const p of this.pending.values()) if (p.deadline < d) d = p.deadline;
    return d;
  }

  tick(now: number): void {
    for (const [seq, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(seq);
      p.reject(new NetError("ETIMEDOUT", `no echo reply from ${formatAddress(p.dst)}`));
    }
  }
}
