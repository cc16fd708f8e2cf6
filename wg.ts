// The `wg` command on Deno:
//   deno run -A wg.ts up wg0.conf          (as root: sudo npx deno run -A wg.ts up wg0.conf)
//   deno run wg.ts                         the usage, and the permissions each command needs
// deno.json (beside this file) turns on Deno.listenDatagram ("unstable":
// ["net"]) and uses the node_modules that npm installed.
import { run } from "./adapters/entries/wg-deno.ts";

Deno.exit(await run(Deno.args));
