// What the relay binds (websocket-bind.ts, adapters/browser/webtransport-bind.ts)
// share: how a peer's endpoint names its channel to the relay.
import type { Endpoint } from "../../src/engine.ts";

/** The Endpoint of a peer reached through the URL itself (no `to`): an edge gateway. */
export const GATEWAY: Endpoint = Object.freeze({ address: "gateway", port: 0 });

/** "host:port", "[v6]:port", or "gateway": the channel's key, and what `to=` asks the relay for. */
export function keyOf(to: Endpoint): string {
  if (to.address === GATEWAY.address && to.port === GATEWAY.port) return "gateway";
  return to.address.includes(":") ? `[${to.address}]:${to.port}` : `${to.address}:${to.port}`;
}

/** The URL of one endpoint's channel: the relay's, with `to` (not for the gateway) and `token`. */
export function channelUrl(base: URL, key: string, token: string | undefined): string {
  const url = new URL(base);
  if (key !== "gateway") url.searchParams.set("to", key);
  if (token !== undefined) url.searchParams.set("token", token);
  return url.toString();
}
