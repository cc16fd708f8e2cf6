// The relay on a host: its WebSocket server (and WebTransport, where the
// host has it) and one UDP socket per client, around the core of relay.ts.
// Written once over the ports (ports/websocket.ts, ports/host.ts); Node,
// Deno and Bun each give the capabilities with their own APIs.
import type { Resolver, UdpSockets } from "../ports/host.ts";
import type { WebSocketServers, WebTransportServers } from "../ports/websocket.ts";
import { BATCH_BYTES } from "../ports/framing.ts";
import { AllowList, Relay, RelayConfigError, type ListenOptions, type OpenUdp, type RelayServer, type Session } from "./relay.ts";
import { listenWebTransport, type WebTransportStats } from "./webtransport.ts";

/** What the relay needs of its host; WebTransport is optional. */
export type RelayHost = WebSocketServers & UdpSockets & Resolver & Partial<WebTransportServers>;

/** The certificate the relay serves (wss:, and WebTransport where the host has it): PEM text. */
export interface TlsOptions {
  cert?: string;
  key?: string;
}

/** A running relay, and its WebTransport counters (null without WebTransport). */
export interface RunningRelay extends RelayServer {
  webtransport(): WebTransportStats | null;
}

/** How long shutdown waits for clients to answer the close frame. */
const CLOSE_GRACE_MS = 500;
/**
 * A burst from the server outruns one event-loop turn: with Linux's default
 * ~208 KiB buffer the kernel dropped 3% of a download (UdpRcvbufErrors) and
 * TCP inside backed off. The kernel caps this at net.core.rmem_max.
 */
const UDP_RECEIVE_BUFFER = 4 << 20;

const clock = () => performance.now();

/**
 * A batch client's datagrams of one I/O turn leave in one message: the flush
 * runs after the turn's I/O callbacks (setImmediate; Node, Deno and Bun have
 * it). A microtask would run after each datagram's callback on Node, one
 * message per datagram again.
 */
const afterIo: (f: () => void) => void = typeof setImmediate === "function" ? (f) => { setImmediate(f); } : queueMicrotask;

/** "ws://127.0.0.1:8080/", "wss://[::1]:8443/". */
export function listenUrl(scheme: "ws" | "wss", host: string, port: number): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}/`;
}

/**
 * Starts a relay on `host`.
 * @example
 *   const r = await startRelay(nodeHost(), { allow: ["127.0.0.1:51820"], port: 0 });
 *   new WebSocket(`${r.url}?to=127.0.0.1:51820`);
 *   await r.close();
 * @throws RelayConfigError for a bad option (an unresolvable name too); the system's error when the port cannot be bound
 */
export async function startRelay(host: RelayHost, options: ListenOptions & TlsOptions): Promise<RunningRelay> {
  if ((options.cert === undefined) !== (options.key === undefined)) throw new RelayConfigError("a certificate needs its key (--cert and --key)");
  const tls = options.cert !== undefined && options.key !== undefined ? { cert: options.cert, key: options.key } : undefined;
  if (tls && !host.webSocketTls) throw new RelayConfigError("this host's WebSocket server cannot serve TLS: put a TLS proxy in front");
  const relay = new Relay(await AllowList.from(options.allow, (name) => host.resolveAll(name)), { defer: afterIo, ...options });
  const openUdp: OpenUdp = async (family, receive) => {
    const s = await host.bindUdp(family === 4 ? "0.0.0.0" : "::", 0, receive, { receiveBuffer: UDP_RECEIVE_BUFFER });
    return { port: s.port, send: (d, address, port) => { s.send(d, address, port); }, close: () => s.close() };
  };
  const bind = options.host ?? "127.0.0.1";
  const listener = await host.serveWebSockets<Extract<ReturnType<Relay["admit"]>, { ok: true }>>(
    // A batch message may be larger than a datagram; a one-per-message client's limit is the session's to keep.
    { host: bind, port: options.port ?? 0, maxMessage: relay.batch ? Math.max(relay.maxMessage, BATCH_BYTES) : relay.maxMessage, tls },
    {
      admit: (req) => {
        const v = relay.admit(req);
        return v.ok ? { accept: v, protocol: v.protocol } : { refuse: { status: v.status, message: v.message } };
      },
      open: (socket, v, req) => {
        const s: Session | null = relay.start(v, socket, req.remote, clock(), openUdp, clock);
        if (s === null) return null;
        return {
          message: (d) => s.message(d, clock()),
          closed: (why, code) => s.closed(why, code),
        };
      },
    },
  );
  let wt: Awaited<ReturnType<typeof listenWebTransport>> | null = null;
  try {
    // With a certificate: WebTransport on UDP at the same port number, where the host has it.
    if (tls && host.serveWebTransport) wt = await listenWebTransport(relay, host as Required<Pick<RelayHost, "serveWebTransport">>, { host: bind, port: listener.port, ...tls }, openUdp, clock);
  } catch (e) {
    await listener.close();
    throw e;
  }
  // The idle sweep, often enough for the idle timeout: 4 times per timeout, 10 ms to 1 s apart.
  const timer = setInterval(() => relay.sweep(clock()), Math.min(1000, Math.max(10, relay.idleMs / 4)));

  let closing: Promise<void> | null = null;
  return {
    host: bind,
    port: listener.port,
    url: listenUrl(tls ? "wss" : "ws", bind, listener.port),
    stats: () => relay.stats(),
    webtransport: () => wt?.stats() ?? null,
    close: () => closing ??= (async () => {
      clearInterval(timer);
      // Every client gets a close frame (1001) and a moment to answer it; then whoever did not is cut off.
      relay.closeAll(clock());
      const deadline = clock() + CLOSE_GRACE_MS;
      while (listener.connections() > 0 && clock() < deadline) await new Promise((r) => setTimeout(r, 20));
      wt?.close();
      await listener.close();
    })(),
  };
}
