// The WebSocket relay on Bun: Bun.serve with its websocket handlers (uWS
// underneath: it enforces the message size and answers bad frames itself),
// Bun.udpSocket for each client's UDP socket, Bun.dns for names.
import { Bun as BunUdp } from "./bun.ts";
import { AllowList, CLOSE, Relay, type ListenOptions, type OpenUdp, type RelayServer, type Session } from "../relay/relay.ts";
import { closeClients, listenUrl, startSweep } from "../relay/glue.ts";

/** The part of Bun.serve the relay uses (the project type-checks without bun-types). */
interface ServerWebSocket<T> {
  data: T;
  send(data: Uint8Array): number;
  close(code?: number, reason?: string): void;
  terminate(): void;
  getBufferedAmount(): number;
  readonly remoteAddress: string;
}
interface Server {
  readonly port: number;
  upgrade(req: Request, options: { data: unknown }): boolean;
  requestIP(req: Request): { address: string; port: number } | null;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}
interface Client {
  session: Session | null;
  remote: string;
  verdict: { ok: true; address: string; family: 4 | 6; port: number };
}
type Serve = (options: {
  hostname: string;
  port: number;
  fetch(req: Request, server: Server): Response | undefined;
  error?(e: Error): Response;
  websocket: {
    maxPayloadLength: number;
    backpressureLimit: number;
    closeOnBackpressureLimit: boolean;
    idleTimeout: number;
    sendPings: boolean;
    perMessageDeflate: boolean;
    open(ws: ServerWebSocket<Client>): void;
    message(ws: ServerWebSocket<Client>, message: string | Uint8Array): void;
    close(ws: ServerWebSocket<Client>, code: number, reason: string): void;
  };
}) => Server;
const Bun = BunUdp as unknown as typeof BunUdp & { serve: Serve };


const clock = () => performance.now();

async function resolveName(name: string): Promise<string[]> {
  return (await Bun.dns.lookup(name, { family: 0 })).map((a) => a.address);
}

const openUdp: OpenUdp = async (family, receive) => {
  const s = await Bun.udpSocket({
    hostname: family === 4 ? "0.0.0.0" : "::",
    port: 0,
    binaryType: "uint8array",
    socket: { data: (_s, data, port, address) => receive(data, address, port), error: () => {} },
  });
  return {
    port: s.port,
    send: (data, address, port) => { s.send(data, port, address); },
    close: () => { if (!s.closed) s.close(); },
  };
};

/**
 * Starts a relay on Bun.
 * @throws RelayConfigError for a bad option; the system's error when the port cannot be bound
 */
export async function startRelay(options: ListenOptions): Promise<RelayServer> {
  const relay = new Relay(await AllowList.from(options.allow, resolveName), options);
  const sockets = new Set<ServerWebSocket<Client>>();
  const host = options.host ?? "127.0.0.1";
  const refuse = (status: number, message: string) =>
    new Response(`${message}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", connection: "close" } });

  const server = Bun.serve({
    hostname: host,
    port: options.port ?? 0,
    fetch(req, srv) {
      const ip = srv.requestIP(req);
      const remote = ip === null ? "?" : ip.address.includes(":") ? `[${ip.address}]:${ip.port}` : `${ip.address}:${ip.port}`;
      const websocket = req.method === "GET" && /(^|,)\s*websocket\s*(,|$)/i.test(req.headers.get("upgrade") ?? "");
      const v = relay.admit({ url: req.url, websocket, origin: req.headers.get("origin"), remote });
      if (!v.ok) return refuse(v.status, v.message);
      // The session starts in open(): a handshake that never completes leaves nothing behind.
      if (srv.upgrade(req, { data: { session: null, remote, verdict: v } satisfies Client })) return undefined;
      return refuse(400, "invalid WebSocket handshake");
    },
    error: () => new Response("internal error\n", { status: 500 }),
    websocket: {
      maxPayloadLength: relay.maxMessage, // larger messages: uWS closes with 1009
      backpressureLimit: relay.maxBuffered + 65536,
      closeOnBackpressureLimit: false,
      idleTimeout: 0,                     // idleness is the relay's own rule
      sendPings: false,
      perMessageDeflate: false,
      open(ws) {
        const c = ws.data;
        c.session = relay.start(c.verdict, {
          send: (d) => { ws.send(d); },
          close: (code, reason) => ws.close(code, reason),
          buffered: () => ws.getBufferedAmount(),
        }, c.remote, clock(), openUdp, clock);
        if (c.session !== null) sockets.add(ws);
      },
      message(ws, message) {
        ws.data.session?.message(message, clock());
      },
      close(ws, code) {
        sockets.delete(ws);
        ws.data.session?.closed(code === CLOSE.TOO_BIG ? "too-big" : code === 1002 ? "protocol" : "client", code);
      },
    },
  });
  const port = server.port;
  const timer = startSweep(relay, clock);
  (timer as unknown as { unref?: () => void }).unref?.();

  let closing: Promise<void> | null = null;
  return {
    host, port,
    url: listenUrl("ws", host, port),
    stats: () => relay.stats(),
    close: () => closing ??= (async () => {
      clearInterval(timer);
      // Give the close frames a moment, then cut off whoever did not answer.
      await closeClients(relay, clock, () => sockets.size);
      for (const ws of sockets) ws.terminate();
      await server.stop(true);
    })(),
  };
}
