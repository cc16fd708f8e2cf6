// Deno: engine.wasm as a source-phase import, which yields the compiled
// WebAssembly.Module itself (a plain `import * as` would instantiate it).
// JavaScript, not TypeScript: tsc 5.9 does not parse `import source`.
import source wasm from "../../../build/out/engine.wasm";
import { exchange } from "./exchange.ts";

console.log("RESULT " + JSON.stringify(exchange(wasm, `deno ${Deno.version.deno}`, "import source")));
