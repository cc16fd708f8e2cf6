// `node --import ./node-register.mjs ...`: the FFI-failing hooks of node-hooks.mjs.
import { register } from "node:module";

register("./node-hooks.mjs", import.meta.url);
