// One TCP connection: the transmission control block and the RFC 9293 state
// machine (3.3.2, event processing in 3.10), sans-IO.
//
// The stack drives it with four calls:
//   input(seg, packet, now) - a segment for this connection arrived
//   emit(buf, off, now)     - write the next segment to send (an IP packet) at buf[off], or return 0
//   tick(now)               - timers: retransmission, persist, delayed ACK, keepalive, TIME-WAIT
//   deadline()              - when tick wants to run next
// and the application (through TcpConn) with write/read/close/abort.
//
// Nothing is sent from inside input or tick: they only change state and set
// flags (ackNow, rtxOnce, probeNow) or move SND.NXT back; emit turns that
// state into segments when the driver pulls output. So a burst of arriving
// segments earns one ACK, and no packet queue exists to grow.
//
// Sending: SYN, then data from the send ring (which holds everything from
// SND.UNA on) within min(peer window, cwnd), then FIN. Retransmission: the
// RTO (RFC 6298) resends from SND.UNA (go-back-N from the loss window), fast
// retransmit and NewReno partial ACKs resend one segment at SND.UNA. Zero
// windows are probed (RFC 9293 3.8.6.1) with a segment at SND.UNA - 1, which
// any receiver must answer with an ACK carrying its window.
//
// Receiving: in-order data goes to the receive ring, out-of-order data to
// its place in the ring's free space, tracked by a bounded Assembler. The
// advertised window is the ring's free space, never shrunk, and only moved
// right by at least min(MSS, buffer / 2) (receiver SWS avoidance, RFC 1122
// 4.2.3.3).
import { Assembler } from "./assembler.ts";
import { storeChecksum } from "./checksum.ts";
import { CC_PARTIAL, CC_RETRANSMIT, NewReno } from "./congestion.ts";
import { NetError } from "./errors.ts";
import { PROTO_TCP, ipHeaderLen, writeIp } from "./ip.ts";
import { Ring } from "./ring.ts";
import { RttEstimator, type RtoLimits } from "./rtt.ts";
import {
  ACK, FIN, MAX_WINDOW_SHIFT, PSH, RST, SYN, TCP_HEADER, TCP_SYN_HEADER, type Segment, seqAdd, seqDiff, seqGe, seqGt, seqLe,
  seqLt, writeTcp,
} from "./tcp.ts";

// RFC 9293 3.3.2 states. LISTEN belongs to listeners, which are not TCBs.
export const CLOSED = 0;
export const LISTEN = 1;
export const SYN_SENT = 2;
export const SYN_RECEIVED = 3;
export const ESTABLISHED = 4;
export const FIN_WAIT_1 = 5;
export const FIN_WAIT_2 = 6;
export const CLOSE_WAIT = 7;
export const CLOSING = 8;
export const LAST_ACK = 9;
export const TIME_WAIT = 10;
export const STATE_NAMES = [
  "CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING",
  "LAST-ACK", "TIME-WAIT",
] as const;
export type TcpState = (typeof STATE_NAMES)[number];

/** RFC 9293 3.7.1 / RFC 8200 8.3: the MSS to assume when a SYN carries none. */
export const DEFAULT_MSS_V4 = 536;
export const DEFAULT_MSS_V6 = 1220;
/** Bare ACKs sent in answer to out-of-window bare ACKs: at most one per this many ms (Linux's default). */
const OOW_ACK_INTERVAL = 500;
/** The smallest MSS the stack will use, whatever the peer says (Linux uses 48 + headers). */
const MIN_MSS = 64;
/** Duplicate ACKs owed at most: enough for fast retransmit and for recovery to keep sending. */
const MAX_DUP_ACKS_OWED = 32;

export interface TcpConfig {
  /** Send buffer cap in bytes: unacknowledged plus unsent data. */
  sendBuffer: number;
  /** Receive buffer cap in bytes: unread plus out-of-order data; the window never exceeds it. */
  receiveBuffer: number;
  /** Delayed ACK timeout in ms (RFC 1122 4.2.3.2, at most 500); 0 acknowledges every segment. */
  delayedAck: number;
  /** TIME-WAIT duration in ms (2 MSL, shortened). */
  timeWait: number;
  /** FIN-WAIT-2 timeout in ms once the application stopped reading. */
  finWait2Timeout: number;
  /** Retransmissions of a SYN before connect fails with ETIMEDOUT. */
  synRetries: number;
  /** Retransmissions (or unanswered zero-window probes) before the connection fails with ETIMEDOUT. */
  retries: number;
  rto: RtoLimits;
  /** Keepalive (RFC 1122 4.2.3.6), off when null: probe after `idle` ms of silence, every `interval`, give up after `count`. */
  keepalive: { idle: number; interval: number; count: number } | null;
  /** Out-of-order ranges kept per connection. */
  maxOutOfOrder: number;
}

