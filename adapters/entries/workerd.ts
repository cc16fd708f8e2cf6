/**
 * The edge gateway on workerd (Cloudflare Workers, or workerd run locally;
 * `import ... from "wg-js/workerd"`): the gateway (adapters/gateway) over
 * workerd's sockets (adapters/workerd). workerd compiles no WebAssembly from
 * bytes, so the worker imports engine.wasm as a module and hands it over:
 *
 * @example
 * import wasm from "wg-js/engine.wasm";   // a CompiledWasm module (wrangler's default rule for .wasm)
 * import { gatewayWorker } from "wg-js/workerd";
 * export default gatewayWorker(wasm);     // WG_CONFIG (a secret) and WG_ALLOW come from the environment
 * @module
 */
import { createGateway } from "../gateway/gateway.ts";
import { AllowListError, allowList } from "../gateway/allow.ts";
import { connectTcp, upgradeWebSocket } from "../workerd/sockets.ts";

export { createGateway, type GatewayOptions, type GatewayStatus, type GatewayTunnelConfig } from "../gateway/gateway.ts";
export { AllowListError, allowList, isLocalDestination, type AllowList } from "../gateway/allow.ts";
export { connectTcp, upgradeWebSocket } from "../workerd/sockets.ts";

/** The worker's bindings. */
export interface Env {
  /** The gateway's wg-quick configuration. */
  WG_CONFIG?: string;
  /** Optional: where the gateway may reach beyond public destinations (see allowList); default public ones only. */
  WG_ALLOW?: string;
}

/**
 * A worker (its default export) whose gateway is made from WG_CONFIG (and
 * WG_ALLOW) on the first request, and again when they change.
 * @param wasm engine.wasm, imported by the worker as a module
 */
export function gatewayWorker(wasm: WebAssembly.Module): { fetch(request: Request, env: Env): Promise<Response> } {
  let gateway: ReturnType<typeof createGateway> | null = null;
  let made = "";
  return {
    fetch(request: Request, env: Env): Promise<Response> {
      const config = env.WG_CONFIG ?? "";
      if (gateway === null || made !== config + "\0" + (env.WG_ALLOW ?? "")) {
        if (config === "") return Promise.resolve(new Response("WG_CONFIG is not set\n", { status: 500 }));
        try {
          gateway = createGateway({ config, wasm, upgrade: upgradeWebSocket, connect: connectTcp, allow: allowList(env.WG_ALLOW), log: (m) => console.log(m) });
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          return Promise.resolve(new Response(`${e instanceof AllowListError ? why : `WG_CONFIG: ${why}`}\n`, { status: 500 }));
        }
        made = config + "\0" + (env.WG_ALLOW ?? "");
      }
      return gateway.fetch(request);
    },
  };
}
