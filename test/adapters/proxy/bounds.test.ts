// The proxies' connection table (Slots, shared by SOCKS5, the HTTP proxy and
// the forwards) flooded past its cap in process: never more than the cap run
// at once, the newcomer past it is closed at once (a running connection never
// gives way), and a slot freed by one that ends admits the next.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Slots } from "../../../adapters/proxy/connections.ts";
import { serveHost } from "../../../adapters/proxy/forward.ts";
import { MAX_RELAYED } from "../../../adapters/cli/up-netstack.ts";
import type { HostStream } from "../../../adapters/ports/host.ts";

/** A host connection that only records whether it was closed. */
function stream(n: number): HostStream & { closed: boolean } {
  const s = {
    closed: false, remoteAddress: "192.0.2.9", remotePort: n, localAddress: "127.0.0.1", localPort: 1080,
    readable: new ReadableStream<Uint8Array>(), writable: new WritableStream<Uint8Array>(),
    close() { s.closed = true; },
  };
  return s;
}

test("the default cap is the documented number", () => {
  assert.is(MAX_RELAYED, 512);
  assert.throws(() => new Slots(0), RangeError);
});

test("2000 connections against a cap of 512: 512 run, the rest are closed at once and counted; one ending admits the next", async () => {
  const slots = new Slots(MAX_RELAYED);
  let accept: ((s: HostStream) => void) | null = null;
  const finish: (() => void)[] = [];
  const handled: number[] = [];
  await serveHost(async (_h, _p, on) => { accept = on; return { port: 1080, close() {} }; }, "127.0.0.1", 1080, slots,
    (s) => { handled.push(s.remotePort); return new Promise<void>((r) => finish.push(r)); });
  const all = Array.from({ length: 2000 }, (_, i) => stream(i));
  for (const s of all) {
    accept!(s);
    assert.ok(slots.active <= MAX_RELAYED);
  }
  assert.is(slots.active, MAX_RELAYED);
  assert.is(slots.refused, 2000 - MAX_RELAYED);
  assert.equal(handled, Array.from({ length: MAX_RELAYED }, (_, i) => i), "the first 512 run: none gave way to a later one");
  assert.ok(all.slice(MAX_RELAYED).every((s) => s.closed), "each one past the cap was closed at once");
  assert.ok(all.slice(0, MAX_RELAYED).every((s) => !s.closed));
  finish[0]();
  await new Promise((r) => setTimeout(r, 0));
  assert.is(slots.active, MAX_RELAYED - 1, "an ended connection gives its slot back");
  const late = stream(9999);
  accept!(late);
  assert.is(handled[handled.length - 1], 9999, "a connection after the flood is served");
  assert.not.ok(late.closed);
  for (const f of finish) f();
  await new Promise((r) => setTimeout(r, 0));
  assert.is(slots.active, 0);
});

test.run();