/** Counters a TCB updates; the stack owns them. */
export interface TcpCounters {
  tcpSegmentsOut: number;
  tcpRetransmits: number;
  tcpFastRetransmits: number;
  tcpTimeouts: number;
  tcpResetsIn: number;
  tcpResetsOut: number;
  tcpOutOfWindow: number;
  tcpOutOfOrder: number;
  tcpOutOfOrderDropped: number;
}

/** What a TCB needs from the stack. */
export interface TcbHost {
  readonly counters: TcpCounters;
  /** The latest time the stack has seen. */
  readonly now: number;
  /** The TCB has something to send: the stack will call emit. */
  ready(t: Tcb): void;
  /** The TCB reached CLOSED: forget it. */
  gone(t: Tcb): void;
  /** Queues a finished packet (a reset from a TCB that is going away). */
  control(packet: Uint8Array): void;
  nextIpId(): number;
}

/** Whoever waits for the connection to open: a connect call or a listener. */
export interface TcbParent {
  opened(t: Tcb): void;
  failed(t: Tcb, err: NetError): void;
}

/** What the application side (TcpConn) hears about. */
export interface TcbEvents {
  /** Data arrived, or the peer's FIN (eof). */
  onReadable(): void;
  /** Room opened in the send buffer. */
  onWritable(): void;
  /** The connection reached CLOSED: null after a clean close, else why. */
  onClosed(err: NetError | null): void;
}

function windowShift(buffer: number): number {
  let s = 0;
  while (s < MAX_WINDOW_SHIFT && buffer >> s > 0xffff) s++;
  return s;
}

export class Tcb {
  state = CLOSED;
  parent: TcbParent | null = null;
  events: TcbEvents | null = null;
  /** Why the connection ended, once CLOSED (null: cleanly). */
  error: NetError | null = null;

  // Send sequence space (RFC 9293 3.3.1). SND.MAX is the highest SND.NXT so
  // far: after a timeout SND.NXT goes back to SND.UNA and climbs again.
  readonly iss: number;
  sndUna: number;
  sndNxt: number;
  sndMax: number;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** The largest window the peer offered (sender SWS avoidance). */
  private maxSndWnd = 0;
  /** The peer's window scale, when both sides sent the option. */
  private sndShift = 0;
  /** The MSS for what we send: the peer's, capped by our MTU. */
  sndMss: number;
  /** Data from SND.UNA (or ISS + 1) on; sndBufSeq is the sequence number of its first byte. */
  readonly sndBuf: Ring;
  private sndBufSeq: number;
  /** The application closed its side: a FIN follows the data (at sequence number sndBufSeq + sndBuf.len). */
  finQueued = false;

  // Receive sequence space.
  irs = 0;
  rcvNxt = 0;
  /** The right edge of the window last advertised: RCV.NXT + RCV.WND as the peer sees it. */
  private rcvAdv = 0;
  private rcvShift = 0;
  /** Our window scale, offered in our SYN. */
  private readonly ourShift: number;
  /** Our MSS, from the MTU. */
  readonly rcvMss: number;
  readonly rcvBuf: Ring;
  private readonly asm: Assembler;
  /** The peer's FIN arrived out of order; it takes effect when RCV.NXT reaches rcvFinSeq. */
  private finPending = false;
  private rcvFinSeq = 0;
  /** The peer's FIN has been received (in order). */
  finReceived = false;
  /** The application stopped reading: arriving data is acknowledged and dropped. */
  private rcvShut = false;
  /** Both SYNs carried the window scale option. */
  private wsOk = false;

  // ACK generation. Out-of-order segments each owe the peer a duplicate ACK
  // (RFC 5681 4.2), even when a batch of them arrives before output is pulled.
  private ackNow = false;
  private dupAcksOwed = 0;
  private delackAt = Infinity;
  private lastAckSent = 0;
  private lastOowAck = -Infinity;

  // Retransmission.
  readonly rtt: RttEstimator;
  readonly cc: NewReno;
  private timing = false;
  private timedSeq = 0;
  private timedAt = 0;
  private rtxAt = Infinity;
  private retries = 0;
  private synRetransmitted = false;
  /** Resend one segment at SND.UNA (fast retransmit, partial ACK). */
  private rtxOnce = false;
  private lastDataSent = -Infinity;

  // Persist and keepalive probes, TIME-WAIT / FIN-WAIT-2 timeout.
  private persistAt = Infinity;
  private persistShift = 0;
  private probes = 0;
  private probeNow = false;
  private closeAt = Infinity;
  private kaAt = Infinity;
  private kaProbes = 0;
  private lastRecv = 0;

