// The WebAssembly side of the engine: per-packet work only.
//
// `init` lays out the fixed part of memory once; the tables above it grow a
// chunk at a time (assembly/heap.ts) as peers, keypairs and prefixes are
// added, up to bounds given at init. Only control-plane calls grow them
// (slots_grow, peers_grow, aip_insert): the hot path allocates nothing.
//
//   scratch   SCRATCH_BYTES   arguments for control-plane calls (keys, nonces)
//   desc      batch x 16      one descriptor per packet of a batch
//   arena     batch x stride  the packets themselves, encrypted/decrypted in place
//   heap:     slots (SLOT_BYTES each: keys, counter, replay window), peer
//             records (the slot each sends with), the receiver index table
//             (index -> slot, open addressing, rehashed larger as slots grow),
//             AllowedIPs nodes and per-peer prefix lists
//
// JS crosses in once per batch: encap_batch for packets from the tunnel,
// decap_batch for datagrams from the network.

import { seal_transport, open_transport } from "./aead";
import { REPLAY_BYTES, replay_check, replay_update, replay_reset } from "./replay";
import { aip_init, aip_lookup4, aip_lookup6 } from "./allowedips";
import { heap_start, heap_take, table_at, table_directory, table_grow } from "./heap";

export * from "./aead";
export * from "./replay";
export * from "./allowedips";
export { heap_start, heap_top } from "./heap";
export * from "./blake2s";
export * from "./offload";

// Every exported constant below is an exported global of engine.wasm, and
// src/wasm.ts checks each one it mirrors when it instantiates the module:
// the two halves cannot drift apart unnoticed.

// Specification constants (whitepaper section 6).
export const REJECT_AFTER_TIME_MS: f64 = 180_000;
export const REKEY_AFTER_TIME_MS: f64 = 120_000;
export const REKEY_AFTER_MESSAGES: u64 = 1 << 60;
export const REJECT_AFTER_MESSAGES: u64 = 0xFFFF_FFFF_FFFF_DFFF; // 2^64 - 2^13 - 1

// Message layout.
export const TYPE_DATA: u32 = 4;
export const HEADER: usize = 16; // type u32, receiver u32, counter u64
export const TAG: usize = 16;
export const MIN_DATA: usize = HEADER + TAG;

// Slot layout.
export const SLOT_SEND_KEY: usize = 0;
export const SLOT_RECV_KEY: usize = 32;
export const SLOT_SEND_COUNTER: usize = 64;
export const SLOT_REMOTE_INDEX: usize = 72;
export const SLOT_LOCAL_INDEX: usize = 76;
export const SLOT_PEER: usize = 80;
export const SLOT_FLAGS: usize = 84;
export const SLOT_CREATED: usize = 88; // f64, ms on the engine's clock
export const SLOT_REPLAY: usize = 128;
export const FLAG_LIVE: u32 = 1; // may receive
export const FLAG_INITIATOR: u32 = 2; // this side initiated: rekeys on time

// Descriptor layout: four i32 per packet.
export const DESC_LEN: usize = 0; // in: packet length; out: result length
export const DESC_PEER: usize = 4; // out: peer id (-1 if none)
export const DESC_STATUS: usize = 8; // out: a status below
export const DESC_SLOT: usize = 12; // out: keypair slot used (-1 if none)
export const DESC_BYTES: usize = 16;

// Where a packet sits in its arena cell. Encap: plaintext at HEADROOM, the
// message is written from 0. Decap: the datagram at 0, plaintext at HEADER.
export const HEADROOM: usize = HEADER;

// Statuses of encap_batch.
export const ENCAP_SEND: i32 = 0; // send the message
export const ENCAP_SEND_REKEY: i32 = 1; // send it, and start a new handshake
export const ENCAP_NO_ROUTE: i32 = 2; // no peer for the destination: drop
export const ENCAP_NO_KEY: i32 = 3; // peer has no usable keypair: queue, handshake
export const ENCAP_BAD: i32 = 4; // not an IP packet or too big: drop

// Statuses of decap_batch.
export const DECAP_DATA: i32 = 0; // deliver the plaintext
export const DECAP_KEEPALIVE: i32 = 1; // authentic, empty
export const DECAP_NOT_DATA: i32 = 2; // not a transport message: for the handshake code
export const DECAP_UNKNOWN: i32 = 3; // no live keypair with that receiver index
export const DECAP_EXPIRED: i32 = 4; // keypair older than REJECT_AFTER_TIME
export const DECAP_REPLAY: i32 = 5; // counter replayed, too old or too big
export const DECAP_AUTH: i32 = 6; // tag did not verify
export const DECAP_SOURCE: i32 = 7; // authentic, but the inner source is not this peer's
export const DECAP_MALFORMED: i32 = 8; // authentic, but not a valid IP packet

