// The short fuzzing slice CI runs: every target (test/fuzz/targets) for a
// fixed few seconds under Jazzer.js, from its committed seeds, through
// `npm run fuzz`'s own runner. The long runs are `npm run fuzz -- TARGET`.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers/root.ts";

const SECONDS = 10;

test(`every fuzz target runs ${SECONDS} s under Jazzer.js with no crash`, () => {
  const targets = readdirSync(join(ROOT, "test", "fuzz", "targets")).filter((f) => f.endsWith(".ts") && f !== "index.ts").map((f) => f.slice(0, -3));
  const r = spawnSync(process.execPath, [join(ROOT, "build", "fuzz.mjs"), "--all", "--time", String(SECONDS), "--jobs", "2"],
    { cwd: ROOT, encoding: "utf8", timeout: (targets.length * (SECONDS + 30)) * 1000 });
  process.stdout.write(`\n${r.stdout.split("\n").filter((l) => l.startsWith("|")).join("\n")}\n`);
  assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  for (const t of targets) {
    const line = new RegExp(`^ok   ${t}: (\\d+) executions`, "m").exec(r.stdout);
    assert.ok(line && Number(line[1]) > 0, `${t} ran: ${r.stdout}`);
  }
});

test("npm run fuzz names an unknown target and its choices in one line", () => {
  const r = spawnSync(process.execPath, [join(ROOT, "build", "fuzz.mjs"), "no-such-target"], { cwd: ROOT, encoding: "utf8" });
  assert.is(r.status, 2);
  assert.match(r.stderr, /^fuzz: no fuzz target 'no-such-target' \(test\/fuzz\/targets\/no-such-target\.ts\); targets: [a-z0-9-]+/);
  assert.is(r.stderr.trim().split("\n").length, 1);
});

test.run();
