// The WebSocket relay's core, the same on every runtime: browsers cannot
// send UDP, so a page speaks WebSocket to the relay and the relay speaks UDP
// to a WireGuard endpoint. A binary message is one datagram, or, with the
// batch subprotocol (ports/framing.ts), several datagrams each way.
//
// This file decides (allow-list, token, origin, limits) and keeps each
// client's state; server.ts runs it over a host's WebSocket servers and UDP
// sockets (ports/websocket.ts, ports/host.ts). No runtime globals here: time
// comes in as an argument and server.ts runs the one timer (sweep).
//
// 1. A request arrives: admit() checks it and answers an HTTP status with a
//    one-line reason, or the upstream to relay to.
// 2. server.ts upgrades it and calls open(): a Session that counts as a
//    client, and server.ts's openUdp() binds one UDP socket (an ephemeral
//    port, so the WireGuard peer sees a distinct endpoint per client).
// 3. Each datagram of a binary message goes out as one UDP datagram; each
//    datagram from the upstream (address and port) comes back as one binary
//    message, or, for a batch client, joins the datagrams of the same I/O
//    turn in one message (flushed by `defer`, never a timer).
// 4. Either side closing, idleness, or shutdown closes both at once.
import { formatAddress, maskPrefix, parseAddress, parsePrefix, prefixContains } from "../../src/ip.ts";
import { sourceKey } from "../../src/ratelimiter.ts";
import { UserError } from "../ports/errors.ts";
import { BATCH_BYTES, BATCH_HEADER, chooseSubprotocol, countBatch, framingOf, forEachInBatch, joinBatch, type Framing } from "../ports/framing.ts";
import type { ServerSocket } from "../ports/websocket.ts";

/** Defaults of RelayOptions. */
export const DEFAULTS = {
  maxClients: 256,
  /**
   * Clients at once from one source: an IPv4 address or an IPv6 /64, as the
   * handshake limiter keys them (64, a quarter of maxClients: one host, or
   * one NAT, cannot take every slot; more get 503 and count as refused.source).
   */
  maxPerSource: 64,
  /** Seconds with no datagram either way before a client is closed (1001 "idle"). */
  idleSeconds: 180,
  /**
   * The largest datagram, in bytes (a one-per-message client's largest
   * message; a batch message is at most BATCH_BYTES); a WireGuard datagram
   * at MTU 1420 is 1452 bytes, so 4096 leaves room for jumbo-ish MTUs.
   */
  maxMessage: 4096,
  /** Datagrams per second per client, client to upstream (a token bucket). */
  rate: 30_000,
  /** Bytes waiting in a WebSocket's send buffer above which datagrams for it are dropped. */
  maxBuffered: 1 << 20,
} as const;

/** WebSocket close codes (RFC 6455 section 7.4.1). */
export const CLOSE = {
  GOING_AWAY: 1001,
  UNSUPPORTED: 1003,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  TRY_AGAIN: 1013,
} as const;

/**
 * Datagrams queued per client while its UDP socket is being bound (64; at
 * most 64 x maxMessage bytes). The first is the handshake initiation, so a
 * later datagram, not an earlier one, is what gets dropped (drops.pending).
 */
export const PENDING_MAX = 64;

export interface RelayOptions {
  /** Upstreams a client may ask for: "host:port", "[v6]:port", "10.0.0.0/24:51820"; a name is resolved at start. */
  allow: string[];
  /** Accepted tokens (`&token=`); none: no token needed. */
  tokens?: string[];
  /** Accepted Origin header values ("https://example.com"); none: any origin (or none). */
  origins?: string[];
  maxClients?: number;
  /** Clients at once from one address (IPv6: one /64); default DEFAULTS.maxPerSource, at most maxClients. */
  maxPerSource?: number;
  idleSeconds?: number;
  maxMessage?: number;
  /** Datagrams per second per client (client to upstream); the excess is dropped and counted. */
  rate?: number;
  /** Speak the batch framing to clients that offer it (default true; false: one datagram per message, as older relays). */
  batch?: boolean;
  /**
   * Runs a batch client's flush after the datagrams that arrived in the same
   * I/O turn (server.ts: setImmediate); default queueMicrotask.
   */
  defer?: (flush: () => void) => void;
  /** The token bucket's size; default rate / 10, at least 64. */
  burst?: number;
  maxBuffered?: number;
  /** Receives one line per refused or closed client; default: nothing is logged. */
  log?: (line: string) => void;
}

