// WebTransport servers on Deno (ports/websocket.ts): Deno's QUIC endpoint
// (Deno.QuicEndpoint, unstable "net", which deno.json turns on) accepts the
// connections and Deno.upgradeWebTransport answers the extended CONNECT.
// Deno answers every CONNECT with 200 itself, so the application's refusal
// is a close of the session right after it is ready. Needs --allow-net.
import type { IncomingSession, WebTransportListener, WebTransportSession } from "../ports/websocket.ts";

/** QUIC keep-alive (ms): the application's own idle rule decides when a quiet client goes, not QUIC's idle timeout. */
const KEEPALIVE_MS = 10_000;

/**
 * Accepts WebTransport sessions on UDP host:port.
 * @throws the system's error when the UDP port cannot be bound; Deno's when the certificate or key is not valid PEM
 */
export async function serveWebTransport(
  where: { host: string; port: number; cert: string; key: string },
  session: (incoming: IncomingSession) => void,
): Promise<WebTransportListener> {
  const endpoint = new Deno.QuicEndpoint({ hostname: where.host, port: where.port });
  let listener: Deno.QuicListener;
  try {
    listener = endpoint.listen({ alpnProtocols: ["h3"], cert: where.cert, key: where.key, keepAliveInterval: KEEPALIVE_MS });
  } catch (e) {
    endpoint.close();
    throw e;
  }
  let stopped = false;

  const accept = async (incoming: Deno.QuicIncoming) => {
    const conn = await incoming.accept();
    const a = conn.remoteAddr;
    const remote = a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
    const wt = await Deno.upgradeWebTransport(conn);
    session({
      url: wt.url,
      remote,
      refuse: async (code, reason) => {
        // Closed before it was ready, the client saw "Bad resource ID" instead of the code (1 run in 4).
        await wt.ready.catch(() => {});
        wt.close({ closeCode: code, reason });
      },
      accept: async (): Promise<WebTransportSession> => {
        await wt.ready;
        const writer = wt.datagrams.writable.getWriter();
        const reader = wt.datagrams.readable.getReader();
        return {
          get maxDatagramSize() { return wt.datagrams.maxDatagramSize; },
          send: (d) => {
            if (d.byteLength > wt.datagrams.maxDatagramSize) return false;
            writer.write(d).catch(() => {}); // a session gone meanwhile: its close is reported by `closed`
            return true;
          },
          full: () => writer.desiredSize !== null && writer.desiredSize <= 0,
          close: (code, reason) => wt.close({ closeCode: code, reason }),
          datagrams: {
            async *[Symbol.asyncIterator]() {
              for (;;) {
                const { value, done } = await reader.read();
                if (done) return;
                yield value;
              }
            },
          },
          closed: wt.closed.then((info) => info.closeCode, () => undefined),
        };
      },
    });
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
      accept(incoming).catch(() => {});
    }
  })();

  return {
    port: endpoint.addr.port,
    close: () => {
      if (stopped) return;
      stopped = true;
      try { listener.stop(); } catch { /* stopped */ }
      try { endpoint.close({ closeCode: 0, reason: "relay shutting down" }); } catch { /* closed */ }
    },
  };
}
