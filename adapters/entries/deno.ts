/**
 * wg-js on Deno (`import ... from "wg-js/deno"`): everything of the core
 * ("wg-js"), and Deno's host: openTunnel() and startRelay() on this
 * process's sockets, and denoHost() for the rest (the `wg` command's
 * capabilities: files, processes, TUN devices, unix sockets).
 *
 * @example
 * import { openTunnel } from "wg-js/deno";
 * const tunnel = await openTunnel(configText); // a wg-quick(8) config
 * const res = await tunnel.fetch("http://10.0.0.1/");
 * await tunnel.close();
 * @module
 */
import type { ServerHost } from "../ports/host.ts";
import type { WebTransportServers } from "../ports/websocket.ts";
import { denoHost } from "../deno/host.ts";
import { openTunnel as openTunnelWith, type Tunnel, type TunnelConfig, type TunnelOptions } from "../tunnel/tunnel.ts";
import { startRelay as startRelayWith, type RunningRelay, type TlsOptions } from "../relay/server.ts";
import type { ListenOptions } from "../relay/relay.ts";

export * from "./core.ts";
export { denoHost };

let shared: (ServerHost & WebTransportServers) | null = null;
const host = (): ServerHost & WebTransportServers => shared ??= denoHost();

/**
 * Opens a tunnel inside this process: a UDP port of its own, the userspace
 * TCP/IP stack as its inside (no TUN device, no root).
 * @param config a wg-quick(8) config's text, or a TunnelConfig
 * @throws ConfigError (text) or RangeError (object) for a bad configuration; the system's error when the port cannot be bound
 */
export function openTunnel(config: string | TunnelConfig, options?: TunnelOptions): Promise<Tunnel> {
  return openTunnelWith(host(), config, options);
}

/**
 * Starts the WebSocket relay (see "wg-js/relay") on this process's sockets.
 * @throws RelayConfigError for a bad option; the system's error when the port cannot be bound
 */
export function startRelay(options: ListenOptions & TlsOptions): Promise<RunningRelay> {
  return startRelayWith(host(), options);
}