/** What startRelay (server.ts) takes: the relay's options and where to listen. */
export interface ListenOptions extends RelayOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
}

/** A running relay, as startRelay gives it on every host. */
export interface RelayServer {
  readonly host: string;
  readonly port: number;
  /** "ws://127.0.0.1:8080/"; add "?to=host:port". */
  readonly url: string;
  stats(): RelayStats;
  /** Closes every client with 1001 and every socket, then stops listening. */
  close(): Promise<void>;
}

export type RefuseReason = "bad-request" | "unauthorized" | "forbidden" | "full" | "source";
export type DropReason = "rate" | "backpressure" | "stranger" | "pending" | "empty" | "send" | "malformed";
export type CloseReason = "client" | "idle" | "text" | "too-big" | "protocol" | "udp" | "shutdown";

export interface RelayStats {
  /** Clients connected now (WebSockets open). */
  clients: number;
  /** UDP sockets open now. */
  sockets: number;
  /** Upgrades accepted since start. */
  accepted: number;
  refused: Record<RefuseReason, number>;
  /** Client to upstream; `messages`: WebSocket messages they came in. */
  up: { datagrams: number; bytes: number; messages: number };
  /** Upstream to client; `messages`: WebSocket messages they went out in. */
  down: { datagrams: number; bytes: number; messages: number };
  /** Clients accepted with each framing since start. */
  framing: Record<Framing, number>;
  drops: Record<DropReason, number>;
  closed: Record<CloseReason, number>;
}

/** A bad option (the CLI prints the message as its one line). */
export class RelayConfigError extends UserError {}

// ---- host:port, allow-list ----

/** "host:port" split; host without brackets. Null when it is not that shape. */
export function splitHostPort(s: string): { host: string; port: number } | null {
  const m = /^\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})$/.exec(s) ?? /^([^:\[\]]+):([0-9]{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1], port };
}

const NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function literal(host: string): Uint8Array | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(host)) return null;
  try { return parseAddress(host); } catch { return null; }
}

interface Rule {
  /** As given, for messages. */
  text: string;
  port: number;
  /** A host name, lower case, when the entry named one. */
  name?: string;
  /** Masked prefixes: one per resolved address for a name. */
  nets: { bytes: Uint8Array; cidr: number }[];
}

/** The allow-list, names resolved. */
export class AllowList {
  private constructor(readonly rules: readonly Rule[]) {}

