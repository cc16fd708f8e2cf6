// The RFC 6479 replay window in assembly/replay.ts, called straight through
// the WebAssembly exports: the Linux kernel's counter self-test cases (its
// selftest/counter.c, re-expressed), the REJECT_AFTER_MESSAGES boundary,
// counters beyond 2^53, and a randomized comparison with a naive model.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { heapStart, instantiate, type ReplayExports } from "../helpers/wasm.ts";

const wasm = instantiate<ReplayExports>();
const BYTES = Number(wasm.REPLAY_BYTES.value);
// State goes above the module's static data: at __heap_base when the module
// exports it, else in pages grown for the test (always above the data).
const W = heapStart(wasm, 4 * BYTES);

/** Window size: 128 blocks of 64 bits, minus one block. */
const WINDOW = 8128n;
/** REJECT_AFTER_MESSAGES = 2^64 - 2^13 - 1. */
const REJECT = 2n ** 64n - 2n ** 13n - 1n;
const U64_MAX = 2n ** 64n - 1n;

const reset = (w = W) => wasm.replay_reset(w);
const check = (c: bigint, w = W) => wasm.replay_check(w, c) === 1;
const update = (c: bigint, w = W) => wasm.replay_update(w, c) === 1;
const state = (w = W) => new Uint8Array(wasm.memory.buffer, w, BYTES).slice();

/** A packet arriving: the pre-check, then (as if the tag verified) the update. */
function receive(c: bigint, w = W): boolean {
  if (!check(c, w)) return false;
  const ok = update(c, w);
  assert.ok(ok, `update refused ${c} after check accepted it`);
  return ok;
}

/** Runs a list of [counter, expected] steps on a fresh window. */
function run(steps: [bigint, boolean][]): void {
  reset();
  steps.forEach(([c, want], i) => {
    assert.is(receive(c), want, `step ${i + 1}: counter ${c}`);
  });
}

test("window constants", () => {
  assert.is(BYTES, 8 + 128 * 8);
  assert.is(REJECT, 0xffff_ffff_ffff_dfffn);
});

test("kernel counter self-test: the 34 single cases", () => {
  const L = WINDOW + 1n; // the kernel's T_LIM
  run([
    [0n, true], [1n, true], [1n, false], [9n, true], [8n, true], [7n, true], [7n, false],
    [L, true], [L - 1n, true], [L - 1n, false], [L - 2n, true], [2n, true], [2n, false],
    [L + 16n, true], [3n, false], [L + 16n, false],
    [L * 4n, true], [L * 4n - (L - 1n), true], [10n, false], [L * 4n - L, false],
    [L * 4n - (L + 1n), false], [L * 4n - (L - 2n), true], [L * 4n + 1n - L, false], [0n, false],
    [REJECT, false], [REJECT - 1n, true], [REJECT, false], [REJECT - 1n, false],
    [REJECT - 2n, true], [REJECT + 1n, false], [REJECT + 2n, false], [REJECT - 2n, false],
    [REJECT - 3n, true], [0n, false],
  ]);
});

test("kernel counter self-test: bulk 1, ascending 1..W then 0", () => {
  reset();
  for (let i = 1n; i <= WINDOW; i++) assert.ok(receive(i), `${i}`);
  assert.ok(receive(0n));
  assert.not.ok(receive(0n));
});

test("kernel counter self-test: bulk 2, ascending 2..W+1 then 1, 0", () => {
  reset();
  for (let i = 2n; i <= WINDOW + 1n; i++) assert.ok(receive(i), `${i}`);
  assert.ok(receive(1n));
  assert.not.ok(receive(0n));
});

test("kernel counter self-test: bulk 3, descending W..0", () => {
  reset();
  for (let i = WINDOW; i >= 0n; i--) assert.ok(receive(i), `${i}`);
});

test("kernel counter self-test: bulk 4, descending W+1..1 then 0", () => {
  reset();
  for (let i = WINDOW + 1n; i >= 1n; i--) assert.ok(receive(i), `${i}`);
  assert.not.ok(receive(0n));
});

test("kernel counter self-test: bulk 5, descending W..1, then W+1, then 0", () => {
  reset();
  for (let i = WINDOW; i >= 1n; i--) assert.ok(receive(i), `${i}`);
  assert.ok(receive(WINDOW + 1n));
  assert.not.ok(receive(0n));
});

test("kernel counter self-test: bulk 6, descending W..1, then 0, then W+1", () => {
  reset();
  for (let i = WINDOW; i >= 1n; i--) assert.ok(receive(i), `${i}`);
  assert.ok(receive(0n));
  assert.ok(receive(WINDOW + 1n));
});

test("REJECT_AFTER_MESSAGES boundary on a fresh window", () => {
  for (const [c, want] of [
    [REJECT - 1n, true], // 2^64 - 2^13 - 2
    [REJECT, false], // 2^64 - 2^13 - 1
    [REJECT + 1n, false],
    [U64_MAX - 1n, false],
    [U64_MAX, false],
  ] as [bigint, boolean][]) {
    reset();
    assert.is(check(c), want, `check ${c}`);
    const before = state();
    assert.is(update(c), want, `update ${c}`);
    if (!want) assert.equal(state(), before, `refused update of ${c} changed the state`);
  }
  // The last acceptable counter, and the window behind it, still work.
  reset();
  assert.ok(receive(REJECT - 1n));
  assert.ok(receive(REJECT - 1n - WINDOW));
  assert.not.ok(receive(REJECT - 2n - WINDOW));
  assert.not.ok(receive(REJECT - 1n));
  assert.not.ok(receive(REJECT));
});

