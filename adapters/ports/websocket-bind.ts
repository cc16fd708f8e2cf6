// The WireGuard "UDP port" of a page, or of `wg up --relay` on a network
// that drops UDP: datagrams carried over WebSockets to a relay (adapters/relay) or an edge gateway (adapters/gateway): several per
// binary message where the server speaks the batch framing, else one
// (framing.ts). One WebSocket per peer endpoint, opened on the first
// datagram to it: the relay gives each a UDP socket of its own, so a
// reconnect looks to the server like a roaming client, which WireGuard
// handles. Only web-standard APIs (Node 20 passes in the ws package's WebSocket).
import type { Endpoint } from "../../src/engine.ts";
import { endOfBurst, type Bind } from "./bind.ts";
import { BatchWriter, SUBPROTOCOL, countBatch, forEachInBatch, framingOf, type Framing } from "./framing.ts";
import { channelUrl, keyOf } from "./relay-channel.ts";

/** The WebSocket constructor (the global one in a page; Node 20 needs one passed in). */
export type WebSocketLike = new (url: string, protocols?: string | string[]) => WebSocket;

export interface WebSocketBindOptions {
  /** Sent as `token=` to a relay that asks for one. */
  token?: string;
  WebSocket?: WebSocketLike;
  /** Datagrams held per endpoint while its WebSocket opens (default 64; more are dropped). */
  queue?: number;
  /** Drop datagrams while this many bytes wait in a WebSocket's send buffer (default 4 MiB). */
  highWater?: number;
  /** ms before a closed endpoint's WebSocket is opened again (default 1000). */
  retry?: number;
  /**
   * Offer the batch framing (default true): several datagrams per message
   * where the relay or gateway speaks it, one per message where it does not.
   * false offers no subprotocol at all, as pages before the batch framing.
   */
  batch?: boolean;
  /** One line for each WebSocket that opens, fails or closes. */
  onevent?: (event: RelayEvent) => void;
}

export interface RelayEvent {
  type: "open" | "close";
  /** The endpoint as `host:port`, or "gateway". */
  endpoint: string;
  /** The close code and reason, for "close" (1006: could not connect or dropped). */
  code?: number;
  reason?: string;
  /** For "open": the framing the server chose. */
  framing?: Framing;
}

/** What the bind carried and dropped, for status displays. */
export interface RelayCounters {
  sent: number;
  received: number;
  bytesSent: number;
  bytesReceived: number;
  /** Dropped: queue full while opening, send buffer over highWater, waiting to retry, or a malformed batch's. */
  dropped: number;
  /** WebSocket messages (or WebTransport datagrams) they went in, each way. */
  messagesSent: number;
  messagesReceived: number;
  opens: number;
  closes: number;
}

/** Close codes after which a channel is opened again unasked: going away, abnormal (no close frame), server error, restart, try again later. */
const REOPEN_CODES = new Set([1001, 1006, 1011, 1012, 1013]);
/** The longest wait between attempts to reopen a channel (ms). */
const RETRY_MAX = 30_000;

interface Channel {
  ws: WebSocket;
  to: Endpoint;
  queue: Uint8Array[];
  open: boolean;
  /** The message being filled, for a channel that speaks the batch framing. */
  batch: BatchWriter | null;
}

/** The largest datagram a batch may carry as far as the bind can tell (the engine drops more than its own). */
const MAX_DATAGRAM = 65535;

export class WebSocketBind implements Bind {
  readonly port = 0;
  readonly counters: RelayCounters = {
    sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, dropped: 0, messagesSent: 0, messagesReceived: 0, opens: 0, closes: 0,
  };
  private readonly url: URL;
  private readonly channels = new Map<string, Channel>();
  /** Endpoint keys whose channel has been open before. */
  private readonly opened = new Set<string>();
  onPathChange?: (to: Endpoint) => void;
  /** Endpoint key -> time before which it is not reopened. */
  private readonly backoff = new Map<string, number>();
  /** Endpoint key -> opens that failed in a row. */
  private readonly fails = new Map<string, number>();
  private readonly Ws: WebSocketLike;
  /**
   * Whether to give send a copy: a WebSocket passed in may keep the bytes it
   * is given past the call (the ws package does while it compresses with
   * permessage-deflate, which workerd accepts), where the engine's memory and
   * the batch buffer are reused at once; a page's own WebSocket copies.
   */
  private readonly copy: boolean;
  private datagram: ((buf: Uint8Array, off: number, len: number, from: Endpoint) => void) | null = null;
  private idle: (() => void) | null = null;
  private readonly burst = endOfBurst(() => { if (!this.closed) this.idle?.(); });
  private closed = false;
  /** Channels whose batch holds datagrams. */
  private readonly dirty = new Set<Channel>();
  private flushQueued = false;
  private readonly flushLater = () => { this.flushQueued = false; this.flush(); };

