// Property tests of the AllowedIPs trie (assembly/allowedips.ts) through its
// WebAssembly exports. fast-check generates, and on failure shrinks,
// sequences of inserts, moves (re-inserting a held prefix for another peer),
// exact removes (right and wrong peer) and peer removals over both families;
// after every step the trie must answer like a plain list of (prefix, peer)
// searched linearly for the longest match, at the edges of every prefix the
// sequence touched and at random addresses, and list each peer's prefixes
// alike. The node pool is sized for the largest table the sequence reaches
// (2n - 1 nodes hold n prefixes), so an insert refused for want of nodes is a
// leak or a missed prune, and once everything is removed the whole pool must
// be free again.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { heapStart, instantiate, type AllowedIpsExports } from "../helpers/wasm.ts";
import { params } from "../helpers/prop.ts";

const wasm = instantiate<AllowedIpsExports>();
const NODE = wasm.aip_node_bytes();
const MAX_COMMANDS = 60;
const MAX_NODES = 2 * MAX_COMMANDS;
const LIST_MAX = MAX_COMMANDS + 1; // one more than a peer can hold, so a listing never looks full
const BASE = heapStart(wasm, 64 + LIST_MAX * 20 + 64 + MAX_NODES * NODE);
const ADDR = BASE;
const OUT = BASE + 64;
const POOL = (OUT + LIST_MAX * 20 + 63) & ~63;
const mem = () => new Uint8Array(wasm.memory.buffer);

/** Peer ids: a few small ones and the largest allowed (2^31 - 1). */
/** Peer ids are below the bound given to aip_init; the last one makes the per-peer table grow several chunks. */
const PEER_BOUND = 4096;
const PEERS = [0, 1, 2, 3, PEER_BOUND - 1];

// ---- addresses as big integers ----

const width = (v6: boolean) => (v6 ? 128 : 32);
const ALL = [2n ** 32n - 1n, 2n ** 128n - 1n];
const all = (v6: boolean) => ALL[v6 ? 1 : 0];
const maskOf = (v6: boolean, cidr: number) => all(v6) ^ (all(v6) >> BigInt(cidr));

interface Prefix { v6: boolean; value: bigint; cidr: number } // value already masked

function put(v6: boolean, value: bigint): void {
  const m = mem(), n = v6 ? 16 : 4;
  for (let i = 0; i < n; i++) m[ADDR + i] = Number((value >> BigInt(8 * (n - 1 - i))) & 255n);
}

const wInsert = (p: Prefix, peer: number) => { put(p.v6, p.value); return wasm.aip_insert(+p.v6, ADDR, p.cidr, peer) === 1; };
const wRemove = (p: Prefix, peer: number) => { put(p.v6, p.value); return wasm.aip_remove(+p.v6, ADDR, p.cidr, peer) === 1; };
const wLookup = (v6: boolean, a: bigint) => { put(v6, a); return v6 ? wasm.aip_lookup6(ADDR) : wasm.aip_lookup4(ADDR); };

const show = (v6: boolean, value: bigint, cidr?: number) =>
  `${v6 ? "v6" : "v4"} ${value.toString(16).padStart(v6 ? 32 : 8, "0")}${cidr === undefined ? "" : `/${cidr}`}`;

/** A peer's listing as sorted strings, checking each entry's layout on the way. */
function wList(peer: number): string[] {
  const n = wasm.aip_list(peer, OUT, LIST_MAX, 0);
  const m = mem(), out: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = OUT + 20 * i, fam = m[e], cidr = m[e + 1];
    assert.ok(fam === 4 || fam === 6, `family byte ${fam}`);
    const v6 = fam === 6, len = v6 ? 16 : 4;
    let value = 0n;
    for (let j = 0; j < len; j++) value = (value << 8n) | BigInt(m[e + 4 + j]);
    for (let j = len; j < 16; j++) assert.is(m[e + 4 + j], 0, "v4 entry padding");
    assert.is(value & ~maskOf(v6, cidr), 0n, `host bits in listed ${show(v6, value, cidr)}`);
    out.push(show(v6, value, cidr));
  }
  return out.sort();
}

// ---- the model: a list scanned for the longest match ----

interface Entry extends Prefix { peer: number }

