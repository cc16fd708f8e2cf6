// The edge gateway on Deno: `deno serve --allow-net --allow-env=WG_CONFIG,WG_CONFIG_FILE,WG_ALLOW`
// of this file (add --allow-read=FILE with WG_CONFIG_FILE). The gateway
// (adapters/gateway) over Deno.upgradeWebSocket and Deno.connect (half-close
// kept). The configuration: the WG_CONFIG environment variable, or the file
// WG_CONFIG_FILE names.
import { wasmBytes } from "#engine-wasm";
import { createGateway } from "../gateway/gateway.ts";
import { allowList } from "../gateway/allow.ts";
import { connectTcp, upgradeWebSocket } from "../deno/sockets.ts";

function configText(): string {
  const text = Deno.env.get("WG_CONFIG");
  if (text) return text;
  const file = Deno.env.get("WG_CONFIG_FILE");
  if (file) return Deno.readTextFileSync(file);
  throw new Error("set WG_CONFIG (the wg-quick text) or WG_CONFIG_FILE (its path)");
}

const gateway = createGateway({
  config: configText(),
  wasm: new WebAssembly.Module(wasmBytes),
  upgrade: upgradeWebSocket,
  connect: connectTcp,
  allow: allowList(Deno.env.get("WG_ALLOW")),
  log: (m) => console.error(m),
});

/** The server for `deno serve`. */
const server: { fetch(request: Request): Promise<Response> } = { fetch: (request: Request) => gateway.fetch(request) };
export default server;