export const SCRATCH_BYTES: usize = 4096;
const SLOT_BYTES: usize = (SLOT_REPLAY + REPLAY_BYTES + 63) & ~63;

// Slots come in chunks of 256, peer records (an i32 slot each) in chunks of 1024.
const SLOT_CHUNK_BITS: u32 = 8;
const PEER_CHUNK_BITS: u32 = 10;

let scratch: usize = 0;
let slotDir: usize = 0;
let slotCap: u32 = 0;
let maxSlots: u32 = 0;
let index: usize = 0;
let indexMask: u32 = 0;
let peerDir: usize = 0;
let peerCap: u32 = 0;
let maxPeers: u32 = 0;
let desc: usize = 0;
let arena: usize = 0;
let batch: u32 = 0;
let stride: usize = 0;

/**
 * Lays out memory; call once. The bounds are upper limits: tables start
 * empty and grow with slots_grow, peers_grow and aip_insert.
 * @param peerBound most peers (ids 0..peerBound-1)
 * @param slotBound most keypair slots
 * @param aipBound most AllowedIPs trie nodes (a table of n prefixes needs at most 2n - 1)
 * @returns the bytes in use, or 0 when memory cannot grow that far
 */
export function init(peerBound: u32, slotBound: u32, batchCap: u32, cellBytes: u32, aipBound: u32): usize {
  maxPeers = peerBound;
  maxSlots = slotBound;
  batch = batchCap;
  stride = (<usize>cellBytes + 63) & ~63;

  let p: usize = (__heap_base + 63) & ~63;
  scratch = p; p += SCRATCH_BYTES;
  desc = p; p += (<usize>batchCap * DESC_BYTES + 63) & ~63;
  arena = p; p += <usize>batchCap * stride;
  heap_start(p);
  if (heap_take(0) == 0) return 0;
  memory.fill(scratch, 0, p - scratch);
  slotDir = table_directory(slotBound, SLOT_CHUNK_BITS);
  peerDir = table_directory(peerBound, PEER_CHUNK_BITS);
  if (slotDir == 0 || peerDir == 0 || !index_resize(16)) return 0;
  if (!aip_init(aipBound, peerBound)) return 0;
  return p;
}

export function scratch_ptr(): usize { return scratch; }
@inline export function slot_ptr(slot: u32): usize { return table_at(slotDir, slot, SLOT_CHUNK_BITS, <u32>SLOT_BYTES); }
@inline function peer_rec(peer: u32): usize { return table_at(peerDir, peer, PEER_CHUNK_BITS, 4); }

/**
 * Makes room for at least `want` keypair slots (ids 0..want-1), up to the
 * bound; may grow memory. The receiver index table grows with them.
 * @returns the slots there are room for now (less than `want` at the bound or out of memory)
 */
export function slots_grow(want: u32): u32 {
  if (want <= slotCap) return slotCap;
  let cap = table_grow(slotDir, slotCap, want, maxSlots, SLOT_CHUNK_BITS, <u32>SLOT_BYTES);
  if (cap > maxSlots) cap = maxSlots;
  let icap: u32 = indexMask + 1;
  while (icap < cap * 2) icap <<= 1;
  if (icap > indexMask + 1 && !index_resize(icap)) return slotCap;
  slotCap = cap;
  return slotCap;
}

/**
 * Makes room for at least `want` peers (ids 0..want-1), up to the bound; may grow memory.
 * @returns the peers there are room for now
 */
export function peers_grow(want: u32): u32 {
  if (want <= peerCap) return peerCap;
  let cap = table_grow(peerDir, peerCap, want, maxPeers, PEER_CHUNK_BITS, 4);
  for (let i = peerCap; i < cap; i++) store<i32>(peer_rec(i), -1);
  if (cap > maxPeers) cap = maxPeers;
  peerCap = cap;
  return peerCap;
}
export function desc_ptr(): usize { return desc; }
export function arena_ptr(): usize { return arena; }
export function arena_stride(): usize { return stride; }

// ---- Keypair slots -------------------------------------------------------

