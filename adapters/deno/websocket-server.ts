// The WebSocket relay on Deno: Deno.serve and Deno.upgradeWebSocket for the
// clients, Deno.listenDatagram (unstable "net", which deno.json turns on)
// for each client's UDP socket. Needs --allow-net. No node: imports.
import { listenDatagram } from "./datagram.ts";
import { AllowList, Relay, RelayConfigError, type ListenOptions, type OpenUdp, type RelayServer } from "../relay/relay.ts";
import { closeClients, listenUrl, startSweep } from "../relay/glue.ts";
import { listenWebTransport, type TlsOptions, type WebTransportListener, type WebTransportStats } from "./webtransport-server.ts";


const clock = () => performance.now();

/** A name's A and AAAA records ("localhost" is not in the DNS: it is the loopback). */
async function resolveName(name: string): Promise<string[]> {
  if (name.toLowerCase().replace(/\.$/, "") === "localhost") return ["127.0.0.1", "::1"];
  const a = await Deno.resolveDns(name, "A").catch(() => [] as string[]);
  const aaaa = await Deno.resolveDns(name, "AAAA").catch(() => [] as string[]);
  return [...a, ...aaaa];
}

const openUdp: OpenUdp = (family, receive) => {
  try {
    const s = listenDatagram(family === 4 ? "0.0.0.0" : "::", 0, receive);
    return Promise.resolve({ port: s.port, send: (data, hostname, port) => { s.send(data, hostname, port); }, close: s.close });
  } catch (e) {
    return Promise.reject(e);
  }
};

/**
 * Starts a relay on Deno.
 * @throws RelayConfigError for a bad option; the system's error when the port cannot be bound
 */
export async function startRelay(options: ListenOptions & TlsOptions): Promise<RelayServer & { webtransport(): WebTransportStats | null }> {
  // With a certificate: wss: on TCP and WebTransport on UDP, the same port number.
  if ((options.cert === undefined) !== (options.key === undefined)) throw new RelayConfigError("a certificate needs its key (--cert and --key)");
  const tls = options.cert !== undefined && options.key !== undefined ? { cert: options.cert, key: options.key } : null;
  const relay = new Relay(await AllowList.from(options.allow, resolveName), options);
  const sockets = new Set<WebSocket>();
  const host = options.host ?? "127.0.0.1";
  const refuse = (status: number, message: string) =>
    new Response(`${message}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", connection: "close" } });

  const server = Deno.serve({ ...tls, hostname: host, port: options.port ?? 0, onListen: () => {}, onError: () => new Response("internal error\n", { status: 500 }) }, (req, info) => {
    const a = (info.remoteAddr as Deno.NetAddr);
    const remote = a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
    const websocket = req.method === "GET" && /(^|,)\s*websocket\s*(,|$)/i.test(req.headers.get("upgrade") ?? "");
    const v = relay.admit({ url: req.url, websocket, origin: req.headers.get("origin"), remote });
    if (!v.ok) return refuse(v.status, v.message);
    let up: { socket: WebSocket; response: Response };
    try {
      up = Deno.upgradeWebSocket(req, { idleTimeout: 0 }); // idleness is the relay's own rule
    } catch {
      return refuse(400, "invalid WebSocket handshake");
    }
    const ws = up.socket;
    ws.binaryType = "arraybuffer";
    const s = relay.start(v, {
      send: (d) => ws.send(d),
      close: (code, reason) => ws.close(code, reason),
      buffered: () => ws.bufferedAmount,
    }, remote, clock(), openUdp, clock);
    if (s === null) return up.response;
    sockets.add(ws);
    ws.onmessage = (e) => {
      const d = e.data;
      if (typeof d === "string") s.message(d, clock());
      else if (d instanceof ArrayBuffer) s.message(new Uint8Array(d), clock());
      else s.message("", clock()); // a Blob cannot happen with binaryType "arraybuffer"
    };
    ws.onerror = () => { /* the close event follows */ };
    ws.onclose = (e) => { sockets.delete(ws); s.closed("client", e.code); };
    return up.response;
  });
  const port = (server.addr as Deno.NetAddr).port;
  let wt: WebTransportListener | null = null;
  try {
    if (tls) wt = listenWebTransport(relay, { host, port, ...tls }, openUdp, clock);
  } catch (e) {
    await server.shutdown();
    throw e;
  }
  const timer = startSweep(relay, clock);
  Deno.unrefTimer(timer);

  let closing: Promise<void> | null = null;
  return {
    host, port,
    url: listenUrl(tls ? "wss" : "ws", host, port),
    stats: () => relay.stats(),
    webtransport: () => wt?.stats() ?? null,
    close: () => closing ??= (async () => {
      clearInterval(timer);
      // Give the close frames a moment, then cut off whoever did not answer.
      await closeClients(relay, clock, () => sockets.size);
      wt?.close();
      // Connections that never answered do not hold shutdown up for long.
      await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 1000))]);
    })(),
  };
}