  /**
   * Parses entries ("192.0.2.1:51820", "[2001:db8::1]:51820",
   * "10.0.0.0/24:51820", "vpn.example.com:51820"), resolving names with
   * `resolve` (addresses as text). Throws RelayConfigError naming the entry.
   */
  static async from(entries: readonly string[], resolve: (name: string) => Promise<string[]>): Promise<AllowList> {
    if (entries.length === 0) throw new RelayConfigError("no upstream allowed (give --allow host:port)");
    const rules: Rule[] = [];
    for (const text of entries) {
      const bad = (why: string) => new RelayConfigError(`invalid --allow '${text}': ${why}`);
      const hp = splitHostPort(text) ?? (() => {
        // CIDR form: the last colon separates the port ("fd00::/64:51820" too).
        const m = /^\[?([0-9A-Fa-f:.]+)\]?\/([0-9]{1,3})\]?:([0-9]{1,5})$/.exec(text);
        return m && Number(m[3]) >= 1 && Number(m[3]) <= 65535 ? { host: `${m[1]}/${m[2]}`, port: Number(m[3]) } : null;
      })();
      if (hp === null) throw bad("expected host:port, [IPv6]:port or address/prefix:port with a port 1-65535");
      if (hp.host.includes("/")) {
        let p;
        try { p = maskPrefix(parsePrefix(hp.host)); } catch { throw bad("invalid address/prefix"); }
        rules.push({ text, port: hp.port, nets: [p] });
        continue;
      }
      const b = literal(hp.host);
      if (b !== null) {
        rules.push({ text, port: hp.port, nets: [{ bytes: b, cidr: b.length * 8 }] });
        continue;
      }
      if (!NAME.test(hp.host)) throw bad("invalid host");
      let addrs: string[];
      try { addrs = await resolve(hp.host); } catch { addrs = []; }
      const nets = addrs.map(literal).filter((x): x is Uint8Array => x !== null).map((bytes) => ({ bytes, cidr: bytes.length * 8 }));
      if (nets.length === 0) throw bad(`cannot resolve '${hp.host}'`);
      rules.push({ text, port: hp.port, name: hp.host.toLowerCase().replace(/\.$/, ""), nets });
    }
    return new AllowList(rules);
  }

  /** The address to send to for a client's `to` (host as given, brackets removed), or null when not allowed. */
  match(host: string, port: number): Uint8Array | null {
    const b = literal(host);
    if (b === null) {
      const name = host.toLowerCase().replace(/\.$/, "");
      const r = this.rules.find((r) => r.port === port && r.name === name);
      return r ? r.nets[0].bytes : null;
    }
    for (const r of this.rules) {
      if (r.port === port && r.nets.some((n) => prefixContains(n, b))) return b;
    }
    return null;
  }
}

// ---- token ----

const utf8 = new TextEncoder();

/**
 * Whether `given` is one of `tokens`, in time that depends only on the
 * lengths: every byte of every token is compared, no early exit.
 */
export function tokenMatches(given: string, tokens: readonly Uint8Array[]): boolean {
  const g = utf8.encode(given);
  let any = 0;
  for (const t of tokens) {
    let diff = g.length ^ t.length;
    for (let i = 0; i < t.length; i++) diff |= t[i] ^ (g[i % Math.max(1, g.length)] ?? 0);
    any |= diff === 0 ? 1 : 0;
  }
  return any === 1;
}

// ---- admission ----

/** The parts of an HTTP request admission looks at. */
export interface RequestInfo {
  /** The request target or full URL ("/?to=..." or "http://host/?to=..."). */
  url: string;
  /** GET with "Upgrade: websocket". */
  websocket: boolean;
  origin: string | null;
  /** The client's address, for the log line. */
  remote: string;
  /** The subprotocols the client offers. */
  protocols?: readonly string[];
}

export type Verdict =
  | { ok: true; address: string; family: 4 | 6; port: number; framing: Framing; protocol: string | null }
  | { ok: false; status: 400 | 401 | 403 | 503; message: string; reason?: RefuseReason };

const REFUSAL: Record<400 | 401 | 403 | 503, RefuseReason> = { 400: "bad-request", 401: "unauthorized", 403: "forbidden", 503: "full" };

// ---- the relay and its sessions ----

/** A session's WebSocket (or WebTransport session): the server side of ports/websocket.ts. */
export type WsPort = ServerSocket;

/** What server.ts gives a session for its UDP socket. */
export interface UdpPort {
  readonly port: number;
  send(data: Uint8Array, address: string, port: number): void;
  close(): void;
}

/** Binds a UDP socket of a family on an ephemeral port; every datagram goes to `receive`. */
export type OpenUdp = (family: 4 | 6, receive: (data: Uint8Array, address: string, port: number) => void) => Promise<UdpPort>;

type State = "binding" | "open" | "closed";