/** Makes a slot live. Keys and indices are written by JS at slot_ptr first (the send key at 0, recv key at 32). */
export function slot_open(slot: u32, peer: u32, localIndex: u32, remoteIndex: u32, initiator: bool, created: f64): bool {
  if (slot >= slotCap) return false;
  const s = slot_ptr(slot);
  store<u64>(s + SLOT_SEND_COUNTER, 0);
  store<u32>(s + SLOT_REMOTE_INDEX, remoteIndex);
  store<u32>(s + SLOT_LOCAL_INDEX, localIndex);
  store<u32>(s + SLOT_PEER, peer);
  store<u32>(s + SLOT_FLAGS, FLAG_LIVE | (initiator ? FLAG_INITIATOR : 0));
  store<f64>(s + SLOT_CREATED, created);
  replay_reset(s + SLOT_REPLAY);
  return index_insert(localIndex, slot);
}

/** Retires a slot: zeroes its keys, unmaps its index, and detaches it from its peer. */
export function slot_close(slot: u32): void {
  const s = slot_ptr(slot);
  if (load<u32>(s + SLOT_FLAGS) & FLAG_LIVE) index_remove(load<u32>(s + SLOT_LOCAL_INDEX), slot);
  const peer = load<u32>(s + SLOT_PEER);
  if (peer < peerCap && load<i32>(peer_rec(peer)) == <i32>slot) store<i32>(peer_rec(peer), -1);
  memory.fill(s, 0, SLOT_BYTES);
}

/** The send counter, which JS cannot hold as a number: as two halves. */
export function slot_counter_hi(slot: u32): u32 { return <u32>(load<u64>(slot_ptr(slot) + SLOT_SEND_COUNTER) >>> 32); }
export function slot_counter_lo(slot: u32): u32 { return <u32>load<u64>(slot_ptr(slot) + SLOT_SEND_COUNTER); }
/** Sets the send counter (tests start it near the limits). */
export function slot_set_counter(slot: u32, hi: u32, lo: u32): void {
  store<u64>(slot_ptr(slot) + SLOT_SEND_COUNTER, (<u64>hi << 32) | <u64>lo);
}

/** Takes the next send counter for a message JS builds itself (a keepalive); -1 when exhausted. */
function next_counter(s: usize): u64 {
  const n = load<u64>(s + SLOT_SEND_COUNTER);
  if (n >= REJECT_AFTER_MESSAGES) return u64.MAX_VALUE;
  store<u64>(s + SLOT_SEND_COUNTER, n + 1);
  return n;
}

/** Which slot a peer sends with (-1: none). */
export function peer_set_slot(peer: u32, slot: i32): void {
  if (peer < peerCap) store<i32>(peer_rec(peer), slot);
}
export function peer_slot(peer: u32): i32 {
  return peer < peerCap ? load<i32>(peer_rec(peer)) : -1;
}

// ---- Receiver index table: open addressing, linear probing ---------------
// Entries are (index u32, slot+1 u32); slot+1 == 0 marks an empty entry.

/**
 * Moves the table to a new one of `cap` entries (a power of two), rehashing
 * the live entries. The old table's memory is not reused (memory only grows);
 * doubling keeps what is left behind below the size of the table in use.
 */
function index_resize(cap: u32): bool {
  const next = heap_take(<usize>cap << 3);
  if (next == 0) return false;
  memory.fill(next, 0, <usize>cap << 3);
  const old = index, oldCap: u32 = old == 0 ? 0 : indexMask + 1;
  index = next;
  indexMask = cap - 1;
  for (let i: u32 = 0; i < oldCap; i++) {
    const e = old + (<usize>i << 3);
    const v = load<u32>(e, 4);
    if (v == 0) continue;
    let j = mix(load<u32>(e)) & indexMask;
    while (load<u32>(index + (<usize>j << 3), 4) != 0) j = (j + 1) & indexMask;
    store<u64>(index + (<usize>j << 3), load<u64>(e));
  }
  if (old != 0) memory.fill(old, 0, <usize>oldCap << 3);
  return true;
}

@inline function mix(x: u32): u32 {
  // Indices are random already; the multiply only spreads low-entropy test values.
  return (x * 0x9E3779B1) >>> 0;
}

function index_insert(key: u32, slot: u32): bool {
  let i = mix(key) & indexMask;
  for (let n: u32 = 0; n <= indexMask; n++) {
    const e = index + (<usize>i << 3);
    const v = load<u32>(e, 4);
    if (v == 0 || (load<u32>(e) == key)) {
      if (v != 0 && v != slot + 1) return false; // index taken by another live slot
      store<u32>(e, key);
      store<u32>(e, slot + 1, 4);
      return true;
    }
    i = (i + 1) & indexMask;
  }
  return false;
}

