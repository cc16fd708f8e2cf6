// WebSocket servers on Node (ports/websocket.ts): node:http (node:https with
// a certificate) for the listening socket, the `ws` package for the
// WebSocket protocol (handleUpgrade on a noServer WebSocketServer, so the
// application's refusals are answered before any upgrade). Node 20 has no
// WebSocket server of its own; `ws` is loaded when a server is asked for,
// and its absence is one line naming it.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { WebSocket, WebSocketServer } from "ws";
import type { WebSocketLike } from "../ports/websocket-bind.ts";
import { MissingPackageError } from "../ports/errors.ts";
import { parseSubprotocols } from "../ports/framing.ts";
import type { ServerSocket, UpgradeRequest, WebSocketHandler, WebSocketListener, WebSocketListenOptions } from "../ports/websocket.ts";

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 426: "Upgrade Required", 503: "Service Unavailable" };

/**
 * The ws package's WebSocket, for `wg up --relay` (Node 20 has no global
 * one). Its API is the WHATWG one a bind uses: binaryType, onmessage,
 * bufferedAmount, protocol.
 */
export async function webSocketClient(): Promise<WebSocketLike> {
  const ws = await loadWs().catch(() => { throw new MissingPackageError("ws", "wg up --relay on Node"); });
  return ws.WebSocket as WebSocketLike;
}

/** A refusal as a raw HTTP/1.1 response, for an upgrade answered on the socket itself. */
function httpRefusal(status: number, message: string): string {
  const body = `${message}\n`;
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** The request's client address, for log lines. */
function remoteOf(socket: Duplex): string {
  const s = socket as Duplex & { remoteAddress?: string; remotePort?: number };
  const a = s.remoteAddress ?? "?";
  return a.includes(":") ? `[${a}]:${s.remotePort}` : `${a}:${s.remotePort}`;
}

type WsModule = { WebSocketServer: typeof WebSocketServer; WebSocket: unknown };

/** The subprotocol admit chose for a request, kept on it for ws's handleProtocols. */
const CHOSEN = Symbol("subprotocol");
type Chosen = IncomingMessage & { [CHOSEN]?: string | null };

async function loadWs(): Promise<WsModule> {
  try {
    return (await import("ws")) as unknown as WsModule;
  } catch {
    throw new MissingPackageError("ws", "the relay on Node");
  }
}

/**
 * Listens for WebSockets on host:port.
 * @throws MissingPackageError without the ws package; the system's error when the port cannot be bound
 */
export async function serveWebSockets<T>(options: WebSocketListenOptions, handler: WebSocketHandler<T>): Promise<WebSocketListener> {
  const { WebSocketServer } = await loadWs();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessage, // larger messages: ws closes with 1009
    perMessageDeflate: false,
    clientTracking: false,
    skipUTF8Validation: true, // text is the application's to refuse
    // ws would answer the first name offered; the application's choice instead (none: no header).
    handleProtocols: (_offered: Set<string>, req: IncomingMessage) => (req as Chosen)[CHOSEN] ?? false,
  });
  const sockets = new Set<WebSocket>();
  const onRequest = (req: IncomingMessage, res: import("node:http").ServerResponse) => {
    // A plain request (not an upgrade): the application says what to answer.
    const r = handler.admit({ url: req.url ?? "/", websocket: false, origin: null, remote: remoteOf(req.socket), protocols: [] });
    const refusal = "refuse" in r ? r.refuse : { status: 426, message: "expected a WebSocket upgrade" };
    res.writeHead(refusal.status, { "content-type": "text/plain; charset=utf-8", connection: "close" });
    res.end(`${refusal.message}\n`);
  };
  const server: Server = options.tls ? createTlsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest) : createServer(onRequest);
  server.on("clientError", (_e, socket: Duplex) => socket.destroy()); // malformed HTTP
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {}); // a reset while we answer is not ours to report
    const info: UpgradeRequest = {
      url: req.url ?? "/",
      websocket: req.method === "GET" && /(^|,)\s*websocket\s*(,|$)/i.test(req.headers.upgrade ?? ""),
      origin: typeof req.headers.origin === "string" ? req.headers.origin : null,
      remote: remoteOf(socket),
      protocols: parseSubprotocols(req.headers["sec-websocket-protocol"]),
    };
    const r = handler.admit(info);
    if ("refuse" in r) {
      socket.end(httpRefusal(r.refuse.status, r.refuse.message));
      return;
    }
    (req as Chosen)[CHOSEN] = r.protocol ?? null;
    // ws answers a bad handshake (key, version) with 400 itself and never calls back.
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Messages of one burst leave in one write: the socket is corked at
      // the first and uncorked after the poll phase (setImmediate). Through
      // the relay in Chromium, 10 MB: 58-64 -> 70-72 Mbit/s.
      let corked = false;
      const uncork = () => { corked = false; socket.uncork(); };
      const port: ServerSocket = {
        send: (d) => {
          if (!corked) { corked = true; socket.cork(); setImmediate(uncork); }
          ws.send(d, { binary: true });
        },
        close: (code, reason) => ws.close(code, reason),
        buffered: () => ws.bufferedAmount,
      };
      const events = handler.open(port, r.accept, info);
      if (events === null) return;
      sockets.add(ws);
      ws.on("message", (data: Buffer, isBinary: boolean) => events.message(isBinary ? data : data.toString("utf8")));
      let why: "too-big" | "protocol" | null = null;
      ws.on("error", (e: Error & { code?: string }) => {
        // ws closes the connection itself (1009 for too big, 1002 for a bad frame); this names why.
        why = e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? "too-big" : "protocol";
      });
      ws.on("close", (code: number) => {
        sockets.delete(ws);
        events.closed(why ?? "client", why === "too-big" ? 1009 : why === "protocol" ? 1002 : code);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => { server.off("error", reject); resolve(); });
  });
  server.on("error", () => {}); // accept errors (EMFILE...) must not end the process
  return {
    host: options.host,
    port: (server.address() as { port: number }).port,
    connections: () => sockets.size,
    close: async () => {
      server.close();
      for (const ws of sockets) ws.terminate();
      server.closeAllConnections();
    },
  };
}
