// workerd (Cloudflare's edge runtime): engine.wasm is a `wasm` module of the
// worker (workerd.capnp), so the import is the WebAssembly.Module that
// workerd compiled when it loaded the config; the worker itself may not
// compile bytes. Bundled by test/runtimes.test.ts with "./engine.wasm" left
// external.
import wasm from "./engine.wasm";
import { exchange } from "./exchange.ts";

/** The message with which the runtime refuses to compile bytes, or null if it compiles them. */
async function compileRefusal(): Promise<string | null> {
  try {
    // The smallest valid module: magic and version.
    await WebAssembly.compile(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
    return null;
  } catch (e) {
    return String(e);
  }
}

export default {
  async fetch(): Promise<Response> {
    try {
      const result = exchange(wasm, "workerd", "import (wasm module)");
      return Response.json({ ...result, compileRefusal: await compileRefusal() });
    } catch (e) {
      return new Response(e instanceof Error ? e.stack ?? e.message : String(e), { status: 500 });
    }
  },
};
