// src/wasm.ts's check that engine.wasm and src/ agree on every constant
// they share (statuses, descriptor and slot layout, message sizes, the
// specification's limits): it passes on the build, and a module that
// disagrees on any one of them is refused at instantiation. And the Wasm
// class's NoiseHash (HASH, MAC, KDF through the scratch area) against the
// portable nobleNoiseHash, as a property over random lengths: outputs over
// their own inputs, inputs too long for scratch, and scratch left zeroed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { SCRATCH_BYTES, checkAbi, instantiate } from "../../src/wasm.ts";
import { nobleNoiseHash } from "../../src/crypto.ts";
import { wasmModule } from "../helpers/net.ts";
import { params } from "../helpers/prop.ts";

function exportsOf(): Record<string, unknown> {
  return { ...new WebAssembly.Instance(wasmModule, { env: { abort() {} } }).exports };
}

test("the built engine.wasm agrees with src/ on every shared constant", () => {
  const x = exportsOf();
  checkAbi(x);
  const globals = Object.keys(x).filter((k) => x[k] instanceof WebAssembly.Global);
  for (const name of ["ENCAP_NO_ROUTE", "DECAP_REPLAY", "DESC_STATUS", "HEADROOM", "REJECT_AFTER_MESSAGES", "REKEY_AFTER_TIME_MS"]) {
    assert.ok(globals.includes(name), `${name} is exported`);
  }
});

test("a module that disagrees on one constant, or lacks one, is refused with its name", () => {
  for (const [name, value] of [["DECAP_REPLAY", 9], ["DESC_PEER", 8], ["REKEY_AFTER_TIME_MS", 120_001]] as const) {
    const x = exportsOf();
    x[name] = new WebAssembly.Global({ value: name === "REKEY_AFTER_TIME_MS" ? "f64" : "i32", mutable: false }, value);
    assert.throws(() => checkAbi(x), new RegExp(`disagree on ${name}: ${value} against`));
  }
  const x = exportsOf();
  x.REJECT_AFTER_MESSAGES = new WebAssembly.Global({ value: "i64", mutable: false }, (1n << 63n) - 1n);
  assert.throws(() => checkAbi(x), /disagree on REJECT_AFTER_MESSAGES/);
  const y = exportsOf();
  delete y.MIN_DATA;
  assert.throws(() => checkAbi(y), /does not export MIN_DATA/);
});

const w = instantiate(wasmModule, { maxPeers: 1, maxSlots: 1, batch: 1, cell: 256, aipNodes: 1 });
const scratch = w.x.scratch_ptr();
const scratchClean = () => w.mem.subarray(scratch, scratch + SCRATCH_BYTES).every((b) => b === 0);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
// Mostly handshake sizes, sometimes longer than the scratch area (the portable path).
const bytes = (max: number) => fc.oneof({ weight: 9, arbitrary: fc.uint8Array({ maxLength: max }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: SCRATCH_BYTES - 40, maxLength: SCRATCH_BYTES + 100 }) });

test("property: the WASM NoiseHash equals nobleNoiseHash, outputs may be inputs, and scratch is left zeroed", () => {
  fc.assert(fc.property(bytes(200), bytes(200), fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 3 }),
    (a, b, macKey, kdfKey, n) => {
      const got = new Uint8Array(32), want = new Uint8Array(32);
      w.hash(a, b, got);
      nobleNoiseHash.hash(a, b, want);
      assert.is(hex(got), hex(want));
      const aa = a.slice();
      if (aa.length >= 32) { w.hash(aa, b, aa); assert.is(hex(aa.subarray(0, 32)), hex(want)); }
      const m1 = new Uint8Array(16), m2 = new Uint8Array(16);
      w.mac(macKey, a, m1);
      nobleNoiseHash.mac(macKey, a, m2);
      assert.is(hex(m1), hex(m2));
      const t = [new Uint8Array(32), new Uint8Array(32), new Uint8Array(32)], u = [new Uint8Array(32), new Uint8Array(32), new Uint8Array(32)];
      w.kdf(kdfKey, b, t[0], n > 1 ? t[1] : undefined, n > 2 ? t[2] : undefined);
      nobleNoiseHash.kdf(kdfKey, b, u[0], n > 1 ? u[1] : undefined, n > 2 ? u[2] : undefined);
      assert.is(hex(Uint8Array.from([...t[0], ...t[1], ...t[2]])), hex(Uint8Array.from([...u[0], ...u[1], ...u[2]])));
      // c := KDF(c, input), as the handshake calls it
      if (kdfKey.length === 32) {
        const c = kdfKey.slice();
        w.kdf(c, b, c, n > 1 ? t[1] : undefined);
        assert.is(hex(c), hex(u[0]));
      }
      assert.ok(scratchClean(), "scratch not zeroed");
    }), params(200, 0x7769));
});

test.run();
