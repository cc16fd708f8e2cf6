// The `wg` command on Node (package.json bin; `npx wg ...`). Under Bun
// (`bun --bun wg`, or Bun without Node installed) it hands over to the Bun
// adapter, so an installed package runs on Bun's own APIs there too.
import { main } from "../cli/wg.ts";
import { nodeRuntime } from "../node/runtime.ts";

/** Exits once stdout and stderr have drained: process.exit alone cuts off a piped stdout. */
function exit(code: number): void {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

if (process.versions.bun) {
  // Resolved at run time, next to this file's package: build/out/wg.js -> adapters/bun/main.ts.
  await import(new URL("./wg-bun.ts", import.meta.url).href);
} else {
  main(nodeRuntime(process.argv.slice(2))).then(exit, (e) => {
    process.stderr.write(`wg: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    exit(1);
  });
}
