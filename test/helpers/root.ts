// The repository's root, wherever a suite runs from: its bundle in
// build/out/test/... or its source under test/.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).name === "wg-js") return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("the wg-js repository root was not found above " + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The repository root (absolute path, no trailing slash). */
export const ROOT: string = findRoot();
