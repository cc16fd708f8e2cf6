// The WebSocket relay on Node: node:http for the listening socket, the `ws`
// package for the WebSocket protocol (handleUpgrade on a noServer
// WebSocketServer: the relay answers refusals itself, before any upgrade),
// node:dgram for each client's UDP socket.
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { createServer, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { AllowList, CLOSE, Relay, httpRefusal, type ListenOptions, type OpenUdp, type RelayServer } from "../relay/relay.ts";
import { closeClients, listenUrl, startSweep } from "../relay/glue.ts";

const clock = () => performance.now();

/** Every address a name has (the hosts file too), as text. */
async function resolveName(name: string): Promise<string[]> {
  return (await lookup(name, { all: true })).map((a) => a.address);
}

const openUdp: OpenUdp = (family, receive) => new Promise((resolve, reject) => {
  // A burst from the server outruns one event-loop turn: with the default
  // ~208 KiB buffer the kernel dropped 3% of a download (UdpRcvbufErrors) and
  // TCP inside backed off. The kernel caps this at net.core.rmem_max.
  const s = dgram.createSocket({ type: family === 4 ? "udp4" : "udp6", recvBufferSize: 4 << 20 });
  let bound = false;
  s.on("error", (e) => { if (!bound) reject(e); }); // after binding: ICMP errors and the like, nothing to do
  s.on("message", (d, r) => receive(d, r.address, r.port));
  s.bind(0, () => {
    bound = true;
    resolve({
      port: s.address().port,
      send: (data, address, port) => s.send(data, port, address),
      close: () => { try { s.close(); } catch { /* closed already */ } },
    });
  });
});

/** The request's client address, for log lines. */
function remoteOf(socket: Duplex): string {
  const s = socket as Duplex & { remoteAddress?: string; remotePort?: number };
  const a = s.remoteAddress ?? "?";
  return a.includes(":") ? `[${a}]:${s.remotePort}` : `${a}:${s.remotePort}`;
}

/**
 * Starts a relay on Node.
 * @example
 *   const r = await startRelay({ allow: ["127.0.0.1:51820"], port: 0 });
 *   new WebSocket(`${r.url}?to=127.0.0.1:51820`);
 *   await r.close();
 * @throws RelayConfigError for a bad option (an unresolvable name too); the system's error when the port cannot be bound
 */
export async function startRelay(options: ListenOptions): Promise<RelayServer> {
  const relay = new Relay(await AllowList.from(options.allow, resolveName), options);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: relay.maxMessage, // larger messages: ws closes with 1009
    perMessageDeflate: false,
    clientTracking: false,
    skipUTF8Validation: true,     // text is refused anyway
  });
  const sockets = new Set<WebSocket>();

  const server = createServer((req, res) => {
    // A plain request (not an upgrade): the relay only speaks WebSocket.
    const v = relay.admit({ url: req.url ?? "/", websocket: false, origin: null, remote: remoteOf(req.socket) });
    if (!v.ok) {
      res.writeHead(v.status, { "content-type": "text/plain; charset=utf-8", connection: "close" });
      res.end(`${v.message}\n`);
    }
  });
  server.on("clientError", (_e, socket: Duplex) => socket.destroy()); // malformed HTTP
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {}); // a reset while we answer is not ours to report
    const remote = remoteOf(socket);
    const websocket = req.method === "GET" && /(^|,)\s*websocket\s*(,|$)/i.test(req.headers.upgrade ?? "");
    const origin = typeof req.headers.origin === "string" ? req.headers.origin : null;
    const v = relay.admit({ url: req.url ?? "/", websocket, origin, remote });
    if (!v.ok) {
      socket.end(httpRefusal(v.status, v.message));
      return;
    }
    // ws answers a bad handshake (key, version) with 400 itself and never calls back.
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Datagrams of one burst leave in one write: the socket is corked at
      // the first and uncorked after the poll phase (setImmediate).
      let corked = false;
      const uncork = () => { corked = false; socket.uncork(); };
      const s = relay.start(v, {
        send: (d) => {
          if (!corked) { corked = true; socket.cork(); setImmediate(uncork); }
          ws.send(d, { binary: true });
        },
        close: (code, reason) => ws.close(code, reason),
        buffered: () => ws.bufferedAmount,
      }, remote, clock(), openUdp, clock);
      if (s === null) return;
      sockets.add(ws);
      ws.on("message", (data: Buffer, isBinary: boolean) => s.message(isBinary ? data : "", clock()));
      ws.on("error", (e: Error & { code?: string }) => {
        // ws closes the connection itself (1009 for too big, 1002 for a bad frame); this names why.
        s.closed(e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? "too-big" : "protocol",
          e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? CLOSE.TOO_BIG : 1002);
      });
      ws.on("close", (code: number) => { sockets.delete(ws); s.closed("client", code); });
    });
  });

  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => { server.off("error", reject); resolve(); });
  });
  server.on("error", () => {}); // accept errors (EMFILE...) must not end the process
  const port = (server.address() as { port: number }).port;
  const timer = startSweep(relay, clock);
  timer.unref();

  let closing: Promise<void> | null = null;
  return {
    host, port,
    url: listenUrl("ws", host, port),
    stats: () => relay.stats(),
    close: () => closing ??= (async () => {
      clearInterval(timer);
      server.close();
      // Give the close frames a moment, then cut off whoever did not answer.
      await closeClients(relay, clock, () => sockets.size);
      for (const ws of sockets) ws.terminate();
      server.closeAllConnections();
    })(),
  };
}
