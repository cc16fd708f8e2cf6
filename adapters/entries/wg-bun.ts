// The `wg` command on Bun: `bun adapters/entries/wg-bun.ts up CONFIG` in a
// clone (Bun runs the TypeScript as it is), or `bun --bun wg` of an
// installed package (through wg-node's hand-over).
import { runCli } from "../cli/wg.ts";
import { bunHost } from "../bun/host.ts";

process.exit(await runCli(bunHost(process.argv.slice(2))));
