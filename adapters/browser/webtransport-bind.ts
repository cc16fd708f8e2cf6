// The WireGuard "UDP port" of a page over WebTransport datagrams: one
// WebTransport session per peer endpoint to a relay that serves HTTP/3
// (adapters/relay on Deno with a certificate), each WireGuard datagram one
// WebTransport datagram both ways. Unlike a WebSocket there is no head-of-line
// blocking and no retransmission under the tunnel's own: datagrams are lost
// as UDP's are, which is what WireGuard expects.
//
// 1. The first datagram to an endpoint opens its session
//    (`https://relay/?to=host:port[&token=...]`); datagrams wait in a small
//    queue until it is ready.
// 2. Ready: one writer is held for the session's datagrams; a datagram goes
//    out while fewer than SEND_BACKLOG wait in the writer, otherwise it is
//    dropped (the browser's queue stays bounded).
// 3. A datagram larger than the session's maxDatagramSize cannot be carried:
//    it is handed to `fallback` if there is one (the endpoint moves to
//    WebSocket), or dropped and counted (counters.tooBig).
// 4. A session that is not ready within `timeout` ms, fails, or is refused by
//    the relay (closed with an HTTP status before any datagram came back) is
//    given to `fallback`, or retried after `retry` ms like a WebSocket.
// Only web-standard APIs.
import type { Endpoint } from "../../src/engine.ts";
import { endOfBurst, type Bind } from "../ports/bind.ts";
import type { RelayCounters, RelayEvent } from "../ports/websocket-bind.ts";
import { channelUrl, keyOf } from "../ports/relay-channel.ts";

/** The WebTransport constructor (the global one in a page). */
export type WebTransportLike = new (url: string, options?: WebTransportOptions) => WebTransport;

export interface WebTransportBindOptions {
  /** Sent as `token=` to a relay that asks for one. */
  token?: string;
  /** Certificates to accept without a CA (self-signed, ECDSA, valid for at most 14 days): SHA-256 hashes of their DER. */
  serverCertificateHashes?: WebTransportHash[];
  WebTransport?: WebTransportLike;
  /** Datagrams held per endpoint while its session opens (default 64; more are dropped). */
  queue?: number;
  /** ms a session has to become ready before it counts as failed (default 3000). */
  timeout?: number;
  /** ms before a closed endpoint's session is opened again (default 1000). */
  retry?: number;
  /** One line for each session that opens, fails or closes. */
  onevent?: (event: RelayEvent) => void;
  /**
   * Takes an endpoint whose session failed before it was ready, was refused,
   * or cannot carry a datagram this size, with the datagrams still waiting
   * (copies). Returning true hands the endpoint over for good: the bind never
   * opens a session for it again and drops what is sent to it.
   */
  fallback?: (to: Endpoint, waiting: Uint8Array[], why: string) => boolean;
}

export interface WebTransportCounters extends RelayCounters {
  /** Datagrams larger than the session's maxDatagramSize, dropped (counted in dropped too). */
  tooBig: number;
  /** Endpoints handed to `fallback`. */
  fallbacks: number;
}

/** Datagrams that may wait in a session's writer before more are dropped. */
const SEND_BACKLOG = 256;

interface Session {
  wt: WebTransport;
  to: Endpoint;
  queue: Uint8Array[];
  writer: WritableStreamDefaultWriter<Uint8Array> | null;
  /** maxDatagramSize once ready. */
  max: number;
  /** A datagram came back: the relay took the session. */
  answered: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

/** The default ms a session has to become ready. */
export const READY_TIMEOUT = 3000;

export class WebTransportBind implements Bind {
  readonly port = 0;
  readonly counters: WebTransportCounters = {
    sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, dropped: 0, messagesSent: 0, messagesReceived: 0, opens: 0, closes: 0, tooBig: 0, fallbacks: 0,
  };
  private readonly url: URL;
  private readonly sessions = new Map<string, Session>();
  /** Endpoint keys whose session has been open before. */
  private readonly opened = new Set<string>();
  onPathChange?: (to: Endpoint) => void;
  private readonly backoff = new Map<string, number>();
  /** Endpoints given to `fallback`. */
  private readonly handedOver = new Set<string>();
  private readonly Wt: WebTransportLike;
  private datagram: ((buf: Uint8Array, off: number, len: number, from: Endpoint) => void) | null = null;
  private idle: (() => void) | null = null;
  private readonly burst = endOfBurst(() => { if (!this.closed) this.idle?.(); });
  private closed = false;

