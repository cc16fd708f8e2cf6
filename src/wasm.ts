// The engine's view of its WebAssembly half: instantiation, the memory
// layout, and the control-plane calls (keys, AllowedIPs, handshake AEAD)
// that pass their arguments through the scratch area.
import type { Aead } from "./crypto.ts";
import type { Prefix } from "./ip.ts";
import { REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME } from "./constants.ts";
import { MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE, MESSAGE_TRANSPORT_MIN_SIZE, TAG_SIZE } from "./messages.ts";

/** The exports of build/out/engine.wasm (assembly/index.ts). */
export interface Exports {
  memory: WebAssembly.Memory;
  init(peers: number, slots: number, batch: number, cell: number, aipNodes: number): number;
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
  aip_list(peer: number, out: number, max: number): number;
  aip_count(peer: number): number;
  set_simd(on: boolean): void;
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

export interface Layout {
  maxPeers: number;
  maxSlots: number;
  batch: number;
  /** Bytes per arena cell: the largest datagram accepted. */
  cell: number;
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

export class Wasm implements Aead {
  readonly x: Exports;
  /** All of linear memory; stable, since memory never grows after init. */
  readonly mem: Uint8Array;
  readonly desc: Int32Array;
  readonly arena: number;
  readonly stride: number;
  private readonly scratch: number;

  constructor(x: Exports, layout: Layout) {
    this.x = x;
    // Three arena regions of `batch` cells: from the tunnel, from the network,
    // and the engine's own (flushing queued packets), so none overwrites another's.
    if (x.init(layout.maxPeers, layout.maxSlots, layout.batch * 3, layout.cell, layout.aipNodes) === 0) {
      throw new RangeError("engine.wasm: not enough memory for the requested layout");
    }
    // Grows memory: before any view of it is taken.
    if (layout.offload && x.offload_init(layout.batch, x.arena_stride()) === 0) {
      throw new RangeError("engine.wasm: not enough memory for the offload area");
    }
    this.mem = new Uint8Array(x.memory.buffer);
    this.desc = new Int32Array(x.memory.buffer, x.desc_ptr(), layout.batch * 3 * 4);
    this.arena = x.arena_ptr();
    this.stride = x.arena_stride();
    this.scratch = x.scratch_ptr();
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
  insertPrefix(p: Prefix, peer: number): boolean {
    return this.x.aip_insert(p.bytes.length === 16, this.putAddr(p), p.cidr, peer);
  }
  removePrefix(p: Prefix, peer: number): boolean {
    return this.x.aip_remove(p.bytes.length === 16, this.putAddr(p), p.cidr, peer);
  }
  lookup(addr: Uint8Array): number {
    this.mem.set(addr, this.scratch);
    return addr.length === 4 ? this.x.aip_lookup4(this.scratch) : this.x.aip_lookup6(this.scratch);
  }
  listPrefixes(peer: number): Prefix[] {
    const out: Prefix[] = [];
    const max = Math.floor(SCRATCH_BYTES / 20);
    const total = this.x.aip_count(peer);
    if (total > max) {
      // Rare: more prefixes than fit in scratch; borrow the engine's own arena region.
      return this.listInto(peer, this.cell(0), total, out);
    }
    return this.listInto(peer, this.scratch, max, out);
  }
  private listInto(peer: number, at: number, max: number, out: Prefix[]): Prefix[] {
    const n = this.x.aip_list(peer, at, max);
    for (let i = 0; i < n; i++) {
      const e = at + i * 20;
      const len = this.mem[e] === 4 ? 4 : 16;
      out.push({ bytes: this.mem.slice(e + 4, e + 4 + len), cidr: this.mem[e + 1] });
    }
    return out;
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
}
