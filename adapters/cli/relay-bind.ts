// `wg up --relay URL` (and with --netstack): the WireGuard port is a
// WebSocket to `wg relay` (or an edge gateway's relay) instead of UDP, for
// networks that drop UDP. The bind is the page's (ports/websocket-bind.ts):
// one WebSocket per peer endpoint, the batch framing where the relay speaks
// it, reopened a second after it closes (a relay restarting looks to the
// peer like a client that roamed, which WireGuard handles). Peers' Endpoint
// names are the relay's to resolve, as its network is the one that reaches
// them. The token, if the relay wants one, comes from WG_RELAY_TOKEN, never
// from the command line (which every user of the machine can read).
import { parseAddress, parsePrefix, prefixContains } from "../../src/ip.ts";
import type { Endpoint } from "../../src/engine.ts";
import type { Bind } from "../ports/bind.ts";
import type { Host } from "../ports/host.ts";
import { UserError } from "../ports/errors.ts";
import { WebSocketBind } from "../ports/websocket-bind.ts";

/** The environment variable a relay token is read from. */
export const RELAY_TOKEN_ENV = "WG_RELAY_TOKEN";

/** A ws: or wss: URL, checked; throws a one-line message otherwise. */
export function parseRelayUrl(s: string): URL {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new UserError(`invalid --relay '${s}': expected a ws:// or wss:// URL`);
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new UserError(`invalid --relay '${s}': expected a ws:// or wss:// URL, not ${u.protocol}`);
  return u;
}

/**
 * Refuses a TUN setup whose routes would carry the relay's own connection
 * into the tunnel (AllowedIPs = 0.0.0.0/0 with a relay on the internet):
 * one line naming the prefix, instead of a tunnel that never comes up.
 */
export async function checkRelayRoute(rt: Host, relay: URL, peers: { allowedIps: string[]; line: number }[], path: string): Promise<void> {
  const host = relay.hostname.replace(/^\[|\]$/g, "");
  let address: Uint8Array;
  try {
    address = parseAddress((await rt.resolve(host, 0)).address);
  } catch {
    throw new UserError(`cannot resolve the relay's host '${host}'`);
  }
  for (const p of peers) {
    for (const a of p.allowedIps) {
      if (prefixContains(parsePrefix(a), address)) {
        throw new UserError(`${path}: line ${p.line}: AllowedIPs ${a} holds the relay's address ${host}: its WebSocket would be routed into the tunnel (route the relay outside, or narrow AllowedIPs)`);
      }
    }
  }
}

/** A peer's Endpoint as the relay is asked for it: the host as written (a name is the relay's to resolve). */
export function relayEndpoint(host: string, port: number): Endpoint {
  return { address: host.replace(/^\[|\]$/g, ""), port };
}

/** Opens the relay bind; `note` gets one line as each endpoint's WebSocket opens or closes. */
export async function openRelayBind(rt: Host, relay: URL, note: (line: string) => void): Promise<Bind> {
  if (!rt.webSocketClient) throw new UserError("this host has no WebSocket client for --relay");
  const WebSocket = await rt.webSocketClient();
  return new WebSocketBind(relay, {
    WebSocket, token: rt.env(RELAY_TOKEN_ENV),
    onevent: (e) => note(e.type === "open"
      ? `relay: ${e.endpoint} open${e.framing ? ` (${e.framing} framing)` : ""}`
      : `relay: ${e.endpoint} closed (${e.code}${e.reason ? ` ${e.reason}` : ""}); trying again`),
  });
}
