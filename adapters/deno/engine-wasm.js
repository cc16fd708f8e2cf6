// @ts-self-types="./engine-wasm.d.ts"
// engine.wasm as a source-phase import: Deno hands over the compiled
// WebAssembly.Module itself, with no read permission and no bytes to compile
// (a plain import would instantiate it). JavaScript, not TypeScript: tsc 5.9
// does not parse `import source`.
import source wasm from "../../build/out/engine.wasm";

export default wasm;