  constructor(
    private readonly host: TcbHost,
    private readonly cfg: TcpConfig,
    readonly key: string,
    /** Local and remote addresses (4 or 16 bytes) and ports. */
    readonly local: Uint8Array,
    readonly localPort: number,
    readonly remote: Uint8Array,
    readonly remotePort: number,
    iss: number,
    mtu: number,
    /** Opened by a listener (true) or by connect. */
    readonly passive: boolean,
  ) {
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.sndBufSeq = seqAdd(this.iss, 1);
    this.rcvMss = mtu - ipHeaderLen(local.length) - TCP_HEADER;
    this.sndMss = Math.min(this.rcvMss, local.length === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6);
    this.sndBuf = new Ring(cfg.sendBuffer);
    this.rcvBuf = new Ring(cfg.receiveBuffer);
    this.asm = new Assembler(cfg.maxOutOfOrder);
    this.ourShift = windowShift(cfg.receiveBuffer);
    this.rtt = new RttEstimator(cfg.rto);
    this.cc = new NewReno(this.sndMss, this.iss);
  }

  get stateName(): TcpState {
    return STATE_NAMES[this.state];
  }

  // ---- opening ---------------------------------------------------------------

  /** OPEN, active (RFC 9293 3.10.1): the SYN goes out with the next emit. */
  connect(now: number): void {
    this.state = SYN_SENT;
    this.lastRecv = now;
    this.host.ready(this);
  }

  /** A SYN reached a listener (RFC 9293 3.10.7.2, LISTEN): answer with SYN-ACK. */
  accept(s: Segment, now: number): void {
    this.state = SYN_RECEIVED;
    this.lastRecv = now;
    this.synOptions(s);
    this.sndWnd = s.wnd; // never scaled in a SYN (RFC 7323 2.2)
    this.sndWl1 = s.seq;
    this.host.ready(this);
  }

  /** Takes IRS and the options from the peer's SYN. */
  private synOptions(s: Segment): void {
    this.irs = s.seq;
    this.rcvNxt = seqAdd(s.seq, 1);
    this.lastAckSent = this.rcvNxt;
    this.wsOk = s.wscale >= 0;
    this.sndShift = this.wsOk ? s.wscale : 0;
    this.rcvShift = this.wsOk ? this.ourShift : 0;
    const peer = s.mss > 0 ? s.mss : this.local.length === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6;
    this.sndMss = Math.max(MIN_MSS, Math.min(peer, this.rcvMss));
    this.cc.setMss(this.sndMss);
  }

  private established(): void {
    this.state = ESTABLISHED;
    if (this.synRetransmitted) this.rtt.afterSynRetransmit();
    if (this.cfg.keepalive) this.kaAt = this.lastRecv + this.cfg.keepalive.idle;
    const p = this.parent;
    this.parent = null;
    p?.opened(this);
  }

  // ---- the application's side -------------------------------------------------

  /** Whether the application may still write. */
  get canWrite(): boolean {
    return (this.state === ESTABLISHED || this.state === CLOSE_WAIT) && !this.finQueued;
  }

  /** Copies what fits of src[off..] into the send buffer; returns the bytes taken. */
  write(src: Uint8Array, off: number): number {
    if (!this.canWrite) return 0;
    const n = Math.min(src.length - off, this.sndBuf.free);
    if (n > 0) {
      this.sndBuf.push(src, off, n);
      this.host.ready(this);
    }
    return n;
  }

  /** Takes up to max unread bytes, or null when none are buffered. May open the window. */
  read(max: number): Uint8Array | null {
    if (this.rcvBuf.len === 0) return null;
    const out = this.rcvBuf.take(max);
    if (this.state !== CLOSED && this.state !== TIME_WAIT && !this.finReceived) {
      // Tell the peer when the window has grown enough (at least doubled, and by min(MSS, buffer / 2)).
      const cur = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
      const w = this.advertisable();
      if (w - cur >= this.swsThreshold() && w >= 2 * cur) {
        this.ackNow = true;
        this.host.ready(this);
      }
    }
    return out;
  }

  /** The peer's FIN was received and everything before it has been read. */
  get eof(): boolean {
    return this.finReceived && this.rcvBuf.len === 0;
  }

  /** The application will not read any more (the readable was cancelled). */
  shutdownRead(): void {
    this.rcvShut = true;
    this.rcvBuf.discard(this.rcvBuf.len);
    this.rcvBuf.release();
    if (this.state === FIN_WAIT_2) this.closeAt = this.host.now + this.cfg.finWait2Timeout;
    if (this.state !== CLOSED) this.host.ready(this);
  }

  /** CLOSE (RFC 9293 3.10.4): a FIN after the data already written. */
  close(): void {
    if (this.finQueued) return;
    if (this.state === ESTABLISHED) this.state = FIN_WAIT_1;
    else if (this.state === CLOSE_WAIT) this.state = LAST_ACK;
    else return;
    this.finQueued = true;
    this.host.ready(this);
  }

  /** ABORT (RFC 9293 3.10.5): a reset to the peer, and CLOSED with ECONNABORTED. */
  abort(): void {
    const st = this.state;
    if (st === CLOSED) return;
    if (st === SYN_RECEIVED || st === ESTABLISHED || st === FIN_WAIT_1 || st === FIN_WAIT_2 || st === CLOSE_WAIT) {
      this.sendReset(this.sndMax, this.rcvNxt, true);
    }
    this.terminate(new NetError("ECONNABORTED", "connection aborted"));
  }

