// Runs the uvu suites built into build/out/test, one process per file so a
// crash in one suite names its file: every suite on Node, then the unit
// suites (all but test/system/) on Deno and Bun too; the system suites drive
// whole systems (namespaces, browsers, the other runtimes) themselves.
//   node build/test.mjs [name-filter...] [--runtime=node|deno|bun]
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "build", "out", "test");
const bin = (n) => join(root, "node_modules", ".bin", n);
const RUNTIMES = {
  node: [process.execPath],
  deno: [bin("deno"), "run", "-A", "--node-modules-dir=manual", "--no-lock", "--no-remote"],
  bun: [bin("bun")],
};

/** The longest one suite may take (the slowest, the interop matrix, takes about 2 minutes). */
const SUITE_TIMEOUT = 10 * 60_000;

const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith("--"));
const pick = args.find((a) => a.startsWith("--runtime="))?.slice(10);
const walk = (d) => readdirSync(d).flatMap((f) => statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]);
const files = walk(dir).map((f) => relative(dir, f))
  .filter((f) => f.endsWith(".test.js") && (only.length === 0 || only.some((o) => f.includes(o)))).sort();

let passed = 0, failed = 0;
const bad = [];
for (const [name, argv] of Object.entries(RUNTIMES)) {
  if (pick && pick !== name) continue;
  for (const f of files) {
    if (name !== "node" && f.startsWith("system/")) continue;
    // A suite that hangs fails after SUITE_TIMEOUT instead of holding the run up.
    const r = spawnSync(argv[0], [...argv.slice(1), join(dir, f)], { encoding: "utf8", cwd: root, env: { ...process.env, NO_COLOR: "1" }, timeout: SUITE_TIMEOUT, killSignal: "SIGKILL" });
    process.stdout.write(`\n[${name}] ${f}`);
    process.stdout.write(r.stdout ?? ""); process.stderr.write(r.stderr ?? "");
    if (r.error) process.stderr.write(`${name}: ${r.error.message}${r.signal === "SIGKILL" ? ` (killed after ${SUITE_TIMEOUT / 60_000} minutes)` : ""}\n`);
    const t = /Total:\s+(\d+)/.exec(r.stdout ?? ""), p = /Passed:\s+(\d+)/.exec(r.stdout ?? "");
    const total = t ? +t[1] : 0, ok = p ? +p[1] : 0;
    passed += ok; failed += total - ok;
    if (r.status !== 0 || total === 0) { bad.push(`${f} (${name})`); if (total === ok) failed += 1; }
  }
}
console.log(`\n${passed} passed, ${failed} failed`);
if (bad.length) { console.error(`failing: ${bad.join(", ")}`); process.exit(1); }
