// The engine's view of its WebAssembly half: instantiation, the memory
// layout, and the control-plane calls (keys, AllowedIPs, handshake AEAD and
// BLAKE2s) that pass their arguments through the scratch area.
//
// The tables in WASM memory grow as peers, keypairs and prefixes are added
// (assembly/heap.ts), which detaches the ArrayBuffer behind `mem` and `desc`:
// every call here that may grow memory takes fresh views before it returns,
// and callers read `mem`/`desc` again after any control-plane call.
import { type Aead, type NoiseHash, nobleNoiseHash } from "./crypto.ts";
import type { Prefix } from "./ip.ts";
import { REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME } from "./constants.ts";
import { MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE, MESSAGE_TRANSPORT_MIN_SIZE, TAG_SIZE } from "./messages.ts";

/** The exports of build/out/engine.wasm (assembly/index.ts). */
export interface Exports {
  memory: WebAssembly.Memory;
  init(peerBound: number, slotBound: number, batch: number, cell: number, aipBound: number): number;
  slots_grow(want: number): number;
  peers_grow(want: number): number;
  heap_top(): number;
  scratch_ptr(): number;
  slot_ptr(slot: number): number;
  desc_ptr(): number;
  arena_ptr(): number;
  arena_stride(): number;
  slot_open(slot: number, peer: number, localIndex: number, remoteIndex: number, initiator: boolean, created: number): boolean;
  slot_close(slot: number): void;
  slot_counter_hi(slot: number): number;
  slot_counter_lo(slot: number): number;
  slot_set_counter(slot: number, hi: number, lo: number): void;
  peer_set_slot(peer: number, slot: number): void;
  peer_slot(peer: number): number;
  index_lookup(index: number): number;
  encap_batch(first: number, n: number, now: number, mtu: number): void;
  decap_batch(first: number, n: number, now: number): void;
  keepalive(slot: number, out: number, now: number): number;
  aead_seal(key: number, nonce: number, ad: number, adLen: number, p: number, len: number, tag: number): void;
  aead_open(key: number, nonce: number, ad: number, adLen: number, p: number, len: number, tag: number): boolean;
  xaead_seal(key: number, nonce: number, ad: number, adLen: number, p: number, len: number, tag: number): void;
  xaead_open(key: number, nonce: number, ad: number, adLen: number, p: number, len: number, tag: number): boolean;
  aip_insert(v6: boolean, addr: number, cidr: number, peer: number): boolean;
  aip_remove(v6: boolean, addr: number, cidr: number, peer: number): boolean;
  aip_remove_peer(peer: number): void;
  aip_lookup4(addr: number): number;
  aip_lookup6(addr: number): number;
  aip_list(peer: number, out: number, max: number, from: number): number;
  aip_list_next(): number;
  aip_count(peer: number): number;
  aip_nodes_taken(): number;
  aip_nodes_used(): number;
  set_simd(on: boolean): void;
  blake2s(out: number, outLen: number, key: number, keyLen: number, p: number, len: number): void;
  noise_hash(out: number, a: number, aLen: number, b: number, bLen: number): void;
  noise_kdf(n: number, out: number, key: number, keyLen: number, p: number, len: number): void;
  offload_init(batch: number, stride: number): number;
  offload_stage_ptr(): number;
  offload_stage_bytes(): number;
  offload_items_ptr(): number;
  offload_lens_ptr(): number;
  offload_pkts_ptr(): number;
  offload_results_ptr(): number;
  offload_udp_stage_ptr(): number;
  offload_udp_stage_bytes(): number;
  offload_dropped(): number;
  offload_split(n: number, cells: number, stride: number, mtu: number, max: number, first: number): number;
  offload_resume(): number;
  offload_coalesce(n: number): number;
}

// Mirrors of assembly/index.ts, checked against engine.wasm's exported
// globals of the same names at instantiation (checkAbi).
export const HEADROOM = 16;
export const DESC_LEN = 0, DESC_PEER = 1, DESC_STATUS = 2, DESC_SLOT = 3; // in i32 units
export const ENCAP_SEND = 0, ENCAP_SEND_REKEY = 1, ENCAP_NO_ROUTE = 2, ENCAP_NO_KEY = 3, ENCAP_BAD = 4;
export const DECAP_DATA = 0, DECAP_KEEPALIVE = 1, DECAP_NOT_DATA = 2, DECAP_UNKNOWN = 3, DECAP_EXPIRED = 4,
  DECAP_REPLAY = 5, DECAP_AUTH = 6, DECAP_SOURCE = 7, DECAP_MALFORMED = 8;
