// The engine's WebAssembly module instantiated on its own, for suites that
// call assembly/ exports directly, and room in its memory for test data.
import { wasmBytes } from "#engine-wasm";

/** The AllowedIPs trie's exports (assembly/allowedips.ts). */
export interface AllowedIpsExports {
  aip_node_bytes(): number;
  /** Starts the heap the tries take their chunks from (assembly/heap.ts). */
  heap_start(at: number): void;
  heap_top(): number;
  aip_init(nodeBound: number, peerBound: number): number;
  aip_insert(v6: number, addr: number, cidr: number, peer: number): number;
  aip_remove(v6: number, addr: number, cidr: number, peer: number): number;
  aip_remove_peer(peer: number): void;
  aip_lookup4(addr: number): number;
  aip_lookup6(addr: number): number;
  aip_list(peer: number, out: number, max: number, from: number): number;
  aip_list_next(): number;
  aip_count(peer: number): number;
  aip_nodes_taken(): number;
  aip_nodes_used(): number;
}

/** The replay window's exports (assembly/replay.ts). */
export interface ReplayExports {
  REPLAY_BYTES: WebAssembly.Global;
  replay_reset(w: number): void;
  replay_check(w: number, counter: bigint): number;
  replay_update(w: number, counter: bigint): number;
}

/** A fresh instance; whatever the module imports, a call into it fails the test. */
export function instantiate<T>(): T & { memory: WebAssembly.Memory } {
  const module = new WebAssembly.Module(wasmBytes);
  const imports: Record<string, Record<string, unknown>> = {};
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.kind !== "function") throw new Error(`unexpected import ${i.module}.${i.name}`);
    (imports[i.module] ??= {})[i.name] = () => { throw new Error(`wasm called ${i.module}.${i.name}`); };
  }
  return new WebAssembly.Instance(module, imports as WebAssembly.Imports).exports as unknown as T & { memory: WebAssembly.Memory };
}

/**
 * The start (64-byte aligned) of `bytes` bytes above the module's static
 * data: at __heap_base when the module exports it, else in pages grown for
 * the test. Grows the memory to fit.
 */
export function heapStart(wasm: { memory: WebAssembly.Memory }, bytes: number): number {
  const base = (wasm as { __heap_base?: WebAssembly.Global }).__heap_base;
  let at: number;
  if (base) at = (Number(base.value) + 63) & ~63;
  else {
    at = wasm.memory.buffer.byteLength;
    wasm.memory.grow(1);
  }
  const have = wasm.memory.buffer.byteLength;
  if (at + bytes > have) wasm.memory.grow(Math.ceil((at + bytes - have) / 65536));
  return at;
}
