// Module hooks for Node (registered by node-register.mjs) that make FFI
// loading fail, as on a host without it: WG_NO_FFI=no-koffi resolves
// "koffi" to nothing (the package is not installed); WG_NO_FFI=no-libc gives
// a koffi whose load() fails as it does where there is no glibc;
// WG_NO_FFI=no-ws leaves the relay's optional `ws` uninstalled.
const STUB = `export default {
  load(name) { throw new Error(name + ": cannot open shared object file: No such file or directory"); },
  errno() { return 0; },
};`;

export async function resolve(specifier, context, next) {
  if (process.env.WG_NO_FFI === "no-ws" && (specifier === "ws" || specifier.startsWith("ws/"))) {
    const e = new Error(`Cannot find package 'ws' imported from ${context.parentURL}`);
    e.code = "ERR_MODULE_NOT_FOUND";
    throw e;
  }
  if (specifier === "koffi" || specifier.startsWith("koffi/")) {
    if (process.env.WG_NO_FFI === "no-libc") return { url: `data:text/javascript,${encodeURIComponent(STUB)}`, shortCircuit: true };
    const e = new Error(`Cannot find package 'koffi' imported from ${context.parentURL}`);
    e.code = "ERR_MODULE_NOT_FOUND";
    throw e;
  }
  return next(specifier, context);
}