export const SLOT_SEND_KEY = 0, SLOT_RECV_KEY = 32;
export const SCRATCH_BYTES = 4096;
/** A virtio_net_hdr's bytes (assembly/offload.ts). */
export const VNET_HDR = 10;

/**
 * What src/ assumes of engine.wasm, by the name of the global assembly/
 * exports for it. Descriptor fields are i32 indices here and byte offsets
 * there; the 64-bit counts are u64 there.
 */
const ABI: [string, number | bigint][] = [
  ["HEADROOM", HEADROOM], ["SCRATCH_BYTES", SCRATCH_BYTES], ["VNET_HDR", VNET_HDR], ["SLOT_SEND_KEY", SLOT_SEND_KEY], ["SLOT_RECV_KEY", SLOT_RECV_KEY],
  ["DESC_LEN", DESC_LEN * 4], ["DESC_PEER", DESC_PEER * 4], ["DESC_STATUS", DESC_STATUS * 4], ["DESC_SLOT", DESC_SLOT * 4], ["DESC_BYTES", 16],
  ["ENCAP_SEND", ENCAP_SEND], ["ENCAP_SEND_REKEY", ENCAP_SEND_REKEY], ["ENCAP_NO_ROUTE", ENCAP_NO_ROUTE], ["ENCAP_NO_KEY", ENCAP_NO_KEY], ["ENCAP_BAD", ENCAP_BAD],
  ["DECAP_DATA", DECAP_DATA], ["DECAP_KEEPALIVE", DECAP_KEEPALIVE], ["DECAP_NOT_DATA", DECAP_NOT_DATA], ["DECAP_UNKNOWN", DECAP_UNKNOWN],
  ["DECAP_EXPIRED", DECAP_EXPIRED], ["DECAP_REPLAY", DECAP_REPLAY], ["DECAP_AUTH", DECAP_AUTH], ["DECAP_SOURCE", DECAP_SOURCE], ["DECAP_MALFORMED", DECAP_MALFORMED],
  ["TYPE_DATA", MESSAGE_TRANSPORT], ["HEADER", MESSAGE_TRANSPORT_HEADER_SIZE], ["TAG", TAG_SIZE], ["MIN_DATA", MESSAGE_TRANSPORT_MIN_SIZE],
  ["REKEY_AFTER_TIME_MS", REKEY_AFTER_TIME], ["REJECT_AFTER_TIME_MS", REJECT_AFTER_TIME],
  ["REKEY_AFTER_MESSAGES", REKEY_AFTER_MESSAGES], ["REJECT_AFTER_MESSAGES", REJECT_AFTER_MESSAGES],
];

/**
 * Checks that engine.wasm's exported constants are what src/ assumes.
 * @throws Error naming the first constant on which they disagree (a build of one half without the other)
 */
export function checkAbi(exports: Record<string, unknown>): void {
  for (const [name, want] of ABI) {
    const g = exports[name];
    if (!(g instanceof WebAssembly.Global)) throw new Error(`engine.wasm does not export ${name}: rebuild it (npm run build)`);
    let got = g.value as number | bigint;
    if (typeof want === "bigint") got = BigInt.asUintN(64, BigInt(got));
    if (got !== want) throw new Error(`engine.wasm and src/wasm.ts disagree on ${name}: ${got} against ${want}: rebuild (npm run build)`);
  }
}

/** The fixed part of memory and the bounds the tables may grow to. */
export interface Layout {
  /** Most peers (ids 0..maxPeers-1). */
  maxPeers: number;
  /** Most keypair slots. */
  maxSlots: number;
  batch: number;
  /** Bytes per arena cell: the largest datagram accepted. */
  cell: number;
  /** Most AllowedIPs trie nodes (n prefixes need at most 2n - 1). */
  aipNodes: number;
  /** Lay out the TUN offload area too (src/offload.ts). */
  offload?: boolean;
}

/** Instantiates the engine's module and lays out its memory. */
export function instantiate(module: WebAssembly.Module, layout: Layout): Wasm {
  const instance = new WebAssembly.Instance(module, {
    env: { abort() { throw new Error("engine.wasm aborted"); } },
  });
  checkAbi(instance.exports);
  return new Wasm(instance.exports as unknown as Exports, layout);
}

export class Wasm implements Aead, NoiseHash {
  readonly x: Exports;
  /** All of linear memory: replaced when memory grows (see refresh). */
  mem: Uint8Array;
  /** The descriptors: replaced with mem. */
  desc: Int32Array;
  readonly arena: number;
  readonly stride: number;
  private readonly scratch: number;
  private readonly descLen: number;

