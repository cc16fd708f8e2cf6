// The edge gateway on workerd (Cloudflare Workers, or workerd run locally):
// the gateway (adapters/gateway) over workerd's sockets (adapters/workerd),
// engine.wasm as a `wasm` module of the worker (workerd refuses to compile
// WebAssembly from bytes), the configuration from the WG_CONFIG binding (a
// secret on Cloudflare; fromEnvironment or text in a capnp config, see
// adapters/workerd/gateway.capnp). Built to build/out/edge/workerd/ by
// build/edge.mjs; `import gateway from "wg-js/workerd"` in a worker of your own.
import wasm from "#engine-wasm-module";
import { createGateway } from "../gateway/gateway.ts";
import { allowList } from "../gateway/allow.ts";
import { connectTcp, upgradeWebSocket } from "../workerd/sockets.ts";

export { createGateway, type GatewayOptions, type GatewayStatus } from "../gateway/gateway.ts";
export { allowList } from "../gateway/allow.ts";
export { connectTcp, upgradeWebSocket } from "../workerd/sockets.ts";

/** The worker's bindings. */
export interface Env {
  /** The gateway's wg-quick configuration. */
  WG_CONFIG?: string;
  /** Optional: "host:port" patterns the gateway may reach, comma-separated ("*" for any part); default all. */
  WG_ALLOW?: string;
}

let gateway: ReturnType<typeof createGateway> | null = null;
let made = "";

/** The worker: a fetch handler made from WG_CONFIG (and WG_ALLOW) on the first request, and again when they change. */
const worker: { fetch(request: Request, env: Env): Promise<Response> } = {
  fetch(request: Request, env: Env): Promise<Response> {
    const config = env.WG_CONFIG ?? "";
    if (gateway === null || made !== config + "\0" + (env.WG_ALLOW ?? "")) {
      if (config === "") return Promise.resolve(new Response("WG_CONFIG is not set\n", { status: 500 }));
      try {
        gateway = createGateway({ config, wasm, upgrade: upgradeWebSocket, connect: connectTcp, allow: allowList(env.WG_ALLOW), log: (m) => console.log(m) });
      } catch (e) {
        return Promise.resolve(new Response(`WG_CONFIG: ${e instanceof Error ? e.message : String(e)}\n`, { status: 500 }));
      }
      made = config + "\0" + (env.WG_ALLOW ?? "");
    }
    return gateway.fetch(request);
  },
};
export default worker;
