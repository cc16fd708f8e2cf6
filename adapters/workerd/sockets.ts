// workerd's (Cloudflare Workers') sockets, as the ports type them: a
// WebSocket accepted with WebSocketPair, and outbound TCP through connect()
// of "cloudflare:sockets" (half-close kept), imported on first use so that
// this module also loads where there is no workerd (a test, a bundler).
import type { TcpStream } from "../ports/host.ts";
import type { AcceptedWebSocket } from "../ports/websocket.ts";

/** workerd's server-side WebSocket: accept() before use. */
interface WorkerdWebSocket extends WebSocket {
  accept(): void;
}

/** workerd's WebSocketPair: the two ends of a new WebSocket (typed here: no workers-types among the dependencies). */
const WebSocketPair = (globalThis as unknown as { WebSocketPair: new () => { 0: WorkerdWebSocket; 1: WorkerdWebSocket } }).WebSocketPair;

let sockets: Promise<typeof import("cloudflare:sockets")> | null = null;

/** Accepts the request's WebSocket: the server end, and the 101 response carrying the client end. */
export function upgradeWebSocket(_request: Request, protocol?: string): { socket: AcceptedWebSocket; response: Response } {
  const pair = new WebSocketPair();
  const client = pair[0], server = pair[1];
  server.accept();
  // workerd's ResponseInit takes the client end as `webSocket`; the subprotocol goes back as a header.
  const init = { status: 101, webSocket: client, ...(protocol ? { headers: { "sec-websocket-protocol": protocol } } : {}) } as ResponseInit;
  return { socket: server as unknown as AcceptedWebSocket, response: new Response(null, init) };
}

/** Opens a TCP connection to host:port; resolves once connected, rejects when refused or unreachable. */
export async function connectTcp(host: string, port: number): Promise<TcpStream> {
  const { connect } = await (sockets ??= import("cloudflare:sockets"));
  const s = connect({ hostname: host.includes(":") ? `[${host}]` : host, port }, { allowHalfOpen: true });
  try {
    await s.opened;
  } catch (e) {
    try { await s.close(); } catch { /* never opened */ }
    throw e;
  }
  return { readable: s.readable, writable: s.writable, close: () => s.close() };
}