function index_find(key: u32): i32 {
  let i = mix(key) & indexMask;
  for (let n: u32 = 0; n <= indexMask; n++) {
    const e = index + (<usize>i << 3);
    const v = load<u32>(e, 4);
    if (v == 0) return -1;
    if (load<u32>(e) == key) return <i32>v - 1;
    i = (i + 1) & indexMask;
  }
  return -1;
}

function index_remove(key: u32, slot: u32): void {
  let i = mix(key) & indexMask;
  for (let n: u32 = 0; n <= indexMask; n++) {
    const e = index + (<usize>i << 3);
    const v = load<u32>(e, 4);
    if (v == 0) return;
    if (load<u32>(e) == key && v == slot + 1) {
      // Backward-shift deletion keeps every probe chain unbroken.
      let hole = i;
      let j = (i + 1) & indexMask;
      while (true) {
        const f = index + (<usize>j << 3);
        const fv = load<u32>(f, 4);
        if (fv == 0) break;
        const home = mix(load<u32>(f)) & indexMask;
        // Move f into the hole unless its home lies cyclically in (hole, j].
        if (((j - home) & indexMask) >= ((j - hole) & indexMask)) {
          const h = index + (<usize>hole << 3);
          store<u64>(h, load<u64>(f));
          hole = j;
        }
        j = (j + 1) & indexMask;
      }
      store<u64>(index + (<usize>hole << 3), 0);
      return;
    }
    i = (i + 1) & indexMask;
  }
}

/** The live slot for a receiver index, or -1. */
export function index_lookup(key: u32): i32 { return index_find(key); }

// ---- The data path --------------------------------------------------------

/** The peer the inner packet's address (source or destination) belongs to, or -1. */
@inline function route(p: usize, len: usize, dst: bool): i32 {
  if (len < 1) return -2;
  const v = load<u8>(p) >> 4;
  if (v == 4) {
    if (len < 20) return -2;
    return aip_lookup4(p + (dst ? 16 : 12));
  }
  if (v == 6) {
    if (len < 40) return -2;
    return aip_lookup6(p + (dst ? 24 : 8));
  }
  return -2;
}

/**
 * Encrypts cells first..first+n-1, IP packets read from the tunnel. Packet i's plaintext
 * sits at arena + i*stride + HEADROOM with its length in descriptor i; the
 * transport message replaces it from arena + i*stride. `mtu` bounds the
 * padding (whitepaper 5.4.6: pad to 16, never past the MTU).
 */
export function encap_batch(first: u32, n: u32, now: f64, mtu: u32): void {
  for (let i: u32 = first; i < first + n; i++) {
    const d = desc + (<usize>i << 4);
    const cell = arena + <usize>i * stride;
    const len = <usize>load<i32>(d + DESC_LEN);
    store<i32>(d + DESC_SLOT, -1);
    if (len > stride - HEADROOM - TAG - 16 || len > <usize>mtu) {
      store<i32>(d + DESC_PEER, -1);
      store<i32>(d + DESC_STATUS, ENCAP_BAD);
      continue;
    }
    const peer = route(cell + HEADROOM, len, true);
    store<i32>(d + DESC_PEER, peer);
    if (peer < 0) {
      store<i32>(d + DESC_STATUS, peer == -1 ? ENCAP_NO_ROUTE : ENCAP_BAD);
      continue;
    }
    const slot = peer_slot(<u32>peer);
    if (slot < 0) {
      store<i32>(d + DESC_STATUS, ENCAP_NO_KEY);
      continue;
    }
    const s = slot_ptr(<u32>slot);
    const age = now - load<f64>(s + SLOT_CREATED);
    const counter = load<u64>(s + SLOT_SEND_COUNTER);
    if (age >= REJECT_AFTER_TIME_MS || counter >= REJECT_AFTER_MESSAGES) {
      store<i32>(d + DESC_STATUS, ENCAP_NO_KEY);
      continue;
    }
    store<u64>(s + SLOT_SEND_COUNTER, counter + 1);
    let padded = (len + 15) & ~15;
    if (padded > <usize>mtu) padded = <usize>mtu;
    memory.fill(cell + HEADROOM + len, 0, padded - len);
    seal_transport(s + SLOT_SEND_KEY, counter, cell + HEADROOM, padded);
    store<u32>(cell, TYPE_DATA);
    store<u32>(cell, load<u32>(s + SLOT_REMOTE_INDEX), 4);
    store<u64>(cell, counter, 8);
    store<i32>(d + DESC_LEN, <i32>(HEADER + padded + TAG));
    store<i32>(d + DESC_SLOT, slot);
    const rekey = counter + 1 >= REKEY_AFTER_MESSAGES ||
      ((load<u32>(s + SLOT_FLAGS) & FLAG_INITIATOR) != 0 && age >= REKEY_AFTER_TIME_MS);
    store<i32>(d + DESC_STATUS, rekey ? ENCAP_SEND_REKEY : ENCAP_SEND);
  }
}

