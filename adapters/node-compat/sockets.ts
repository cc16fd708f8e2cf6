// The tunnel for Node's ecosystem: net.Socket-like sockets (StreamSocket)
// for client libraries that take a socket or a connector (ioredis, pg,
// mysql2), http/https Agents whose connections go through the tunnel
// (http.request, and the libraries built on it), and a connector for the
// npm undici's Agent (fetch with a dispatcher). Written against the
// two calls it needs of a tunnel (Dialer), so this shared layer does not
// depend on the tunnel application; the host entries attach it.
import * as http from "node:http";
import * as https from "node:https";
import type * as net from "node:net";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import type { TlsConn } from "../ports/tls.ts";
import { StreamSocket, type StreamConn, type StreamSocketOptions } from "./socket.ts";
import { tlsConnectOptions, tlsError } from "./tls.ts";

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
   * Takes net.createConnection's two forms: (options, onConnect) and (port, host?, onConnect?).
   * @throws RangeError for a port outside 1-65535
   * @example const s = tunnel.createConnection({ host: "10.0.0.1", port: 6379 }); s.on("connect", ...)
   */
  createConnection(options: SocketConnectOptions, onConnect?: () => void): StreamSocket;
  createConnection(port: number, host?: string, onConnect?: () => void): StreamSocket;
  createConnection(port: number, onConnect?: () => void): StreamSocket;
  /**
   * A TLSSocket (node:tls) over a tunnel connection, for libraries that take
   * a TLS stream (ioredis with `tls`, database drivers): verified against
   * the runtime's roots plus `ca`, SNI from `host` when it is a name;
   * "secureConnect" when the handshake is done.
   * @example const s = tunnel.createTlsConnection({ host: "redis.wg", port: 6380, ca });
   */
  createTlsConnection(options: SocketConnectOptions & { ca?: string | Uint8Array | (string | Uint8Array)[]; servername?: string; rejectUnauthorized?: boolean; ALPNProtocols?: string[] }): tls.TLSSocket;
  /**
   * An http.Agent whose connections go through the tunnel.
   * @example http.get("http://10.0.0.1/", { agent: tunnel.httpAgent() }, (res) => ...)
   */
  httpAgent(options?: http.AgentOptions): http.Agent;
  /** An https.Agent whose TCP connections go through the tunnel; TLS is node:tls's, verified as https.request verifies it. */
  httpsAgent(options?: https.AgentOptions): https.Agent;
  /**
   * A connector for undici's Agent (the npm package): its http: and https:
   * connections go through the tunnel, https: verified against the runtime's
   * roots plus `tls.ca`, with SNI from the host name.
   * @example const dispatcher = new Agent({ connect: tunnel.connector() }); await fetch(url, { dispatcher });
   */
  connector(tls?: { ca?: string | Uint8Array | (string | Uint8Array)[]; rejectUnauthorized?: boolean }): UndiciConnector;
}

/** The options undici passes a connector (its types/connector.d.ts), the part used here. */
export interface UndiciConnectOptions { hostname: string; protocol: string; port: string; servername?: string | null }
/**
 * undici's connector contract: call back once, with the open socket or the
 * error. Typed with net.Socket as undici's own is, so it fits Agent({ connect })
 * as it is; the socket given is a StreamSocket (or a TLSSocket over one).
 */
export type UndiciConnector = (o: UndiciConnectOptions, callback: (...args: [null, net.Socket | tls.TLSSocket] | [Error, null]) => void) => void;

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

/** An IPv4 or IPv6 literal: no SNI for it (RFC 6066 3), the certificate's IP address is checked instead. */
const IP_LITERAL = /^[\d.]+$|:/;

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
    const servername = options.servername ?? (IP_LITERAL.test(host) ? undefined : host);
    return tls.connect({ ...options, host, servername, socket: raw, ALPNProtocols: options.ALPNProtocols ?? ["http/1.1"] });
  }
}

function undiciConnector(d: Dialer, t: { ca?: string | Uint8Array | (string | Uint8Array)[]; rejectUnauthorized?: boolean } = {}): UndiciConnector {
  return (o, callback) => {
    const secure = o.protocol === "https:";
    const host = o.hostname.replace(/^\[|\]$/g, ""), port = Number(o.port) || (secure ? 443 : 80);
    let called = false;
    const once = (e: Error | null, s: Duplex | null) => {
      if (called) return;
      called = true;
      if (e) callback(e, null);
      else callback(null, s as net.Socket); // the stand-in has the parts undici uses
    };
    let raw: StreamSocket;
    try { raw = connectSocket(d, { host, port, allowHalfOpen: secure }); } catch (e) { once(e as Error, null); return; }
    // Until the callback, errors are the connector's to report; after it, the caller's listeners have them.
    if (!secure) {
      const failed = (e: Error) => once(e, null);
      raw.once("error", failed);
      raw.once("connect", () => { raw.off("error", failed); once(null, raw); });
      return;
    }
    const opts = { host, servername: o.servername || (IP_LITERAL.test(host) ? undefined : host), ca: t.ca, alpn: ["http/1.1"], rejectUnauthorized: t.rejectUnauthorized };
    const s = tls.connect(tlsConnectOptions(raw, opts));
    const failed = (e: Error) => { once(tlsError(opts, e), null); s.destroy(); };
    s.once("error", failed);
    s.once("secureConnect", () => { s.off("error", failed); once(null, s); });
  };
}

/**
 * Adds SocketMethods to a tunnel (what the host entries return).
 * @returns the same object, with createConnection, httpAgent and httpsAgent
 */
export function withSockets<T extends Dialer>(t: T): T & SocketMethods {
  const methods: SocketMethods = {
    createConnection: (a: SocketConnectOptions | number, b?: string | (() => void), c?: () => void) => {
      if (typeof a !== "number") return connectSocket(t, a, typeof b === "function" ? b : undefined);
      return typeof b === "function" ? connectSocket(t, { port: a }, b) : connectSocket(t, { port: a, host: b }, c);
    },
    createTlsConnection: (o) => {
      const raw = connectSocket(t, { host: o.host, port: o.port, allowHalfOpen: true });
      const host = o.host ?? "localhost";
      const s = tls.connect(tlsConnectOptions(raw, {
        host, servername: o.servername ?? (IP_LITERAL.test(host) ? undefined : host), ca: o.ca, alpn: o.ALPNProtocols, rejectUnauthorized: o.rejectUnauthorized,
      }));
      if (o.timeout !== undefined) s.setTimeout(o.timeout);
      return s;
    },
    httpAgent: (o) => new TunnelHttpAgent(t, o),
    httpsAgent: (o) => new TunnelHttpsAgent(t, o),
    connector: (o) => undiciConnector(t, o),
  };
  return Object.assign(t, methods);
}
