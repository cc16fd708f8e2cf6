// Congestion control: slow start and congestion avoidance (RFC 5681 3.1),
// fast retransmit and NewReno fast recovery (RFC 6582 3.2), and the loss
// window after a retransmission timeout (RFC 5681 3.1, RFC 6582 3.2 step 4).
// Sizes are in bytes; `mss` is the sender's maximum segment size.

/** What the sender does after an ACK or duplicate ACK. */
export const CC_NONE = 0;
/** Retransmit the first unacknowledged segment now (fast retransmit, or a partial ACK in recovery). */
export const CC_RETRANSMIT = 1;
/** A partial ACK: retransmit, and restart the retransmission timer (RFC 6582 3.2 step 5). */
export const CC_PARTIAL = 2;

/** RFC 5681 3.2: the duplicate ACK count that triggers fast retransmit. */
const DUP_THRESHOLD = 3;
/** The initial window in segments (RFC 6928). */
const INITIAL_SEGMENTS = 10;

export class NewReno {
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** RFC 6582 "recover": the highest sequence number sent when recovery began (SND.MAX). */
  recover: number;
  inRecovery = false;
  dupAcks = 0;
  /** Bytes acknowledged towards the next cwnd increase in congestion avoidance (RFC 5681 3.1, byte counting). */
  private acc = 0;

  constructor(private mss: number, iss: number) {
    this.cwnd = INITIAL_SEGMENTS * mss;
    this.recover = iss;
  }

  /** The peer's MSS became known (the handshake). */
  setMss(mss: number): void {
    this.mss = mss;
    this.cwnd = INITIAL_SEGMENTS * mss;
  }

  /** RFC 5681 4.1: after an idle period longer than the RTO, start again from the initial window. */
  restartAfterIdle(): void {
    this.cwnd = Math.min(this.cwnd, INITIAL_SEGMENTS * this.mss);
  }

  /**
   * An ACK advanced SND.UNA to `ack` by `acked` bytes; `flight` is what remains
   * outstanding after it. Returns CC_NONE or CC_PARTIAL.
   */
  onAck(ack: number, acked: number, flight: number): number {
    const mss = this.mss;
    this.dupAcks = 0;
    if (this.inRecovery) {
      if (((ack - this.recover) | 0) >= 0) {
        // Full acknowledgment (RFC 6582 3.2 step 3, option 1).
        this.inRecovery = false;
        this.cwnd = Math.min(this.ssthresh, Math.max(flight, mss) + mss);
        this.acc = 0;
        return CC_NONE;
      }
      // Partial acknowledgment: deflate by what was acked, add one MSS back if it was at least one.
      this.cwnd = Math.max(mss, this.cwnd - acked + (acked >= mss ? mss : 0));
      return CC_PARTIAL;
    }
    if (this.cwnd < this.ssthresh) {
      // Slow start: grow by what was acknowledged, no further than ssthresh.
      this.cwnd = Math.min(this.cwnd + acked, Math.max(this.ssthresh, this.cwnd));
    } else {
      // Congestion avoidance: one MSS per cwnd of acknowledged bytes.
      this.acc += acked;
      if (this.acc >= this.cwnd) { this.acc -= this.cwnd; this.cwnd += mss; }
    }
    return CC_NONE;
  }

  /**
   * A duplicate ACK (RFC 5681 2, "DUPLICATE ACKNOWLEDGMENT") for SND.UNA =
   * `una` with `flight` bytes outstanding and SND.MAX = `sndMax`. Returns
   * CC_RETRANSMIT on the third, when recovery may begin.
   */
  onDupAck(una: number, flight: number, sndMax: number): number {
    const mss = this.mss;
    if (this.inRecovery) {
      // RFC 6582 3.2 step 3: inflate by one MSS per further duplicate.
      this.cwnd += mss;
      return CC_NONE;
    }
    if (++this.dupAcks !== DUP_THRESHOLD) return CC_NONE;
    // RFC 6582 3.2 step 2: only when the ACK covers more than `recover`, so
    // duplicates of data sent before the last timeout or recovery do not
    // start another one. (`recover` holds SND.MAX, the byte after the highest sent.)
    if (((una - this.recover) | 0) <= 0) return CC_NONE;
    this.recover = sndMax;
    this.ssthresh = Math.max(flight / 2, 2 * mss);
    this.cwnd = this.ssthresh + DUP_THRESHOLD * mss;
    this.inRecovery = true;
    return CC_RETRANSMIT;
  }

  /** RFC 5681 3.1 (4) and RFC 6582 3.2 step 4: the retransmission timer expired. */
  onTimeout(flight: number, sndMax: number): void {
    this.ssthresh = Math.max(flight / 2, 2 * this.mss);
    this.cwnd = this.mss;
    this.recover = sndMax;
    this.inRecovery = false;
    this.dupAcks = 0;
    this.acc = 0;
  }
}
