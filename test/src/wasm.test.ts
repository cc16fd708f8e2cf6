// src/wasm.ts's check that engine.wasm and src/ agree on every constant
// they share (statuses, descriptor and slot layout, message sizes, the
// specification's limits): it passes on the build, and a module that
// disagrees on any one of them is refused at instantiation.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkAbi } from "../../src/wasm.ts";
import { wasmModule } from "../helpers/net.ts";

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

test.run();
