// The `wg` command on Node (package.json bin; `npx wg ...`).
import { main } from "../cli/wg.ts";
import { nodeRuntime } from "./runtime.ts";

main(nodeRuntime(process.argv.slice(2))).then((code) => process.exit(code), (e) => {
  process.stderr.write(`wg: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
