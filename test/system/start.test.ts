// The README's run command, `npm start`: two peers in one process on
// loopback, a page fetched through the tunnel, wg show of both; exit 0.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { ROOT } from "../helpers/root.ts";

test("npm start: a page through the tunnel, wg show for both peers, exit 0", () => {
  const r = spawnSync("npm", ["start", "--silent"], { cwd: ROOT, encoding: "utf8", timeout: 60_000, env: { ...process.env, NO_COLOR: "1" } });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^HTTP\/1\.1 200 OK$/m);
  assert.match(r.stdout, "Every byte of this page was encrypted by one peer and decrypted by the other.");
  assert.is((r.stdout.match(/^interface: demo-(server|client)$/gm) ?? []).length, 2, r.stdout);
  assert.match(r.stdout, /latest handshake: /);
});

test.run();
