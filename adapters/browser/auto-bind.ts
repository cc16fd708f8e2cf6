// WebTransport where it works, WebSocket where it does not, per endpoint:
// each endpoint starts on WebTransportBind, and one whose session is not
// ready in time, fails, is refused, or cannot carry a datagram this size
// moves to WebSocketBind for good, the datagrams waiting on it moved along.
// connect() (index.ts) uses this for transport "auto" when the relay offers
// WebTransport; the engine sees one Bind either way.
import type { Endpoint } from "../../src/engine.ts";
import type { Bind } from "../ports/bind.ts";
import { WebTransportBind, type WebTransportBindOptions, type WebTransportCounters } from "./webtransport-bind.ts";
import { keyOf } from "../ports/relay-channel.ts";
import { WebSocketBind, type RelayEvent, type WebSocketBindOptions } from "../ports/websocket-bind.ts";

export type TransportName = "webtransport" | "websocket";

/** A RelayEvent that names the transport. An endpoint moving to WebSocket is a "close" of its WebTransport side with `fallback` set (`reason` says why). */
export interface TransportEvent extends RelayEvent {
  transport: TransportName;
  fallback?: true;
}

export interface AutoBindOptions extends Omit<WebSocketBindOptions, "onevent"> {
  /** The WebTransport side's options (token and retry come from the WebSocket side's). */
  webtransport?: Omit<WebTransportBindOptions, "token" | "fallback" | "onevent">;
  /** Whether endpoints may move to WebSocket (default true; false: WebTransport only, failures retried). */
  fallback?: boolean;
  onevent?: (event: TransportEvent) => void;
}

export class AutoBind implements Bind {
  readonly port = 0;
  readonly ws: WebSocketBind;
  readonly wt: WebTransportBind;
  /** Endpoints moved to WebSocket. */
  private readonly fellBack = new Set<string>();

  /**
   * @param relay the WebSocket URL (ws:, wss:, http: or https:)
   * @param webtransport the WebTransport URL (https:)
   * @throws TypeError for a bad URL, or a runtime without WebSocket or WebTransport
   */
  constructor(relay: string | URL, webtransport: string | URL, opts: AutoBindOptions = {}) {
    const { onevent, webtransport: wtOpts, fallback = true, ...wsOpts } = opts;
    this.ws = new WebSocketBind(relay, { ...wsOpts, onevent: onevent && ((e) => onevent({ ...e, transport: "websocket" })) });
    this.wt = new WebTransportBind(webtransport, {
      retry: opts.retry, ...wtOpts, token: opts.token,
      onevent: onevent && ((e) => onevent({ ...e, transport: "webtransport" })),
      fallback: fallback ? (to, waiting, why) => {
        const key = keyOf(to);
        this.fellBack.add(key);
        onevent?.({ type: "close", endpoint: key, code: 1006, reason: `${why}; WebSocket instead`, transport: "webtransport", fallback: true });
        for (const d of waiting) this.ws.send(d, 0, d.length, to);
        this.ws.flush();
        return true;
      } : undefined,
    });
  }

  /** Passed on to both sides: a reconnect on either is a new path to the peer. */
  set onPathChange(f: ((to: Endpoint) => void) | undefined) {
    this.ws.onPathChange = f;
    this.wt.onPathChange = f;
  }

  get onPathChange(): ((to: Endpoint) => void) | undefined {
    return this.ws.onPathChange;
  }

  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    this.ws.start(datagram, idle);
    this.wt.start(datagram, idle);
  }

  send(buf: Uint8Array, off: number, len: number, to: Endpoint): void {
    (this.fellBack.has(keyOf(to)) ? this.ws : this.wt).send(buf, off, len, to);
  }

  /** Sends what the WebSocket side batched (WebTransport sends each datagram as it comes). */
  flush(): void {
    this.ws.flush();
  }

  /** The transport an endpoint uses now (WebTransport until it falls back). */
  transportOf(to: Endpoint): TransportName {
    return this.fellBack.has(keyOf(to)) ? "websocket" : "webtransport";
  }

  /** The endpoints open now, each with its transport: "192.0.2.1:51820 (webtransport)". */
  get open(): string[] {
    return [...this.wt.open.map((k) => `${k} (webtransport)`), ...this.ws.open.map((k) => `${k} (websocket)`)];
  }

  /** Both sides' counters added up. */
  get counters(): WebTransportCounters {
    const a = this.wt.counters, b = this.ws.counters;
    return {
      sent: a.sent + b.sent, received: a.received + b.received, bytesSent: a.bytesSent + b.bytesSent,
      bytesReceived: a.bytesReceived + b.bytesReceived, dropped: a.dropped + b.dropped,
      messagesSent: a.messagesSent + b.messagesSent, messagesReceived: a.messagesReceived + b.messagesReceived,
      opens: a.opens + b.opens, closes: a.closes + b.closes, tooBig: a.tooBig, fallbacks: a.fallbacks,
    };
  }

  close(): void {
    this.wt.close();
    this.ws.close();
  }
}
