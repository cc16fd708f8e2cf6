// The edge gateway: a WireGuard peer for clients that cannot send UDP (web
// pages), running where there is no UDP either (edge functions). The client
// opens a WebSocket; each binary message is one WireGuard datagram both
// ways, or several when the client offers the batch subprotocol
// (ports/framing.ts). The gateway IS the client's WireGuard peer (it holds the
// private key) and forwards the tunnel's TCP flows out through the
// platform's outbound TCP.
//
// Runtime-agnostic: what differs per platform (the WebSocket upgrade, the
// outbound connect, the compiled engine.wasm) comes in as options; see
// workerd.ts and deno.ts. No timers outside a session, nothing at module
// scope: workerd allows neither I/O objects shared across requests nor
// random numbers outside a handler, so each WebSocket is one session with
// its own engine, stack and device.
//
// The way of a flow:
//   browser stack SYN -> WireGuard datagram -> WebSocket message -> session bind
//   -> engine.fromNetwork -> session stack (forward mode): the SYN is held
//   while admit runs allow() and connect(host, port); refused: RST (the
//   client sees ECONNREFUSED); connected: SYN-ACK, and once ESTABLISHED the
//   TcpConn and the outbound socket are relayed both ways, half-close aware.
import { Engine, type Endpoint } from "../../src/engine.ts";
import type { X25519 } from "../../src/crypto.ts";
import type { DeviceConfig } from "../../src/config.ts";
import { keyToBase64 } from "../../src/config.ts";
import { nobleX25519 } from "../../src/x25519.ts";
import { parseWgQuick, toDeviceConfig } from "../../src/wgquick.ts";
import { Stack, type ForwardFlow, type StackOptions, type TcpConn, type TcpForwarder } from "../../src/netstack/index.ts";
import { endOfBurst, type Bind } from "../ports/bind.ts";
import { BATCH_BYTES, BatchWriter, chooseSubprotocol, countBatch, forEachInBatch, framingOf, parseSubprotocols, type Framing } from "../ports/framing.ts";
import { Device } from "../ports/device.ts";
import type { Clock } from "../ports/host.ts";
import { StackTun } from "../ports/stack-tun.ts";
import { join } from "../ports/streams.ts";
import type { TcpStream } from "../ports/host.ts";
import type { AcceptedWebSocket, UpgradeWebSocket } from "../ports/websocket.ts";
import { FakeDns } from "./fakedns.ts";
import { allowList } from "./allow.ts";

/** The default destinations: public ones only. */
const publicOnly = allowList(undefined);
const isAddress = (h: string) => h.includes(":") || /^[0-9.]+$/.test(h);

/** The server side of an accepted WebSocket (ports/websocket.ts). */
export type GatewaySocket = AcceptedWebSocket;
/** An outbound TCP connection of the platform (ports/host.ts). */
export type OutboundSocket = TcpStream;

/** The gateway's WireGuard side as an object: the engine's DeviceConfig plus the tunnel's addresses. */
export interface GatewayTunnelConfig extends DeviceConfig {
  /** The gateway's own tunnel addresses ("10.0.0.1" or "10.0.0.1/24"). */
  addresses: string[];
  /** Inner MTU (default 1420). */
  mtu?: number;
}

