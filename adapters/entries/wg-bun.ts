// The `wg` command on Bun: `bun adapters/entries/wg-bun.ts up CONFIG` in a
// clone (Bun runs the TypeScript as it is), or `bun wg` of an installed
// package (through wg-node's hand-over).
import { main } from "../cli/wg.ts";
import { bunHost } from "../bun/host.ts";

const host = bunHost(process.argv.slice(2));
let code = 1;
try {
  code = await main(host);
} catch (e) {
  host.stderr(`wg: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
}
// Everything printed reaches its reader before the process ends.
await host.drained();
process.exit(code);
