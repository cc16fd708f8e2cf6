// Runs the uvu suites built into build/out/test, one process per file so a
// crash in one suite names its file.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = join(dirname(fileURLToPath(import.meta.url)), "out", "test");
const only = process.argv.slice(2);
const files = readdirSync(dir).filter((f) => f.endsWith(".test.js") && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
let passed = 0, failed = 0, bad = [];
for (const f of files) {
  const r = spawnSync(process.execPath, [join(dir, f)], { encoding: "utf8" });
  process.stdout.write(r.stdout); process.stderr.write(r.stderr);
  const t = /Total:\s+(\d+)/.exec(r.stdout), p = /Passed:\s+(\d+)/.exec(r.stdout), s = /Skipped:\s+(\d+)/.exec(r.stdout);
  const total = t ? +t[1] : 0, ok = p ? +p[1] : 0;
  passed += ok; failed += total - ok;
  if (r.status !== 0 || total === 0) { bad.push(f); if (total === ok) failed += 1; }
}
console.log(`\n${passed} passed, ${failed} failed`);
if (bad.length) { console.error(`failing: ${bad.join(", ")}`); process.exit(1); }
