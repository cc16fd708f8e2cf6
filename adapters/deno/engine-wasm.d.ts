/** The engine's compiled WebAssembly module (build/out/engine.wasm). */
declare const wasm: WebAssembly.Module;
export default wasm;
