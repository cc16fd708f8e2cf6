// AllowedIPs (whitepaper 2, "cryptokey routing"): longest-prefix match from an
// address to a peer id, one path-compressed binary trie per address family.
//
// Every node is either a prefix some peer holds, or a branch point with two
// children; chains of single-child nodes are never kept. A node for prefix
// P/c has children (if any) whose prefixes extend P: child[b] holds the
// subtree where bit c of the address is b.
//
// Keys are kept as two u64 words, most significant bit first (the network
// byte order of the address read as one big integer). An IPv4 key sits in
// the top 32 bits of the first word. Each node stores its mask too, so a
// lookup step is a xor, an and and a compare, with no shifts to build.
//
// Nodes come from chunks of linear memory taken from the heap as the table
// grows (up to the bound given to aip_init), handed out by a bump pointer,
// and a free list threaded through freed nodes. Lookups allocate nothing.
//
// Each peer's prefix nodes are also on a doubly linked list of their own, in
// the order they were given to it (as wireguard-go and the kernel keep
// them), so listing, counting or removing one peer's prefixes costs what that
// peer holds, not a walk of the whole trie.

import { heap_take, table_at, table_directory, table_grow } from "./heap";

// Node layout (NODE bytes):
@inline const K0: usize = 0;     // u64 key bits 0..63 (v4: top 32 bits; u32 at +4 on little-endian)
@inline const K1: usize = 8;     // u64 key bits 64..127 (v4: 0)
@inline const M0: usize = 16;    // u64 mask for K0 (v4: u32 at +20)
@inline const M1: usize = 24;    // u64 mask for K1
@inline const CHILD: usize = 32; // u32 x 2: child for next bit 0 / 1 (0 = none); free-list link when free
@inline const UP: usize = 40;    // u32 parent (0 = this is the root)
@inline const PEER: usize = 44;  // i32 peer id, -1 for a pure branch node
@inline const BITS: usize = 48;  // u32 prefix length (cidr)
@inline const NEXT: usize = 52;  // u32 next node of the same peer (0 = last)
@inline const PREV: usize = 56;  // u32 previous node of the same peer (0 = first)
@inline const FAMILY: usize = 60; // u8 4 or 6 (for listing); 61..63 padding keeps nodes 8-byte aligned
@inline const NODE: u32 = 64;

// Per-peer list record (LIST bytes): first node, last node, count.
@inline const HEAD: usize = 0;
@inline const TAIL: usize = 4;
@inline const COUNT: usize = 8;
@inline const LIST: u32 = 16;
const LIST_CHUNK_BITS: u32 = 10;

// The two roots, as memory so a root can be replaced through its address
// like any child slot: v4 at +0, v6 at +4.
const ROOTS: usize = memory.data(8);

let chunkBase: usize = 0; // the chunk being handed out
let chunkCap: u32 = 0;
let chunkBump: u32 = 0;   // nodes handed out from it
let nodesTaken: u32 = 0;  // nodes in all chunks
let maxNodes: u32 = 0;
let freeHead: usize = 0;  // free list through CHILD
let freeCount: u32 = 0;
let listDir: usize = 0;
let listCap: u32 = 0;
let maxLists: u32 = 0;
let cursor: usize = 0;    // where the last aip_list stopped

// Scratch "return registers" for the key being worked on.
let key0: u64 = 0;
let key1: u64 = 0;

/** Bytes per node, so the caller can size the pool. A table of n prefixes needs at most 2n - 1 nodes. */
export function aip_node_bytes(): u32 {
  return NODE;
}

/**
 * Empties both tries and sets the bounds; call once, after heap_start.
 * @param nodeBound most nodes the tries may take from the heap
 * @param peerBound most peers (ids 0..peerBound-1)
 * @returns false when memory cannot grow for the per-peer directory
 */
