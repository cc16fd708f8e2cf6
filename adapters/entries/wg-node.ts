#!/usr/bin/env node
// The `wg` command on Node (package.json's bin: `npx wg ...`). Under Bun
// (`bun --bun wg` of an installed package, or Bun without Node installed) it
// hands over to the Bun entry, so the CLI runs on Bun's own APIs there.
import { runCli } from "../cli/wg.ts";
import { nodeHost } from "../node/host.ts";

if (process.versions.bun) await import("./wg-bun.ts");
else process.exit(await runCli(nodeHost(process.argv.slice(2))));
