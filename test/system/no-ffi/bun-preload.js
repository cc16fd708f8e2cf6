// `bun --preload ./bun-preload.js ...`: bun:ffi's dlopen fails, as where
// there is no glibc (or no FFI at all).
const ffi = require("bun:ffi");
ffi.dlopen = (name) => {
  throw new Error(`${name}: cannot open shared object file: No such file or directory`);
};