export interface GatewayOptions {
  /** wg-quick text ([Interface] PrivateKey and Address, [Peer]s without Endpoint), or an object. */
  config: string | GatewayTunnelConfig;
  /** The compiled engine.wasm. */
  wasm: WebAssembly.Module;
  /** The platform's WebSocket upgrade: WebSocketPair in workerd, Deno.upgradeWebSocket in Deno. */
  upgrade: UpgradeWebSocket;
  /** Opens an outbound TCP connection; resolves once connected, rejects when refused or unreachable. */
  connect(host: string, port: number): Promise<OutboundSocket>;
  /**
   * Which destinations may be reached (default: public ones only, allowList()
   * with no entries). A refused one gets a reset. With `names`, a name it
   * names itself is connected to as it is; any other name is resolved
   * (when `resolve` is given) and each address checked.
   */
  allow?: ((host: string, port: number) => boolean) & { names?(host: string, port: number): boolean };
  /**
   * Resolves a name to its addresses, so that a name pointing at a refused
   * address (a public name resolving to 127.0.0.1) is refused too; the
   * flow then connects to the first allowed address. Without it, names go
   * to connect() as they are and the platform's own egress rules decide
   * (workerd's network service does).
   */
  resolve?(name: string): Promise<string[]>;
  /** WebSocket sessions at once (default MAX_SESSIONS); more are answered 503. */
  maxSessions?: number;
  /** A session that has moved no datagram either way for this long (ms) is closed (default 300000). */
  idleTimeout?: number;
  /** A connect() that takes longer (ms) is refused (default 10000). */
  connectTimeout?: number;
  /** TCP connections per session (default MAX_CONNECTIONS). */
  maxConnections?: number;
  /** A GET on this path answers the status as JSON (default "/status"; null: none). */
  statusPath?: string | null;
  /** The largest datagram taken from a WebSocket message (default and ceiling: the engine's maxDatagram). */
  maxMessage?: number;
  /** Speak the batch framing to clients that offer it (default true; false: one datagram per message). */
  batch?: boolean;
  /** TCP options of each session's stack. */
  tcp?: StackOptions["tcp"];
  x25519?: X25519;
  clock?: Clock;
  /**
   * Answer DNS on the gateway's tunnel address (port 53) with stand-in
   * addresses whose flows leave as connect(name, port) (fakedns.ts); default true.
   */
  dns?: boolean;
  /** Called with what went wrong inside a session (never thrown); default: nothing. */
  log?(message: string): void;
}