export function aip_init(nodeBound: u32, peerBound: u32): bool {
  chunkBase = 0;
  chunkCap = chunkBump = nodesTaken = 0;
  maxNodes = nodeBound;
  freeHead = 0;
  freeCount = 0;
  listCap = 0;
  maxLists = peerBound;
  cursor = 0;
  store<u32>(ROOTS, 0);
  store<u32>(ROOTS, 0, 4);
  listDir = table_directory(peerBound, LIST_CHUNK_BITS);
  return listDir != 0;
}

// ---- pool ----

/**
 * Makes sure `k` nodes can be taken, starting a new chunk (a quarter of the
 * nodes so far, 1024 to 65536 of them) when the free list and the current
 * chunk run short. May grow memory.
 */
function reserve(k: u32): bool {
  if (freeCount + (chunkCap - chunkBump) >= k) return true;
  let size = nodesTaken >> 2;
  if (size < 1024) size = 1024;
  if (size > 65536) size = 65536;
  if (size > maxNodes - nodesTaken) size = maxNodes - nodesTaken;
  if (size == 0 || size + freeCount + (chunkCap - chunkBump) < k) return false;
  const chunk = heap_take(<usize>size * NODE);
  if (chunk == 0) return false;
  // What is left of the old chunk joins the free list.
  for (; chunkBump < chunkCap; ++chunkBump) release(chunkBase + <usize>chunkBump * NODE);
  chunkBase = chunk;
  chunkCap = size;
  chunkBump = 0;
  nodesTaken += size;
  return true;
}

/** Takes a node; the caller has reserved it. */
@inline function alloc(): usize {
  let n = freeHead;
  if (n != 0) {
    freeHead = load<u32>(n, CHILD);
    --freeCount;
    return n;
  }
  n = chunkBase + <usize>chunkBump * NODE;
  ++chunkBump;
  return n;
}

@inline function release(n: usize): void {
  store<u32>(n, freeHead, CHILD);
  store<u32>(n, -1, PEER);
  freeHead = n;
  ++freeCount;
}

// ---- per-peer lists ----

@inline function list(peer: u32): usize {
  return table_at(listDir, peer, LIST_CHUNK_BITS, LIST);
}

/** Makes sure peer has a list record. May grow memory. */
function lists_reserve(peer: u32): bool {
  if (peer < listCap) return true;
  if (peer >= maxLists) return false;
  // Records of a new chunk are zero: empty lists.
  listCap = min(table_grow(listDir, listCap, peer + 1, maxLists, LIST_CHUNK_BITS, LIST), maxLists);
  return peer < listCap;
}

/** Appends n, whose PEER field is `peer` (>= 0, with a list record), to that peer's list. */
function link(n: usize, peer: i32): void {
  const l = list(<u32>peer);
  const tail = <usize>load<u32>(l, TAIL);
  store<u32>(n, 0, NEXT);
  store<u32>(n, tail, PREV);
  if (tail != 0) store<u32>(tail, n, NEXT);
  else store<u32>(l, n, HEAD);
  store<u32>(l, n, TAIL);
  store<u32>(l, load<u32>(l, COUNT) + 1, COUNT);
}

/** Takes n off its peer's list (its PEER field still names the peer). */
function unlink(n: usize): void {
  const peer = load<i32>(n, PEER);
  if (peer < 0) return;
  const l = list(<u32>peer);
  const next = <usize>load<u32>(n, NEXT), prev = <usize>load<u32>(n, PREV);
  if (prev != 0) store<u32>(prev, next, NEXT);
  else store<u32>(l, next, HEAD);
  if (next != 0) store<u32>(next, prev, PREV);
  else store<u32>(l, prev, TAIL);
  store<u32>(l, load<u32>(l, COUNT) - 1, COUNT);
}

/** Gives node n to `peer` (-1: none), moving it between lists; a re-given prefix goes to the end, as in wireguard-go. */
function assign(n: usize, peer: i32): void {
  unlink(n);
  store<i32>(n, peer, PEER);
  if (peer >= 0) link(n, peer);
}

// ---- keys ----

