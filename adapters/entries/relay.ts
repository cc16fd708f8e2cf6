/**
 * The WebSocket relay (`import ... from "wg-js/relay"`): browsers cannot
 * send UDP, so a page's tunnel speaks WebSocket to the relay and the relay
 * speaks UDP to a WireGuard server. Written over a host's WebSocket servers
 * and UDP sockets; "wg-js/node", "wg-js/deno" and "wg-js/bun" each export
 * a startRelay already bound to their host.
 *
 * @example
 * import { startRelay } from "wg-js/relay";
 * const relay = await startRelay(host, { allow: ["192.0.2.1:51820"], port: 8080 });
 * @module
 */
export { startRelay, listenUrl, type RelayHost, type RunningRelay, type TlsOptions } from "../relay/server.ts";
export {
  Relay, Session, AllowList, RelayConfigError, tokenMatches, splitHostPort, DEFAULTS, CLOSE,
  type RelayOptions, type ListenOptions, type RelayServer, type RelayStats, type RefuseReason, type DropReason, type CloseReason,
} from "../relay/relay.ts";
export type { WebTransportStats } from "../relay/webtransport.ts";
export { parseRelayArgs, RELAY_USAGE } from "../relay/cli.ts";
