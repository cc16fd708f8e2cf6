/**
 * wg-js on Deno (`import ... from "wg-js/deno"`): everything of the core
 * ("wg-js"), and Deno's host: openTunnel() and startRelay() on this
 * process's sockets, and denoHost() for the rest (the `wg` command's
 * capabilities: files, processes, TUN devices, unix sockets).
 *
 * @example
 * import { openTunnel } from "wg-js/deno";
 * const tunnel = await openTunnel(configText); // a wg-quick(8) config
 * const res = await tunnel.fetch("https://10.0.0.1/");
 * http.get("http://10.0.0.1/", { agent: tunnel.httpAgent() }, (r) => r.pipe(process.stdout));
 * await tunnel.close();
 * @module
 */
import type { ServerHost } from "../ports/host.ts";
import type { WebTransportServers } from "../ports/websocket.ts";
import { denoHost } from "../deno/host.ts";
import { openTunnel as openTunnelWith, type Tunnel, type TunnelConfig, type TunnelOptions } from "../tunnel/tunnel.ts";
import { nodeTls } from "../node-compat/tls.ts";
import { withSockets, type SocketMethods } from "../node-compat/sockets.ts";
import { startRelay as startRelayWith, type RunningRelay, type TlsOptions } from "../relay/server.ts";
import type { ListenOptions } from "../relay/relay.ts";

export * from "./core.ts";
export { denoHost, nodeTls, withSockets };
export { StreamSocket, type StreamConn, type StreamSocketOptions } from "../node-compat/socket.ts";
export type { SocketMethods, SocketConnectOptions, Dialer, UndiciConnector, UndiciConnectOptions } from "../node-compat/sockets.ts";
export type { TlsConnector, TlsConn, TlsClientOptions } from "../ports/tls.ts";

/** A tunnel with sockets for this runtime's node: ecosystem (net.Socket-like, http/https Agents). */
export type SocketTunnel = Tunnel & SocketMethods;

let shared: (ServerHost & WebTransportServers) | null = null;
const host = (): ServerHost & WebTransportServers => shared ??= denoHost();

/**
 * Opens a tunnel inside this process: a UDP port of its own, the userspace
 * TCP/IP stack as its inside (no TUN device, no root), TLS by node:tls
 * (connectTls, https: fetch), and sockets for node: libraries
 * (createConnection, httpAgent, httpsAgent).
 * @param config a wg-quick(8) config's text, or a TunnelConfig
 * @throws ConfigError (text) or RangeError (object) for a bad configuration; the system's error when the port cannot be bound
 */
export async function openTunnel(config: string | TunnelConfig, options?: TunnelOptions): Promise<SocketTunnel> {
  return withSockets(await openTunnelWith({ ...host(), tls: nodeTls }, config, options));
}

/**
 * Starts the WebSocket relay (see "wg-js/relay") on this process's sockets.
 * @throws RelayConfigError for a bad option; the system's error when the port cannot be bound
 */
export function startRelay(options: ListenOptions & TlsOptions): Promise<RunningRelay> {
  return startRelayWith(host(), options);
}
