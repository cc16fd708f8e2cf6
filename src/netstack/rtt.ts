// The retransmission timeout (RFC 6298): SRTT and RTTVAR from samples of
// segments sent once (Karn's algorithm: the caller never samples a
// retransmitted segment), exponential backoff on expiry, clamped between a
// floor and a ceiling. The floor defaults to 200 ms as Linux uses rather than
// the RFC's 1 s (2.4 allows it), the ceiling to 60 s (2.5).

export interface RtoLimits {
  /** RTO before any sample (RFC 6298 2.1: 1 s). */
  initial: number;
  min: number;
  max: number;
}

/** Clock granularity G of RFC 6298 2: `now` comes in milliseconds. */
const GRANULARITY = 1;

export class RttEstimator {
  srtt = 0;
  rttvar = 0;
  /** The current RTO in ms, backoff included. */
  rto: number;
  hasSample = false;

  constructor(private readonly limits: RtoLimits) {
    this.rto = limits.initial;
  }

  private clamp(v: number): number {
    return Math.min(this.limits.max, Math.max(this.limits.min, v));
  }

  /** RFC 6298 2.2 and 2.3: a new measurement r (ms). Also undoes any backoff (5.7 of 2988 / Karn). */
  sample(r: number): void {
    if (r < 0) r = 0;
    if (!this.hasSample) {
      this.srtt = r;
      this.rttvar = r / 2;
      this.hasSample = true;
    } else {
      // RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|, beta = 1/4; then SRTT with alpha = 1/8.
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = this.clamp(this.srtt + Math.max(GRANULARITY, 4 * this.rttvar));
  }

  /** RFC 6298 5.5: the timer expired; double the RTO (up to the ceiling). */
  backoff(): void {
    this.rto = this.clamp(this.rto * 2);
  }

  /** RFC 6298 5.7: the SYN was retransmitted and no sample came of it; data starts with an RTO of 3 s. */
  afterSynRetransmit(): void {
    if (!this.hasSample) this.rto = this.clamp(Math.max(this.rto, 3000));
  }
}