/** One client: its WebSocket, its UDP socket, its limits. */
export class Session {
  private state: State = "binding";
  private udp: UdpPort | null = null;
  private pending: Uint8Array[] = [];
  private tokens: number;
  private refilled: number;
  /**
   * A batch client's datagrams toward it, gathered over one I/O turn (each
   * datagram's own buffer, joined once at the flush); null for one per message.
   */
  private readonly out: Uint8Array[] | null;
  private outCount = 0;
  private outBytes = 0;
  private flushQueued = false;
  /** Last datagram either way (ms). */
  last: number;
  readonly since: number;

  constructor(
    private readonly relay: Relay,
    private readonly ws: WsPort,
    readonly address: string,
    readonly port: number,
    readonly remote: string,
    now: number,
    readonly framing: Framing = "datagram",
  ) {
    this.out = framing === "batch" ? [] : null;
    this.tokens = relay.burst;
    this.refilled = this.last = this.since = now;
  }

  /** Messages waiting for the UDP socket. */
  get queued(): number {
    return this.pending.length;
  }

  /** The UDP socket's port, once bound. */
  get udpPort(): number | null {
    return this.udp?.port ?? null;
  }

  /** The UDP socket is bound: what was queued goes out. */
  attach(udp: UdpPort): void {
    if (this.state !== "binding") {
      udp.close();
      return;
    }
    this.udp = udp;
    this.state = "open";
    this.relay.sockets++;
    const q = this.pending;
    this.pending = [];
    for (const d of q) this.forward(d);
  }

  /** A message from the client. A string is a text message. */
  message(data: Uint8Array | string, now: number): void {
    if (this.state === "closed") return;
    const s = this.relay.counters;
    if (typeof data === "string") return this.end(CLOSE.UNSUPPORTED, "binary messages only", "text");
    if (data.byteLength > (this.out ? BATCH_BYTES : this.relay.maxMessage)) return this.end(CLOSE.TOO_BIG, "message too big", "too-big");
    if (data.byteLength === 0) { s.drops.empty++; return; }
    s.up.messages++;
    // Token bucket: refill for the time since the last message; each datagram takes one.
    this.tokens = Math.min(this.relay.burst, this.tokens + ((now - this.refilled) * this.relay.rate) / 1000);
    this.refilled = now;
    if (this.out === null) return this.take(data, now);
    // A batch is checked whole before any of it goes: a malformed one is dropped entire.
    if (countBatch(data, this.relay.maxMessage) === 0) { s.drops.malformed++; return; }
    forEachInBatch(data, (off, len) => this.take(data.subarray(off, off + len), now));
  }

  /** One datagram from the client, past the token bucket, toward the upstream. */
  private take(d: Uint8Array, now: number): void {
    const s = this.relay.counters;
    if (this.tokens < 1) { s.drops.rate++; return; }
    this.tokens -= 1;
    this.last = now;
    if (this.state === "binding") {
      // A datagram of a batch is copied: a view would keep its whole message (up to 64 KiB) alive.
      if (this.pending.length < PENDING_MAX) this.pending.push(this.out === null ? d : d.slice());
      else s.drops.pending++;
      return;
    }
    this.forward(d);
  }

  private forward(d: Uint8Array): void {
    const s = this.relay.counters;
    try {
      this.udp!.send(d, this.address, this.port);
      s.up.datagrams++;
      s.up.bytes += d.byteLength;
    } catch {
      s.drops.send++;
    }
  }

  /** A datagram on the client's UDP socket: only the upstream's go through. */
  datagram(data: Uint8Array, address: string, port: number, now: number): void {
    if (this.state !== "open") return;
    const s = this.relay.counters;
    if (port !== this.port || !sameAddress(address, this.address)) { s.drops.stranger++; return; }
    // UDP semantics: a client that does not keep up loses datagrams, the relay's memory stays bounded.
    if (this.ws.buffered() > this.relay.maxBuffered) { s.drops.backpressure++; return; }
    this.last = now;
    const out = this.out;
    if (out === null) return this.sendMessage(data, 1, data.byteLength);
    if (this.outBytes + (this.outCount + 1) * BATCH_HEADER + data.byteLength > BATCH_BYTES) this.flush();
    out.push(data);
    this.outCount++;
    this.outBytes += data.byteLength;
    if (!this.flushQueued) {
      this.flushQueued = true;
      this.relay.defer(() => { this.flushQueued = false; this.flush(); });
    }
  }

