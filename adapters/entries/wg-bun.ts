// The `wg` command on Bun: `bun adapters/bun/main.ts up CONFIG` (Bun runs
// the TypeScript as it is; the WASM comes from build/out/, which `npm
// install` builds).
import { main } from "../cli/wg.ts";
import { bunRuntime } from "../bun/runtime.ts";

const rt = bunRuntime(process.argv.slice(2));
let code = 1;
try {
  code = await main(rt);
} catch (e) {
  rt.stderr(`wg: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
}
// Everything printed reaches its reader before the process ends.
await rt.drained();
process.exit(code);