/** Counters over the gateway's life, and the sessions open now. No keys. */
export interface GatewayStatus {
  publicKey: string;
  addresses: string[];
  peers: number;
  sessions: number;
  sessionsOpened: number;
  sessionsClosed: number;
  /** Upgrades answered 503 at maxSessions. */
  sessionsRefused: number;
  /** Forwarded connections open now, and over the gateway's life. */
  flows: number;
  flowsOpened: number;
  /** Flows refused by allow(), by a failed connect, or by the connect timeout. */
  flowsRefused: number;
  /** WebSocket messages that were not datagrams: text, too large, a malformed batch. */
  dropText: number;
  dropOversized: number;
  dropMalformed: number;
  /** Sessions opened with each framing. */
  framing: Record<Framing, number>;
  /** Datagrams the engines dropped (bad MACs, unknown indices, junk...), summed over sessions closed and open. */
  dropEngine: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * WebSocket sessions at once (64): each holds an engine, a netstack and its
 * connections' buffers, and an edge isolate has some 128 MiB. One more is
 * answered 503 (sessionsRefused): a live session never gives way to a new one.
 */
export const MAX_SESSIONS = 64;
/**
 * TCP connections per session (256), the session's Stack maxConnections: a
 * SYN past it replaces the oldest half-open connection, never an established one.
 */
export const MAX_CONNECTIONS = 256;

/** The endpoint every datagram of a session comes from: the WebSocket (not an IP address). */
const WEBSOCKET: Endpoint = { address: "websocket", port: 0 };
const OPEN = 1;

interface Parsed {
  device: DeviceConfig;
  addresses: string[];
  mtu: number | undefined;
}

function parseConfig(config: string | GatewayTunnelConfig): Parsed {
  if (typeof config === "string") {
    const p = parseWgQuick(config);
    return {
      device: toDeviceConfig(p, (host, port) => ({ address: host, port })),
      addresses: p.interface.addresses.map((a) => a.address),
      mtu: p.interface.mtu,
    };
  }
  const { addresses, mtu, ...device } = config;
  return { device, addresses: addresses.map((a) => a.replace(/\/\d+$/, "")), mtu };
}

/**
 * Makes the gateway.
 * @param options the config, engine.wasm and the platform's upgrade and connect
 * @returns `fetch` for the platform's HTTP server, and `status()`
 * @throws ConfigError (text) or RangeError/TypeError (object) for a bad configuration
 * @example export default createGateway({ config, wasm, upgrade, connect });
 */
export function createGateway(options: GatewayOptions): { fetch(request: Request): Promise<Response>; status(): GatewayStatus } {
  const parsed = parseConfig(options.config);
  if (!parsed.device.privateKey) throw new RangeError("the gateway needs a PrivateKey");
  if (parsed.addresses.length === 0) throw new RangeError("the gateway needs an Address");
  if (!parsed.device.peers || parsed.device.peers.length === 0) throw new RangeError("the gateway needs at least one [Peer]");
  const x25519 = options.x25519 ?? nobleX25519;
  const publicKey = keyToBase64(x25519.publicKey(parsed.device.privateKey));
  const maxSessions = options.maxSessions ?? MAX_SESSIONS;
  const statusPath = options.statusPath === undefined ? "/status" : options.statusPath;
  const sessions = new Set<Session>();
  const totals = {
    sessionsOpened: 0, sessionsClosed: 0, sessionsRefused: 0, flowsOpened: 0, flowsRefused: 0, dropText: 0,
    dropOversized: 0, dropMalformed: 0, dropEngine: 0, bytesIn: 0, bytesOut: 0,
  };
  const framings: Record<Framing, number> = { datagram: 0, batch: 0 };

  const status = (): GatewayStatus => {
    let flows = 0, dropEngine = totals.dropEngine;
    for (const s of sessions) { flows += s.flows; dropEngine += s.engineDrops(); }
    return {
      publicKey, addresses: [...parsed.addresses], peers: parsed.device.peers!.length,
      sessions: sessions.size, flows, ...totals, dropEngine, framing: { ...framings },
    };
  };

  const answer = (code: number, text: string) => new Response(`${text}\n`, { status: code, headers: { "content-type": "text/plain" } });

  return {
    status,
    async fetch(request: Request): Promise<Response> {
      if ((request.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") {
        if (statusPath !== null && request.method === "GET" && new URL(request.url).pathname === statusPath) {
          return Response.json(status(), { headers: { "cache-control": "no-store" } });
        }
        return answer(426, "this is a WireGuard gateway: open a WebSocket (one binary message per WireGuard datagram)");
      }
      if (sessions.size >= maxSessions) { totals.sessionsRefused++; return answer(503, "too many sessions"); }
      const protocol = chooseSubprotocol(parseSubprotocols(request.headers.get("sec-websocket-protocol")), options.batch ?? true);
      let up: { socket: GatewaySocket; response: Response };
      try {
        up = options.upgrade(request, protocol ?? undefined);
      } catch (e) {
        return answer(400, `cannot upgrade: ${e instanceof Error ? e.message : String(e)}`);
      }
      const framing = framingOf(protocol);
      framings[framing]++;
      const s = new Session(options, parsed, x25519, up.socket, totals, framing, () => {
        if (sessions.delete(s)) totals.sessionsClosed++;
      });
      sessions.add(s);
      totals.sessionsOpened++;
      try {
        s.start();
      } catch (e) {
        options.log?.(`session start: ${String(e)}`);
        void s.close();
      }
      return up.response;
    },
  };
}

type Totals = {
  flowsOpened: number; flowsRefused: number; dropText: number; dropOversized: number; dropMalformed: number; dropEngine: number;
  bytesIn: number; bytesOut: number;
};

/** One WebSocket: an engine, a stack in forward mode and a device, torn down together. */
class Session {
  flows = 0;
  private readonly engine: Engine;
  private readonly stack: Stack;
  private readonly device: Device;
  private readonly clock: Clock;
  private forwarder: TcpForwarder<OutboundSocket> | null = null;
  /** Names this session's page asked the gateway's DNS for. */
  private readonly names = new FakeDns();
  private readonly conns = new Set<TcpConn>();
  private readonly outbound = new Set<OutboundSocket>();
  private idleTimer: ReturnType<typeof setInterval> | null = null;
  private lastActive: number;
  private closed = false;

  constructor(
    private readonly opts: GatewayOptions,
    private readonly parsed: Parsed,
    x25519: X25519,
    private readonly socket: GatewaySocket,
    private readonly totals: Totals,
    framing: Framing,
    private readonly gone: () => void,
  ) {
    this.clock = opts.clock ?? { now: () => performance.now() };
    const peers = parsed.device.peers!;
    const prefixes = peers.reduce((n, p) => n + (p.allowedIps?.length ?? 0), 0);
    // A small engine: one WebSocket carries one client, and edge isolates are tight on memory.
    this.engine = new Engine({
      wasm: opts.wasm, x25519, epoch: Date.now() - this.clock.now(), mtu: parsed.mtu,
      batch: 16, maxPeers: Math.max(1, peers.length), maxAllowedIps: Math.max(1, prefixes),
    });
    this.stack = new Stack({
      addresses: parsed.addresses, mtu: this.engine.mtu, maxConnections: opts.maxConnections ?? MAX_CONNECTIONS, tcp: opts.tcp,
    });
    this.device = new Device(this.engine, new StackTun(this.stack, this.clock), new ClientSocketBind(socket, this, Math.min(opts.maxMessage ?? Infinity, this.engine.maxDatagram), framing), this.clock);
    this.lastActive = this.clock.now();
  }

  start(): void {
    const now = this.clock.now();
    // Each session its own copy of the keys, wiped when it closes.
    const device = structuredCopy(this.parsed.device);
    try {
      this.device.apply(this.engine.set({ ...device, listenPort: 0 }, now));
    } finally {
      if (device.privateKey) device.privateKey.fill(0);
      for (const p of device.peers ?? []) p.presharedKey?.fill(0);
    }
    if (this.opts.dns !== false) {
      const s = this.stack.udp(53);
      s.handler = (query, src, port) => {
        const r = this.names.answer(query);
        if (r) s.sendTo(r, src, port);
      };
    }
    this.forwarder = this.stack.forward<OutboundSocket>((conn, out) => this.flow(conn, out), {
      admit: (flow) => this.admit(flow),
      release: (out) => { this.outbound.delete(out); void closeQuietly(out); },
    });
    this.device.start();
    const idle = this.opts.idleTimeout ?? 300_000;
    this.idleTimer = setInterval(() => {
      if (this.clock.now() - this.lastActive >= idle) void this.close(1000, "idle");
    }, Math.max(1000, Math.min(60_000, idle / 4)));
    this.socket.addEventListener("close", () => void this.close());
    this.socket.addEventListener("error", () => void this.close());
  }

  /** The bind saw traffic. */
  active(): void {
    this.lastActive = this.clock.now();
  }

  drop(kind: "text" | "oversized" | "malformed"): void {
    if (kind === "text") this.totals.dropText++;
    else if (kind === "oversized") this.totals.dropOversized++;
    else this.totals.dropMalformed++;
  }

  count(dir: "in" | "out", n: number): void {
    if (dir === "in") this.totals.bytesIn += n;
    else this.totals.bytesOut += n;
  }

  engineDrops(): number {
    let n = 0;
    for (const v of Object.values(this.engine.drops)) n += v;
    return n;
  }

  /** Where to connect for host: itself, or a name's first allowed address (refused: rejects). */
  private async resolved(host: string, port: number, allow: NonNullable<GatewayOptions["allow"]>): Promise<string> {
    const resolve = this.opts.resolve;
    if (resolve === undefined || isAddress(host) || allow.names?.(host, port)) return host;
    const addresses = await resolve(host);
    const to = addresses.find((a) => allow(a, port));
    if (to === undefined) throw new Error(addresses.length === 0 ? "no address" : `resolves to ${addresses.join(", ")}, none allowed`);
    return to;
  }

  /** Before the SYN is answered: allowed, and connected out? */
  private async admit(flow: ForwardFlow): Promise<OutboundSocket | null> {
    let host = flow.localAddress;
    const port = flow.localPort;
    if (this.closed) return null;
    if (FakeDns.owns(host)) {
      // A name the gateway answered: the platform resolves it as it connects.
      const name = this.names.name(host);
      if (name === undefined) { this.totals.flowsRefused++; return null; }
      host = name;
    }
    const allow = this.opts.allow ?? publicOnly;
    if (!allow(host, port)) { this.totals.flowsRefused++; return null; }
    const limit = this.opts.connectTimeout ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const attempt = this.resolved(host, port, allow).then((to) => this.opts.connect(to, port));
    try {
      const out = await Promise.race([
        attempt,
        new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), limit); }),
      ]);
      if (out === null) {
        // Too slow: refused now, and closed if it ever connects.
        attempt.then(closeQuietly, () => {});
        this.totals.flowsRefused++;
        return null;
      }
      if (this.closed) { void closeQuietly(out); return null; }
      this.outbound.add(out);
      return out;
    } catch (e) {
      this.opts.log?.(`connect ${host}:${port}: ${e instanceof Error ? e.message : String(e)}`);
      this.totals.flowsRefused++;
      return null;
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  /** An ESTABLISHED forwarded connection and its outbound socket: relayed until both directions end. */
  private flow(conn: TcpConn, out: OutboundSocket): void {
    if (this.closed) { conn.abort(); void closeQuietly(out); return; }
    this.conns.add(conn);
    this.flows++;
    this.totals.flowsOpened++;
    void join(conn, { readable: out.readable, writable: out.writable, abort: () => void closeQuietly(out) }).finally(() => {
      this.conns.delete(conn);
      this.outbound.delete(out);
      this.flows--;
      void closeQuietly(out);
    });
  }

  /** Tears the session down: connections reset, sockets closed, the device stopped, the keys zeroed. */
  async close(code = 1000, reason = ""): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer !== null) clearInterval(this.idleTimer);
    this.forwarder?.close();
    for (const c of this.conns) c.abort();
    for (const o of this.outbound) void closeQuietly(o);
    this.conns.clear();
    this.outbound.clear();
    this.flows = 0;
    this.totals.dropEngine += this.engineDrops();
    try {
      if (this.socket.readyState === OPEN) this.socket.close(code, reason);
    } catch { /* closed already */ }
    try { await this.device.close(); } catch { /* the socket is gone */ }
    this.zero();
    this.gone();
  }

  /** Zeroes the engine's keys and memory (Engine.close; the device's close did it unless it threw). */
  private zero(): void {
    this.engine.close();
  }
}