  /** Sends what the batch holds as one message. */
  private flush(): void {
    const out = this.out!, n = this.outCount, bytes = this.outBytes;
    if (n === 0) return;
    const m = this.state === "open" ? joinBatch(out, n, bytes) : null;
    out.length = 0;
    this.outCount = this.outBytes = 0;
    if (m !== null) this.sendMessage(m, n, bytes);
  }

  private sendMessage(m: Uint8Array, datagrams: number, bytes: number): void {
    const s = this.relay.counters;
    try {
      this.ws.send(m);
      s.down.messages++;
      s.down.datagrams += datagrams;
      s.down.bytes += bytes;
    } catch {
      s.drops.send++;
    }
  }

  /** The WebSocket is gone (either side closed it, or the connection broke). */
  closed(reason: CloseReason = "client", code?: number): void {
    if (this.state === "closed") return;
    this.finish(reason, code);
  }

  /** Closes the client from our side with `code`. */
  end(code: number, text: string, reason: CloseReason): void {
    if (this.state === "closed") return;
    this.finish(reason, code);
    try { this.ws.close(code, text); } catch { /* already gone */ }
  }

  private finish(reason: CloseReason, code?: number): void {
    const hadUdp = this.state === "open";
    this.state = "closed";
    this.pending = [];
    if (hadUdp) {
      this.relay.sockets--;
      try { this.udp!.close(); } catch { /* closed already */ }
    }
    this.relay.remove(this, reason, code);
  }
}

/** The source a client counts against: its address without the port, an IPv6 one by its /64. */
export function remoteSource(remote: string): string {
  const m = /^\[([^\]]*)\]:\d+$/.exec(remote) ?? /^([^:]*):\d+$/.exec(remote);
  return sourceKey(m ? m[1] : remote);
}

/** Addresses equal, whatever their spelling ("::1" and "0:0::1"; "::ffff:1.2.3.4" is not "1.2.3.4"). */
function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const x = literal(a.replace(/^\[|\]$/g, "")), y = literal(b);
  return x !== null && y !== null && x.length === y.length && x.every((v, i) => v === y[i]);
}

function zero<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/** The relay's decisions and counters; server.ts owns the sockets and the clock. */
export class Relay {
  readonly maxClients: number;
  readonly maxPerSource: number;
  readonly idleMs: number;
  readonly maxMessage: number;
  readonly rate: number;
  readonly burst: number;
  readonly maxBuffered: number;
  /** Whether clients offering the batch framing get it. */
  readonly batch: boolean;
  readonly defer: (flush: () => void) => void;
  /** UDP sockets open now (sessions keep it). */
  sockets = 0;
  readonly counters: Omit<RelayStats, "clients" | "sockets">;
  private readonly sessions = new Set<Session>();
  /** Clients open per source (remoteSource); an entry goes with its last client, so there are at most maxClients. */
  private readonly perSource = new Map<string, number>();
  private readonly tokens: Uint8Array[];
  private readonly origins: Set<string> | null;
  private readonly log: (line: string) => void;