/**
 * Builds a keepalive (an empty transport message) for `slot` at `out`.
 * Returns its length (32), or 0 if the keypair may not send any more.
 */
export function keepalive(slot: u32, out: usize, now: f64): u32 {
  const s = slot_ptr(slot);
  if ((load<u32>(s + SLOT_FLAGS) & FLAG_LIVE) == 0) return 0;
  if (now - load<f64>(s + SLOT_CREATED) >= REJECT_AFTER_TIME_MS) return 0;
  const counter = next_counter(s);
  if (counter == u64.MAX_VALUE) return 0;
  seal_transport(s + SLOT_SEND_KEY, counter, out + HEADER, 0);
  store<u32>(out, TYPE_DATA);
  store<u32>(out, load<u32>(s + SLOT_REMOTE_INDEX), 4);
  store<u64>(out, counter, 8);
  return <u32>MIN_DATA;
}

/**
 * Decrypts cells first..first+n-1, datagrams from the network. Datagram i sits at
 * arena + i*stride with its length in descriptor i; an accepted packet's
 * plaintext is left at arena + i*stride + HEADER, trimmed to the inner IP
 * length. The replay window is consulted before the AEAD and updated only
 * after the tag verified.
 */
export function decap_batch(first: u32, n: u32, now: f64): void {
  for (let i: u32 = first; i < first + n; i++) {
    const d = desc + (<usize>i << 4);
    const cell = arena + <usize>i * stride;
    const len = <usize>load<i32>(d + DESC_LEN);
    store<i32>(d + DESC_PEER, -1);
    store<i32>(d + DESC_SLOT, -1);
    store<i32>(d + DESC_LEN, 0);
    if (len < 4 || load<u32>(cell) != TYPE_DATA) {
      store<i32>(d + DESC_STATUS, DECAP_NOT_DATA);
      continue;
    }
    if (len < MIN_DATA || len > stride) {
      store<i32>(d + DESC_STATUS, DECAP_MALFORMED);
      continue;
    }
    const slot = index_find(load<u32>(cell, 4));
    if (slot < 0) {
      store<i32>(d + DESC_STATUS, DECAP_UNKNOWN);
      continue;
    }
    const s = slot_ptr(<u32>slot);
    const peer = load<u32>(s + SLOT_PEER);
    store<i32>(d + DESC_SLOT, slot);
    store<i32>(d + DESC_PEER, <i32>peer);
    if (now - load<f64>(s + SLOT_CREATED) >= REJECT_AFTER_TIME_MS) {
      store<i32>(d + DESC_STATUS, DECAP_EXPIRED);
      continue;
    }
    const counter = load<u64>(cell, 8);
    const w = s + SLOT_REPLAY;
    if (!replay_check(w, counter)) {
      store<i32>(d + DESC_STATUS, DECAP_REPLAY);
      continue;
    }
    const clen = len - MIN_DATA;
    const p = cell + HEADER;
    if (!open_transport(s + SLOT_RECV_KEY, counter, p, clen)) {
      store<i32>(d + DESC_STATUS, DECAP_AUTH);
      continue;
    }
    if (!replay_update(w, counter)) {
      // A duplicate earlier in this same batch won the race.
      store<i32>(d + DESC_STATUS, DECAP_REPLAY);
      continue;
    }
    if (clen == 0) {
      store<i32>(d + DESC_STATUS, DECAP_KEEPALIVE);
      continue;
    }
    // Trim to the inner packet's own length (whitepaper 5.4.6).
    const v = load<u8>(p) >> 4;
    let inner: usize = 0;
    if (v == 4 && clen >= 20) inner = <usize>bswap<u16>(load<u16>(p, 2));
    else if (v == 6 && clen >= 40) inner = <usize>bswap<u16>(load<u16>(p, 4)) + 40;
    if (inner == 0 || inner > clen || (v == 4 && inner < 20)) {
      store<i32>(d + DESC_STATUS, DECAP_MALFORMED);
      continue;
    }
    store<i32>(d + DESC_LEN, <i32>inner);
    // The inner source must be one this peer may use (cryptokey routing).
    store<i32>(d + DESC_STATUS, route(p, inner, false) == <i32>peer ? DECAP_DATA : DECAP_SOURCE);
  }
}
