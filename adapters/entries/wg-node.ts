#!/usr/bin/env node
// The `wg` command on Node (package.json's bin: `npx wg ...`). Under Bun
// (`bun wg` of an installed package, or Bun without Node installed) it hands
// over to the Bun entry, so the CLI runs on Bun's own APIs there.
import { main } from "../cli/wg.ts";
import { nodeHost } from "../node/host.ts";

if (process.versions.bun) {
  await import("./wg-bun.ts");
} else {
  const host = nodeHost(process.argv.slice(2));
  let code = 1;
  try {
    code = await main(host);
  } catch (e) {
    host.stderr(`wg: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  // process.exit alone cuts off a piped stdout: everything printed reaches its reader first.
  await host.drained();
  process.exit(code);
}
