// The tree's boundaries, read from the code's own imports:
// - src/ and assembly/ hold no I/O, no timers of their own and no
//   runtime-specific API (the engine is sans-IO);
// - the folders form layers with no cycles: core (src, assembly) at the
//   bottom; the ports (adapters/ports) over it; the shared host code
//   (adapters/linux, adapters/node-compat) over those; the hosts (node, deno,
//   bun, browser, workerd) beside the applications (http, tunnel, proxy,
//   cli, relay, gateway, demo); the entries (adapters/entries, wg.ts) on top,
//   the only place where a host and the applications are wired together.
// A host never imports another host, an application never imports a host,
// and nothing but an entry imports an entry. The tests at the end show the
// checks fail on a tree that breaks them.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { ROOT } from "./helpers/root.ts";

const root = ROOT + "/";

function files(dir: string, exts = /\.(ts|js)$/): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p, exts) : exts.test(p) && !p.endsWith(".d.ts") ? [p] : [];
  });
}

// ---- sans-IO ----

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
    for (const f of files(join(root, dir), /\.ts$/)) {
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

test("the sans-IO scan catches a forbidden line", () => {
  const code = 'import { x } from "node:fs"; setTimeout(() => {}, 1);';
  assert.ok(FORBIDDEN.some(([re]) => re.test(code)));
});

// ---- layers ----

type Kind = "core" | "ports" | "shared" | "host" | "app" | "entry";

/** The folders of the tree and what each is; a file belongs to the longest folder that holds it. */
export const FOLDERS: Record<string, Kind> = {
  "src": "core", "assembly": "core", "build/out": "core",
  "adapters/ports": "ports",
  "adapters/linux": "shared", "adapters/node-compat": "shared",
  "adapters/node": "host", "adapters/deno": "host", "adapters/bun": "host", "adapters/browser": "host", "adapters/workerd": "host",
  "adapters/http": "app", "adapters/tunnel": "app", "adapters/proxy": "app", "adapters/cli": "app",
  "adapters/relay": "app", "adapters/gateway": "app", "adapters/demo": "app",
  "adapters/entries": "entry", "wg.ts": "entry",
};

/** Which kinds each kind may import (besides its own folder). */
const MAY_IMPORT: Record<Kind, Kind[]> = {
  core: ["core"],
  ports: ["core"],
  shared: ["core", "ports", "shared"],
  host: ["core", "ports", "shared"],
  app: ["core", "ports", "app"],
  entry: ["core", "ports", "shared", "host", "app", "entry"],
};

/** The folder (a key of FOLDERS) a repository path belongs to, or null when it is in none. */
export function folderOf(path: string, folders: Record<string, Kind> = FOLDERS): string | null {
  let best: string | null = null;
  for (const f of Object.keys(folders)) {
    if ((path === f || path.startsWith(f + "/")) && (best === null || f.length > best.length)) best = f;
  }
  return best;
}

/** The package.json "imports" aliases the tree uses, by where they point. */
const ALIASES: Record<string, string> = { "#engine-wasm": "build/out/engine.wasm.js", "#engine-wasm-module": "build/out/engine.wasm" };

/** Every module a source file imports (static, dynamic with a literal, re-exports, and Worker URLs), as repository paths. */
export function importsOf(path: string, text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)["']([^"']+)["']/g;
  // Comments are not code: strip them (a string holding // is rare enough here to not matter).
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const m of code.matchAll(re)) {
    const s = m[1];
    if (ALIASES[s]) out.push(ALIASES[s]);
    else if (s.startsWith(".")) out.push(normalize(join(dirname(path), s)).replace(/\.js$/, ".ts"));
  }
  return out;
}

