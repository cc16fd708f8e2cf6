// The AllowedIPs trie in assembly/allowedips.ts, called straight through the
// WebAssembly exports: fixed cases of the kind the kernel's allowedips
// self-test has, pool exhaustion and reuse, and a randomized comparison with
// a naive list sorted by prefix length.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { heapStart, instantiate, type AllowedIpsExports } from "../helpers/wasm.ts";

const wasm = instantiate<AllowedIpsExports>();
const NODE = wasm.aip_node_bytes();
const MAX_NODES = 40_000;
const LIST_MAX = 8192;
const PEERS = 256;

const BASE = heapStart(wasm, 64 + LIST_MAX * 20 + 64 + MAX_NODES * NODE);
const ADDR = BASE; // 64 bytes for addresses handed to the trie
const OUT = BASE + 64; // aip_list output
const POOL = (OUT + LIST_MAX * 20 + 63) & ~63;
const mem = () => new Uint8Array(wasm.memory.buffer);

// ---- addresses ----

interface Addr { v6: boolean; value: bigint } // the address as one big-endian integer

function parseAddr(s: string): Addr {
  if (!s.includes(":")) {
    const parts = s.split(".").map(Number);
    if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad v4 ${s}`);
    return { v6: false, value: parts.reduce((a, p) => (a << 8n) | BigInt(p), 0n) };
  }
  const [head, tail] = s.includes("::") ? s.split("::") : [s, undefined];
  const hs = head ? head.split(":") : [];
  const ts = tail === undefined ? [] : tail ? tail.split(":") : [];
  const fill = tail === undefined ? 0 : 8 - hs.length - ts.length;
  const groups = [...hs, ...Array(fill).fill("0"), ...ts];
  if (groups.length !== 8) throw new Error(`bad v6 ${s}`);
  return { v6: true, value: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

function formatAddr(a: Addr): string {
  if (!a.v6) return [24n, 16n, 8n, 0n].map((s) => String((a.value >> s) & 255n)).join(".");
  const g = Array.from({ length: 8 }, (_, i) => Number((a.value >> BigInt(112 - 16 * i)) & 0xffffn));
  // Compress the longest run (two or more) of zero groups.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j === i ? i + 1 : j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

const bits = (v6: boolean) => (v6 ? 128 : 32);
const MASKS = [false, true].map((v6) => Array.from({ length: bits(v6) + 1 }, (_, c) =>
  ((1n << BigInt(bits(v6))) - 1n) ^ ((1n << BigInt(bits(v6) - c)) - 1n)));
const maskOf = (v6: boolean, cidr: number) => MASKS[v6 ? 1 : 0][cidr];

function put(a: Addr, at = ADDR): void {
  const m = mem();
  const n = a.v6 ? 16 : 4;
  for (let i = 0; i < n; i++) m[at + i] = Number((a.value >> BigInt(8 * (n - 1 - i))) & 255n);
}

function parsePrefix(p: string): { a: Addr; cidr: number } {
  const [s, c] = p.split("/");
  return { a: parseAddr(s), cidr: Number(c) };
}

// ---- calls ----

const init = (capacity: number) => {
  wasm.heap_start(POOL);
  assert.ok(wasm.aip_init(capacity, PEERS));
};
function insertRaw(a: Addr, cidr: number, peer: number): boolean {
  put(a);
  return wasm.aip_insert(a.v6 ? 1 : 0, ADDR, cidr, peer) === 1;
}
function removeRaw(a: Addr, cidr: number, peer: number): boolean {
  put(a);
  return wasm.aip_remove(a.v6 ? 1 : 0, ADDR, cidr, peer) === 1;
}
function lookupRaw(a: Addr): number {
  put(a);
  return a.v6 ? wasm.aip_lookup6(ADDR) : wasm.aip_lookup4(ADDR);
}
const insert = (p: string, peer: number) => { const { a, cidr } = parsePrefix(p); return insertRaw(a, cidr, peer); };
const remove = (p: string, peer: number) => { const { a, cidr } = parsePrefix(p); return removeRaw(a, cidr, peer); };
const lookup = (s: string) => lookupRaw(parseAddr(s));

function listRaw(peer: number, max = LIST_MAX): { v6: boolean; cidr: number; value: bigint }[] {
  const n = wasm.aip_list(peer, OUT, max, 0);
  const m = mem();
  const out = [];
  for (let i = 0; i < n; i++) {
    const e = OUT + 20 * i;
    const fam = m[e], cidr = m[e + 1];
    assert.ok(fam === 4 || fam === 6, `family ${fam}`);
    assert.is(m[e + 2] | m[e + 3], 0, "reserved bytes");
    const len = fam === 4 ? 4 : 16;
    let value = 0n;
    for (let j = 0; j < len; j++) value = (value << 8n) | BigInt(m[e + 4 + j]);
    for (let j = len; j < 16; j++) assert.is(m[e + 4 + j], 0, "v4 entry padding");
    out.push({ v6: fam === 6, cidr, value });
  }
  return out;
}
const list = (peer: number, max?: number) =>
  listRaw(peer, max).map((e) => `${formatAddr({ v6: e.v6, value: e.value })}/${e.cidr}`);
/** A peer's prefixes by family, address, then length (the naive list's order). */
const sortedList = (peer: number) => listRaw(peer)
  .sort((a, b) => (a.v6 !== b.v6 ? (a.v6 ? 1 : -1) : a.value !== b.value ? (a.value < b.value ? -1 : 1) : a.cidr - b.cidr))
  .map((e) => `${formatAddr({ v6: e.v6, value: e.value })}/${e.cidr}`);

// ---- fixed cases ----

const A = 1, B = 2, C = 3, D = 4, E = 5, F = 6, G = 7, H = 8;

test("formatting helpers round-trip", () => {
  for (const s of ["0.0.0.0", "10.1.2.3", "255.255.255.255", "::", "::1", "2001:db8::", "2001:db8:0:1::8", "fe80::1:0:0:2", "1:2:3:4:5:6:7:8"]) {
    assert.is(formatAddr(parseAddr(s)), s);
  }
});

test("empty tables match nothing", () => {
  init(64);
  assert.is(lookup("10.0.0.1"), -1);
  assert.is(lookup("::1"), -1);
  assert.is(wasm.aip_count(A), 0);
  assert.equal(list(A), []);
});

test("overlapping prefixes, /0, /32, /128, masking, v4 and v6 apart", () => {
  init(256);
  assert.ok(insert("192.0.2.0/24", A));
  assert.ok(insert("192.0.2.4/32", B));
  assert.ok(insert("192.0.0.0/16", C));
  assert.ok(insert("198.51.100.64/27", D));
  assert.ok(insert("198.51.100.77/27", C)); // the same /27 after masking: moves to C
  assert.ok(insert("2001:db8:60:6b00::c05f:543/128", D));
  assert.ok(insert("2001:db8:60:6b00::/64", C));
  assert.ok(insert("0.0.0.0/0", E));
  assert.ok(insert("::/0", E));
  assert.ok(insert("::/0", F)); // moves
  assert.ok(insert("2404:6800::/32", G));
  assert.ok(insert("2404:6800:4004:800:dead:beef:dead:beef/64", H)); // masked to 2404:6800:4004:800::/64
  assert.ok(insert("2404:6800:4004:800:dead:beef:dead:beef/128", A));
  assert.ok(insert("203.0.113.0/20", G)); // masked to 203.0.112.0/20
  assert.ok(insert("203.0.123.211/25", H)); // masked to 203.0.123.128/25
  assert.ok(insert("10.0.0.0/25", A));
  assert.ok(insert("10.0.0.128/25", B));
  assert.ok(insert("10.1.0.0/30", A));
  assert.ok(insert("10.1.0.4/30", B));
  assert.ok(insert("10.1.0.8/29", C));
  assert.ok(insert("10.1.0.16/29", D));

  const cases: [string, number][] = [
    ["192.0.2.20", A], ["192.0.2.0", A], ["192.0.2.255", A], ["192.0.2.4", B], ["192.0.2.5", A],
    ["192.0.200.182", C], ["192.1.0.1", E],
    ["198.51.100.68", C], ["198.51.100.95", C], ["198.51.100.96", E], ["198.51.100.63", E],
    ["2001:db8:60:6b00::c05f:543", D], ["2001:db8:60:6b00::c05f:544", C], ["2001:db8:60:6b00::c02e:1ee", C],
    ["2001:db8:60:6b01::", F], ["2001:db8::", F],
    ["2404:6800:4004:806::1006", G], ["2404:6800:4004:806:0:1234:0:5678", G], ["2404:67ff:4004:806::", F],
    ["2404:6801:4004:806::", F], ["2404:6800:4004:800:0:1234:0:5678", H], ["2404:6800:4004:800::", H],
    ["2404:6800:4004:800:1010:1010:1010:1010", H], ["2404:6800:4004:800:dead:beef:dead:beef", A],
    ["203.0.116.26", G], ["203.0.127.3", G], ["203.0.123.1", G], ["203.0.123.128", H], ["203.0.123.255", H],
    ["203.0.128.0", E], ["10.0.0.52", A], ["10.0.0.220", B], ["10.1.0.2", A], ["10.1.0.6", B],
    ["10.1.0.10", C], ["10.1.0.20", D], ["10.1.0.24", E], ["0.0.0.0", E], ["255.255.255.255", E],
    ["::", F], ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", F],
  ];
  for (const [addr, want] of cases) assert.is(lookup(addr), want, addr);

  // A v4 prefix says nothing about v6 and the other way round.
  wasm.aip_remove_peer(E);
  assert.is(lookup("1.2.3.4"), -1);
  assert.is(lookup("::102:304"), F);
  wasm.aip_remove_peer(F);
  assert.is(lookup("::"), -1);
  assert.is(lookup("0.0.0.0"), -1);
  assert.is(lookup("10.1.0.20"), D);
});

test("/32 and /128 host routes only match themselves", () => {
  init(64);
  assert.ok(insert("10.9.8.7/32", A));
  assert.ok(insert("2001:db8::7/128", B));
  assert.is(lookup("10.9.8.7"), A);
  assert.is(lookup("10.9.8.6"), -1);
  assert.is(lookup("10.9.8.135"), -1);
  assert.is(lookup("138.9.8.7"), -1);
  assert.is(lookup("2001:db8::7"), B);
  assert.is(lookup("2001:db8::6"), -1);
  assert.is(lookup("2001:db8::8000:0:0:7"), -1);
  assert.is(lookup("a001:db8::7"), -1);
  // A lookup reads the address where it lies, aligned or not (inside a header).
  const m = mem();
  m.set([0x45, 10, 9, 8, 7], ADDR + 16);
  assert.is(wasm.aip_lookup4(ADDR + 17), A);
});

test("host bits are masked on insert, remove and list", () => {
  init(64);
  assert.ok(insert("10.0.0.7/24", A));
  assert.equal(list(A), ["10.0.0.0/24"]);
  assert.is(lookup("10.0.0.200"), A);
  assert.ok(insert("2001:db8:1:2:3:4:5:6/48", A));
  assert.equal(list(A), ["10.0.0.0/24", "2001:db8:1::/48"]);
  assert.ok(remove("10.0.0.99/24", A)); // the same prefix, spelled with host bits
  assert.ok(remove("2001:db8:1:ffff::/48", A));
  assert.is(wasm.aip_count(A), 0);
  assert.is(lookup("10.0.0.1"), -1);
});

test("an exact prefix moves between peers", () => {
  init(64);
  assert.ok(insert("10.0.0.0/8", A));
  assert.ok(insert("10.0.0.0/8", A)); // again: no change
  assert.is(wasm.aip_count(A), 1);
  assert.ok(insert("10.0.0.0/8", B));
  assert.is(lookup("10.1.2.3"), B);
  assert.is(wasm.aip_count(A), 0);
  assert.is(wasm.aip_count(B), 1);
  assert.not.ok(remove("10.0.0.0/8", A)); // A no longer holds it
  assert.is(lookup("10.1.2.3"), B);
  assert.ok(remove("10.0.0.0/8", B));
  assert.is(lookup("10.1.2.3"), -1);
});

test("remove takes only the exact prefix of the right peer", () => {
  init(64);
  assert.ok(insert("10.0.0.0/8", A));
  assert.ok(insert("10.1.0.0/16", B));
  assert.ok(insert("10.1.1.0/24", A));
  assert.not.ok(remove("10.1.0.0/16", A)); // wrong peer
  assert.not.ok(remove("10.1.0.0/17", B)); // not held
  assert.not.ok(remove("10.0.0.0/7", A));
  assert.not.ok(remove("10.1.0.0/33", B)); // out of range
  assert.not.ok(remove("::/0", A)); // wrong family
  assert.is(lookup("10.1.2.3"), B);
  assert.ok(remove("10.1.0.0/16", B)); // a middle node: its children stay reachable
  assert.is(lookup("10.1.2.3"), A);
  assert.is(lookup("10.1.1.3"), A);
  assert.ok(remove("10.0.0.0/8", A));
  assert.is(lookup("10.1.2.3"), -1);
  assert.is(lookup("10.1.1.3"), A);
  assert.not.ok(remove("10.0.0.0/8", A)); // already gone
  assert.equal(list(A), ["10.1.1.0/24"]);
});

test("remove_peer removes all and only that peer's prefixes", () => {
  init(256);
  for (const p of ["1.0.0.0/32", "64.0.0.0/32", "128.0.0.0/32", "192.0.0.0/32", "255.0.0.0/32"]) assert.ok(insert(p, A));
  assert.ok(insert("0.0.0.0/1", B));
  assert.ok(insert("2001:db8::/32", A));
  assert.ok(insert("2001:db8::/64", B));
  wasm.aip_remove_peer(A);
  for (const s of ["1.0.0.0", "64.0.0.0"]) assert.is(lookup(s), B);
  for (const s of ["128.0.0.0", "192.0.0.0", "255.0.0.0"]) assert.is(lookup(s), -1);
  assert.is(lookup("2001:db8::1"), B);
  assert.is(lookup("2001:db8:1::1"), -1);
  assert.is(wasm.aip_count(A), 0);
  assert.is(wasm.aip_count(B), 2);

  init(16);
  assert.ok(insert("192.168.0.0/16", A));
  assert.ok(insert("192.168.0.0/24", A));
  wasm.aip_remove_peer(A);
  assert.is(lookup("192.168.0.1"), -1);
  wasm.aip_remove_peer(A); // on an empty table: nothing happens
  assert.is(wasm.aip_count(A), 0);
});

test("128 host routes that differ from all-ones in one bit", () => {
  // Every bit position of a v6 key, in both 64-bit halves.
  init(300);
  const ones = (1n << 128n) - 1n;
  for (let i = 0; i < 128; i++) assert.ok(insertRaw({ v6: true, value: ones ^ (1n << BigInt(i)) }, 128, i));
  for (let i = 0; i < 128; i++) assert.is(lookupRaw({ v6: true, value: ones ^ (1n << BigInt(i)) }), i);
  assert.is(lookupRaw({ v6: true, value: ones }), -1);
  assert.is(lookupRaw({ v6: true, value: ones ^ 3n }), -1);
  for (let i = 0; i < 128; i++) wasm.aip_remove_peer(i);
  for (let i = 0; i < 128; i++) assert.is(lookupRaw({ v6: true, value: ones ^ (1n << BigInt(i)) }), -1);
  // All nodes came back: the same 255 nodes fit again.
  init(255);
  for (let i = 0; i < 128; i++) assert.ok(insertRaw({ v6: true, value: ones ^ (1n << BigInt(i)) }, 128, 1));
});

test("aip_list: entries, order and max", () => {
  init(64);
  assert.ok(insert("192.0.2.93/27", A));
  assert.ok(insert("2001:db8:60:6b00::c05f:543/128", A));
  assert.ok(insert("10.1.0.20/29", A));
  assert.ok(insert("2001:db8:6d8a:6bf8:dab1:f1df:c05f:1523/83", A));
  assert.ok(insert("2001:db8:6d8a:6bf8:dab1:f1df:c05f:1523/21", A));
  assert.ok(insert("10.0.0.0/8", A));
  assert.ok(insert("10.0.0.0/16", A));
  assert.ok(insert("0.0.0.0/0", A));
  assert.ok(insert("10.0.0.0/9", B));
  assert.is(wasm.aip_count(A), 8);
  // In the order they were given (as wireguard-go and the kernel list them), host bits masked.
  const all = [
    "192.0.2.64/27", "2001:db8:60:6b00::c05f:543/128", "10.1.0.16/29", "2001:db8:6d8a:6bf8:dab1:e000::/83",
    "2001:800::/21", "10.0.0.0/8", "10.0.0.0/16", "0.0.0.0/0",
  ];
  assert.equal(list(A), all);
  assert.equal(list(B), ["10.0.0.0/9"]);
  assert.equal(list(A, 3), all.slice(0, 3));
  // Re-giving a prefix moves it to the end; so does taking it from another peer.
  assert.ok(insert("10.1.0.16/29", A));
  assert.ok(insert("10.0.0.0/9", A));
  assert.equal(list(A), [...all.slice(0, 2), ...all.slice(3), "10.1.0.16/29", "10.0.0.0/9"]);
  assert.equal(list(B), []);
  assert.ok(insert("10.0.0.0/9", B));
  assert.equal(list(A, 0), []);
  assert.equal(list(C), []);
  // The raw bytes of one entry.
  wasm.aip_list(B, OUT, 1, 0);
  assert.equal([...mem().subarray(OUT, OUT + 20)], [4, 9, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test("out-of-range arguments are refused without change", () => {
  init(64);
  assert.ok(insert("10.0.0.0/8", A));
  assert.not.ok(insert("10.0.0.0/33", B));
  assert.not.ok(insert("::/129", B));
  assert.not.ok(insertRaw(parseAddr("10.0.0.0"), 8, 0x8000_0000)); // peer ids are below 2^31
  assert.not.ok(insertRaw(parseAddr("10.0.0.0"), 8, 0xffff_ffff));
  assert.is(lookup("10.0.0.1"), A);
  assert.equal(list(A), ["10.0.0.0/8"]);
  assert.is(wasm.aip_count(0xffff_ffff), 0);
});

test("pool exhaustion returns false and leaves the trie intact", () => {
  init(3);
  assert.ok(insert("10.0.0.0/8", A)); // 1 node
  assert.ok(insert("10.1.0.0/16", B)); // 2: under the /8
  // 10.2/16 diverges from 10.1/16 below the /8: needs a branch node and its own, 2 > 1 left.
  const probes = ["10.0.0.1", "10.1.0.1", "10.2.0.1", "10.128.0.1", "11.0.0.1"];
  const before = probes.map(lookup);
  assert.not.ok(insert("10.2.0.0/16", C));
  assert.equal(probes.map(lookup), before);
  assert.equal(list(A), ["10.0.0.0/8"]);
  assert.equal(list(B), ["10.1.0.0/16"]);
  assert.equal(list(C), []);
  // One node is still there for a prefix that needs just one.
  assert.ok(insert("10.128.0.0/16", C));
  assert.not.ok(insert("11.0.0.0/8", C));
  assert.not.ok(insert("::/0", C));
  assert.not.ok(insert("10.0.0.0/7", C)); // would sit above the /8: one node, none left
  // Moving an existing prefix needs no node.
  assert.ok(insert("10.1.0.0/16", A));
  assert.equal(probes.map(lookup), [A, A, A, C, -1]);
  // Freeing one makes room for one.
  assert.ok(remove("10.128.0.0/16", C));
  assert.ok(insert("::/0", C));
  assert.is(lookup("::1"), C);

  // Exactly 2n - 1 nodes hold n disjoint host routes, and not one more.
  const n = 100;
  init(2 * n - 1);
  const hosts = Array.from({ length: n }, (_, i) => `10.${i}.${(i * 37) & 255}.${(i * 101) & 255}/32`);
  for (const h of hosts) assert.ok(insert(h, A), h);
  assert.not.ok(insert("172.16.0.1/32", A));
  for (const h of hosts) assert.is(lookup(h.split("/")[0]), A, h);
  assert.is(wasm.aip_count(A), n);
});

test("nodes are freed and reused: many cycles in a small pool", () => {
  init(7); // four disjoint prefixes need 4 + 3 nodes
  const sets = [
    ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"],
    ["2001:db8::/64", "2001:db8:0:1::/64", "2001:db8:0:8000::/49", "fe80::/10"],
    ["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3", "224.0.0.0/32"],
  ];
  for (let round = 0; round < 5000; round++) {
    const set = sets[round % sets.length];
    const peer = round % 5;
    for (const p of set) assert.ok(insert(p, peer), `round ${round}: ${p}`);
    for (const p of set) assert.is(lookup(p.split("/")[0]), peer);
    if (round % 2) wasm.aip_remove_peer(peer);
    else for (const p of [...set].reverse()) assert.ok(remove(p, peer), `round ${round}: remove ${p}`);
    assert.is(wasm.aip_count(peer), 0);
  }
  // Nesting, which keeps branch-free chains: insert deep first, then shallow, remove in the middle.
  for (let round = 0; round < 2000; round++) {
    const order = round % 2 ? ["10.0.0.0/8", "10.1.0.0/16", "10.1.1.0/24", "10.1.1.1/32"] : ["10.1.1.1/32", "10.1.1.0/24", "10.1.0.0/16", "10.0.0.0/8"];
    for (const p of order) assert.ok(insert(p, A), p);
    assert.ok(remove("10.1.0.0/16", A));
    assert.ok(remove("10.1.1.0/24", A));
    assert.is(lookup("10.1.1.1"), A);
    assert.is(lookup("10.1.1.2"), A);
    wasm.aip_remove_peer(A);
    assert.is(lookup("10.1.1.1"), -1);
  }
});

// ---- randomized comparison ----

/** Deterministic 32-bit xorshift generator, so a failure repeats. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

interface Entry { v6: boolean; value: bigint; cidr: number; peer: number }

/** The naive table: every prefix in a list, longest first; a lookup scans it. */
class Naive {
  byKey = new Map<string, Entry>();
  sorted: Entry[][] | null = null; // per family, longest prefix first
  static key(v6: boolean, value: bigint, cidr: number) { return `${v6 ? 6 : 4}/${value.toString(16)}/${cidr}`; }
  insert(v6: boolean, value: bigint, cidr: number, peer: number) {
    value &= maskOf(v6, cidr);
    this.byKey.set(Naive.key(v6, value, cidr), { v6, value, cidr, peer });
    this.sorted = null;
  }
  remove(v6: boolean, value: bigint, cidr: number, peer: number): boolean {
    value &= maskOf(v6, cidr);
    const k = Naive.key(v6, value, cidr);
    const e = this.byKey.get(k);
    if (!e || e.peer !== peer) return false;
    this.byKey.delete(k);
    this.sorted = null;
    return true;
  }
  removePeer(peer: number) {
    for (const [k, e] of this.byKey) if (e.peer === peer) this.byKey.delete(k);
    this.sorted = null;
  }
  lookup(v6: boolean, value: bigint): number {
    this.sorted ??= [false, true].map((f) => [...this.byKey.values()].filter((e) => e.v6 === f).sort((a, b) => b.cidr - a.cidr));
    for (const e of this.sorted[v6 ? 1 : 0]) if ((value & maskOf(v6, e.cidr)) === e.value) return e.peer;
    return -1;
  }
  list(peer: number): string[] {
    return [...this.byKey.values()]
      .filter((e) => e.peer === peer)
      .sort((a, b) => (a.v6 !== b.v6 ? (a.v6 ? 1 : -1) : a.value !== b.value ? (a.value < b.value ? -1 : 1) : a.cidr - b.cidr))
      .map((e) => `${formatAddr(e)}/${e.cidr}`);
  }
}

test("randomized: thousands of prefixes against the naive list", () => {
  const rnd = xorshift(0xa11ed);
  const rand = (n: number) => rnd() % n;
  const randBits = (n: number) => {
    let v = 0n;
    for (let i = 0; i < n; i += 32) v = (v << 32n) | BigInt(rnd());
    return v & ((1n << BigInt(n)) - 1n);
  };
  const PEERS = 6;
  const naive = new Naive();
  init(MAX_NODES);

  // A few seeds per family, so that many prefixes share long leading runs.
  const seeds = { v4: Array.from({ length: 8 }, () => randBits(32)), v6: Array.from({ length: 8 }, () => randBits(128)) };
  const near = (v6: boolean) => {
    const n = bits(v6);
    const seed = (v6 ? seeds.v6 : seeds.v4)[rand(8)];
    const keep = rand(n + 1); // keep this many leading bits of the seed, randomize the rest
    return (seed & maskOf(v6, keep)) | (randBits(n) & ~maskOf(v6, keep) & ((1n << BigInt(n)) - 1n));
  };
  const randomPrefix = (v6: boolean): [bigint, number] => {
    const n = bits(v6);
    const value = rand(4) ? near(v6) : randBits(n);
    const r = rand(10);
    const cidr = r === 0 ? rand(n + 1) : r < 4 ? n - rand(4) : 8 + rand(n - 7);
    return [value, cidr];
  };
  const held: Entry[] = [];

  const compareLookups = (count: number) => {
    for (let i = 0; i < count; i++) {
      const v6 = rand(2) === 1;
      let value: bigint;
      const r = rand(4);
      if (r === 0 || held.length === 0) value = randBits(bits(v6));
      else if (r === 1) value = near(v6);
      else {
        // Inside, or right at the edges of, a prefix we inserted.
        const e = held[rand(held.length)];
        const host = randBits(e.v6 ? 128 : 32) & ~maskOf(e.v6, e.cidr) & ((1n << BigInt(bits(e.v6))) - 1n);
        value = e.value | host;
        if (rand(4) === 0) value ^= 1n << BigInt(bits(e.v6) - Math.max(e.cidr, 1)); // flip the last prefix bit
        if (e.v6 !== v6) value = e.v6 ? value >> 96n : value << 96n; // reuse across families too
      }
      assert.is(lookupRaw({ v6, value }), naive.lookup(v6, value), `${formatAddr({ v6, value })}`);
    }
  };
  const compareLists = () => {
    for (let p = 0; p < PEERS; p++) {
      const want = naive.list(p);
      assert.is(wasm.aip_count(p), want.length, `count of peer ${p}`);
      assert.equal(sortedList(p), want, `list of peer ${p}`);
    }
  };

  for (let phase = 0; phase < 4; phase++) {
    // Inserts, including many exact duplicates that move between peers.
    for (let i = 0; i < 4000; i++) {
      const e = held.length && rand(4) === 0 ? held[rand(held.length)] : null;
      const fam = e ? e.v6 : rand(2) === 1;
      const [value, cidr] = e ? [e.value, e.cidr] : randomPrefix(fam);
      const peer = rand(PEERS);
      assert.ok(insertRaw({ v6: fam, value }, cidr, peer), "insert");
      naive.insert(fam, value, cidr, peer);
      held.push({ v6: fam, value: value & maskOf(fam, cidr), cidr, peer });
    }
    compareLookups(8_000);
    compareLists();
    // Removes: mostly of held prefixes (with the right or a wrong peer), some of absent ones.
    for (let i = 0; i < 1500; i++) {
      let v6: boolean, value: bigint, cidr: number, peer = rand(PEERS);
      if (rand(5) && held.length) {
        const e = held[rand(held.length)];
        ({ v6, value, cidr } = e);
        if (rand(4)) peer = naive.byKey.get(Naive.key(v6, value, cidr))?.peer ?? peer;
      } else {
        v6 = rand(2) === 1;
        [value, cidr] = randomPrefix(v6);
      }
      assert.is(removeRaw({ v6, value }, cidr, peer), naive.remove(v6, value, cidr, peer), "remove");
    }
    compareLookups(8_000);
    compareLists();
    // One peer leaves altogether.
    const gone = rand(PEERS);
    wasm.aip_remove_peer(gone);
    naive.removePeer(gone);
    compareLookups(4_000);
    compareLists();
  }
  // Finally everyone leaves: nothing matches any more, and the whole pool is free again.
  for (let p = 0; p < PEERS; p++) { wasm.aip_remove_peer(p); naive.removePeer(p); }
  compareLookups(2_000);
  assert.is(naive.byKey.size, 0);
  const n = Math.floor((MAX_NODES + 1) / 2);
  for (let i = 0; i < n; i++) assert.ok(insertRaw({ v6: true, value: BigInt(i) << 64n }, 128, 1), `refill ${i}`);
});


test("aip_list pages through a peer's prefixes from a cursor; a stale cursor ends the listing", () => {
  init(4096);
  const hosts = Array.from({ length: 1000 }, (_, i) => `10.${i >> 8}.${i & 255}.1/32`);
  for (const h of hosts) assert.ok(insert(h, A));
  for (let i = 0; i < 50; i++) assert.ok(insert(`192.168.${i}.0/24`, B)); // interleaved in the trie, not in A's list
  let from = 0;
  const page = (first: boolean) => {
    const n = wasm.aip_list(A, OUT, 64, first ? 0 : from);
    from = wasm.aip_list_next();
    const m = mem();
    return Array.from({ length: n }, (_, i) => `${m[OUT + 20 * i + 4]}.${m[OUT + 20 * i + 5]}.${m[OUT + 20 * i + 6]}.${m[OUT + 20 * i + 7]}/${m[OUT + 20 * i + 1]}`);
  };
  const got = page(true);
  // Between pages, one already listed goes, and others are added: the listing goes on.
  assert.ok(remove(hosts[3], A));
  assert.ok(insert("10.200.0.1/32", A));
  while (from !== 0) got.push(...page(false));
  assert.equal(got, [...hosts, "10.200.0.1/32"]); // hosts[3] was listed before it went
  // The node the cursor points at goes: the listing ends there, reading nothing of another peer's.
  assert.equal(page(true).at(-1), hosts[64]); // hosts[3] is gone: the cursor is at hosts[65]
  assert.ok(remove(hosts[65], A));
  assert.ok(insert(hosts[65], B)); // likely the very node, reused
  assert.equal(page(false), []);
  // Removing a whole peer while a listing of it is under way ends that listing too.
  page(true);
  wasm.aip_remove_peer(A);
  assert.equal(page(false), []);
  assert.is(wasm.aip_count(A), 0);
  assert.is(wasm.aip_count(B), 51);
});

test("the node pool grows a chunk at a time, up to its bound and not past it", () => {
  const bound = 300_000;
  init(bound);
  const grownFrom = wasm.memory.buffer.byteLength;
  // 150,000 host routes (2n - 1 nodes) in one peer, spread over the address space.
  const n = bound / 2;
  const addr = (i: number) => { const v = (Math.imul(i, 2654435761) >>> 0); return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`; };
  for (let i = 0; i < n; i++) assert.ok(insert(`${addr(i)}/32`, 1 + (i % 7)), `prefix ${i}`);
  assert.ok(wasm.memory.buffer.byteLength > grownFrom + n * NODE, "memory grew for the nodes");
  assert.ok(wasm.aip_nodes_taken() <= bound, `taken ${wasm.aip_nodes_taken()}`);
  assert.ok(wasm.aip_nodes_used() >= n && wasm.aip_nodes_used() < 2 * n, `used ${wasm.aip_nodes_used()}`);
  for (let i = 0; i < n; i += 997) assert.is(lookup(addr(i)), 1 + (i % 7), addr(i));
  let total = 0;
  for (let p = 1; p <= 7; p++) total += wasm.aip_count(p);
  assert.is(total, n);
  // Fill to the bound: an insert that needs a node past it is refused, and nothing changed.
  let i = n;
  while (insert(`${addr(i)}/32`, 9)) i++;
  assert.ok(wasm.aip_nodes_used() > bound - 2, `stopped at ${wasm.aip_nodes_used()} of ${bound}`);
  assert.is(lookup(addr(i)), -1);
  // Peers past the bound given at init are refused.
  assert.not.ok(insertRaw(parseAddr("10.0.0.0"), 8, PEERS));
  // Removing peers frees their nodes for others.
  for (let p = 1; p <= 7; p++) wasm.aip_remove_peer(p);
  assert.ok(wasm.aip_nodes_used() < bound - n, `used after removal ${wasm.aip_nodes_used()}`);
  for (let j = 0; j < 1000; j++) assert.ok(insert(`172.${16 + (j >> 8)}.${j & 255}.0/24`, 10));
});

test.run();
