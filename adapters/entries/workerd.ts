// The gateway on workerd (Cloudflare Workers, or workerd run locally):
// WebSocketPair for the upgrade, connect() of "cloudflare:sockets" for the
// outbound TCP, engine.wasm as a `wasm` module of the worker (workerd
// refuses to compile WebAssembly from bytes), the configuration from the
// WG_CONFIG binding (a secret on Cloudflare; fromEnvironment or text in a
// capnp config, see workerd.capnp). Built to build/out/edge/workerd/ by
// build/edge.mjs.
import wasm from "../edge/engine.wasm";
import { connect } from "cloudflare:sockets";
import { createGateway, type GatewaySocket, type OutboundSocket } from "../gateway/gateway.ts";
import { allowList } from "../gateway/allow.ts";

interface Env {
  /** The gateway's wg-quick configuration. */
  WG_CONFIG?: string;
  /** Optional: "host:port" patterns the gateway may reach, comma-separated ("*" for any part); default all. */
  WG_ALLOW?: string;
}

let gateway: ReturnType<typeof createGateway> | null = null;
let made = "";

function upgrade(_request: Request): { socket: GatewaySocket; response: Response } {
  const pair = new WebSocketPair();
  const [client, server] = Object.values(pair);
  server.accept();
  return { socket: server as unknown as GatewaySocket, response: new Response(null, { status: 101, webSocket: client }) };
}

async function open(host: string, port: number): Promise<OutboundSocket> {
  const s = connect({ hostname: host.includes(":") ? `[${host}]` : host, port }, { allowHalfOpen: true });
  try {
    await s.opened;
  } catch (e) {
    try { await s.close(); } catch { /* never opened */ }
    throw e;
  }
  return { readable: s.readable, writable: s.writable, close: () => s.close() };
}

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    const config = env.WG_CONFIG ?? "";
    if (gateway === null || made !== config + "\0" + (env.WG_ALLOW ?? "")) {
      if (config === "") return Promise.resolve(new Response("WG_CONFIG is not set\n", { status: 500 }));
      try {
        gateway = createGateway({ config, wasm, upgrade, connect: open, allow: allowList(env.WG_ALLOW), log: (m) => console.log(m) });
      } catch (e) {
        return Promise.resolve(new Response(`WG_CONFIG: ${e instanceof Error ? e.message : String(e)}\n`, { status: 500 }));
      }
      made = config + "\0" + (env.WG_ALLOW ?? "");
    }
    return gateway.fetch(request);
  },
};
