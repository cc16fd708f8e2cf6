// The browser build's connect(), without a browser: its errors and warnings.
// (The tunnel itself runs in Chromium in browser.test.ts and gateway.test.ts,
// and in one process against the gateway in edge-limits.test.ts.)
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ConfigError, connect, ignoredInPage } from "../../../adapters/entries/browser.ts";
import { nobleX25519 } from "../../../src/x25519.ts";
import { keyToBase64 } from "../../../src/config.ts";

const key = () => keyToBase64(nobleX25519.generate().privateKey);
const conf = (extra = "") => `[Interface]\nPrivateKey = ${key()}\nAddress = 10.9.0.2/32\n${extra}\n[Peer]\nPublicKey = ${keyToBase64(nobleX25519.generate().publicKey)}\nAllowedIPs = 10.9.0.1/32\nEndpoint = 192.0.2.1:51820\n`;

/** A WebSocket that never opens: connect() needs none until the first packet. */
class Idle { binaryType = ""; readyState = 0; bufferedAmount = 0; onopen = null; onmessage = null; onclose = null; send() {} close() {} }
const WebSocket = Idle as unknown as typeof globalThis.WebSocket;

test("settings a page cannot carry out are each named on one line, none dropped unsaid", async () => {
  const text = conf("ListenPort = 51820\nTable = off\nPostUp = echo hi\nSaveConfig = true\n") + "\n[Socks5]\nBindAddress = 127.0.0.1:1080\n";
  const lines = ignoredInPage(text);
  for (const what of ["ListenPort", "Table", "PostUp", "SaveConfig", "[Socks5]"]) {
    assert.ok(lines.some((l) => l.includes(what)), `${what} not named: ${lines.join(" | ")}`);
  }
  assert.ok(lines.every((l) => /^line \d+: /.test(l) && !l.includes("\n")));
  const warned: string[] = [];
  const t = await connect(text, { relay: "ws://relay.test/", transport: "websocket", WebSocket, onwarning: (w) => warned.push(w) });
  await t.close();
  assert.equal(warned, lines);
  assert.equal(ignoredInPage(conf()), [], "a plain config warns of nothing");
});

test("a bad config, relay URL or transport is one clear error", async () => {
  const err = async (p: Promise<unknown>) => p.then(() => null, (e: Error) => e);
  const bad = await err(connect("[Interface]\nPrivateKey = nope\n", { relay: "ws://relay.test/", WebSocket }));
  assert.instance(bad, ConfigError);
  assert.match((bad as Error).message, /line 2/);
  const url = await err(connect(conf(), { relay: "ftp://relay.test/", WebSocket }));
  assert.instance(url, TypeError);
  assert.match((url as Error).message, /ftp:\/\/relay\.test\/.*not ws:/);
  const none = await err(connect(conf(), undefined as never));
  assert.match((none as Error).message, /needs a relay URL/);
  const tr = await err(connect(conf(), { relay: "ws://relay.test/", transport: "carrier-pigeon" as never, WebSocket }));
  assert.match((tr as Error).message, /invalid transport 'carrier-pigeon'/);
});

test.run();
