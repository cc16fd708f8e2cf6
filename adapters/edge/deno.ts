// The gateway on Deno: `deno serve --allow-net --allow-env=WG_CONFIG,WG_CONFIG_FILE,WG_ALLOW deno.ts`
// (add --allow-read=FILE with WG_CONFIG_FILE). Deno.upgradeWebSocket for
// the upgrade, Deno.connect for the outbound TCP (half-close kept), and
// engine.wasm as a source-phase import (the compiled WebAssembly.Module,
// no bytes compiled at run time). The configuration: the WG_CONFIG
// environment variable, or the file WG_CONFIG_FILE names.
import wasm from "../deno/engine-wasm.js";
import { createGateway, type GatewaySocket, type OutboundSocket } from "./gateway.ts";
import { allowList } from "./allow.ts";

/** Bytes one read of an outbound connection takes at most. */
const READ_CHUNK = 64 * 1024;

function configText(): string {
  const text = Deno.env.get("WG_CONFIG");
  if (text) return text;
  const file = Deno.env.get("WG_CONFIG_FILE");
  if (file) return Deno.readTextFileSync(file);
  throw new Error("set WG_CONFIG (the wg-quick text) or WG_CONFIG_FILE (its path)");
}

/**
 * A Deno TCP connection as the gateway's OutboundSocket: a pulled readable
 * (backpressure reaches the socket) and a writable whose close is
 * closeWrite (FIN), not close; the connection closes once both are done.
 */
function outbound(c: Deno.TcpConn): OutboundSocket {
  try { c.setNoDelay(true); } catch { /* closed already */ }
  let closed = false, readDone = false, writeDone = false;
  const close = () => { if (!closed) { closed = true; try { c.close(); } catch { /* closed already */ } } };
  const done = (side: "r" | "w") => {
    if (side === "r") readDone = true; else writeDone = true;
    if (readDone && writeDone) close();
  };
  const readable = new ReadableStream<Uint8Array>({
    pull: async (ctl) => {
      const buf = new Uint8Array(READ_CHUNK);
      let n: number | null;
      try {
        n = await c.read(buf);
      } catch (e) {
        done("r");
        throw e;
      }
      if (n === null) { ctl.close(); done("r"); return; }
      ctl.enqueue(buf.subarray(0, n));
    },
    cancel: () => done("r"),
  }, { highWaterMark: 0 });
  const writable = new WritableStream<Uint8Array>({
    write: async (chunk) => {
      let off = 0;
      while (off < chunk.length) off += await c.write(chunk.subarray(off));
    },
    close: async () => {
      try { await c.closeWrite(); } catch { /* closed already */ }
      done("w");
    },
    abort: close,
  }, { highWaterMark: 1 });
  return { readable, writable, close };
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
