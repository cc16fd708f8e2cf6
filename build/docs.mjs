// `npm run docs`: the API reference, generated from the JSDoc of every entry
// point (the package's exports) by `deno doc --html`, into build/docs/.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build", "docs");
const exports = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports;
rmSync(out, { recursive: true, force: true });
const r = spawnSync(join(root, "node_modules", ".bin", "deno"), [
  "doc", "--html", "--name=wg-js", `--output=${out}`, ...Object.values(exports).map((p) => join(root, p)),
], { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
// @types/node's own references that deno doc cannot follow are noise here; anything else is said.
const noise = /^(Warning Failed resolving types\. .*@types\/node.*|\s+at file:.*@types\/node.*|Written \d+ files to .*)$/;
for (const line of `${r.stdout}${r.stderr}`.split("\n")) if (line && !noise.test(line)) console.error(line);
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`API reference in ${out}/index.html`);
