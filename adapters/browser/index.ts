// The browser's entry: a WireGuard tunnel in a page, through a relay
// (adapters/relay) to any WireGuard server, or to an edge gateway
// (adapters/edge). build/build.mjs bundles it, the WASM included, as
// build/out/browser/wg.js.
//
//   import { connect } from "./wg.js";
//   const t = await connect(configText, { relay: "wss://relay.example/" });
//   const page = await (await t.fetch("http://10.0.0.1/")).text();
//   console.log(t.status().peers[0].lastHandshake);
//   await t.close();
import { wasmBytes } from "../../build/out/engine.wasm.js";
import { nobleX25519 } from "../../src/x25519.ts";
import { openTunnel, Tunnel, type TunnelConfig, type TunnelOptions } from "../common/tunnel.ts";
import { GATEWAY, WebSocketBind, type WebSocketBindOptions } from "./websocket-bind.ts";

export { Tunnel, type TunnelConfig, type TunnelStatus } from "../common/tunnel.ts";
export { NetError } from "../../src/netstack/index.ts";
export { ConfigError } from "../../src/wgquick.ts";
export { WebSocketBind, type RelayEvent, type RelayCounters } from "./websocket-bind.ts";

export interface ConnectOptions extends WebSocketBindOptions, TunnelOptions {
  /**
   * The relay's URL (ws:, wss:, http:, https:). Each peer's Endpoint is
   * asked of the relay as `?to=host:port`; a peer without one is the
   * URL itself (an edge gateway).
   */
  relay: string | URL;
  /** A compiled engine.wasm, for pages whose CSP forbids compiling bytes. */
  wasm?: WebAssembly.Module;
}

let compiled: Promise<WebAssembly.Module> | null = null;

/**
 * Opens a tunnel from a wg-quick(8) config's text (or a TunnelConfig) over a
 * relay. Resolves once the engine runs; the handshake follows the first
 * packet, as in WireGuard.
 * @throws ConfigError for a bad config (one line naming the line), TypeError for a bad relay URL
 */
export async function connect(config: string | TunnelConfig, opts: ConnectOptions): Promise<Tunnel> {
  if (!opts || opts.relay === undefined) throw new TypeError("connect needs a relay URL: connect(config, { relay: 'wss://...' })");
  const bind = new WebSocketBind(opts.relay, opts);
  const start = performance.now();
  try {
    return await openTunnel({
      wasm: opts.wasm ?? (() => (compiled ??= WebAssembly.compile(wasmBytes))),
      x25519: nobleX25519,
      clock: { now: () => performance.now() - start },
      epoch: Date.now(),
      openBind: async () => bind,
      // The relay resolves names; the page passes them on as written.
      endpoint: (host, port) => ({ address: host, port }),
      defaultEndpoint: GATEWAY,
    }, config, opts);
  } catch (e) {
    bind.close();
    throw e;
  }
}
