// The engine's boundary: src/ and assembly/ hold no I/O, no timers of their
// own and no runtime-specific API. Adapters are the only place for those.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

import { ROOT } from "./helpers/root.ts";

const root = ROOT + "/";

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const FORBIDDEN: [RegExp, string][] = [
  [/from\s+["']node:/, "a node: import"],
  [/\brequire\s*\(/, "require()"],
  [/\bDeno\./, "the Deno namespace"],
  [/\bBun\./, "the Bun namespace"],
  [/\bprocess\./, "process"],
  [/\bBuffer\b/, "Buffer"],
  [/\bset(Timeout|Interval|Immediate)\s*\(/, "a timer"],
  [/\bDate\.now\s*\(|\bnew Date\s*\(/, "the wall clock"],
  [/\bperformance\.now\s*\(/, "the monotonic clock"],
  [/\bfetch\s*\(|\bWebSocket\b|\bXMLHttpRequest\b/, "network I/O"],
  [/\bconsole\./, "logging"],
  [/\btypeof\s+(Deno|Bun|process|window|navigator)\b/, "a runtime check"],
];

for (const dir of ["src", "assembly"]) {
  test(`${dir}/ holds no I/O, timers or runtime-specific API`, () => {
    const found: string[] = [];
    for (const f of files(join(root, dir))) {
      const lines = readFileSync(f, "utf8").split("\n");
      lines.forEach((line, i) => {
        // Comments may mention what the caller does; code may not do it.
        const code = /^\s*(\*|\/\*)/.test(line) ? "" : line.replace(/\/\/.*$/, "");
        for (const [re, what] of FORBIDDEN) if (re.test(code)) found.push(`${f.slice(root.length)}:${i + 1}: ${what}`);
      });
    }
    assert.equal(found, []);
  });
}

test("the scan itself catches a forbidden line", () => {
  const code = 'import { x } from "node:fs"; setTimeout(() => {}, 1);';
  assert.ok(FORBIDDEN.some(([re]) => re.test(code)));
});

test.run();