/** Mask of the first `c` bits of the first key word (c may exceed 64). */
@inline function mask0(c: u32): u64 {
  return c >= 64 ? ~<u64>0 : c == 0 ? 0 : ~<u64>0 << <u64>(64 - c);
}

/** Mask of the key's bits 64..c-1 in the second word. */
@inline function mask1(c: u32): u64 {
  return c <= 64 ? 0 : ~<u64>0 << <u64>(128 - c);
}

/** Bit i (0 = most significant) of the 128-bit key w0:w1. */
@inline function bitAt(w0: u64, w1: u64, i: u32): u32 {
  return <u32>((i < 64 ? w0 : w1) >> <u64>(63 - (i & 63))) & 1;
}

/** Number of leading bits two keys share (128 when equal). */
@inline function commonBits(a0: u64, a1: u64, b0: u64, b1: u64): u32 {
  let x = a0 ^ b0;
  return x != 0 ? <u32>clz(x) : 64 + <u32>clz(a1 ^ b1);
}

/** Reads an address in network order into key0/key1. */
@inline function readKey(v6: bool, addr: usize): void {
  if (v6) {
    key0 = bswap<u64>(load<u64>(addr));
    key1 = bswap<u64>(load<u64>(addr, 8));
  } else {
    key0 = <u64>bswap<u32>(load<u32>(addr)) << 32;
    key1 = 0;
  }
}

/** Does node n's prefix contain the key? */
@inline function contains(n: usize, k0: u64, k1: u64): bool {
  return (((k0 ^ load<u64>(n, K0)) & load<u64>(n, M0)) | ((k1 ^ load<u64>(n, K1)) & load<u64>(n, M1))) == 0;
}

@inline function rootSlot(v6: bool): usize {
  return ROOTS + (v6 ? 4 : 0);
}

/** The slot (a parent's child field or a root) that points at n. */
@inline function slotOf(n: usize): usize {
  let up = <usize>load<u32>(n, UP);
  if (up == 0) return load<u32>(ROOTS) == <u32>n ? ROOTS : ROOTS + 4;
  return <usize>load<u32>(up, CHILD) == n ? up + CHILD : up + CHILD + 4;
}

@inline function setNode(n: usize, v6: bool, k0: u64, k1: u64, c: u32, peer: i32, up: usize): void {
  let m0 = mask0(c), m1 = mask1(c);
  store<u64>(n, k0 & m0, K0);
  store<u64>(n, k1 & m1, K1);
  store<u64>(n, m0, M0);
  store<u64>(n, m1, M1);
  store<u64>(n, 0, CHILD); // both children
  store<u32>(n, up, UP);
  store<i32>(n, -1, PEER);
  store<u32>(n, c, BITS);
  store<u8>(n, v6 ? 6 : 4, FAMILY);
  if (peer >= 0) assign(n, peer);
}

/**
 * Finds the node holding exactly key0/key1 (already masked) with length c.
 * @returns the node or 0
 */
function findExact(root: usize, c: u32): usize {
  let k0 = key0, k1 = key1;
  let n = <usize>load<u32>(root);
  while (n != 0) {
    let b = load<u32>(n, BITS);
    if (b > c || !contains(n, k0, k1)) return 0;
    if (b == c) return n;
    n = load<u32>(n + (<usize>bitAt(k0, k1, b) << 2), CHILD);
  }
  return 0;
}

/**
 * Unlinks node n if it no longer earns its place (no peer and fewer than two
 * children): a leaf is dropped, a single child takes its place.
 * @returns the parent when n was a dropped leaf (which may now need the same
 *   treatment), else 0
 */
function pruneOne(n: usize): usize {
  if (load<i32>(n, PEER) >= 0) return 0;
  let c0 = <usize>load<u32>(n, CHILD), c1 = <usize>load<u32>(n, CHILD + 4);
  if (c0 != 0 && c1 != 0) return 0;
  let up = <usize>load<u32>(n, UP);
  let child = c0 | c1;
  store<u32>(slotOf(n), child);
  release(n);
  if (child != 0) {
    store<u32>(child, up, UP);
    return 0;
  }
  return up;
}

