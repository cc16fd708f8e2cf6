// Prefix text -> bytes: the one-pass IPv4 path agrees with a model of the
// rules (dotted quad without leading zeros, each at most 255, "/n" with n
// 0..32 without leading zeros) on valid text and on near misses.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { formatPrefix, parsePrefix } from "../../src/ip.ts";
import { params } from "../helpers/prop.ts";

/** The rules, spelled out with regular expressions. */
function model(s: string): string | null {
  const t = s.trim();
  const m = /^((?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2}))(?:\/(0|[1-9][0-9]{0,2}))?$/.exec(t);
  if (!m || m[1].split(".").some((p) => Number(p) > 255) || (m[2] !== undefined && Number(m[2]) > 32)) return null;
  return `${m[1]}/${m[2] ?? 32}`;
}

const parse = (s: string): string | null => { try { return formatPrefix(parsePrefix(s)); } catch { return null; } };

test("fixed cases", () => {
  for (const [s, want] of [
    ["10.0.0.0/8", "10.0.0.0/8"], ["0.0.0.0/0", "0.0.0.0/0"], ["255.255.255.255/32", "255.255.255.255/32"],
    ["192.168.1.7/24", "192.168.1.7/24"], [" 10.1.2.3/16 ", "10.1.2.3/16"], ["10.1.2.3", "10.1.2.3/32"],
    ["01.2.3.4/8", null], ["1.2.3.4/08", null], ["1.2.3.4/33", null], ["256.1.1.1/8", null], ["1.2.3/8", null],
    ["1.2.3.4.5/8", null], ["1.2.3.4/", null], ["1.2.3.4/1/2", null], ["1..3.4/8", null], ["1.2.3.4/-1", null],
    ["1.2.3.4/100", null], ["1000.2.3.4/8", null], ["", null], ["/8", null],
  ] as const) assert.is(parse(s), want, JSON.stringify(s));
});

test("property: the parser agrees with the model on quads, near misses and noise", () => {
  const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom("00", "01", "007", "", "1a", " 1"));
  const quad = fc.tuple(octet, octet, octet, octet, fc.option(fc.oneof(fc.integer({ min: 0, max: 40 }).map(String), fc.constantFrom("08", "", "1 ", "3x")))).map(
    ([a, b, c, d, n]) => `${a}.${b}.${c}.${d}${n === null ? "" : `/${n}`}`);
  const text = fc.oneof(quad, fc.string({ maxLength: 20 }), quad.map((s) => s.replace(".", "..")), quad.map((s) => ` ${s}\t`));
  fc.assert(fc.property(text, (s) => { assert.is(parse(s), model(s), JSON.stringify(s)); }), params(3000, 0x1b4));
});

test.run();
