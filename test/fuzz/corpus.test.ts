// Every fuzz target (test/fuzz/targets) over its committed seeds
// (test/fuzz/corpus/NAME) and every crash a fuzzing run found
// (test/fuzz/crashes/NAME), on each runtime: a defect once found stays fixed.
// The fuzzing itself is `npm run fuzz`; test/fuzz/fuzz.test.ts runs a short slice.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers/root.ts";
import { TARGETS } from "./targets/index.ts";

test("each target has a committed seed corpus, and the index lists every target file", () => {
  const files = readdirSync(join(ROOT, "test", "fuzz", "targets")).filter((f) => f.endsWith(".ts") && f !== "index.ts").map((f) => f.slice(0, -3)).sort();
  assert.equal(Object.keys(TARGETS).sort(), files);
  for (const t of files) assert.ok(readdirSync(join(ROOT, "test", "fuzz", "corpus", t)).length >= 3, `${t}: at least 3 seeds`);
});

for (const [name, fuzz] of Object.entries(TARGETS)) {
  test(`${name}: every seed and every recorded crash runs clean`, async () => {
    let n = 0;
    for (const kind of ["corpus", "crashes"]) {
      const dir = join(ROOT, "test", "fuzz", kind, name);
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).sort()) {
        try {
          await fuzz(new Uint8Array(readFileSync(join(dir, f))));
        } catch (e) {
          assert.unreachable(`${kind}/${name}/${f}: ${e instanceof Error ? e.stack : String(e)}`);
        }
        n++;
      }
    }
    assert.ok(n > 0);
  });
}

test.run();
