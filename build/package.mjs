// The package as a user gets it: `npm pack` of this checkout, installed
// into an empty project without dev dependencies.
//   node build/package.mjs size        packs, installs into a temporary project, prints the installed size
//   node build/package.mjs install DIR packs and installs into DIR (made if need be); prints the tarball
// The package suite (test/system/package.test.ts) uses the same functions.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, lstatSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** What the installed package and its dependencies may take, at most. */
export const SIZE_LIMIT = 15 * 1024 * 1024;

const npm = (args, cwd) => execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_fund: "false", npm_config_audit: "false" } });

/** Packs the checkout at `root` (already built) into `dir`; the tarball's path. */
export function pack(root, dir) {
  mkdirSync(dir, { recursive: true });
  const out = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", dir], root));
  return join(dir, out[0].filename);
}

/** An empty project at `dir` with the tarball installed, as `npm install --omit=dev` does it. */
export function install(dir, tarball) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "wg-js-consumer", private: true, type: "module" }, null, 2) + "\n");
  npm(["install", "--omit=dev", "--prefer-offline", "--no-package-lock", tarball], dir);
}

/** Bytes under `dir`, as files take them (links not followed). */
export function sizeOf(dir) {
  let n = 0;
  for (const f of readdirSync(dir)) {
    const p = join(dir, f), s = lstatSync(p);
    n += s.isDirectory() ? sizeOf(p) : s.size;
  }
  return n;
}

/** The packages installed under node_modules (scoped ones by their full names). */
export function packagesIn(modules) {
  return readdirSync(modules).filter((f) => !f.startsWith(".")).flatMap((f) => f.startsWith("@") ? readdirSync(join(modules, f)).map((g) => `${f}/${g}`) : [f]);
}

const [cmd, arg] = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}` && cmd) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  if (cmd === "size") {
    const dir = mkdtempSync(join(tmpdir(), "wg-js-size-"));
    try {
      install(join(dir, "app"), pack(root, dir));
      const modules = join(dir, "app", "node_modules"), bytes = sizeOf(modules);
      const pkgs = packagesIn(modules);
      console.log(`installed size: ${(bytes / 1048576).toFixed(1)} MB in ${pkgs.length} packages (${pkgs.join(", ")}); the limit is ${SIZE_LIMIT / 1048576} MB`);
      process.exitCode = bytes <= SIZE_LIMIT ? 0 : 1;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else if (cmd === "install" && arg) {
    const t = pack(root, join(arg, ".."));
    install(arg, t);
    console.log(t);
  } else {
    console.error("usage: node build/package.mjs size | install DIR");
    process.exitCode = 2;
  }
}