/** The rules broken by a tree, given each file's imports (repository paths); [] when it holds. */
export function layerViolations(graph: Map<string, string[]>, folders: Record<string, Kind> = FOLDERS): string[] {
  const bad: string[] = [];
  const edges = new Map<string, Set<string>>();
  for (const [file, imports] of graph) {
    const from = folderOf(file, folders);
    if (from === null) { bad.push(`${file}: in no folder of the layout`); continue; }
    for (const target of imports) {
      const to = folderOf(target, folders);
      if (to === null) { bad.push(`${file} imports ${target}, which is in no folder of the layout`); continue; }
      if (to === from) continue;
      const a = folders[from], b = folders[to];
      if (a === "host" && b === "host") bad.push(`${file} imports ${target}: a host never imports another host`);
      else if (a === "app" && (b === "host" || b === "shared")) bad.push(`${file} imports ${target}: an application never imports a host`);
      else if (b === "entry" && a !== "entry") bad.push(`${file} imports ${target}: nothing but an entry imports an entry`);
      else if (!MAY_IMPORT[a].includes(b)) bad.push(`${file} imports ${target}: ${from} (${a}) may not import ${to} (${b})`);
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)!.add(to);
    }
  }
  // No cycle between folders: a depth-first search that meets a folder still on its path found one.
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (f: string) => {
    state.set(f, "open");
    path.push(f);
    for (const g of edges.get(f) ?? []) {
      if (state.get(g) === "open") bad.push(`folders import each other in a circle: ${[...path.slice(path.indexOf(g)), g].join(" -> ")}`);
      else if (!state.has(g)) visit(g);
    }
    path.pop();
    state.set(f, "done");
  };
  for (const f of [...edges.keys()].sort()) if (!state.has(f)) visit(f);
  return bad;
}

/** The tree's own import graph: src/, assembly/, adapters/ and wg.ts. */
function treeGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const all = [...files(join(root, "src")), ...files(join(root, "assembly")), ...files(join(root, "adapters")), join(root, "wg.ts")];
  for (const f of all) {
    const rel = relative(root, f);
    graph.set(rel, importsOf(rel, readFileSync(f, "utf8")));
  }
  return graph;
}

test("the folders form layers: no cycle, no host importing another, no application importing a host", () => {
  const graph = treeGraph();
  assert.ok(graph.size > 100, `read ${graph.size} files`);
  assert.ok([...graph.values()].flat().length > 300, "read their imports");
  assert.equal(layerViolations(graph), []);
});

test("every folder of adapters/ has its place in the layout", () => {
  const dirs = readdirSync(join(root, "adapters")).filter((d) => statSync(join(root, "adapters", d)).isDirectory());
  assert.equal(dirs.filter((d) => FOLDERS[`adapters/${d}`] === undefined), []);
});

// ---- the checks themselves ----

test("the check fails on a circle between folders", () => {
  const g = new Map([
    ["adapters/tunnel/tunnel.ts", ["adapters/proxy/socks5.ts"]],
    ["adapters/proxy/socks5.ts", ["adapters/cli/wg.ts"]],
    ["adapters/cli/wg.ts", ["adapters/tunnel/tunnel.ts"]],
  ]);
  const bad = layerViolations(g);
  assert.equal(bad.length, 1, bad.join("\n"));
  assert.match(bad[0], /^folders import each other in a circle: .*adapters\/(tunnel|proxy|cli) -> .* -> .*adapters\/(tunnel|proxy|cli)$/);
});

test("the check fails on a host importing another host, and on an application importing a host", () => {
  const bad = layerViolations(new Map([
    ["adapters/bun/host.ts", ["adapters/node/x25519.ts"]],
    ["adapters/relay/server.ts", ["adapters/deno/websocket-server.ts"]],
    ["adapters/node/host.ts", ["adapters/cli/wg.ts"]],
    ["adapters/ports/device.ts", ["adapters/linux/tun.ts"]],
    ["adapters/cli/wg.ts", ["adapters/entries/wg-node.ts"]],
  ]));
  assert.equal(bad, [
    "adapters/bun/host.ts imports adapters/node/x25519.ts: a host never imports another host",
    "adapters/relay/server.ts imports adapters/deno/websocket-server.ts: an application never imports a host",
    "adapters/node/host.ts imports adapters/cli/wg.ts: adapters/node (host) may not import adapters/cli (app)",
    "adapters/ports/device.ts imports adapters/linux/tun.ts: adapters/ports (ports) may not import adapters/linux (shared)",
    "adapters/cli/wg.ts imports adapters/entries/wg-node.ts: nothing but an entry imports an entry",
  ]);
});

test("imports are read from every form the tree uses", () => {
  const text = [
    'import { a } from "../ports/device.ts";',
    'import type { B } from "./b.ts";',
    'export { c } from "../../src/engine.ts";',
    'await import("./wg-bun.ts");',
    'new Worker(new URL("./tun-reader.js", import.meta.url));',
    'import { wasmBytes } from "#engine-wasm";',
    'import dgram from "node:dgram";',
    '// import { x } from "../cli/wg.ts";',
  ].join("\n");
  assert.equal(importsOf("adapters/node/host.ts", text), [
    "adapters/ports/device.ts", "adapters/node/b.ts", "src/engine.ts", "adapters/node/wg-bun.ts",
    "adapters/node/tun-reader.ts", "build/out/engine.wasm.js",
  ]);
});

test.run();