  // ---- segment arrival (RFC 9293 3.10.7) -------------------------------------

  input(s: Segment, p: Uint8Array, now: number): void {
    const st = this.state;
    if (st === CLOSED) return;
    this.lastRecv = now;
    this.kaProbes = 0;
    if (st === SYN_SENT) { this.inputSynSent(s, now); return; }
    const f = s.flags;

    if (st === SYN_RECEIVED && (f & (SYN | RST)) === SYN && s.seq === this.irs) {
      if ((f & ACK) !== 0 && s.ack === this.sndMax && seqGt(s.ack, this.sndUna)) {
        // Simultaneous open: the peer's SYN-ACK completes our SYN-RECEIVED (RFC 9293 figure 7).
        this.sndWnd = s.wnd;
        this.sndWl1 = s.seq;
        this.sndWl2 = s.ack;
        this.established();
        this.newAck(s.ack, now);
        this.ackNow = true;
      } else if ((f & ACK) === 0) {
        // The peer's SYN again: our SYN-ACK was lost. Resend it now (and do not time it: Karn).
        this.sndNxt = this.iss;
        this.timing = false;
        this.synRetransmitted = true;
      }
      return;
    }

    // First: is the sequence number acceptable?
    const segLen = s.dataLen + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
    if (!this.acceptable(s.seq, segLen)) {
      this.host.counters.tcpOutOfWindow++;
      // Answered with an ACK, but a bare ACK only once per OOW_ACK_INTERVAL:
      // two ends that each answer the other's stale ACK would trade them
      // forever (as Linux's tcp_invalid_ratelimit). Data and FINs are always
      // answered, since their sender needs the ACK it lost.
      if ((f & RST) === 0 && (segLen > 0 || now - this.lastOowAck >= OOW_ACK_INTERVAL)) {
        this.ackNow = true;
        if (segLen === 0) this.lastOowAck = now;
      }
      // TIME-WAIT: a retransmitted FIN is acknowledged again and restarts the wait.
      if (st === TIME_WAIT && (f & FIN) !== 0) this.closeAt = now + this.cfg.timeWait;
      return;
    }
    // Second: RST.
    if ((f & RST) !== 0) { this.onReset(); return; }
    // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 4.2) and is dropped.
    if ((f & SYN) !== 0) { this.ackNow = true; return; }
    // Fifth: the ACK field.
    if ((f & ACK) === 0) return;
    if (st === SYN_RECEIVED) {
      if (!(seqLt(this.sndUna, s.ack) && seqLe(s.ack, this.sndMax))) {
        this.sendReset(s.ack, 0, false);
        return;
      }
      this.sndWnd = s.wnd << this.sndShift;
      this.sndWl1 = s.seq;
      this.sndWl2 = s.ack;
      this.established();
      if (this.state !== ESTABLISHED) return; // the listener closed meanwhile and aborted it
    }
    if (!this.processAck(s, now)) return;
    if (this.state === CLOSED) return;
    // Seventh and eighth: the text and FIN.
    this.processData(s, p, now);
  }

  /** RFC 9293 3.10.7.3: SYN-SENT. */
  private inputSynSent(s: Segment, now: number): void {
    const f = s.flags;
    if ((f & ACK) !== 0 && (seqLe(s.ack, this.iss) || seqGt(s.ack, this.sndMax))) {
      if ((f & RST) === 0) this.sendReset(s.ack, 0, false);
      return;
    }
    if ((f & RST) !== 0) {
      if ((f & ACK) !== 0) {
        this.host.counters.tcpResetsIn++;
        this.terminate(new NetError("ECONNREFUSED", "connection refused"));
      }
      return;
    }
    if ((f & SYN) === 0) return;
    this.synOptions(s);
    // Our SYN's window was unscaled: that is what the peer may fill.
    this.rcvAdv = seqAdd(this.rcvNxt, Math.min(this.rcvBuf.max, 0xffff));
    this.sndWnd = s.wnd;
    this.sndWl1 = s.seq;
    this.sndWl2 = s.ack;
    if ((f & ACK) !== 0) {
      this.established();
      this.newAck(s.ack, now);
      this.ackNow = true;
    } else {
      // Simultaneous open: SYN-RECEIVED, and our SYN goes again as a SYN-ACK.
      this.state = SYN_RECEIVED;
      this.sndNxt = this.iss;
      this.timing = false;
      this.synRetransmitted = true;
    }
  }

  /** RFC 9293 3.10.7.4, first check, with the allowance for segments exactly at RCV.NXT. */
  private acceptable(seq: number, segLen: number): boolean {
    if (seq === this.rcvNxt) return true;
    const wnd = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
    if (wnd === 0) return false;
    const inWindow = (x: number) => seqLe(this.rcvNxt, x) && seqLt(x, seqAdd(this.rcvNxt, wnd));
    return inWindow(seq) || (segLen > 0 && inWindow(seqAdd(seq, segLen - 1)));
  }

