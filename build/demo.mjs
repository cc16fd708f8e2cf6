// `npm start`: bundles adapters/common/demo.ts with Node's runtime (esbuild,
// into build/out/demo.js) and runs it. Builds the engine first when a fresh
// clone has not been built yet.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build", "out");
if (!existsSync(join(out, "engine.wasm.js"))) execFileSync(process.execPath, [join(root, "build", "build.mjs"), "--quiet"], { stdio: "inherit" });

const esbuild = await import("esbuild");
await esbuild.build({
  stdin: {
    contents: [
      'import { demo } from "./adapters/demo/demo.ts";',
      'import { nodeRuntime } from "./adapters/node/runtime.ts";',
      "export const run = () => demo(nodeRuntime([]));",
    ].join("\n"),
    resolveDir: root,
    sourcefile: "demo-entry.ts",
    loader: "ts",
  },
  outfile: join(out, "demo.js"),
  bundle: true, format: "esm", platform: "node", target: "node20",
  packages: "external", logLevel: "warning",
});
const { run } = await import(pathToFileURL(join(out, "demo.js")).href);
process.exitCode = await run();
