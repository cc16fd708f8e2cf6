// The UAPI socket hands out the private key (get=1) and takes any
// configuration (set=1), so `wg up` creates it for its owner only, 0600,
// whatever the umask (wireguard-go binds its own under umask 077). Run here
// under umask 000, on Node, Deno and Bun, with `wg up --netstack` (the TUN
// path serves the same socket through the same host call). Needs root, for
// /var/run/wireguard.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RUN_DIR, keypair, notRun, wgCommand, type RuntimeName } from "../helpers/netns.ts";
import { ROOT } from "../helpers/root.ts";
import { waitFor } from "../helpers/relay.ts";

for (const runtime of ["node", "deno", "bun"] as RuntimeName[]) {
  test(`${runtime}: under umask 000 the UAPI socket is still srw------- (0600)`, async () => {
    if (process.getuid?.() !== 0) return notRun("not root (/var/run/wireguard)");
    const dir = mkdtempSync(join(tmpdir(), "wg-js-umask-"));
    const name = `wgum-${runtime.slice(0, 2)}${process.pid % 1000}`;
    const conf = join(dir, `${name}.conf`);
    writeFileSync(conf, `[Interface]\nPrivateKey = ${keypair().priv}\nAddress = 10.98.0.1/32\n`, { mode: 0o600 });
    const argv = [...wgCommand(runtime), "up", "--netstack", conf];
    const child = spawn("sh", ["-c", 'umask 000; exec "$@"', "sh", ...argv], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let err = "";
    child.stderr!.on("data", (d) => { err += d; });
    try {
      await waitFor(`${runtime}: up --netstack to be ready (${err})`, () => /\[#\] ready\n/.test(err) || child.exitCode !== null, 30_000);
      assert.match(err, /UAPI on /);
      const st = statSync(`${RUN_DIR}/${name}.sock`);
      assert.ok(st.isSocket());
      assert.is((st.mode & 0o777).toString(8), "600", "the socket's mode");
      assert.is((statSync(`${RUN_DIR}/${name}.pid`).mode & 0o022), 0, "no one else writes the pid file");
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.exitCode !== null ? r(null) : child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
