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
import { RUN_DIR, keypair, must, notRun, run, wgCommand, type RuntimeName } from "../helpers/netns.ts";
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

/** Starts `wg up --netstack` on a config of its own (extra arguments before it); returns its name and a stopper. */
async function upNetstack(runtime: RuntimeName, tag: string, extra: string[] = []): Promise<{ name: string; dir: string; stop(): Promise<void>; err(): string }> {
  const dir = mkdtempSync(join(tmpdir(), "wg-js-scale-"));
  const name = `wg${tag}-${runtime.slice(0, 2)}${process.pid % 1000}`;
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, `[Interface]\nPrivateKey = ${keypair().priv}\nAddress = 10.98.0.1/32\n`, { mode: 0o600 });
  const child = spawn(wgCommand(runtime)[0], [...wgCommand(runtime).slice(1), "up", "--netstack", ...extra, conf], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  let err = "";
  child.stderr!.on("data", (d) => { err += d; });
  await waitFor(`${runtime}: up --netstack to be ready (${err})`, () => /\[#\] ready\n/.test(err) || child.exitCode !== null, 30_000);
  return {
    name, dir, err: () => err,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.exitCode !== null ? r(null) : child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A wg(8) config (for setconf/addconf) of `peers` made-up peers with `each` /24s apiece, from 44.0.0.0 up. */
function peersConf(peers: number, each: number, withInterface = false): string {
  let s = withInterface ? `[Interface]\nPrivateKey = ${keypair().priv}\n` : "";
  const key = new Uint8Array(32);
  for (let i = 0; i < peers; i++) {
    crypto.getRandomValues(key);
    const ips: string[] = [];
    for (let j = 0; j < each; j++) { const k = 0x2c000000 + (i * each + j) * 256; ips.push(`${k >>> 24}.${(k >>> 16) & 255}.${(k >>> 8) & 255}.0/24`); }
    s += `\n[Peer]\nPublicKey = ${btoa(String.fromCharCode(...key))}\nAllowedIPs = ${ips.join(",")}\n`;
  }
  return s;
}

for (const runtime of ["node", "deno", "bun"] as RuntimeName[]) {
  test(`${runtime}: the stock wg sets 3000 peers and 300,000 prefixes (past any size fixed at start) and reads them back`, async () => {
    if (process.getuid?.() !== 0) return notRun("not root (/var/run/wireguard)");
    const up = await upNetstack(runtime, "sc");
    try {
      const file = join(up.dir, "big.conf");
      writeFileSync(file, peersConf(3000, 100, true), { mode: 0o600 });
      await must(["wg", "setconf", up.name, file], { timeout: 120_000 });
      const dump = await must(["wg", "show", up.name, "dump"], { timeout: 120_000 });
      const rows = dump.trimEnd().split("\n").slice(1);
      assert.is(rows.length, 3000);
      assert.is(rows.reduce((n, r) => n + r.split("\t")[3].split(",").length, 0), 300_000);
      // Every prefix is where setconf put it, in the order given.
      const k = 0x2c000000 + (2999 * 100 + 99) * 256;
      assert.is(rows[2999].split("\t")[3].split(",")[99], `${k >>> 24}.${(k >>> 16) & 255}.${(k >>> 8) & 255}.0/24`);
      assert.is(rows[0].split("\t")[3].split(",")[0], "44.0.0.0/24");
      // And they route: a removal through the stock tool shows at once.
      const pub = rows[5].split("\t")[0];
      await must(["wg", "set", up.name, "peer", pub, "remove"]);
      assert.is((await must(["wg", "show", up.name, "peers"])).trim().split("\n").length, 2999);
    } finally {
      await up.stop();
    }
  });

  test(`${runtime}: wg up --max-peers bounds what the UAPI may add; the stock wg is refused past it`, async () => {
    if (process.getuid?.() !== 0) return notRun("not root (/var/run/wireguard)");
    const up = await upNetstack(runtime, "mx", ["--max-peers=2", "--max-allowed-ips=10"]);
    try {
      const file = join(up.dir, "more.conf");
      writeFileSync(file, peersConf(3, 1), { mode: 0o600 });
      const r = await run(["wg", "addconf", up.name, file]);
      assert.is(r.code, 1, r.stderr);
      assert.match(r.stderr, /Invalid argument/);
      assert.is((await must(["wg", "show", up.name, "peers"])).trim(), "", "nothing applied");
      writeFileSync(file, peersConf(2, 5), { mode: 0o600 });
      await must(["wg", "addconf", up.name, file]);
      assert.is((await must(["wg", "show", up.name, "allowed-ips"])).trim().split("\n").length, 2);
      writeFileSync(file, peersConf(1, 11), { mode: 0o600 });
      assert.is((await run(["wg", "addconf", up.name, file])).code, 1, "past max-allowed-ips");
    } finally {
      await up.stop();
    }
  });
}

test.run();