/**
 * The session's Bind: datagrams are the WebSocket's binary messages (one
 * each, or a batch's), and the engine's datagrams leave one per message, or
 * for a batch client one message per engine batch (flush). A text message,
 * one larger than a datagram can be, or a malformed batch is dropped (counted).
 */
class ClientSocketBind implements Bind {
  readonly port = 0;
  private readonly out: BatchWriter | null;
  private flushQueued = false;
  private readonly flushLater = () => { this.flushQueued = false; this.flush(); };
  constructor(private readonly socket: GatewaySocket, private readonly session: Session, private readonly max: number, framing: Framing) {
    try { socket.binaryType = "arraybuffer"; } catch { /* workerd: always ArrayBuffer */ }
    this.out = framing === "batch" ? new BatchWriter() : null;
  }

  start(datagram: (buf: Uint8Array, off: number, len: number, from: Endpoint) => void, idle: () => void): void {
    const burst = endOfBurst(() => { try { idle(); } catch { /* as above */ } });
    this.socket.addEventListener("message", (e) => {
      const d = e.data;
      let buf: Uint8Array;
      if (d instanceof ArrayBuffer) buf = new Uint8Array(d);
      else if (ArrayBuffer.isView(d)) buf = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      else { this.session.drop("text"); return; }
      if (this.out === null) {
        if (buf.length > this.max) { this.session.drop("oversized"); return; }
        this.session.count("in", buf.length);
        try {
          datagram(buf, 0, buf.length, WEBSOCKET);
        } catch { /* a datagram never takes the session down */ }
      } else {
        if (buf.length > BATCH_BYTES) { this.session.drop("oversized"); return; }
        if (countBatch(buf, this.max) === 0) { this.session.drop("malformed"); return; }
        this.session.count("in", buf.length);
        forEachInBatch(buf, (off, len) => {
          try {
            datagram(buf, off, len, WEBSOCKET);
          } catch { /* as above */ }
        });
      }
      this.session.active();
      burst();
    });
  }

