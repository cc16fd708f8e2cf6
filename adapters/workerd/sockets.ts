// workerd's (Cloudflare Workers') sockets, as the ports type them: a
// WebSocket accepted with WebSocketPair, and outbound TCP through connect()
// of "cloudflare:sockets" (half-close kept).
import { connect } from "cloudflare:sockets";
import type { TcpStream } from "../ports/host.ts";
import type { AcceptedWebSocket } from "../ports/websocket.ts";

/** Accepts the request's WebSocket: the server end, and the 101 response carrying the client end. */
export function upgradeWebSocket(_request: Request): { socket: AcceptedWebSocket; response: Response } {
  const pair = new WebSocketPair();
  const [client, server] = Object.values(pair);
  server.accept();
  return { socket: server as unknown as AcceptedWebSocket, response: new Response(null, { status: 101, webSocket: client }) };
}

/** Opens a TCP connection to host:port; resolves once connected, rejects when refused or unreachable. */
export async function connectTcp(host: string, port: number): Promise<TcpStream> {
  const s = connect({ hostname: host.includes(":") ? `[${host}]` : host, port }, { allowHalfOpen: true });
  try {
    await s.opened;
  } catch (e) {
    try { await s.close(); } catch { /* never opened */ }
    throw e;
  }
  return { readable: s.readable, writable: s.writable, close: () => s.close() };
}
