// npm run fuzz [-- TARGET... | --all] [--time SECONDS] [--jobs N]
//
// Coverage-guided fuzzing with Jazzer.js (libFuzzer in Node) of each parser
// that meets outside bytes. A target is test/fuzz/targets/NAME.ts exporting
// fuzz(data): it throws only on a defect. Each run starts from the committed
// seeds (test/fuzz/corpus/NAME) and the inputs earlier runs kept
// (build/out/fuzz/corpus/NAME); a crash is written to build/out/fuzz/crashes/NAME
// and fails the run; copied into test/fuzz/crashes/NAME it is a regression
// test (test/fuzz/corpus.test.ts runs every seed and crash on Node, Deno and Bun).
// With no target, lists them.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadableFuzzer } from "./fuzz-glibc.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const targetsDir = join(root, "test", "fuzz", "targets");
const out = join(root, "build", "out", "fuzz");
const targets = readdirSync(targetsDir).filter((f) => f.endsWith(".ts") && f !== "index.ts").map((f) => f.slice(0, -3)).sort();

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.findIndex((a) => a === name || a.startsWith(name + "="));
  if (i < 0) return dflt;
  const v = args[i].includes("=") ? args[i].split("=")[1] : args[i + 1];
  args.splice(i, args[i].includes("=") ? 1 : 2);
  return v;
};
const seconds = Number(opt("--time", "600"));
const jobs = Number(opt("--jobs", "1"));
const all = args.includes("--all");
const picked = all ? targets : args.filter((a) => !a.startsWith("--"));

if (!Number.isInteger(seconds) || seconds < 1) fail(`--time: expected a number of seconds, got '${seconds}'`);
if (!Number.isInteger(jobs) || jobs < 1) fail(`--jobs: expected a count, got '${jobs}'`);
if (picked.length === 0) {
  console.log(`fuzz targets (npm run fuzz -- TARGET [--time S], or --all):\n  ${targets.join("\n  ")}`);
  process.exit(0);
}
for (const t of picked) if (!targets.includes(t)) fail(`no fuzz target '${t}' (test/fuzz/targets/${t}.ts); targets: ${targets.join(", ")}`);

function fail(why) {
  console.error(`fuzz: ${why}`);
  process.exit(2);
}

await loadableFuzzer(createRequire(join(root, "package.json")), (m) => console.error(`fuzz: ${m}`));

// Each target bundled to CommonJS (what Jazzer.js instruments as it loads),
// noble left out of the bundle and of the instrumentation: its branches are
// the crypto's, not the parser's.
const esbuild = await import("esbuild");
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: Object.fromEntries(picked.map((t) => [t, join(targetsDir, `${t}.ts`)])),
  outdir: join(out, "targets"), outExtension: { ".js": ".cjs" },
  bundle: true, format: "cjs", platform: "node", target: "node20", external: ["@noble/*"], logLevel: "warning",
});

const jazzer = join(root, "node_modules", ".bin", "jazzer");
/** One target for `seconds`: its libFuzzer statistics, and whether it found a crash. */
function run(t) {
  const work = join(out, "corpus", t), crashes = join(out, "crashes", t), seeds = join(root, "test", "fuzz", "corpus", t);
  mkdirSync(work, { recursive: true });
  mkdirSync(crashes, { recursive: true });
  // A target whose work finishes in microtasks says `export const ASYNC = true` and is awaited.
  const async = /^export const ASYNC = true;/m.test(readFileSync(join(targetsDir, `${t}.ts`), "utf8"));
  const argv = [join(out, "targets", `${t}.cjs`), work, ...(existsSync(seeds) ? [seeds] : []), ...(async ? [] : ["--sync"]), "--timeout=10000", "--",
    `-max_total_time=${seconds}`, `-artifact_prefix=${crashes}/`, "-print_final_stats=1", "-rss_limit_mb=2048", "-max_len=4096"];
  return new Promise((resolve) => {
    const child = spawn(jazzer, argv, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const keep = (d) => { log += d; if (log.length > 1 << 20) log = log.slice(-(1 << 19)); };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("close", (code, signal) => {
      const stat = (k) => Number(new RegExp(`stat::${k}:\\s+(\\d+)`).exec(log)?.[1] ?? NaN);
      const last = [...log.matchAll(/cov: (\d+) ft: (\d+) corp: (\d+)\//g)].pop();
      const crash = /Test unit written to (\S+)/.exec(log)?.[1];
      // The final statistics are missing when libFuzzer leaves by another path
      // than its timer; its "Done N runs in S second(s)" line, or else the last
      // status line's count, still says how many inputs ran.
      const done = /Done (\d+) runs in (\d+) second/.exec(log);
      const lastCount = [...log.matchAll(/^#(\d+)\s/gm)].pop();
      let execs = stat("number_of_executed_units"), perSec = stat("average_exec_per_sec");
      if (Number.isNaN(execs)) execs = done ? +done[1] : lastCount ? +lastCount[1] : NaN;
      if (Number.isNaN(perSec)) perSec = Math.round(execs / (done ? Math.max(1, +done[2]) : seconds));
      writeFileSync(join(out, `${t}.log`), log);
      resolve({ t, code, signal, execs, perSec,
        cov: last ? +last[1] : NaN, ft: last ? +last[2] : NaN, corpus: last ? +last[3] : NaN, crash, log });
    });
  });
}

const results = [];
const queue = [...picked];
await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
  for (let t; (t = queue.shift()) !== undefined;) {
    const r = await run(t);
    results.push(r);
    const ok = r.code === 0 && !r.crash;
    console.log(`${ok ? "ok  " : "FAIL"} ${t}: ${r.execs} executions (${r.perSec}/s), cov ${r.cov}, ft ${r.ft}, corpus ${r.corpus}`);
    if (!ok) {
      process.stderr.write(r.log.split("\n").filter((l) => !/^#\d+\s+(NEW|REDUCE|pulse|INITED)/.test(l)).slice(-60).join("\n") + "\n");
      if (r.crash) console.error(`${t}: crash in ${r.crash}; fix it, then copy it to test/fuzz/crashes/${t}/ as its regression test`);
    }
  }
}));
results.sort((a, b) => a.t.localeCompare(b.t));
console.log(`\n| target | seconds | executions | exec/s | cov (edges) | ft | corpus |\n|---|---|---|---|---|---|---|`);
for (const r of results) console.log(`| ${r.t} | ${seconds} | ${r.execs} | ${r.perSec} | ${r.cov} | ${r.ft} | ${r.corpus} |`);
process.exit(results.every((r) => r.code === 0 && !r.crash) ? 0 : 1);