  send(buf: Uint8Array, off: number, len: number): void {
    if (this.socket.readyState !== OPEN) return;
    this.session.active();
    this.session.count("out", len);
    const out = this.out;
    if (out === null) {
      // WebSocket.send copies the bytes (WHATWG WebSockets), so the engine's memory is free again at once.
      try { this.socket.send(buf.subarray(off, off + len)); } catch { /* closing */ }
      return;
    }
    if (!out.fits(len)) this.flush();
    out.add(buf, off, len);
    // The Device flushes after each engine batch; a send outside one still leaves in this task.
    if (!this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushLater); }
  }

  /** Sends the batch as one message (after each engine batch). */
  flush(): void {
    const out = this.out;
    if (out === null || out.count === 0) return;
    const m = out.take();
    if (this.socket.readyState !== OPEN) return;
    try { this.socket.send(m); } catch { /* closing */ }
  }

  close(): void {
    try { if (this.socket.readyState === OPEN) this.socket.close(1000); } catch { /* closed already */ }
  }
}

async function closeQuietly(out: OutboundSocket): Promise<void> {
  try { await out.close(); } catch { /* closed already */ }
}

/** A deep copy of a DeviceConfig whose key arrays the session may wipe. */
function structuredCopy(c: DeviceConfig): DeviceConfig {
  return {
    ...c,
    privateKey: c.privateKey ? c.privateKey.slice() : c.privateKey,
    peers: c.peers?.map((p) => ({
      ...p,
      publicKey: p.publicKey.slice(),
      presharedKey: p.presharedKey ? p.presharedKey.slice() : p.presharedKey,
      allowedIps: p.allowedIps ? [...p.allowedIps] : p.allowedIps,
    })),
  };
}