  /**
   * @param relay the relay's or gateway's URL (ws:, wss:, http: or https:)
   * @throws TypeError for a URL that is not one of those
   */
  constructor(relay: string | URL, private readonly opts: WebSocketBindOptions = {}) {
    let url: URL;
    try {
      url = new URL(relay);
    } catch {
      throw new TypeError(`invalid relay URL '${String(relay)}'`);
    }
    if (url.protocol === "http:") url.protocol = "ws:";
    else if (url.protocol === "https:") url.protocol = "wss:";
    if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new TypeError(`relay URL '${String(relay)}' is not ws:, wss:, http: or https:`);
    this.url = url;
    const Ws = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketLike }).WebSocket;
    if (!Ws) throw new TypeError("no WebSocket in this runtime: pass one as the WebSocket option");
    this.Ws = Ws;
    this.copy = opts.WebSocket !== undefined && opts.WebSocket !== (globalThis as { WebSocket?: WebSocketLike }).WebSocket;
  }

  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    this.datagram = datagram;
    this.idle = idle;
  }

  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    if (this.closed) return;
    const key = keyOf(to);
    let ch = this.channels.get(key);
    if (!ch) {
      const after = this.backoff.get(key);
      if (after !== undefined && Date.now() < after) { this.counters.dropped++; return; }
      ch = this.openChannel(key, to);
    }
    const bytes = buf.subarray(off, off + len);
    if (!ch.open) {
      // The engine reuses its buffers: keep a copy until the socket opens.
      if (ch.queue.length >= (this.opts.queue ?? 64)) { this.counters.dropped++; return; }
      ch.queue.push(bytes.slice());
      return;
    }
    if (ch.ws.bufferedAmount > (this.opts.highWater ?? 4 << 20)) { this.counters.dropped++; return; }
    if (ch.batch === null) {
      ch.ws.send(this.copy ? bytes.slice() : bytes); // the platform's WebSocket.send copies the bytes (WHATWG WebSockets)
      this.counters.messagesSent++;
    } else {
      if (!ch.batch.fits(len)) this.sendBatch(ch);
      ch.batch.add(buf, off, len);
      this.dirty.add(ch);
      // The Device flushes after each engine batch; a send outside one still leaves in this task.
      if (!this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushLater); }
    }
    this.counters.sent++;
    this.counters.bytesSent += len;
  }

  /** Sends each channel's batch as one message (the Device calls it after each engine batch). */
  flush(): void {
    if (this.dirty.size === 0) return;
    for (const ch of this.dirty) this.sendBatch(ch);
    this.dirty.clear();
  }

  private sendBatch(ch: Channel): void {
    const b = ch.batch!;
    if (b.count === 0) return;
    const m = b.take();
    if (!ch.open || this.closed) return;
    ch.ws.send(this.copy ? m.slice() : m); // copied by the platform's send: the writer's buffer is free again
    this.counters.messagesSent++;
  }

  private openChannel(key: string, to: Endpoint): Channel {
    const url = channelUrl(this.url, key, this.opts.token);
    // The one-per-message name first: a server that echoes the first name offered still frames as it knows how.
    const ws = this.opts.batch === false ? new this.Ws(url) : new this.Ws(url, [SUBPROTOCOL.datagram, SUBPROTOCOL.batch]);
    ws.binaryType = "arraybuffer";
    const ch: Channel = { ws, to, queue: [], open: false, batch: null };
    this.channels.set(key, ch);
    ws.onopen = () => {
      if (this.channels.get(key) !== ch) return;
      ch.open = true;
      const framing = framingOf(ws.protocol);
      if (framing === "batch") ch.batch = new BatchWriter();
      this.counters.opens++;
      this.backoff.delete(key);
      this.opts.onevent?.({ type: "open", endpoint: key, framing });
      const queue = ch.queue;
      ch.queue = [];
      for (const d of queue) this.send(d, 0, d.length, to);
      this.flush();
      // Open again after a close: the relay has a new UDP port for us, which the peer learns from our next packet.
      if (this.opened.has(key)) this.onPathChange?.(to);
      this.opened.add(key);
    };
    // Delivers one datagram of a message (a closure made once per channel, not per message).
    let msg: Uint8Array = new Uint8Array(0);
    const deliver = (off: number, len: number) => {
      this.counters.received++;
      this.counters.bytesReceived += len;
      this.datagram?.(msg, off, len, to);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.closed || !(ev.data instanceof ArrayBuffer)) return;
      const d = new Uint8Array(ev.data);
      this.counters.messagesReceived++;
      msg = d;
      if (ch.batch === null) deliver(0, d.length);
      else if (countBatch(d, MAX_DATAGRAM) === 0) this.counters.dropped++;
      else forEachInBatch(d, deliver);
      this.burst();
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.channels.get(key) !== ch) return;
      this.channels.delete(key);
      this.dirty.delete(ch);
      this.counters.closes++;
      this.counters.dropped += ch.queue.length;
      // Failures in a row double the wait (up to 30 s); an open resets it.
      const fails = ch.open ? 0 : (this.fails.get(key) ?? 0) + 1;
      this.fails.set(key, fails);
      const wait = Math.min((this.opts.retry ?? 1000) * 2 ** fails, RETRY_MAX);
      this.backoff.set(key, Date.now() + wait);
      if (this.closed) return;
      this.opts.onevent?.({ type: "close", endpoint: key, code: ev.code, reason: ev.reason });
      // A relay that went away (restarting, or unreachable) is tried again without waiting for a datagram to
      // send: a peer that was sending to us would otherwise send into the old path until we next spoke.
      // One closed on purpose (idle, refused: codes 1000, 1008, 4xxx...) waits for the next datagram.
      if (REOPEN_CODES.has(ev.code)) {
        setTimeout(() => { if (!this.closed && !this.channels.has(key)) this.openChannel(key, to); }, wait);
      }
    };
    return ch;
  }

  /** The endpoints whose WebSocket is open now. */
  get open(): string[] {
    return [...this.channels].filter(([, c]) => c.open).map(([k]) => k);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ch of this.channels.values()) ch.ws.close(1000, "closed");
    this.channels.clear();
  }
}

