// The gateway on Deno: `deno serve --allow-net --allow-env=WG_CONFIG,WG_CONFIG_FILE,WG_ALLOW deno.ts`
// (add --allow-read=FILE with WG_CONFIG_FILE). Deno.upgradeWebSocket for
// the upgrade, Deno.connect for the outbound TCP (half-close kept), and
// engine.wasm as a source-phase import (the compiled WebAssembly.Module,
// no bytes compiled at run time). The configuration: the WG_CONFIG
// environment variable, or the file WG_CONFIG_FILE names.
import wasm from "../deno/engine-wasm.js";
import { createGateway, type GatewaySocket, type OutboundSocket } from "../gateway/gateway.ts";
import { allowList } from "../gateway/allow.ts";
import { tcpStreams } from "../deno/tcp-streams.ts";

function configText(): string {
  const text = Deno.env.get("WG_CONFIG");
  if (text) return text;
  const file = Deno.env.get("WG_CONFIG_FILE");
  if (file) return Deno.readTextFileSync(file);
  throw new Error("set WG_CONFIG (the wg-quick text) or WG_CONFIG_FILE (its path)");
}

/** A Deno TCP connection as the gateway's OutboundSocket: half-close kept (adapters/deno/tcp-streams.ts). */
function outbound(c: Deno.TcpConn): OutboundSocket {
  return tcpStreams(c);
}

const gateway = createGateway({
  config: configText(),
  wasm,
  upgrade: (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    return { socket: socket as unknown as GatewaySocket, response };
  },
  connect: async (host, port) => outbound(await Deno.connect({ transport: "tcp", hostname: host, port })),
  allow: allowList(Deno.env.get("WG_ALLOW")),
  log: (m) => console.error(m),
});

export default { fetch: (request: Request) => gateway.fetch(request) };
