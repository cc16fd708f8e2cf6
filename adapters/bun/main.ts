// The `wg` command on Bun: `bun adapters/bun/main.ts up CONFIG` (Bun runs
// the TypeScript as it is; the WASM comes from build/out/, which `npm
// install` builds).
import { main } from "../cli/wg.ts";
import { bunRuntime } from "./runtime.ts";

main(bunRuntime(process.argv.slice(2))).then((code) => process.exit(code), (e) => {
  process.stderr.write(`wg: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