  /**
   * @param relay the relay's URL (https:)
   * @throws TypeError for a URL that is not https:, or a runtime without WebTransport
   */
  constructor(relay: string | URL, private readonly opts: WebTransportBindOptions = {}) {
    let url: URL;
    try {
      url = new URL(relay);
    } catch {
      throw new TypeError(`invalid WebTransport URL '${String(relay)}'`);
    }
    if (url.protocol !== "https:") throw new TypeError(`WebTransport URL '${String(relay)}' is not https:`);
    this.url = url;
    const Wt = opts.WebTransport ?? (globalThis as { WebTransport?: WebTransportLike }).WebTransport;
    if (!Wt) throw new TypeError("no WebTransport in this runtime");
    this.Wt = Wt;
  }

  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    this.datagram = datagram;
    this.idle = idle;
  }

  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    if (this.closed) return;
    const key = keyOf(to);
    if (this.handedOver.has(key)) { this.counters.dropped++; return; }
    const bytes = buf.subarray(off, off + len);
    const s = this.sessions.get(key);
    if (!s) {
      const after = this.backoff.get(key);
      if (after !== undefined && Date.now() < after) { this.counters.dropped++; return; }
      // The engine reuses its buffers: a copy waits until the session is ready.
      this.openSession(key, to, bytes.slice());
      return;
    }
    if (s.writer === null) {
      if (s.queue.length >= (this.opts.queue ?? 64)) { this.counters.dropped++; return; }
      s.queue.push(bytes.slice());
      return;
    }
    this.write(key, s, bytes);
  }

  /** Sends one datagram on a ready session (or hands the endpoint over when it does not fit). */
  private write(key: string, s: Session, bytes: Uint8Array): void {
    if (bytes.length > s.max) {
      if (this.opts.fallback) return this.handOver(key, s, tooBig(bytes.length, s.max), [bytes.slice()]);
      this.counters.tooBig++;
      this.counters.dropped++;
      return;
    }
    // desiredSize is the high-water mark less what waits: Chromium's mark is
    // 1, so stopping at 0 dropped 95% of the ACKs of a download (317 sent,
    // 5623 dropped; 23 Mbit/s). A bounded backlog instead.
    const room = s.writer!.desiredSize;
    if (room !== null && room <= -SEND_BACKLOG) { this.counters.dropped++; return; }
    // The stream holds the chunk until it is sent, and the engine reuses its buffers: a copy.
    s.writer!.write(bytes.slice()).catch(() => {}); // a session that ends: its `closed` handles it
    this.counters.sent++;
    this.counters.messagesSent++;
    this.counters.bytesSent += bytes.length;
  }

  private openSession(key: string, to: Endpoint, first: Uint8Array): void {
    let wt: WebTransport;
    try {
      wt = new this.Wt(channelUrl(this.url, key, this.opts.token), this.opts.serverCertificateHashes ? { serverCertificateHashes: this.opts.serverCertificateHashes } : {});
    } catch (e) {
      // A bad hash, a blocked port: as a session that never became ready.
      const dead = { close: () => {} } as unknown as WebTransport;
      return this.handOver(key, { wt: dead, to, queue: [], writer: null, max: 0, answered: false, timer: null }, describe(e, "WebTransport refused the URL"), [first]);
    }
    const s: Session = { wt, to, queue: [first], writer: null, max: 0, answered: false, timer: null };
    this.sessions.set(key, s);
    const timeout = this.opts.timeout ?? READY_TIMEOUT;
    s.timer = setTimeout(() => { if (s.writer === null) this.failed(key, s, `not ready within ${timeout} ms`); }, timeout);
    wt.ready.then(() => this.ready(key, s), (e) => this.failed(key, s, describe(e, "the session could not be opened")));
    wt.closed.then(
      (info) => this.ended(key, s, info.closeCode ?? 0, info.reason ?? ""),
      (e) => this.ended(key, s, 1006, describe(e, "the session failed")),
    );
  }

  private ready(key: string, s: Session): void {
    if (this.sessions.get(key) !== s || this.closed) return;
    if (s.timer !== null) clearTimeout(s.timer);
    s.timer = null;
    s.writer = s.wt.datagrams.writable.getWriter();
    s.max = s.wt.datagrams.maxDatagramSize;
    const q = s.queue;
    s.queue = [];
    const big = q.find((d) => d.length > s.max);
    if (big && this.opts.fallback) return this.handOver(key, s, tooBig(big.length, s.max), q);
    this.counters.opens++;
    this.backoff.delete(key);
    this.opts.onevent?.({ type: "open", endpoint: key });
    for (const d of q) this.write(key, s, d);
    void this.read(key, s);
    // Open again after a close: a new path through the relay, which the peer learns from our next packet.
    if (this.opened.has(key)) this.onPathChange?.(s.to);
    this.opened.add(key);
  }

  private async read(key: string, s: Session): Promise<void> {
    const reader = s.wt.datagrams.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.closed || this.sessions.get(key) !== s) break;
        s.answered = true;
        this.counters.received++;
        this.counters.messagesReceived++;
        this.counters.bytesReceived += value.length;
        this.datagram?.(value, 0, value.length, s.to);
        this.burst();
      }
    } catch { /* the session ended: `closed` says how */ }
  }

  /** The session did not become ready (timeout, handshake failure). */
  private failed(key: string, s: Session, why: string): void {
    if (this.sessions.get(key) !== s || s.writer !== null) return;
    this.handOver(key, s, why, s.queue);
  }

  /** The session closed: a refusal (an HTTP status before any answer) falls back like a failure. */
  private ended(key: string, s: Session, code: number, reason: string): void {
    if (this.sessions.get(key) !== s) return;
    if (s.writer === null) return this.failed(key, s, reason || `closed (${code})`);
    if (!s.answered && code >= 400 && code < 600 && this.opts.fallback) {
      return this.handOver(key, s, `refused: ${code}${reason ? ` ${reason}` : ""}`, []);
    }
    this.drop(key, s);
    this.counters.closes++;
    this.backoff.set(key, Date.now() + (this.opts.retry ?? 1000));
    if (!this.closed) this.opts.onevent?.({ type: "close", endpoint: key, code, reason });
  }

  /** Gives the endpoint to `fallback` with `waiting`; without one (or if it declines), closes and retries later. */
  private handOver(key: string, s: Session, why: string, waiting: Uint8Array[]): void {
    this.drop(key, s);
    try { s.wt.close({ closeCode: 0, reason: "falling back" }); } catch { /* gone */ }
    if (this.closed) return;
    if (this.opts.fallback?.(s.to, waiting, why)) {
      this.handedOver.add(key);
      this.counters.fallbacks++;
      return;
    }
    this.counters.dropped += waiting.length;
    this.counters.closes++;
    this.backoff.set(key, Date.now() + (this.opts.retry ?? 1000));
    this.opts.onevent?.({ type: "close", endpoint: key, code: 1006, reason: why });
  }

  private drop(key: string, s: Session): void {
    this.sessions.delete(key);
    if (s.timer !== null) clearTimeout(s.timer);
    s.timer = null;
    s.queue = [];
  }

  /** The endpoints whose session is ready now. */
  get open(): string[] {
    return [...this.sessions].filter(([, s]) => s.writer !== null).map(([k]) => k);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [key, s] of [...this.sessions]) {
      this.drop(key, s);
      try { s.wt.close({ closeCode: 0, reason: "closed" }); } catch { /* gone */ }
    }
  }
}

function tooBig(len: number, max: number): string {
  return `a datagram of ${len} bytes exceeds the session's maxDatagramSize ${max}`;
}

function describe(e: unknown, otherwise: string): string {
  return e instanceof Error && e.message ? e.message : otherwise;
}

