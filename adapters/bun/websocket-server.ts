// WebSocket servers on Bun (ports/websocket.ts): Bun.serve with its
// websocket handlers (uWS underneath: it enforces the message size and
// answers bad frames itself), with a certificate over TLS.
import type { ServerSocket, SocketEvents, UpgradeRequest, WebSocketHandler, WebSocketListener, WebSocketListenOptions } from "../ports/websocket.ts";
import { Bun as BunGlobal } from "./bun.ts";
import { parseSubprotocols } from "../ports/framing.ts";

/** The part of Bun.serve this uses (the project type-checks without bun-types). */
interface BunServerWebSocket<T> {
  data: T;
  send(data: Uint8Array): number;
  close(code?: number, reason?: string): void;
  terminate(): void;
  getBufferedAmount(): number;
}
interface Server {
  readonly port: number;
  upgrade(req: Request, options: { data: unknown; headers?: Record<string, string> }): boolean;
  requestIP(req: Request): { address: string; port: number } | null;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
interface Client<T> {
  request: UpgradeRequest;
  accepted: T;
  events: SocketEvents | null;
}
type Serve = <T>(options: {
  hostname: string;
  port: number;
  tls?: { cert: string; key: string };
  fetch(req: Request, server: Server): Response | undefined;
  error?(e: Error): Response;
  websocket: {
    maxPayloadLength: number;
    backpressureLimit: number;
    closeOnBackpressureLimit: boolean;
    idleTimeout: number;
    sendPings: boolean;
    perMessageDeflate: boolean;
    open(ws: BunServerWebSocket<Client<T>>): void;
    message(ws: BunServerWebSocket<Client<T>>, message: string | Uint8Array): void;
    close(ws: BunServerWebSocket<Client<T>>, code: number, reason: string): void;
  };
}) => Server;
const Bun = BunGlobal as unknown as typeof BunGlobal & { serve: Serve };

/** The most a socket's send buffer may hold before uWS itself stops taking (the application drops well before). */
const BACKPRESSURE_LIMIT = 4 << 20;

/**
 * Listens for WebSockets on host:port.
 * @throws the system's error when the port cannot be bound
 */
export async function serveWebSockets<T>(options: WebSocketListenOptions, handler: WebSocketHandler<T>): Promise<WebSocketListener> {
  const sockets = new Set<BunServerWebSocket<Client<T>>>();
  const refuse = (status: number, message: string) =>
    new Response(`${message}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", connection: "close" } });
  const server = Bun.serve<T>({
    hostname: options.host,
    port: options.port,
    tls: options.tls,
    fetch(req, srv) {
      const ip = srv.requestIP(req);
      const request: UpgradeRequest = {
        url: req.url,
        websocket: req.method === "GET" && /(^|,)\s*websocket\s*(,|$)/i.test(req.headers.get("upgrade") ?? ""),
        origin: req.headers.get("origin"),
        remote: ip === null ? "?" : ip.address.includes(":") ? `[${ip.address}]:${ip.port}` : `${ip.address}:${ip.port}`,
        protocols: parseSubprotocols(req.headers.get("sec-websocket-protocol")),
      };
      const r = handler.admit(request);
      if ("refuse" in r) return refuse(r.refuse.status, r.refuse.message);
      // The application's open() runs in open(): a handshake that never completes leaves nothing behind.
      // Bun answers the first name offered unless told one (an empty one is sent as such, and refused by
      // clients): a client offering only names the application does not know gets its first back.
      const headers = r.protocol ? { "Sec-WebSocket-Protocol": r.protocol } : undefined;
      if (srv.upgrade(req, { data: { request, accepted: r.accept, events: null } satisfies Client<T>, ...(headers ? { headers } : {}) })) return undefined;
      return refuse(400, "invalid WebSocket handshake");
    },
    error: () => new Response("internal error\n", { status: 500 }),
    websocket: {
      maxPayloadLength: options.maxMessage, // larger messages: uWS closes with 1009
      backpressureLimit: BACKPRESSURE_LIMIT,
      closeOnBackpressureLimit: false,
      idleTimeout: 0, // idleness is the application's own rule
      sendPings: false,
      perMessageDeflate: false,
      open(ws) {
        const c = ws.data;
        const port: ServerSocket = {
          send: (d) => { ws.send(d); },
          close: (code, reason) => ws.close(code, reason),
          buffered: () => ws.getBufferedAmount(),
        };
        c.events = handler.open(port, c.accepted, c.request);
        if (c.events !== null) sockets.add(ws);
      },
      message(ws, message) {
        ws.data.events?.message(message);
      },
      close(ws, code) {
        sockets.delete(ws);
        ws.data.events?.closed(code === 1009 ? "too-big" : code === 1002 ? "protocol" : "client", code);
      },
    },
  });
  return {
    host: options.host,
    port: server.port,
    connections: () => sockets.size,
    close: async () => {
      for (const ws of sockets) ws.terminate();
      await server.stop(true);
    },
  };
}