test("counters above 2^53 are exact", () => {
  const B = 2n ** 53n + 1n; // not representable as a JS number
  reset();
  assert.ok(receive(B));
  assert.ok(receive(B - 1n)); // as a number B - 1 == B: a lossy window would refuse it
  assert.ok(receive(B + 1n));
  assert.not.ok(receive(B));
  assert.not.ok(receive(B + 1n));
  assert.ok(receive(B + 2n));

  const H = 0x8000_0000_0000_0001n + 12345n;
  reset();
  assert.ok(receive(H));
  assert.ok(receive(H - WINDOW)); // the oldest still inside
  assert.not.ok(receive(H - WINDOW - 1n)); // one too old
  assert.ok(receive(H - 1n));
  assert.not.ok(receive(H - 1n));
  // A jump by 2^40 forgets everything before.
  assert.ok(receive(H + 2n ** 40n));
  assert.not.ok(receive(H));
  assert.ok(receive(H + 2n ** 40n - 1n));
});

test("a big jump clears the ring: no stale bits a full ring later", () => {
  reset();
  for (let i = 0n; i < 64n; i++) assert.ok(receive(i));
  // 8192 positions later the same ring blocks are reused; they must read empty.
  const J = 8192n;
  assert.ok(receive(J + 63n));
  for (let i = 0n; i < 63n; i++) assert.ok(receive(J + i), `${J + i}`);
  // And after a jump of exactly one ring plus one block.
  reset();
  assert.ok(receive(100n));
  assert.ok(receive(100n + 8192n + 64n));
  assert.ok(receive(100n + 8192n));
});

test("replay_check never mutates", () => {
  const rnd = xorshift(7);
  reset();
  for (let i = 0; i < 200; i++) receive(BigInt(rnd() % 20000));
  const before = state();
  const probes = [0n, 1n, 19999n, 20000n, 30000n, 2n ** 53n, REJECT - 1n, REJECT, U64_MAX];
  for (let i = 0; i < 5000; i++) probes.push(BigInt(rnd() % 40000));
  for (const c of probes) check(c);
  assert.equal(state(), before);
});

test("update refuses without changing anything; check and update agree", () => {
  reset();
  assert.ok(update(5n)); // update alone (no pre-check) records too
  const before = state();
  assert.not.ok(check(5n));
  assert.not.ok(update(5n)); // a duplicate later in the same batch
  assert.equal(state(), before);
  assert.ok(update(20000n));
  const after = state();
  assert.not.ok(update(5n)); // now too old
  assert.not.ok(update(20000n - WINDOW - 1n));
  assert.equal(state(), after);
});

test("two windows side by side do not interfere", () => {
  const W2 = W + BYTES;
  reset(W);
  reset(W2);
  assert.ok(receive(1n, W));
  assert.ok(receive(1n, W2));
  assert.ok(receive(100000n, W2));
  assert.ok(receive(2n, W));
  assert.not.ok(receive(2n, W2));
});

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

/** The obvious model: a set of everything seen and the highest counter. */
class Model {
  seen = new Set<bigint>();
  top = -1n;
  accepts(c: bigint): boolean {
    if (c >= REJECT || this.seen.has(c)) return false;
    return this.top < 0n || c + WINDOW >= this.top;
  }
  take(c: bigint): void {
    this.seen.add(c);
    if (c > this.top) this.top = c;
  }
}

test("randomized: 100k operations against a Set-based model", () => {
  const rnd = xorshift(0x5eed);
  const rand = (n: number) => rnd() % n;
  // Starting points: zero, beyond 2^53, and close to the limit.
  const starts = [0n, 2n ** 53n - 5000n, 2n ** 62n + 3n, REJECT - 100_000n];
  let ops = 0;
  for (const start of starts) {
    reset();
    const m = new Model();
    let recent: bigint[] = [];
    for (let i = 0; i < 25_000; i++) {
      const top = m.top < 0n ? start : m.top;
      let c: bigint;
      const kind = rand(100);
      if (kind < 30) c = top + BigInt(rand(64)); // in order, a little ahead
      else if (kind < 60) c = top - BigInt(rand(9000)); // inside and just behind the window
      else if (kind < 70) c = top - WINDOW + BigInt(rand(5)) - 2n; // the back edge
      else if (kind < 80 && recent.length) c = recent[rand(recent.length)]; // replays
      else if (kind < 85) c = top + BigInt(rand(20000)); // a jump
      else if (kind < 87) c = top + 8192n + BigInt(rand(200)) - 100n; // around a full ring
      else if (kind < 88) c = REJECT - BigInt(rand(3)) + BigInt(rand(3)); // the limit
      else c = top + BigInt(rand(200)) - 100n;
      if (c < 0n) c = 0n;
      if (c > U64_MAX) c = U64_MAX;
      const want = m.accepts(c);
      assert.is(check(c), want, `check ${c}, top ${m.top}`);
      // Mostly check-then-update; sometimes an update without the pre-check.
      const got = rand(4) === 0 ? update(c) : want && update(c);
      assert.is(got, want, `update ${c}, top ${m.top}`);
      if (want) {
        m.take(c);
        recent.push(c);
        if (recent.length > 64) recent = recent.slice(32);
      }
      ops++;
    }
  }
  assert.is(ops, 100_000);
});

test.run();