class Model {
  /** Keyed by prefix; Map order (first insert) makes `pick` below repeatable. */
  readonly entries = new Map<string, Entry>();
  static key = (p: Prefix) => show(p.v6, p.value, p.cidr);
  insert(p: Prefix, peer: number): void { this.entries.set(Model.key(p), { ...p, peer }); }
  remove(p: Prefix, peer: number): boolean {
    const e = this.entries.get(Model.key(p));
    if (!e || e.peer !== peer) return false;
    this.entries.delete(Model.key(p));
    return true;
  }
  removePeer(peer: number): void {
    for (const [k, e] of this.entries) if (e.peer === peer) this.entries.delete(k);
  }
  lookup(v6: boolean, a: bigint): number {
    let best: Entry | null = null;
    for (const e of this.entries.values()) {
      if (e.v6 === v6 && (a & maskOf(v6, e.cidr)) === e.value && (!best || e.cidr > best.cidr)) best = e;
    }
    return best ? best.peer : -1;
  }
  list(peer: number): string[] {
    return [...this.entries.values()].filter((e) => e.peer === peer).map((e) => show(e.v6, e.value, e.cidr)).sort();
  }
  /** The n-th held prefix (modulo the count), or null when none is held. */
  pick(n: number): Entry | null {
    const es = [...this.entries.values()];
    return es.length ? es[n % es.length] : null;
  }
}

// ---- generated input ----

/**
 * A prefix as drawn: near one of the run's seed addresses (so prefixes nest
 * and share long leading runs), one bit flipped or not, or anywhere at all.
 */
interface PrefixSpec { v6: boolean; seed: number; flip: number | null; cidr: number; anywhere: bigint | null }

type Command =
  | { op: "insert"; p: PrefixSpec; peer: number }
  | { op: "move"; pick: number; peer: number } // re-insert a held prefix, for another peer or the same
  | { op: "remove"; pick: number; wrong: number } // exact remove of a held prefix; wrong > 0: by another peer
  | { op: "removeSpec"; p: PrefixSpec; peer: number } // exact remove of a drawn prefix, held or not
  | { op: "removePeer"; peer: number };

interface Seeds { v4: bigint[]; v6: bigint[] }

const peerArb = fc.constantFrom(...PEERS);
const specArb: fc.Arbitrary<PrefixSpec> = fc.record({
  v6: fc.boolean(),
  seed: fc.nat(2),
  flip: fc.option(fc.nat(127), { freq: 2 }),
  cidr: fc.oneof(fc.nat(128), fc.constantFrom(0, 1, 31, 32, 63, 64, 65, 127, 128)),
  anywhere: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: ALL[1] }) }),
});
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("insert" as const), p: specArb, peer: peerArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("move" as const), pick: fc.nat(), peer: peerArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("remove" as const), pick: fc.nat(), wrong: fc.nat(PEERS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("removeSpec" as const), p: specArb, peer: peerArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("removePeer" as const), peer: peerArb }) },
);
const seedsArb: fc.Arbitrary<Seeds> = fc.record({
  v4: fc.array(fc.bigInt({ min: 0n, max: ALL[0] }), { minLength: 3, maxLength: 3 }),
  v6: fc.array(fc.bigInt({ min: 0n, max: ALL[1] }), { minLength: 3, maxLength: 3 }),
});
const probeArb = fc.record({ v6: fc.boolean(), a: fc.bigInt({ min: 0n, max: ALL[1] }) });

function resolve(s: PrefixSpec, seeds: Seeds): Prefix {
  const w = width(s.v6), cidr = s.cidr % (w + 1);
  let value = s.anywhere !== null ? s.anywhere & all(s.v6) : (s.v6 ? seeds.v6 : seeds.v4)[s.seed];
  if (s.anywhere === null && s.flip !== null) value ^= 1n << BigInt(w - 1 - (s.flip % w));
  return { v6: s.v6, value: value & maskOf(s.v6, cidr), cidr };
}

/** Another peer than `peer`, the `wrong`-th one after it (wrong 1..PEERS.length-1). */
const otherPeer = (peer: number, wrong: number) => PEERS[(PEERS.indexOf(peer) + wrong) % PEERS.length];

/**
 * Applies one command to the model, and to the trie when `trie`; returns
 * the prefix it concerned (for probing) or null.
 */