  constructor(x: Exports, layout: Layout) {
    this.x = x;
    // Three arena regions of `batch` cells: from the tunnel, from the network,
    // and the engine's own (flushing queued packets), so none overwrites another's.
    if (x.init(layout.maxPeers, layout.maxSlots, layout.batch * 3, layout.cell, layout.aipNodes) === 0) {
      throw new RangeError("engine.wasm: not enough memory for the requested layout");
    }
    this.descLen = layout.batch * 3 * 4;
    // Grows memory: before any view of it is taken.
    if (layout.offload && x.offload_init(layout.batch, x.arena_stride()) === 0) {
      throw new RangeError("engine.wasm: not enough memory for the offload area");
    }
    this.mem = new Uint8Array(x.memory.buffer);
    this.desc = new Int32Array(x.memory.buffer, x.desc_ptr(), this.descLen);
    this.arena = x.arena_ptr();
    this.stride = x.arena_stride();
    this.scratch = x.scratch_ptr();
  }

  /** Takes new views of memory if a call grew it. */
  refresh(): void {
    const buf = this.x.memory.buffer;
    if (this.mem.buffer === buf) return;
    this.mem = new Uint8Array(buf);
    this.desc = new Int32Array(buf, this.x.desc_ptr(), this.descLen);
  }

  /** Room for keypair slots 0..want-1; returns how many there are room for (less at the bound). */
  growSlots(want: number): number {
    const n = this.x.slots_grow(want);
    this.refresh();
    return n;
  }

  /** Room for peer ids 0..want-1; returns how many there are room for (less at the bound). */
  growPeers(want: number): number {
    const n = this.x.peers_grow(want);
    this.refresh();
    return n;
  }

  /** Bytes of linear memory in use (the fixed part and every table's chunks). */
  get bytesInUse(): number {
    return this.x.heap_top();
  }

  /** Byte offset of arena cell i. */
  cell(i: number): number {
    return this.arena + i * this.stride;
  }

  // ---- keypair slots ----
  openSlot(slot: number, peer: number, sendKey: Uint8Array, recvKey: Uint8Array, localIndex: number,
    remoteIndex: number, initiator: boolean, created: number): boolean {
    const s = this.x.slot_ptr(slot);
    this.mem.set(sendKey, s + SLOT_SEND_KEY);
    this.mem.set(recvKey, s + SLOT_RECV_KEY);
    return this.x.slot_open(slot, peer, localIndex >>> 0, remoteIndex >>> 0, initiator, created);
  }

  /** The send counter as a BigInt (it outgrows a JS number). */
  sendCounter(slot: number): bigint {
    return (BigInt(this.x.slot_counter_hi(slot) >>> 0) << 32n) | BigInt(this.x.slot_counter_lo(slot) >>> 0);
  }

  setSendCounter(slot: number, n: bigint): void {
    this.x.slot_set_counter(slot, Number(n >> 32n), Number(n & 0xffffffffn));
  }

  // ---- AllowedIPs ----
  private putAddr(p: Prefix): number {
    this.mem.set(p.bytes, this.scratch);
    return this.scratch;
  }
  /** May grow memory (new views are taken). */
  insertPrefix(p: Prefix, peer: number): boolean {
    const ok = this.x.aip_insert(p.bytes.length === 16, this.putAddr(p), p.cidr, peer);
    this.refresh();
    return ok;
  }
  removePrefix(p: Prefix, peer: number): boolean {
    return this.x.aip_remove(p.bytes.length === 16, this.putAddr(p), p.cidr, peer);
  }
  lookup(addr: Uint8Array): number {
    this.mem.set(addr, this.scratch);
    return addr.length === 4 ? this.x.aip_lookup4(this.scratch) : this.x.aip_lookup6(this.scratch);
  }
  /** A peer's prefixes, in the order they were given to it. */
  listPrefixes(peer: number): Prefix[] {
    const out: Prefix[] = [];
    this.eachPrefix(peer, (bytes, cidr) => { out.push({ bytes: bytes.slice(), cidr }); });
    return out;
  }

  /** Calls `fn` with each of a peer's prefixes, in order (see pagePrefixes). */
  eachPrefix(peer: number, fn: (bytes: Uint8Array, cidr: number) => void): void {
    let from = 0;
    do from = this.pagePrefixes(peer, from, Infinity, fn); while (from !== 0);
  }