  private onReset(): void {
    this.host.counters.tcpResetsIn++;
    const st = this.state;
    if (st === SYN_RECEIVED) this.terminate(new NetError("ECONNREFUSED", "connection refused"));
    else if (st === CLOSING || st === LAST_ACK || st === TIME_WAIT) this.terminate(null);
    else this.terminate(new NetError("ECONNRESET", "connection reset by peer"));
  }

  /** The ACK field in a synchronized state; false if the segment is to be dropped. */
  private processAck(s: Segment, now: number): boolean {
    if (seqGt(s.ack, this.sndMax)) {
      // It acknowledges something not yet sent.
      this.ackNow = true;
      return false;
    }
    this.probes = 0;
    const wnd = s.wnd << this.sndShift, oldWnd = this.sndWnd;
    // Window update: only from a segment at least as new as the last one used.
    if (seqLe(this.sndUna, s.ack) && (seqLt(this.sndWl1, s.seq) || (this.sndWl1 === s.seq && seqLe(this.sndWl2, s.ack)))) {
      this.sndWnd = wnd;
      this.sndWl1 = s.seq;
      this.sndWl2 = s.ack;
      if (wnd > this.maxSndWnd) this.maxSndWnd = wnd;
    }
    if (seqGt(s.ack, this.sndUna)) {
      this.newAck(s.ack, now);
    } else if (
      s.ack === this.sndUna && s.dataLen === 0 && (s.flags & (SYN | FIN)) === 0 && wnd === oldWnd && this.sndMax !== this.sndUna
    ) {
      // RFC 5681 2: a duplicate acknowledgment.
      if (this.cc.onDupAck(this.sndUna, seqDiff(this.sndMax, this.sndUna), this.sndMax) === CC_RETRANSMIT) {
        this.rtxOnce = true;
        this.timing = false;
        this.host.counters.tcpFastRetransmits++;
      }
    }
    if (this.sndWnd > 0 && this.persistAt !== Infinity) {
      this.persistAt = Infinity;
      this.persistShift = 0;
    }
    return this.state !== CLOSED;
  }

  /** SND.UNA advances to ack. */
  private newAck(ack: number, now: number): void {
    if (this.state === CLOSED) return;
    if (this.timing && seqGe(ack, this.timedSeq)) {
      this.rtt.sample(now - this.timedAt);
      this.timing = false;
    }
    const dataAcked = Math.min(Math.max(seqDiff(ack, this.sndBufSeq), 0), this.sndBuf.len);
    if (dataAcked > 0) {
      this.sndBuf.discard(dataAcked);
      this.sndBufSeq = seqAdd(this.sndBufSeq, dataAcked);
    }
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.retries = 0;
    if (this.cc.onAck(ack, dataAcked, seqDiff(this.sndMax, ack)) === CC_PARTIAL) {
      this.rtxOnce = true;
      this.timing = false;
    }
    // RFC 6298 5.2 and 5.3.
    this.rtxAt = this.sndUna === this.sndMax ? Infinity : now + this.rtt.rto;
    if (this.finQueued && ack === seqAdd(this.sndBufSeq, this.sndBuf.len + 1)) {
      // Our FIN is acknowledged.
      if (this.state === FIN_WAIT_1) {
        this.state = FIN_WAIT_2;
        if (this.rcvShut) this.closeAt = now + this.cfg.finWait2Timeout;
      } else if (this.state === CLOSING) this.enterTimeWait(now);
      else if (this.state === LAST_ACK) { this.terminate(null); return; }
    }
    if (dataAcked > 0) this.events?.onWritable();
  }

