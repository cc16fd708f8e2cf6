// Linear memory above the fixed layout (assembly/index.ts init), taken in
// chunks as the tables grow: keypair slots, per-peer records, AllowedIPs
// nodes. WebAssembly memory only grows, so nothing here is ever given back;
// a growing table reuses its own freed entries instead.
//
// Growing memory detaches the ArrayBuffer JS holds: every export that may
// call heap_take says so, and src/wasm.ts takes new views after it.

let top: usize = 0;

/** Where the heap starts (just above the fixed layout; tests start one of their own). */
export function heap_start(p: usize): void {
  top = p;
}

/** The first byte above everything taken so far. */
export function heap_top(): usize {
  return top;
}

/**
 * `bytes` of zeroed memory, 64-byte aligned, growing memory when needed.
 * @returns the address, or 0 when memory cannot grow that far (4 GiB, or the host refused)
 */
export function heap_take(bytes: usize): usize {
  const p = (top + 63) & ~(<usize>63);
  const end = p + bytes;
  if (end < p || p < top) return 0;
  const need = <i32>((<u64>end + 0xffff) >> 16) - memory.size();
  if (need > 0 && memory.grow(need) < 0) return 0;
  top = end;
  return p;
}

// ---- Chunked tables -------------------------------------------------------
// A table of fixed-size records that grows a chunk at a time: a directory of
// chunk addresses (sized once, for the table's upper bound) and the chunks,
// taken from the heap as records are wanted. A record never moves, so an
// address handed out stays good.

/** A table's directory: room for the chunk addresses up to `maxRecords`. 0 when memory cannot grow. */
export function table_directory(maxRecords: u32, chunkBits: u32): usize {
  const chunks = (<usize>maxRecords + (<usize>1 << chunkBits) - 1) >> chunkBits;
  return heap_take(chunks << 2);
}

/**
 * Adds chunks to a table until it holds at least `want` records (at most `maxRecords`).
 * @returns the table's new capacity in records (less than `want` when the bound or memory stopped it)
 */
export function table_grow(dir: usize, cap: u32, want: u32, maxRecords: u32, chunkBits: u32, recordBytes: u32): u32 {
  if (want > maxRecords) want = maxRecords;
  while (cap < want) {
    const bytes = <usize>recordBytes << chunkBits;
    const chunk = heap_take(bytes);
    if (chunk == 0) break;
    memory.fill(chunk, 0, bytes); // fresh pages are zero already; a restarted heap's are not
    store<usize>(dir + (<usize>(cap >> chunkBits) << 2), chunk);
    cap += <u32>1 << chunkBits;
  }
  return cap;
}

/** The address of record i of a table (i below its capacity). */
@inline export function table_at(dir: usize, i: u32, chunkBits: u32, recordBytes: u32): usize {
  return load<usize>(dir + (<usize>(i >> chunkBits) << 2)) + <usize>(i & ((<u32>1 << chunkBits) - 1)) * <usize>recordBytes;
}
