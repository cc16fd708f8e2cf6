// The tunnel for Node's ecosystem: net.Socket-like sockets (StreamSocket)
// for client libraries that take a socket or a connector (ioredis, pg,
// mysql2, undici), and http/https Agents whose connections go through the
// tunnel (http.request, and the libraries built on it). Written against the
// two calls it needs of a tunnel (Dialer), so this shared layer does not
// depend on the tunnel application; the host entries attach it.
import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import type { TlsConn } from "../ports/tls.ts";
import { StreamSocket, type StreamConn, type StreamSocketOptions } from "./socket.ts";

/** What the sockets need of a tunnel (Tunnel has both). */
export interface Dialer {
  connect(host: string, port: number): Promise<StreamConn>;
  connectTls(host: string, port: number, opts?: { ca?: string | Uint8Array | (string | Uint8Array)[]; servername?: string; alpn?: string[]; rejectUnauthorized?: boolean }): Promise<TlsConn>;
}

/** net.connect's options, the part that applies here. */
export interface SocketConnectOptions {
  host?: string;
  port: number;
  allowHalfOpen?: boolean;
  /** As net.Socket's setTimeout: "timeout" after this many idle ms. */
  timeout?: number;
}

/** What the node, deno and bun entries add to a Tunnel. */
export interface SocketMethods {
  /**
   * A net.Socket-like Duplex connecting to host:port through the tunnel
   * ("connect" when it is open, "error" with a NetError otherwise).
   * @example const s = tunnel.createConnection({ host: "10.0.0.1", port: 6379 }); s.on("connect", ...)
   */
  createConnection(options: SocketConnectOptions, onConnect?: () => void): StreamSocket;
  /**
   * An http.Agent whose connections go through the tunnel.
   * @example http.get("http://10.0.0.1/", { agent: tunnel.httpAgent() }, (res) => ...)
   */
  httpAgent(options?: http.AgentOptions): http.Agent;
  /** An https.Agent whose TCP connections go through the tunnel; TLS is node:tls's, verified as https.request verifies it. */
  httpsAgent(options?: https.AgentOptions): https.Agent;
}

/** The socket of createConnection, validated as net.connect validates its options. */
export function connectSocket(d: Dialer, o: SocketConnectOptions, onConnect?: () => void): StreamSocket {
  const port = Number(o?.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`the port must be 1-65535, not ${o?.port}`);
  const host = o.host ?? "localhost";
  const opts: StreamSocketOptions = { host, port, allowHalfOpen: o.allowHalfOpen };
  const s = new StreamSocket(d.connect(host, port), opts);
  if (o.timeout !== undefined) s.setTimeout(o.timeout);
  if (onConnect) s.once("connect", onConnect);
  return s;
}

type Callback = (err: Error | null, stream: Duplex) => void;

/** http.Agent over the tunnel. */
class TunnelHttpAgent extends http.Agent {
  constructor(private readonly dialer: Dialer, options?: http.AgentOptions) { super(options); }
  // The options as ClientRequest passes them: host (or hostname) and port, among others.
  override createConnection(options: { host?: string; hostname?: string; port?: number | string }, _cb?: Callback): StreamSocket {
    return connectSocket(this.dialer, { host: options.hostname ?? options.host ?? "localhost", port: Number(options.port ?? 80) });
  }
}

/** https.Agent over the tunnel: the TCP connection is the tunnel's, TLS is node:tls's over it. */
class TunnelHttpsAgent extends https.Agent {
  constructor(private readonly dialer: Dialer, options?: https.AgentOptions) { super(options); }
  override createConnection(options: tls.ConnectionOptions & { hostname?: string }, _cb?: Callback): tls.TLSSocket {
    const host = options.hostname ?? options.host ?? "localhost", port = Number(options.port ?? 443);
    const raw = connectSocket(this.dialer, { host, port, allowHalfOpen: true });
    const servername = options.servername ?? (/^[\d.]+$|:/.test(host) ? undefined : host);
    return tls.connect({ ...options, host, servername, socket: raw, ALPNProtocols: options.ALPNProtocols ?? ["http/1.1"] });
  }
}

/**
 * Adds SocketMethods to a tunnel (what the host entries return).
 * @returns the same object, with createConnection, httpAgent and httpsAgent
 */
export function withSockets<T extends Dialer>(t: T): T & SocketMethods {
  const methods: SocketMethods = {
    createConnection: (o, onConnect) => connectSocket(t, o, onConnect),
    httpAgent: (o) => new TunnelHttpAgent(t, o),
    httpsAgent: (o) => new TunnelHttpsAgent(t, o),
  };
  return Object.assign(t, methods);
}