  /** Seventh and eighth steps: segment text and FIN. */
  private processData(s: Segment, p: Uint8Array, now: number): void {
    const st = this.state;
    let fin = (s.flags & FIN) !== 0, off = s.dataOff, len = s.dataLen, seq = s.seq;
    if (st !== ESTABLISHED && st !== FIN_WAIT_1 && st !== FIN_WAIT_2) {
      // The peer's FIN came already: nothing more can be new.
      if (len > 0 || fin) this.ackNow = true;
      return;
    }
    // Trim what already arrived.
    const dup = seqDiff(this.rcvNxt, seq);
    if (dup > 0) {
      if (dup >= len) {
        if (dup > len) fin = false;
        off += len;
        len = 0;
      } else {
        off += dup;
        len -= dup;
      }
      seq = this.rcvNxt;
      this.ackNow = true;
    }
    // Trim to the window we offered and the room we have.
    const pos = seqDiff(seq, this.rcvNxt);
    const room = Math.min(Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt)), this.rcvBuf.free) - pos;
    if (len > room) {
      len = Math.max(0, room);
      fin = false;
      this.ackNow = true;
    }
    if (len === 0 && !fin) return;
    if (pos === 0) {
      if (len > 0) {
        this.rcvBuf.writeAt(0, p, off, len);
        const filledGap = !this.asm.empty;
        const n = this.asm.advance(len);
        this.dupAcksOwed = 0;
        this.rcvBuf.commit(n);
        this.rcvNxt = seqAdd(this.rcvNxt, n);
        if (filledGap) this.ackNow = true; // RFC 5681 4.2: at once when a gap is filled
        else this.delayAck(now);
        if (this.rcvShut) this.rcvBuf.discard(this.rcvBuf.len);
        else this.events?.onReadable();
      }
      if (fin && this.rcvNxt === seqAdd(seq, len)) this.processFin(now);
      else if (this.finPending && this.rcvNxt === this.rcvFinSeq) this.processFin(now);
    } else {
      // Out of order: park it, and send a duplicate ACK at once (RFC 5681 4.2).
      if (this.dupAcksOwed < MAX_DUP_ACKS_OWED) this.dupAcksOwed++;
      if (len > 0) {
        if (!this.asm.add(pos, pos + len)) { this.host.counters.tcpOutOfOrderDropped++; return; }
        this.rcvBuf.writeAt(pos, p, off, len);
        this.host.counters.tcpOutOfOrder++;
      }
      if (fin) {
        this.finPending = true;
        this.rcvFinSeq = seqAdd(seq, len);
      }
    }
  }

  /** RFC 1122 4.2.3.2: ACK at least every second full-sized segment, else within the delay. */
  private delayAck(now: number): void {
    if (this.cfg.delayedAck <= 0 || seqDiff(this.rcvNxt, this.lastAckSent) >= 2 * this.rcvMss) this.ackNow = true;
    else if (this.delackAt === Infinity) this.delackAt = now + this.cfg.delayedAck;
  }

  private processFin(now: number): void {
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.finReceived = true;
    this.finPending = false;
    this.ackNow = true;
    const st = this.state;
    if (st === ESTABLISHED) this.state = CLOSE_WAIT;
    else if (st === FIN_WAIT_1) this.state = CLOSING;
    else if (st === FIN_WAIT_2) this.enterTimeWait(now);
    this.events?.onReadable();
  }

  private enterTimeWait(now: number): void {
    this.state = TIME_WAIT;
    this.closeAt = now + this.cfg.timeWait;
    this.rtxAt = Infinity;
    this.persistAt = Infinity;
    this.kaAt = Infinity;
    this.delackAt = Infinity;
    this.sndBuf.release();
  }

  /** Goes to CLOSED: the stack forgets the TCB, and whoever waits hears why. */
  terminate(err: NetError | null): void {
    if (this.state === CLOSED) return;
    const wasOpen = this.parent === null;
    this.state = CLOSED;
    this.error = err;
    this.rtxAt = this.persistAt = this.delackAt = this.closeAt = this.kaAt = Infinity;
    this.ackNow = this.rtxOnce = this.probeNow = false;
    this.dupAcksOwed = 0;
    this.asm.clear();
    this.sndBuf.discard(this.sndBuf.len);
    this.sndBuf.release();
    // Unread data stays readable after a clean close, not after a failure.
    if (err) this.rcvBuf.discard(this.rcvBuf.len);
    this.rcvBuf.release();
    this.host.gone(this);
    if (!wasOpen) {
      const p = this.parent!;
      this.parent = null;
      p.failed(this, err ?? new NetError("ECONNRESET", "connection closed before it opened"));
    }
    this.events?.onClosed(err);
  }

  /** Queues a reset: <SEQ=seq><CTL=RST>, or with ACK=ack when withAck. */
  private sendReset(seq: number, ack: number, withAck: boolean): void {
    const ihl = ipHeaderLen(this.local.length), p = new Uint8Array(ihl + TCP_HEADER);
    writeIp(p, 0, this.local, this.remote, PROTO_TCP, TCP_HEADER, this.host.nextIpId());
    writeTcp(p, ihl, this.localPort, this.remotePort, seq, withAck ? ack : 0, RST | (withAck ? ACK : 0), 0);
    storeChecksum(p, ihl, TCP_HEADER, this.local, this.remote, PROTO_TCP, 16);
    this.host.counters.tcpResetsOut++;
    this.host.control(p);
  }

  // ---- timers ----------------------------------------------------------------

  /** When tick wants to run (ms), or Infinity. */
  deadline(): number {
    return Math.min(this.rtxAt, this.persistAt, this.delackAt, this.closeAt, this.kaAt);
  }

  tick(now: number): void {
    if (this.closeAt <= now) {
      // TIME-WAIT is over (or FIN-WAIT-2 with nobody reading timed out).
      this.terminate(null);
      return;
    }
    if (this.rtxAt <= now) this.onRetransmitTimeout(now);
    if (this.state === CLOSED) return;
    if (this.persistAt <= now) this.onPersist(now);
    if (this.state === CLOSED) return;
    if (this.delackAt <= now) {
      this.delackAt = Infinity;
      this.ackNow = true;
    }
    if (this.kaAt <= now) this.onKeepalive(now);
  }

  /** RFC 6298 5.4-5.6, RFC 5681 3.1 (4). */
  private onRetransmitTimeout(now: number): void {
    this.rtxAt = Infinity;
    const syn = this.state === SYN_SENT || this.state === SYN_RECEIVED;
    if (!syn && this.sndUna === this.sndMax) return;
    this.retries++;
    if (this.retries > (syn ? this.cfg.synRetries : this.cfg.retries)) {
      this.terminate(new NetError("ETIMEDOUT", syn ? "no answer to the SYN" : "retransmissions went unanswered"));
      return;
    }
    this.host.counters.tcpTimeouts++;
    this.rtt.backoff();
    this.timing = false;
    this.rtxOnce = false;
    if (syn) {
      this.sndNxt = this.iss;
      this.synRetransmitted = true;
    } else {
      this.cc.onTimeout(seqDiff(this.sndMax, this.sndUna), this.sndMax);
      this.sndNxt = this.sndUna;
    }
  }

  /** The persist interval: the RTO, backed off per unanswered probe, within the RTO limits. */
  private persistInterval(): number {
    return Math.min(this.cfg.rto.max, Math.max(this.cfg.rto.min, this.rtt.rto * 2 ** this.persistShift));
  }

  private onPersist(now: number): void {
    this.persistAt = Infinity;
    const unsent = seqDiff(seqAdd(this.sndBufSeq, this.sndBuf.len), this.sndNxt);
    if (this.sndWnd > 0 || unsent <= 0 || this.sndNxt !== this.sndUna) return;
    if (++this.probes > this.cfg.retries) {
      this.terminate(new NetError("ETIMEDOUT", "zero-window probes went unanswered"));
      return;
    }
    this.probeNow = true;
    this.persistShift++;
    this.persistAt = now + this.persistInterval();
  }

  private onKeepalive(now: number): void {
    const ka = this.cfg.keepalive!;
    this.kaAt = Infinity;
    if (this.state !== ESTABLISHED && this.state !== CLOSE_WAIT) return;
    if (this.sndUna !== this.sndMax) {
      // Data in flight: retransmission watches the peer.
      this.kaAt = now + ka.idle;
      return;
    }
    if (now - this.lastRecv < ka.idle) {
      this.kaAt = this.lastRecv + ka.idle;
      return;
    }
    if (this.kaProbes >= ka.count) {
      this.terminate(new NetError("ETIMEDOUT", "keepalive probes went unanswered"));
      return;
    }
    this.kaProbes++;
    this.probeNow = true;
    this.kaAt = now + ka.interval;
  }

  // ---- sending ---------------------------------------------------------------

  /** Writes the next segment to send as an IP packet at buf[off] (room for the MTU); 0 when there is none. */
  emit(buf: Uint8Array, off: number, now: number): number {
    const st = this.state;
    if (st === CLOSED) return 0;
    if (st === SYN_SENT || st === SYN_RECEIVED) {
      if (this.sndNxt === this.iss) {
        const n = this.build(buf, off, this.iss, st === SYN_SENT ? SYN : SYN | ACK, 0, now);
        if (this.sndMax !== this.iss) this.host.counters.tcpRetransmits++;
        this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
        if (this.retries === 0 && !this.synRetransmitted) {
          this.timing = true;
          this.timedSeq = this.sndNxt;
          this.timedAt = now;
        }
        if (this.rtxAt === Infinity) this.rtxAt = now + this.rtt.rto;
        return n;
      }
      if (st === SYN_SENT) return 0;
    } else {
      if (this.probeNow) {
        // A zero-window or keepalive probe: an old sequence number forces an ACK with the window.
        this.probeNow = false;
        return this.build(buf, off, seqAdd(this.sndUna, -1), ACK, 0, now);
      }
      if (this.rtxOnce) {
        this.rtxOnce = false;
        const n = this.sendFrom(buf, off, this.sndUna, this.sndMss, now);
        if (n > 0) return n;
      }
      if (st === ESTABLISHED || st === CLOSE_WAIT || st === FIN_WAIT_1 || st === CLOSING || st === LAST_ACK) {
        const n = this.sendNew(buf, off, now);
        if (n > 0) return n;
      }
    }
    if (this.ackNow || this.dupAcksOwed > 0) {
      if (this.dupAcksOwed > 0) this.dupAcksOwed--;
      // SND.MAX, not SND.NXT: after a timeout moved SND.NXT back, the peer may
      // hold everything up to SND.MAX, and a bare ACK numbered below its
      // RCV.NXT is out of its window and dropped, acknowledgment and all (BSD
      // tcp_output does the same).
      return this.build(buf, off, this.sndMax, ACK, 0, now);
    }
    return 0;
  }

  /** New data (or, after a timeout, data again from SND.NXT) and the FIN, as the windows allow. */
  private sendNew(buf: Uint8Array, off: number, now: number): number {
    const dataEnd = seqAdd(this.sndBufSeq, this.sndBuf.len);
    const unsent = seqDiff(dataEnd, this.sndNxt);
    const finToSend = this.finQueued && seqLe(this.sndNxt, dataEnd);
    if (unsent <= 0 && !finToSend) return 0;
    const flight = seqDiff(this.sndNxt, this.sndUna);
    if (flight === 0 && now - this.lastDataSent > this.rtt.rto) this.cc.restartAfterIdle();
    const usable = Math.min(this.sndWnd, this.cc.cwnd) - flight;
    let len = Math.min(this.sndMss, Math.max(unsent, 0), Math.max(usable, 0));
    // RFC 1122 4.2.3.4, sender SWS avoidance: a short segment only if it ends
    // the data, nothing is in flight, or it is half the largest window seen.
    if (len < unsent && len < this.sndMss && flight > 0 && len < this.maxSndWnd >> 1) len = 0;
    if (len === 0 && unsent > 0) {
      // Blocked. With nothing in flight only the peer's window can be why: probe it.
      if (flight === 0 && this.persistAt === Infinity) this.persistAt = now + this.persistInterval();
      return 0;
    }
    return this.sendFrom(buf, off, this.sndNxt, len, now);
  }

  /** A segment from seq with up to maxLen bytes, and the FIN if it reaches it. */
  private sendFrom(buf: Uint8Array, off: number, seq: number, maxLen: number, now: number): number {
    const dataEnd = seqAdd(this.sndBufSeq, this.sndBuf.len);
    const len = Math.min(maxLen, this.sndMss, Math.max(0, seqDiff(dataEnd, seq)));
    const fin = this.finQueued && seqAdd(seq, len) === dataEnd;
    if (len === 0 && !fin) return 0;
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    const flags = ACK | (fin ? FIN : 0) | (len > 0 && seqAdd(seq, len) === dataEnd ? PSH : 0);
    const n = this.build(buf, off, seq, flags, len, now);
    if (seqLt(seq, this.sndMax)) this.host.counters.tcpRetransmits++;
    else if (!this.timing) {
      // Karn: only segments sent for the first time are timed.
      this.timing = true;
      this.timedSeq = end;
      this.timedAt = now;
    }
    if (seqGt(end, this.sndNxt)) this.sndNxt = end;
    if (seqGt(end, this.sndMax)) this.sndMax = end;
    if (this.rtxAt === Infinity) this.rtxAt = now + this.rtt.rto;
    this.persistAt = Infinity;
    this.lastDataSent = now;
    return n;
  }

  /** The window we can offer now: free space if that moves the edge far enough, else the current edge. */
  private advertisable(): number {
    const free = this.rcvBuf.free;
    const cur = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
    return free - cur >= this.swsThreshold() ? free : cur;
  }

  private swsThreshold(): number {
    return Math.min(this.rcvBuf.max >> 1, this.rcvMss);
  }

  /** Builds the packet for a segment of len bytes from the send buffer at seq. */
  private build(buf: Uint8Array, off: number, seq: number, flags: number, len: number, now: number): number {
    const syn = (flags & SYN) !== 0;
    const ihl = ipHeaderLen(this.local.length), thl = syn ? TCP_SYN_HEADER : TCP_HEADER, tcp = off + ihl;
    let wnd: number;
    if (syn) {
      wnd = Math.min(this.rcvBuf.max, 0xffff);
      if (flags & ACK) this.rcvAdv = seqAdd(this.rcvNxt, wnd);
    } else {
      // Scaled and rounded so the right edge never moves left (RFC 9293 3.8.6:
      // a peer may already have sent up to it): not past the free space,
      // except by the few bytes of rounding that keep the old edge.
      const unit = 2 ** this.rcvShift, w = this.advertisable(), free = this.rcvBuf.free;
      const cur = Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
      wnd = Math.ceil(w / unit);
      if (wnd * unit > free) wnd = Math.floor(free / unit);
      wnd = Math.min(Math.max(wnd, Math.ceil(cur / unit)), 0xffff);
      this.rcvAdv = seqAdd(this.rcvNxt, wnd * unit);
    }
    writeIp(buf, off, this.local, this.remote, PROTO_TCP, thl + len, this.host.nextIpId());
    writeTcp(
      buf, tcp, this.localPort, this.remotePort, seq, flags & ACK ? this.rcvNxt : 0, flags, wnd,
      syn ? this.rcvMss : 0, syn && (this.state === SYN_SENT || this.wsOk) ? this.ourShift : -1,
    );
    if (len > 0) this.sndBuf.peek(seqDiff(seq, this.sndBufSeq), buf, tcp + thl, len);
    storeChecksum(buf, tcp, thl + len, this.local, this.remote, PROTO_TCP, 16);
    if (flags & ACK) {
      this.ackNow = false;
      this.delackAt = Infinity;
      this.lastAckSent = this.rcvNxt;
    }
    this.host.counters.tcpSegmentsOut++;
    return ihl + thl + len;
  }

  /** Bytes of buffer storage this connection holds. */
  get allocated(): number {
    return this.sndBuf.allocated + this.rcvBuf.allocated;
  }
}