  /**
   * Calls `fn` with up to `max` of a peer's prefixes (in the order given to
   * it), starting at the beginning (`from` 0) or where the last page
   * stopped; `bytes` is a view into scratch, valid only during the call, and
   * `fn` must not change AllowedIPs. Changes between pages are seen, but if
   * the prefix the cursor points at is removed, the listing ends there.
   * @returns the cursor for the next page, 0 when the listing is done
   */
  pagePrefixes(peer: number, from: number, max: number, fn: (bytes: Uint8Array, cidr: number) => void): number {
    const at = this.scratch;
    let left = max;
    for (;;) {
      const n = this.x.aip_list(peer, at, Math.min(left, Math.floor(SCRATCH_BYTES / 20)), from);
      from = n === 0 ? 0 : this.x.aip_list_next();
      const m = this.mem;
      for (let i = 0; i < n; i++) {
        const e = at + i * 20;
        fn(m.subarray(e + 4, e + 4 + (m[e] === 4 ? 4 : 16)), m[e + 1]);
      }
      left -= n;
      if (from === 0 || left <= 0) return from;
    }
  }

  // ---- Aead for handshake and cookie messages (small, through scratch) ----
  private crypt(x: boolean, seal: boolean, key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, input: Uint8Array, out: Uint8Array): boolean {
    const m = this.mem, k = this.scratch, nn = k + 32, a = nn + 32, p = a + ad.length;
    const len = seal ? input.length : input.length - 16;
    if (len < 0 || p + len + 16 > this.scratch + SCRATCH_BYTES) return false;
    m.set(key, k); m.set(nonce, nn); m.set(ad, a); m.set(input, p);
    let ok = true;
    if (seal) (x ? this.x.xaead_seal : this.x.aead_seal)(k, nn, a, ad.length, p, len, p + len);
    else ok = (x ? this.x.xaead_open : this.x.aead_open)(k, nn, a, ad.length, p, len, p + len);
    if (ok) out.set(m.subarray(p, p + (seal ? len + 16 : len)));
    m.fill(0, k, p + len + 16); // no key or plaintext left behind in scratch
    return ok;
  }
  seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
    this.crypt(false, true, key, nonce, ad, plaintext, out);
  }
  open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean {
    return this.crypt(false, false, key, nonce, ad, sealed, out);
  }
  xseal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
    this.crypt(true, true, key, nonce, ad, plaintext, out);
  }
  xopen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean {
    return this.crypt(true, false, key, nonce, ad, sealed, out);
  }

  // ---- NoiseHash for handshake and cookie messages: one crossing per Noise step ----
  // Inputs are copied to the start of scratch, the result is written back over
  // them (assembly/blake2s.ts reads every input first), and the bytes used are
  // zeroed before returning. Inputs too long for scratch (never a handshake's)
  // take the portable path.
  hash(a: Uint8Array, b: Uint8Array, out: Uint8Array): void {
    const m = this.mem, s = this.scratch, n = a.length + b.length;
    if (n > SCRATCH_BYTES) return nobleNoiseHash.hash(a, b, out);
    m.set(a, s); m.set(b, s + a.length);
    this.x.noise_hash(s, s, a.length, s + a.length, b.length);
    out.set(m.subarray(s, s + 32));
    m.fill(0, s, s + Math.max(n, 32));
  }
  mac(key: Uint8Array, msg: Uint8Array, out: Uint8Array): void {
    const m = this.mem, s = this.scratch, p = s + 32;
    if (key.length > 32 || 32 + msg.length > SCRATCH_BYTES) return nobleNoiseHash.mac(key, msg, out);
    m.set(key, s); m.set(msg, p);
    this.x.blake2s(s, 16, s, key.length, p, msg.length);
    out.set(m.subarray(s, s + 16));
    m.fill(0, s, p + msg.length);
  }
  kdf(key: Uint8Array, input: Uint8Array, t1: Uint8Array, t2?: Uint8Array, t3?: Uint8Array): void {
    const m = this.mem, s = this.scratch, p = s + 64, n = t3 ? 3 : t2 ? 2 : 1;
    if (key.length > 64 || 64 + input.length > SCRATCH_BYTES) return nobleNoiseHash.kdf(key, input, t1, t2, t3);
    m.set(key, s); m.set(input, p);
    this.x.noise_kdf(n, s, s, key.length, p, input.length);
    t1.set(m.subarray(s, s + 32));
    if (t2) t2.set(m.subarray(s + 32, s + 64));
    if (t3) t3.set(m.subarray(s + 64, s + 96));
    m.fill(0, s, Math.max(p + input.length, s + 96));
  }
}