  /** Checks the options (RelayConfigError naming the bad one); `allow` as AllowList.from made it. */
  constructor(readonly allow: AllowList, options: Omit<RelayOptions, "allow">) {
    const count = (name: string, v: number | undefined, d: number, min: number, max: number) => {
      const n = v ?? d;
      if (!Number.isFinite(n) || n < min || n > max) throw new RelayConfigError(`invalid ${name} ${v}: expected ${min}-${max}`);
      return n;
    };
    this.maxClients = Math.floor(count("max clients", options.maxClients, DEFAULTS.maxClients, 1, 1_000_000));
    this.maxPerSource = Math.min(this.maxClients, Math.floor(count("max clients per source", options.maxPerSource, DEFAULTS.maxPerSource, 1, 1_000_000)));
    this.idleMs = count("idle timeout", options.idleSeconds, DEFAULTS.idleSeconds, 0.01, 86_400) * 1000;
    this.maxMessage = Math.floor(count("max message size", options.maxMessage, DEFAULTS.maxMessage, 1, 65_535));
    this.rate = count("rate", options.rate, DEFAULTS.rate, 1, 10_000_000);
    this.burst = count("burst", options.burst, Math.max(64, this.rate / 10), 1, 10_000_000);
    this.maxBuffered = count("max buffered", options.maxBuffered, DEFAULTS.maxBuffered, 0, 1 << 30);
    this.batch = options.batch ?? true;
    this.defer = options.defer ?? queueMicrotask;
    const tokens = options.tokens ?? [];
    if (tokens.some((t) => t.length === 0)) throw new RelayConfigError("empty token");
    this.tokens = tokens.map((t) => utf8.encode(t));
    const origins = options.origins ?? [];
    for (const o of origins) if (!/^https?:\/\/[^/?#\s]+$/i.test(o.replace(/\/$/, ""))) throw new RelayConfigError(`invalid origin '${o}': expected scheme://host[:port]`);
    this.origins = origins.length ? new Set(origins.map((o) => o.replace(/\/$/, "").toLowerCase())) : null;
    this.log = options.log ?? (() => {});
    this.counters = {
      accepted: 0,
      refused: zero<RefuseReason>(["bad-request", "unauthorized", "forbidden", "full", "source"]),
      up: { datagrams: 0, bytes: 0, messages: 0 },
      down: { datagrams: 0, bytes: 0, messages: 0 },
      framing: { datagram: 0, batch: 0 },
      drops: zero<DropReason>(["rate", "backpressure", "stranger", "pending", "empty", "send", "malformed"]),
      closed: zero<CloseReason>(["client", "idle", "text", "too-big", "protocol", "udp", "shutdown"]),
    };
  }

  get clients(): number {
    return this.sessions.size;
  }

  /** Sources with a client open now. */
  get sources(): number {
    return this.perSource.size;
  }

  /**
   * Step 1: whether to upgrade a request, and where to. Checks in this order:
   * a WebSocket request (400), Origin (403), token (401, before `to`, so the
   * allow-list cannot be probed without one), `to` (400), the allow-list
   * (403), room (503). A refusal is counted and logged here.
   */
  admit(req: RequestInfo): Verdict {
    const v = this.decide(req);
    if (!v.ok) {
      this.counters.refused[v.reason ?? REFUSAL[v.status]]++;
      this.log(`relay: refused ${req.remote}: ${v.status} ${v.message}`);
    }
    return v;
  }

  private decide(req: RequestInfo): Verdict {
    const no = (status: 400 | 401 | 403 | 503, message: string): Verdict => ({ ok: false, status, message });
    if (!req.websocket) return no(400, "expected a WebSocket upgrade (GET with Upgrade: websocket)");
    if (this.origins !== null && (req.origin === null || !this.origins.has(req.origin.replace(/\/$/, "").toLowerCase()))) {
      return no(403, "origin not allowed");
    }
    let q: URLSearchParams;
    try { q = new URL(req.url, "http://relay").searchParams; } catch { return no(400, "invalid request target"); }
    if (this.tokens.length) {
      const t = q.getAll("token");
      if (t.length !== 1 || !tokenMatches(t[0], this.tokens)) return no(401, t.length ? "wrong token" : "missing token");
    }
    const to = q.getAll("to");
    if (to.length !== 1) return no(400, "expected one to=host:port");
    const hp = splitHostPort(to[0]);
    if (hp === null || (literal(hp.host) === null && !NAME.test(hp.host))) return no(400, "invalid to: expected host:port or [IPv6]:port");
    const b = this.allow.match(hp.host, hp.port);
    const shown = hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
    if (b === null) return no(403, `upstream ${shown} not allowed`);
    if (this.sessions.size >= this.maxClients) return no(503, `client limit (${this.maxClients}) reached`);
    if ((this.perSource.get(remoteSource(req.remote)) ?? 0) >= this.maxPerSource) {
      return { ok: false, status: 503, message: `client limit per source (${this.maxPerSource}) reached`, reason: "source" };
    }
    const protocol = chooseSubprotocol(req.protocols ?? [], this.batch);
    return { ok: true, address: formatAddress(b), family: b.length === 4 ? 4 : 6, port: hp.port, framing: framingOf(protocol), protocol };
  }

  /**
   * Step 2: the request was upgraded. Returns the client's session (server.ts
   * then binds its UDP socket and calls attach), or null when the relay
   * filled up meanwhile (the WebSocket was closed with 1013).
   */
  open(v: Verdict & { ok: true }, ws: WsPort, remote: string, now: number): Session | null {
    const source = remoteSource(remote), n = this.perSource.get(source) ?? 0;
    if (this.sessions.size >= this.maxClients || n >= this.maxPerSource) {
      this.counters.refused[n >= this.maxPerSource ? "source" : "full"]++;
      try { ws.close(CLOSE.TRY_AGAIN, "relay full"); } catch { /* gone */ }
      return null;
    }
    const s = new Session(this, ws, v.address, v.port, remote, now, v.framing);
    this.counters.framing[v.framing]++;
    this.sessions.add(s);
    this.perSource.set(source, n + 1);
    this.counters.accepted++;
    return s;
  }

  /**
   * Step 2, for server.ts: opens a session and binds its UDP socket with
   * `openUdp`; a socket that cannot be bound closes the client (1011).
   */
  start(v: Verdict & { ok: true }, ws: WsPort, remote: string, now: number, openUdp: OpenUdp, clock: () => number): Session | null {
    const s = this.open(v, ws, remote, now);
    if (s === null) return null;
    openUdp(v.family, (d, a, p) => s.datagram(d, a, p, clock())).then(
      (udp) => s.attach(udp),
      () => s.end(CLOSE.INTERNAL, "no UDP socket", "udp"),
    );
    return s;
  }

  /** Called by a session as it ends. */
  remove(s: Session, reason: CloseReason, code?: number): void {
    if (!this.sessions.delete(s)) return;
    const source = remoteSource(s.remote), n = this.perSource.get(source) ?? 1;
    if (n <= 1) this.perSource.delete(source);
    else this.perSource.set(source, n - 1);
    this.counters.closed[reason]++;
    const secs = Math.round((this.lastNow - s.since) / 1000);
    this.log(`relay: closed ${s.remote} -> ${formatTarget(s.address, s.port)}: ${reason}${code ? ` (${code})` : ""}${secs > 0 ? ` after ${secs} s` : ""}`);
  }

  private lastNow = 0;

  /** server.ts's timer (about once a second): closes idle clients. */
  sweep(now: number): void {
    this.lastNow = now;
    for (const s of [...this.sessions]) {
      if (now - s.last >= this.idleMs) s.end(CLOSE.GOING_AWAY, "idle", "idle");
    }
  }

  /** Shutdown: every client closed with 1001. */
  closeAll(now: number): void {
    this.lastNow = now;
    for (const s of [...this.sessions]) s.end(CLOSE.GOING_AWAY, "relay shutting down", "shutdown");
  }

  stats(): RelayStats {
    const c = this.counters;
    return {
      clients: this.sessions.size,
      sockets: this.sockets,
      accepted: c.accepted,
      refused: { ...c.refused },
      up: { ...c.up },
      down: { ...c.down },
      framing: { ...c.framing },
      drops: { ...c.drops },
      closed: { ...c.closed },
    };
  }
}

function formatTarget(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
