// WebSocket servers on Deno (ports/websocket.ts): Deno.serve (with a
// certificate, TLS) and Deno.upgradeWebSocket. Needs --allow-net.
import { parseSubprotocols } from "../ports/framing.ts";
import type { ServerSocket, UpgradeRequest, WebSocketHandler, WebSocketListener, WebSocketListenOptions } from "../ports/websocket.ts";

/**
 * Listens for WebSockets on host:port.
 * @throws the system's error when the port cannot be bound
 */
export async function serveWebSockets<T>(options: WebSocketListenOptions, handler: WebSocketHandler<T>): Promise<WebSocketListener> {
  const sockets = new Set<WebSocket>();
  const refuse = (status: number, message: string) =>
    new Response(`${message}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", connection: "close" } });
  const server = Deno.serve({
    ...options.tls, hostname: options.host, port: options.port, onListen: () => {},
    onError: () => new Response("internal error\n", { status: 500 }),
  }, (req, info) => {
    const a = info.remoteAddr as Deno.NetAddr;
    const request: UpgradeRequest = {
      url: req.url,
      websocket: req.method === "GET" && /(^|,)\s*websocket\s*(,|$)/i.test(req.headers.get("upgrade") ?? ""),
      origin: req.headers.get("origin"),
      remote: a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`,
      protocols: parseSubprotocols(req.headers.get("sec-websocket-protocol")),
    };
    const r = handler.admit(request);
    if ("refuse" in r) return refuse(r.refuse.status, r.refuse.message);
    if (!request.websocket) return refuse(426, "expected a WebSocket upgrade");
    let up: { socket: WebSocket; response: Response };
    try {
      up = Deno.upgradeWebSocket(req, { idleTimeout: 0 }); // idleness is the application's own rule
    } catch {
      return refuse(400, "invalid WebSocket handshake");
    }
    // Set by hand: Deno's `protocol` option looks for the name in the offer split at ", " only (ws sends "a,b").
    if (r.protocol) up.response.headers.set("sec-websocket-protocol", r.protocol);
    const ws = up.socket;
    ws.binaryType = "arraybuffer";
    const port: ServerSocket = {
      send: (d) => ws.send(d),
      close: (code, reason) => ws.close(code, reason),
      buffered: () => ws.bufferedAmount,
    };
    const events = handler.open(port, r.accept, request);
    if (events === null) return up.response;
    sockets.add(ws);
    ws.onmessage = (e) => {
      const d = e.data;
      if (typeof d === "string") events.message(d);
      // Deno takes messages of any size: one over maxMessage is the application's to refuse.
      else if (d instanceof ArrayBuffer) events.message(new Uint8Array(d));
      else events.message(""); // a Blob cannot happen with binaryType "arraybuffer"
    };
    ws.onerror = () => { /* the close event follows */ };
    ws.onclose = (e) => { sockets.delete(ws); events.closed("client", e.code); };
    return up.response;
  });
  return {
    host: options.host,
    port: (server.addr as Deno.NetAddr).port,
    connections: () => sockets.size,
    // Connections that never answered do not hold shutdown up for long.
    close: async () => { await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 1000))]); },
  };
}