// ---- public API ----

/**
 * Maps prefix addr/cidr to `peer`. Host bits are masked (10.0.0.7/24 is
 * 10.0.0.0/24). A prefix another peer holds moves to this one.
 * @param v6 address family
 * @param addr 4 or 16 address bytes, network order
 * @param cidr prefix length, 0..32 or 0..128
 * @param peer peer id, below 2^31
 * @returns false, with nothing changed, when cidr or peer is out of range or
 *   the node pool is exhausted
 */
export function aip_insert(v6: bool, addr: usize, cidr: u32, peer: u32): bool {
  if (cidr > (v6 ? <u32>128 : 32) || peer > 0x7FFF_FFFF || !lists_reserve(peer)) return false;
  readKey(v6, addr);
  let k0 = key0 & mask0(cidr), k1 = key1 & mask1(cidr);

  // Walk down while the node's prefix contains the new one.
  let parent: usize = 0;
  let slot = rootSlot(v6);
  let n = <usize>load<u32>(slot);
  while (n != 0) {
    let b = load<u32>(n, BITS);
    if (b > cidr || !contains(n, k0, k1)) break;
    if (b == cidr) {
      assign(n, <i32>peer);
      return true;
    }
    parent = n;
    slot = n + CHILD + (<usize>bitAt(k0, k1, b) << 2);
    n = load<u32>(slot);
  }

  // Empty slot: hang the new node there.
  if (n == 0) {
    if (!reserve(1)) return false;
    let x = alloc();
    setNode(x, v6, k0, k1, cidr, <i32>peer, parent);
    store<u32>(slot, x);
    return true;
  }

  // n is the subtree in the way; it shares `common` leading bits with the new prefix.
  let n0 = load<u64>(n, K0), n1 = load<u64>(n, K1);
  let common = min(min(cidr, load<u32>(n, BITS)), commonBits(k0, k1, n0, n1));
  if (common == cidr) {
    // The new prefix contains n: it goes between parent and n.
    if (!reserve(1)) return false;
    let x = alloc();
    setNode(x, v6, k0, k1, cidr, <i32>peer, parent);
    store<u32>(x + CHILD + (<usize>bitAt(n0, n1, cidr) << 2), n);
    store<u32>(n, x, UP);
    store<u32>(slot, x);
    return true;
  }

  // They diverge at bit `common`: a branch node there holds both.
  if (!reserve(2)) return false;
  let fork = alloc();
  let x = alloc();
  setNode(fork, v6, k0, k1, common, -1, parent);
  setNode(x, v6, k0, k1, cidr, <i32>peer, fork);
  let side = <usize>bitAt(k0, k1, common) << 2;
  store<u32>(fork + CHILD + side, x);
  store<u32>(fork + CHILD + (side ^ 4), n);
  store<u32>(n, fork, UP);
  store<u32>(slot, fork);
  return true;
}

/**
 * Removes exactly addr/cidr (host bits masked) if `peer` holds it, freeing
 * nodes that no longer hold a prefix or a branch.
 * @returns true when removed
 */
export function aip_remove(v6: bool, addr: usize, cidr: u32, peer: u32): bool {
  if (cidr > (v6 ? <u32>128 : 32) || peer > 0x7FFF_FFFF) return false;
  readKey(v6, addr);
  key0 &= mask0(cidr);
  key1 &= mask1(cidr);
  let root = rootSlot(v6);
  let n = findExact(root, cidr);
  if (n == 0 || load<i32>(n, PEER) != <i32>peer) return false;
  assign(n, -1);
  while (n != 0) n = pruneOne(n);
  return true;
}

/** Removes all of a peer's prefixes, in both families, and frees the nodes that became useless. */
export function aip_remove_peer(peer: u32): void {
  if (peer >= listCap) return;
  const l = list(peer);
  let n = <usize>load<u32>(l, HEAD);
  while (n != 0) {
    // The next node holds a prefix of this peer, so pruning never frees it.
    const next = <usize>load<u32>(n, NEXT);
    store<i32>(n, -1, PEER);
    let m = n;
    while (m != 0) m = pruneOne(m);
    n = next;
  }
  store<u64>(l, 0);
  store<u32>(l, 0, COUNT);
}

