// What a bundler or edge runtime gives for `import m from "./engine.wasm"`.
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
