// The edge gateway's bundles (adapters/entries/workerd.ts, deno-gateway.ts):
// one ES module per platform, for those who deploy a file rather than the
// package.
//   build/out/edge/workerd/: worker.js, engine.wasm, workerd.capnp (run with
//     `workerd serve`; or deploy worker.js with engine.wasm as a CompiledWasm module)
//   build/out/edge/deno/:    gateway.js (run with `deno serve`)
// workerd imports engine.wasm as a `wasm` module (it compiles no bytes), so
// that import stays external ("./engine.wasm"), as does "cloudflare:sockets";
// Deno compiles the bytes the bundle carries.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

/** A plugin: every import of engine.wasm becomes the external "./engine.wasm" beside the bundle. */
const wasmBeside = {
  name: "engine-wasm-beside",
  setup(b) {
    b.onResolve({ filter: /^#engine-wasm-module$/ }, () => ({ path: "./engine.wasm", external: true }));
  },
};

/**
 * Bundles the gateway entries into build/out/edge/.
 * @param root the repository
 * @param esbuild the esbuild module
 * @returns the two output directories
 */
export async function buildEdge(root, esbuild) {
  const src = join(root, "adapters", "entries"), out = join(root, "build", "out", "edge");
  rmSync(out, { recursive: true, force: true });
  const wasm = join(root, "build", "out", "engine.wasm");
  const common = {
    bundle: true, format: "esm", target: "esnext", logLevel: "warning", plugins: [wasmBeside],
    legalComments: "none",
  };
  const workerd = join(out, "workerd"), deno = join(out, "deno");
  mkdirSync(workerd, { recursive: true });
  mkdirSync(deno, { recursive: true });
  await esbuild.build({
    ...common, entryPoints: [join(src, "workerd-worker.ts")], outfile: join(workerd, "worker.js"),
    platform: "browser", conditions: ["workerd", "worker"], external: ["cloudflare:sockets"],
  });
  copyFileSync(wasm, join(workerd, "engine.wasm"));
  copyFileSync(join(root, "adapters", "workerd", "gateway.capnp"), join(workerd, "workerd.capnp"));
  await esbuild.build({
    ...common, entryPoints: [join(src, "deno-gateway.ts")], outfile: join(deno, "gateway.js"), platform: "neutral",
  });
  return { workerd, deno };
}
