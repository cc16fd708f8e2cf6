// Bun: a .wasm import is a file path here (Bun's file loader), so the module
// is compiled from the file's bytes at run time, which Bun allows.
// JavaScript, not TypeScript: the project's tsc has no Bun types.
import path from "../../../build/out/engine.wasm" with { type: "file" };
import { exchange } from "./exchange.ts";

const wasm = await WebAssembly.compileStreaming(new Response(Bun.file(path), { headers: { "content-type": "application/wasm" } }));
console.log("RESULT " + JSON.stringify(exchange(wasm, `bun ${Bun.version}`, "compileStreaming(Bun.file)")));
