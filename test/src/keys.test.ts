// src/keys.ts: keys as the text of wg-quick(8) files.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generatePresharedKey, generatePrivateKey, publicKeyOf } from "../../src/keys.ts";
import { keyFromBase64 } from "../../src/config.ts";
import { nodeX25519 } from "../../adapters/node-compat/x25519.ts";

test("a private key is 44 characters of base64 for 32 clamped bytes, a new one each time", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const k = generatePrivateKey();
    assert.match(k, /^[A-Za-z0-9+/]{43}=$/);
    const b = keyFromBase64(k);
    assert.is(b[0] & 7, 0);
    assert.is(b[31] & 0xc0, 0x40);
    seen.add(k);
  }
  assert.is(seen.size, 50);
  assert.match(generatePresharedKey(), /^[A-Za-z0-9+/]{43}=$/);
});

test("publicKeyOf: RFC 7748's Alice, and the same answer from node:crypto", () => {
  // RFC 7748 section 6.1.
  const alice = btoa(String.fromCharCode(...Uint8Array.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a".match(/../g)!.map((h) => parseInt(h, 16)))));
  const pub = Uint8Array.from("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a".match(/../g)!.map((h) => parseInt(h, 16)));
  assert.is(publicKeyOf(alice), btoa(String.fromCharCode(...pub)));
  const k = generatePrivateKey();
  assert.is(publicKeyOf(k, nodeX25519), publicKeyOf(k));
});

test("publicKeyOf refuses what is no key, naming it", () => {
  assert.throws(() => publicKeyOf("not a key"), /invalid key: expected 44 base64 characters/);
});

test.run();
