// `npm start`: the demo (adapters/demo/demo.ts) on Node's host, from
// build/lib; builds first when a fresh clone has not been built yet.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const lib = join(root, "build", "lib", "adapters");
if (!existsSync(join(lib, "demo", "demo.js"))) execFileSync(process.execPath, [join(root, "build", "build.mjs"), "--quiet"], { stdio: "inherit" });

const { demo } = await import(pathToFileURL(join(lib, "demo", "demo.js")).href);
const { nodeHost } = await import(pathToFileURL(join(lib, "node", "host.js")).href);
const host = nodeHost();
process.exitCode = await demo(host);
await host.drained();