/**
 * Longest-prefix match for an IPv4 address.
 * @param addr 4 bytes, network order (e.g. inside an IPv4 header)
 * @returns the peer id, or -1 when no prefix matches
 */
export function aip_lookup4(addr: usize): i32 {
  let a = bswap<u32>(load<u32>(addr));
  let best: i32 = -1;
  let n = <usize>load<u32>(ROOTS);
  while (n != 0) {
    // The v4 key and mask are the high halves of K0 and M0.
    if (((a ^ load<u32>(n, K0 + 4)) & load<u32>(n, M0 + 4)) != 0) break;
    let p = load<i32>(n, PEER);
    best = select(p, best, p >= 0);
    // A /32 node has no children, so its (wrapped) shift picks an empty slot.
    let b = load<u32>(n, BITS);
    n = load<u32>(n + (<usize>((a >> (31 - b)) & 1) << 2), CHILD);
  }
  return best;
}

/**
 * Longest-prefix match for an IPv6 address.
 * @param addr 16 bytes, network order
 * @returns the peer id, or -1 when no prefix matches
 */
export function aip_lookup6(addr: usize): i32 {
  let a0 = bswap<u64>(load<u64>(addr));
  let a1 = bswap<u64>(load<u64>(addr, 8));
  let best: i32 = -1;
  let n = <usize>load<u32>(ROOTS, 4);
  while (n != 0) {
    if (!contains(n, a0, a1)) break;
    let p = load<i32>(n, PEER);
    best = select(p, best, p >= 0);
    let b = load<u32>(n, BITS);
    n = load<u32>(n + (<usize>bitAt(a0, a1, b) << 2), CHILD);
  }
  return best;
}

/**
 * Lists a peer's prefixes in the order they were given to it, `max` at a
 * time. Entry (20 bytes): u8 family (4 or 6), u8 cidr, 2 zero bytes, 16
 * address bytes in network order (v4 uses the first 4, the rest zero).
 * @param from 0 to start at the beginning, else what aip_list_next returned
 *   after the previous page. If that node no longer holds a prefix of this
 *   peer (removed meanwhile), the listing ends there.
 * @param out room for max * 20 bytes
 * @returns entries written; 0 when the listing is done
 */
export function aip_list(peer: u32, out: usize, max: u32, from: usize): u32 {
  cursor = 0;
  if (peer >= listCap) return 0;
  let n = from == 0 ? <usize>load<u32>(list(peer), HEAD) : from;
  // A cursor is any node address of the pool: check it is still this peer's.
  if (n != 0 && from != 0 && load<i32>(n, PEER) != <i32>peer) return 0;
  let written: u32 = 0;
  while (n != 0 && written < max) {
    store<u32>(out, <u32>load<u8>(n, FAMILY) | (load<u32>(n, BITS) << 8));
    store<u64>(out, bswap<u64>(load<u64>(n, K0)), 4);
    store<u64>(out, bswap<u64>(load<u64>(n, K1)), 12);
    out += 20;
    ++written;
    n = <usize>load<u32>(n, NEXT);
  }
  cursor = n;
  return written;
}

/** Where the last aip_list stopped: pass it as `from` for the next page (0: the listing is done). */
export function aip_list_next(): usize { return cursor; }

/** How many prefixes, in both families, `peer` holds. */
export function aip_count(peer: u32): u32 {
  return peer < listCap ? load<u32>(list(peer), COUNT) : 0;
}

/** Nodes taken from the heap so far, and nodes in use (for memory figures). */
export function aip_nodes_taken(): u32 { return nodesTaken; }
export function aip_nodes_used(): u32 { return nodesTaken - freeCount - (chunkCap - chunkBump); }
