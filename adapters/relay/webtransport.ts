// WebTransport sessions for the relay, where the host serves WebTransport
// (Deno): HTTP/3 over QUIC on UDP, at the same port number as the (then
// wss:) WebSocket listener. A session is one more client of the same Relay
// (relay.ts) as a WebSocket is:
//
// 1. The CONNECT's URL carries the same `?to=host:port[&token=...]`; admit()
//    decides with the same allow-list, token and limits. The CONNECT was
//    answered already, so a refusal closes the session at once with the
//    HTTP status as its close code (400, 401, 403, 503) and the reason.
// 2. relay.start() opens the Session and its one UDP socket; each incoming
//    datagram goes to Session.message, each datagram from the upstream is
//    sent on the session.
// 3. A datagram larger than the session's maxDatagramSize cannot be sent: it
//    is dropped and counted (drops.send); a sender that is not keeping up
//    (a full queue) drops too (drops.backpressure): UDP semantics.
// 4. The session closing (either side, or the QUIC connection timing out)
//    closes its UDP socket; shutdown closes every session with 1001.
//
// The session's request headers are not seen (Deno does not expose them),
// so a relay with an Origin list refuses WebTransport sessions (403): their
// origin cannot be checked.
import type { WebTransportServers } from "../ports/websocket.ts";
import type { OpenUdp, Relay } from "./relay.ts";

export interface WebTransportStats {
  /** WebTransport sessions open now (they count in RelayStats.clients too). */
  sessions: number;
  /** Sessions admitted since start. */
  accepted: number;
  /** Sessions refused by admit (counted in RelayStats.refused too). */
  refused: number;
}

export interface WebTransportRelay {
  /** The UDP port (the WebSocket listener's number). */
  readonly port: number;
  stats(): WebTransportStats;
  /** Stops accepting (sessions are closed by relay.closeAll first). */
  close(): void;
}

/**
 * Accepts WebTransport sessions on UDP host:port for `relay`.
 * @throws the system's error when the UDP port cannot be bound, or the host's when the certificate or key is not valid PEM
 */
export async function listenWebTransport(
  relay: Relay,
  host: WebTransportServers,
  where: { host: string; port: number; cert: string; key: string },
  openUdp: OpenUdp,
  clock: () => number,
): Promise<WebTransportRelay> {
  const counts = { sessions: 0, accepted: 0, refused: 0 };
  const listener = await host.serveWebTransport(where, (incoming) => {
    void (async () => {
      // A WebTransport session is the relay's counterpart of a WebSocket upgrade (admit's `websocket`).
      const v = relay.admit({ url: incoming.url, websocket: true, origin: null, remote: incoming.remote });
      if (!v.ok) {
        counts.refused++;
        await incoming.refuse(v.status, v.message); // the HTTP status admit() chose
        return;
      }
      const wt = await incoming.accept();
      let open = true;
      const s = relay.start(v, {
        send: (d) => {
          if (!wt.send(d)) throw new RangeError("datagram larger than the session's maxDatagramSize");
        },
        close: (code, reason) => { if (open) { open = false; try { wt.close(code, reason); } catch { /* closed */ } } },
        // The Session drops (backpressure) above maxBuffered: a full datagram queue counts as over it.
        buffered: () => (wt.full() ? Infinity : 0),
      }, incoming.remote, clock(), openUdp, clock);
      if (s === null) return; // the relay filled up meanwhile: closed with 1013
      counts.accepted++;
      counts.sessions++;
      const ended = (code?: number) => { open = false; s.closed("client", code); }; // a no-op once the Session ended
      void wt.closed.then((code) => ended(code), () => ended()).finally(() => { counts.sessions--; });
      try {
        for await (const d of wt.datagrams) s.message(d, clock());
      } catch { /* the session ended */ }
      ended();
    })().catch(() => { /* a handshake or upgrade that fails is that client's business */ });
  });
  return {
    port: listener.port,
    stats: () => ({ ...counts }),
    close: () => listener.close(),
  };
}
