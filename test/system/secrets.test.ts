// Keys written to disk, against wireguard-tools itself: `wg genkey > file`
// and `wg genpsk > file` under umask 022 warn as wg(8) does, on Node, Deno
// (with -A, which lets it see stdout is a file) and Bun; under umask 077 no
// warning, and the file is the owner's only.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { notRun, wgCommand, type RuntimeName } from "../helpers/netns.ts";
import { ROOT } from "../helpers/root.ts";

/** `argv > file` under `umask`: stderr, and the file's mode. */
function into(argv: string[], umask: string, file: string): { err: string; mode: number; out: string } {
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const r = spawnSync("sh", ["-c", `umask ${umask}; ${argv.map(q).join(" ")} > ${q(file)}`], { cwd: ROOT, encoding: "utf8", timeout: 60_000, env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } });
  assert.is(r.status, 0, r.stderr);
  return { err: r.stderr, mode: statSync(file).mode & 0o777, out: "" };
}

const wgTools = spawnSync("wg", ["--version"], { encoding: "utf8" });
const hasTools = wgTools.status === 0 && /wireguard-tools/.test(wgTools.stdout);

for (const runtime of ["node", "deno", "bun"] as RuntimeName[]) {
  test(`${runtime}: genkey and genpsk into a world-readable file warn as wireguard-tools' wg does; under umask 077, no warning`, () => {
    if (!hasTools) return notRun("no wireguard-tools' wg (apt-get install wireguard-tools)");
    const dir = mkdtempSync(join(tmpdir(), "wg-js-keys-"));
    try {
      for (const cmd of ["genkey", "genpsk"]) {
        const theirs = into(["wg", cmd], "022", join(dir, `theirs-${cmd}`));
        const ours = into([...wgCommand(runtime), cmd], "022", join(dir, `ours-${cmd}`));
        assert.match(theirs.err, /^Warning: writing to world accessible file\./);
        assert.is(ours.err, theirs.err, `${cmd}: the same warning`);
        assert.is(ours.mode, 0o644);
        const priv = into([...wgCommand(runtime), cmd], "077", join(dir, `private-${cmd}`));
        assert.is(priv.err, "");
        assert.is(priv.mode, 0o600);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("the README's quick start makes keys its owner's only: its umask and genkey lines, run as written from a umask 022 shell", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const block = /## Quick start[^\n]*\n+```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "README has a Quick start sh block");
  const lines = block.split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter(Boolean);
  const umask = lines.findIndex((l) => /^umask 077$/.test(l));
  const genkey = lines.findIndex((l) => /wg genkey/.test(l));
  assert.ok(umask >= 0 && umask < genkey, "umask 077 comes before wg genkey");
  const dir = mkdtempSync(join(tmpdir(), "wg-js-quick-"));
  try {
    // `npx wg` is this clone's bin, as `npm install` would link it.
    const bin = join(dir, "bin");
    spawnSync("sh", ["-c", `mkdir -p '${bin}' && printf '#!/bin/sh\\nexec ${wgCommand("node").join(" ")} "$@"\\n' > '${bin}/wg' && chmod +x '${bin}/wg'`]);
    const script = lines.slice(umask, genkey + 1).join("\n").replace(/npx wg/g, "wg");
    const r = spawnSync("sh", ["-c", `umask 022; ${script}`], { cwd: dir, encoding: "utf8", timeout: 60_000, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stderr, "", "no warning");
    for (const f of ["privatekey", "publickey"]) assert.is(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    assert.match(readFileSync(join(dir, "publickey"), "utf8"), /^[A-Za-z0-9+/]{43}=\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
