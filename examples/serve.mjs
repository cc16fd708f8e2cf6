// Serves the example page on http://localhost:8080/ (or --port N; 0: any): the page,
// its script and the browser build. `npm run example`; start a relay beside it
// with `npx wg relay` (README.md).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const files = {
  "/": [join(here, "index.html"), "text/html; charset=utf-8"],
  "/app.js": [join(here, "app.js"), "text/javascript"],
  "/wg.js": [join(here, "..", "build", "out", "browser", "wg.js"), "text/javascript"],
  "/wg.js.map": [join(here, "..", "build", "out", "browser", "wg.js.map"), "application/json"],
};
const i = process.argv.indexOf("--port");
const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: invalid --port '${process.argv[i + 1]}'`);
  process.exit(1);
}
createServer(async (req, res) => {
  const f = files[new URL(req.url ?? "/", "http://localhost").pathname];
  if (!f) { res.writeHead(404).end("not found\n"); return; }
  try {
    res.writeHead(200, { "content-type": f[1], "cache-control": "no-store" }).end(await readFile(f[0]));
  } catch {
    res.writeHead(500).end(`${f[0]} is missing: run npm run build\n`);
  }
}).on("error", (e) => { console.error(`serve: ${e.message}`); process.exit(1); })
  .listen(port, "127.0.0.1", function () { console.log(`example page on http://localhost:${this.address().port}/`); });
