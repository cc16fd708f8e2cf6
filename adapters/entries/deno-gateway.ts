/**
 * The edge gateway on Deno (`deno serve` of this module, or
 * `import gateway from "wg-js/deno-gateway"`): the gateway (see
 * adapters/gateway) over Deno.upgradeWebSocket and Deno.connect
 * (half-close kept). Its configuration is the WG_CONFIG environment
 * variable, or the file WG_CONFIG_FILE names; its connections reach public
 * destinations, and what WG_ALLOW names (allowList). They are read on the first request, so importing this
 * module does nothing.
 *
 *   deno serve --host 127.0.0.1 --allow-net --allow-env=WG_CONFIG,WG_CONFIG_FILE,WG_ALLOW [--allow-read=FILE] deno-gateway.js
 * @module
 */
import { wasmBytes } from "#engine-wasm";
import { createGateway, type GatewayOptions } from "../gateway/gateway.ts";
import { AllowListError, allowList } from "../gateway/allow.ts";
import { connectTcp, resolveName, upgradeWebSocket } from "../deno/sockets.ts";

export { createGateway, type GatewayOptions, type GatewayStatus } from "../gateway/gateway.ts";
export { AllowListError, allowList, isLocalDestination, type AllowList } from "../gateway/allow.ts";
export { connectTcp, resolveName, upgradeWebSocket } from "../deno/sockets.ts";

function configText(): string {
  const text = Deno.env.get("WG_CONFIG");
  if (text) return text;
  const file = Deno.env.get("WG_CONFIG_FILE");
  if (file) return Deno.readTextFileSync(file);
  throw new Error("set WG_CONFIG (the wg-quick text) or WG_CONFIG_FILE (its path)");
}

/** A gateway on Deno's sockets; `options` as createGateway takes them, without the platform's parts. */
export function createDenoGateway(options: Omit<GatewayOptions, "wasm" | "upgrade" | "connect"> & Partial<Pick<GatewayOptions, "wasm" | "resolve">>): ReturnType<typeof createGateway> {
  return createGateway({ wasm: new WebAssembly.Module(wasmBytes), upgrade: upgradeWebSocket, connect: connectTcp, resolve: resolveName, ...options });
}

let gateway: ReturnType<typeof createGateway> | null = null;

/** The server for `deno serve`: the gateway of WG_CONFIG (or WG_CONFIG_FILE) and WG_ALLOW, made on the first request. */
const server: { fetch(request: Request): Promise<Response> } = {
  fetch(request: Request): Promise<Response> {
    if (gateway === null) {
      try {
        gateway = createDenoGateway({ config: configText(), allow: allowList(Deno.env.get("WG_ALLOW")), log: (m) => console.error(m) });
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        return Promise.resolve(new Response(`${e instanceof AllowListError ? why : `WG_CONFIG: ${why}`}\n`, { status: 500 }));
      }
    }
    return gateway.fetch(request);
  },
};
export default server;