function apply(c: Command, m: Model, seeds: Seeds, trie: boolean, step: string): Prefix | null {
  switch (c.op) {
    case "insert": {
      const p = resolve(c.p, seeds);
      if (trie) assert.ok(wInsert(p, c.peer), `${step}: insert ${show(p.v6, p.value, p.cidr)} refused (pool of ${poolFor} nodes)`);
      m.insert(p, c.peer);
      return p;
    }
    case "move": {
      const e = m.pick(c.pick);
      if (!e) return null;
      if (trie) assert.ok(wInsert(e, c.peer), `${step}: move refused`);
      m.insert(e, c.peer);
      return e;
    }
    case "remove": {
      const e = m.pick(c.pick);
      if (!e) return null;
      const peer = c.wrong === 0 ? e.peer : otherPeer(e.peer, c.wrong);
      const want = m.remove(e, peer);
      if (trie) assert.is(wRemove(e, peer), want, `${step}: remove ${show(e.v6, e.value, e.cidr)} by peer ${peer}`);
      return e;
    }
    case "removeSpec": {
      const p = resolve(c.p, seeds);
      const want = m.remove(p, c.peer);
      if (trie) assert.is(wRemove(p, c.peer), want, `${step}: remove ${show(p.v6, p.value, p.cidr)} by peer ${c.peer}`);
      return p;
    }
    case "removePeer":
      if (trie) wasm.aip_remove_peer(c.peer);
      m.removePeer(c.peer);
      return null;
  }
}

let poolFor = 0; // for messages

/** Addresses at and just outside the edges of a prefix, and across its last bit. */
function edges(p: Prefix): bigint[] {
  const host = all(p.v6) >> BigInt(p.cidr), last = p.value | host;
  const out = [p.value, last];
  if (p.value > 0n) out.push(p.value - 1n);
  if (last < all(p.v6)) out.push(last + 1n);
  if (p.cidr > 0) out.push(p.value ^ (1n << BigInt(width(p.v6) - p.cidr)));
  if (host > 1n) out.push(p.value | (host >> 1n));
  return out;
}

function compare(m: Model, touched: Map<string, Prefix>, probes: { v6: boolean; a: bigint }[], step: string): void {
  const check = (v6: boolean, a: bigint) => assert.is(wLookup(v6, a), m.lookup(v6, a), `${step}: lookup ${show(v6, a)}`);
  for (const v6 of [false, true]) { check(v6, 0n); check(v6, all(v6)); }
  for (const p of touched.values()) for (const a of edges(p)) check(p.v6, a);
  for (const { v6, a } of probes) check(v6, a & all(v6));
  for (const peer of PEERS) {
    const want = m.list(peer);
    assert.is(wasm.aip_count(peer), want.length, `${step}: count of peer ${peer}`);
    assert.equal(wList(peer), want, `${step}: prefixes of peer ${peer}`);
  }
}

test("property: the trie agrees with a linear-scan list through inserts, moves and removes", () => {
  fc.assert(fc.property(
    seedsArb,
    fc.array(commandArb, { minLength: 1, maxLength: MAX_COMMANDS, size: "max" }),
    fc.array(probeArb, { maxLength: 24, size: "max" }),
    fc.boolean(),
    (seeds, commands, probes, byPeer) => {
      // The model alone first: the most prefixes held at once sizes the pool.
      const dry = new Model();
      let most = 1;
      for (const c of commands) { apply(c, dry, seeds, false, ""); most = Math.max(most, dry.entries.size); }
      poolFor = 2 * most - 1;
      wasm.heap_start(POOL);
      assert.ok(wasm.aip_init(poolFor, PEER_BOUND));

      const m = new Model(), touched = new Map<string, Prefix>();
      commands.forEach((c, i) => {
        const p = apply(c, m, seeds, true, `command ${i} (${c.op})`);
        if (p) touched.set(Model.key(p), p);
        compare(m, touched, probes, `after command ${i} (${c.op})`);
      });

      // Remove everything: by peer, or prefix by prefix (newest first).
      if (byPeer) {
        for (const peer of PEERS) { wasm.aip_remove_peer(peer); m.removePeer(peer); }
      } else {
        for (const e of [...m.entries.values()].reverse()) {
          assert.ok(wRemove(e, e.peer), `final remove of ${show(e.v6, e.value, e.cidr)}`);
          m.remove(e, e.peer);
        }
      }
      assert.is(m.entries.size, 0);
      compare(m, touched, probes, "after removing everything");

      // No node leaked: disjoint /128s fill exactly the whole pool again.
      const fits = (poolFor + 1) / 2;
      for (let i = 0; i < fits; i++) {
        assert.ok(wInsert({ v6: true, value: BigInt(i) << 64n, cidr: 128 }, 0), `refill ${i + 1} of ${fits}: nodes leaked`);
      }
      assert.not.ok(wInsert({ v6: true, value: BigInt(fits) << 64n, cidr: 128 }, 0), "pool larger than its capacity");
    },
  ), params(150, 0xa11ed));
});

test.run();
