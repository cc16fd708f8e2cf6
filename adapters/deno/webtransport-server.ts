// WebTransport sessions for the relay on Deno: HTTP/3 over QUIC on UDP, at
// the same port number as the (then wss:) WebSocket listener. Deno's QUIC
// endpoint (Deno.QuicEndpoint, unstable "net") accepts the connections and
// Deno.upgradeWebTransport answers the extended CONNECT; from there a session
// is one more client of the same Relay (relay.ts) as a WebSocket is:
//
// 1. The CONNECT's URL carries the same `?to=host:port[&token=...]`; admit()
//    decides with the same allow-list, token and limits. Deno answers every
//    CONNECT with 200 itself, so a refusal closes the session at once with
//    the HTTP status as its close code (400, 401, 403, 503) and the reason.
// 2. relay.start() opens the Session and its one UDP socket; each incoming
//    datagram (transport.datagrams.readable) goes to Session.message, each
//    datagram from the upstream is written to transport.datagrams.writable.
// 3. A datagram larger than the session's maxDatagramSize cannot be sent: it
//    is dropped and counted (drops.send); a writer that is not keeping up
//    (desiredSize <= 0) drops too (drops.backpressure): UDP semantics.
// 4. The session closing (either side, or the QUIC connection timing out)
//    closes its UDP socket; shutdown closes every session with 1001.
//
// Deno does not expose the CONNECT request's headers, so a relay with an
// Origin list refuses WebTransport sessions (403): their origin cannot be
// checked. Needs --allow-net and --unstable-net (deno.json turns it on).
import type { OpenUdp, Relay } from "../relay/relay.ts";

/** The certificate the relay serves (wss: and WebTransport): PEM text, as Deno.serve takes it. */
export interface TlsOptions {
  cert?: string;
  key?: string;
}

export interface WebTransportStats {
  /** WebTransport sessions open now (they count in RelayStats.clients too). */
  sessions: number;
  /** Sessions admitted since start. */
  accepted: number;
  /** Sessions refused by admit (counted in RelayStats.refused too). */
  refused: number;
}

export interface WebTransportListener {
  /** The UDP port (the WebSocket listener's number). */
  readonly port: number;
  stats(): WebTransportStats;
  /** Stops accepting and closes the QUIC endpoint (sessions are closed by relay.closeAll first). */
  close(): void;
}

/** QUIC keep-alive (ms): the relay's own idle rule decides when a quiet client goes, not QUIC's idle timeout. */
const KEEPALIVE_MS = 10_000;

/**
 * Accepts WebTransport sessions on UDP host:port for `relay`.
 * @throws the system's error when the UDP port cannot be bound; Deno's when the certificate or key is not valid PEM
 */
export function listenWebTransport(
  relay: Relay,
  where: { host: string; port: number; cert: string; key: string },
  openUdp: OpenUdp,
  clock: () => number,
): WebTransportListener {
  const endpoint = new Deno.QuicEndpoint({ hostname: where.host, port: where.port });
  let listener: Deno.QuicListener;
  try {
    listener = endpoint.listen({ alpnProtocols: ["h3"], cert: where.cert, key: where.key, keepAliveInterval: KEEPALIVE_MS });
  } catch (e) {
    endpoint.close();
    throw e;
  }
  const counts = { sessions: 0, accepted: 0, refused: 0 };
  let stopped = false;

  const session = async (incoming: Deno.QuicIncoming) => {
    const conn = await incoming.accept();
    const a = conn.remoteAddr;
    const remote = a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
    const wt = await Deno.upgradeWebTransport(conn);
    // A WebTransport session is the relay's counterpart of a WebSocket upgrade (admit's `websocket`).
    const v = relay.admit({ url: wt.url, websocket: true, origin: null, remote });
    if (!v.ok) {
      counts.refused++;
      // Closed before it was ready, the client saw "Bad resource ID" instead of the code (1 run in 4).
      await wt.ready.catch(() => {});
      wt.close({ closeCode: v.status, reason: v.message }); // the HTTP status admit() chose
      return;
    }
    await wt.ready;
    const writer = wt.datagrams.writable.getWriter();
    let open = true;
    const s = relay.start(v, {
      send: (d) => {
        if (d.byteLength > wt.datagrams.maxDatagramSize) throw new RangeError("datagram larger than the session's maxDatagramSize");
        writer.write(d).catch(() => {}); // a session gone meanwhile: its close is handled below
      },
      close: (code, reason) => { if (open) { open = false; try { wt.close({ closeCode: code, reason }); } catch { /* closed */ } } },
      // The Session drops (backpressure) above maxBuffered: a full datagram queue counts as over it.
      buffered: () => (writer.desiredSize !== null && writer.desiredSize <= 0 ? Infinity : 0),
    }, remote, clock(), openUdp, clock);
    if (s === null) return; // the relay filled up meanwhile: closed with 1013
    counts.accepted++;
    counts.sessions++;
    const ended = (code?: number) => { open = false; s.closed("client", code); }; // a no-op once the Session ended
    wt.closed.then((info) => ended(info.closeCode), () => ended()).finally(() => { counts.sessions--; });
    const reader = wt.datagrams.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        s.message(value, clock());
      }
    } catch { /* the session ended */ }
    ended();
  };

  void (async () => {
    for (;;) {
      let incoming: Deno.QuicIncoming;
      try {
        incoming = await listener.incoming();
      } catch {
        return; // stopped
      }
      if (stopped) { incoming.refuse(); continue; }
      // A handshake or upgrade that fails (a non-WebTransport client, a reset) is that client's business.
      session(incoming).catch(() => {});
    }
  })();

  return {
    port: endpoint.addr.port,
    stats: () => ({ ...counts }),
    close: () => {
      if (stopped) return;
      stopped = true;
      try { listener.stop(); } catch { /* stopped */ }
      try { endpoint.close({ closeCode: 0, reason: "relay shutting down" }); } catch { /* closed */ }
    },
  };
}
