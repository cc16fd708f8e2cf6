// Property test of the replay window (assembly/replay.ts) against the plain
// model the whitepaper describes: a set of every counter accepted and the
// highest one; a counter is fresh if it is below REJECT_AFTER_MESSAGES, not
// in the set, and no more than the window's width behind the highest.
// fast-check builds sequences of moves relative to the highest counter (in
// order, just behind, the back edge, a replay of something accepted, jumps
// of about a ring and far beyond, the limit) from starts at zero, past 2^53,
// past 2^63 and near the limit, and shrinks a failure to its shortest
// sequence. Each step runs the pre-check, then the update half the time
// without it (a duplicate inside one batch), and a refused step must leave
// the window's bytes as they were.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { heapStart, instantiate, type ReplayExports } from "../helpers/wasm.ts";
import { params } from "../helpers/prop.ts";

const wasm = instantiate<ReplayExports>();
const BYTES = Number(wasm.REPLAY_BYTES.value);
const W = heapStart(wasm, BYTES);
const WINDOW = 8128n;
const REJECT = 2n ** 64n - 2n ** 13n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const RING = 8192n; // 128 blocks of 64 bits

const state = () => new Uint8Array(wasm.memory.buffer, W, BYTES).slice();

type Move =
  | { k: "ahead"; d: number } // top + d
  | { k: "behind"; d: number } // top - d, inside and past the window
  | { k: "edge"; d: number } // top - WINDOW + d, d in -2..2
  | { k: "replay"; i: number } // an accepted counter again
  | { k: "ring"; d: number } // top + RING + d
  | { k: "jump"; d: bigint } // far ahead
  | { k: "limit"; d: number }; // REJECT + d

const move: fc.Arbitrary<Move> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant("ahead" as const), d: fc.integer({ min: 0, max: 70 }) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant("behind" as const), d: fc.integer({ min: 0, max: 9000 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("edge" as const), d: fc.integer({ min: -2, max: 2 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("replay" as const), i: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("ring" as const), d: fc.integer({ min: -130, max: 130 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("jump" as const), d: fc.bigInt({ min: 1n, max: 2n ** 48n }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("limit" as const), d: fc.integer({ min: -3, max: 3 }) }) },
);

const starts = fc.constantFrom(0n, 2n ** 53n - 3000n, 2n ** 63n - 5n, REJECT - 20_000n);

test("the window accepts exactly what a set of seen counters and the highest accepts", () => {
  fc.assert(fc.property(starts, fc.array(fc.tuple(move, fc.boolean()), { maxLength: 400, size: "max" }), (start, moves) => {
    wasm.replay_reset(W);
    const seen = new Set<bigint>(), accepted: bigint[] = [];
    let top = -1n;
    const fresh = (c: bigint) => c < REJECT && !seen.has(c) && (top < 0n || c + WINDOW >= top);
    moves.forEach(([m, precheck], step) => {
      const base = top < 0n ? start : top;
      let c: bigint;
      switch (m.k) {
        case "ahead": c = base + BigInt(m.d); break;
        case "behind": c = base - BigInt(m.d); break;
        case "edge": c = base - WINDOW + BigInt(m.d); break;
        case "replay": c = accepted.length ? accepted[m.i % accepted.length] : base; break;
        case "ring": c = base + RING + BigInt(m.d); break;
        case "jump": c = base + m.d; break;
        case "limit": c = REJECT + BigInt(m.d); break;
      }
      c = c < 0n ? 0n : c > U64_MAX ? U64_MAX : c;
      const want = fresh(c), before = state();
      const where = `step ${step + 1}: counter ${c}, highest ${top}`;
      if (precheck) {
        assert.is(wasm.replay_check(W, c) === 1, want, `check, ${where}`);
        assert.equal(state(), before, `check changed the window, ${where}`);
      }
      assert.is(wasm.replay_update(W, c) === 1, want, `update, ${where}`);
      if (want) {
        seen.add(c);
        accepted.push(c);
        if (c > top) top = c;
      } else assert.equal(state(), before, `refused update changed the window, ${where}`);
    });
  }), params(300, 0x5eed));
});

test.run();
