// Endpoint re-resolution in process: the engine's count of unanswered
// initiations over the in-memory network (a peer that moved: its old address
// swallows everything), and the watcher that resolves a peer's name again
// once an initiation has gone unanswered, once per retry, and moves the peer
// so that the next retry completes the handshake. The real thing (a hosts
// file changed under a running `wg up`, wireguard-go moved) is in
// test/system/reresolve.test.ts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { pair, ipv4 } from "../../helpers/net.ts";
import { REKEY_TIMEOUT } from "../../../src/constants.ts";
import { isAddressLiteral, namedEndpoints, watchNamedEndpoints, type EndpointPeers } from "../../../adapters/ports/reresolve.ts";
import type { Endpoint } from "../../../src/engine.ts";

test("unansweredHandshakes: 0 before any, 1 once sent, +1 a retry, 0 once answered; endpointOf follows set", () => {
  const { net, a, b } = pair();
  assert.is(a.engine.unansweredHandshakes(b.publicKey), 0);
  assert.is(a.engine.unansweredHandshakes(new Uint8Array(32)), null);
  const moved = { address: "192.0.2.99", port: 51820 };
  b.ep = moved; // b moved: what goes to its old address is lost
  a.send(ipv4("10.0.0.1", "10.0.0.2", 84, 1));
  assert.is(a.engine.unansweredHandshakes(b.publicKey), 1);
  net.advance(REKEY_TIMEOUT + 400);
  assert.is(a.engine.unansweredHandshakes(b.publicKey), 2);
  net.advance(REKEY_TIMEOUT + 400);
  assert.is(a.engine.unansweredHandshakes(b.publicKey), 3);
  assert.equal(a.engine.endpointOf(b.publicKey), { address: "192.0.2.2", port: 51820 });
  net.take(a, a.engine.set({ peers: [{ publicKey: b.publicKey, updateOnly: true, endpoint: moved }] }, net.now));
  assert.equal(a.engine.endpointOf(b.publicKey), moved);
  net.advance(REKEY_TIMEOUT + 400); // the next retry goes to the new address and is answered
  assert.is(a.engine.unansweredHandshakes(b.publicKey), 0);
  assert.ok(b.tunnel.length >= 1, "the packet that waited went through");
});

test("names, not literals, are watched", () => {
  for (const h of ["10.0.0.1", "fd00::1", "[fd00::1]"]) assert.ok(isAddressLiteral(h), h);
  for (const h of ["vpn.example", "localhost", "10.0.0.256"]) assert.not.ok(isAddressLiteral(h), h);
  const k = new Uint8Array(32).fill(1);
  assert.equal(namedEndpoints([
    { publicKey: k, endpoint: { host: "vpn.example", port: 51820 } }, { publicKey: k, endpoint: { host: "10.0.0.1", port: 1 } }, { publicKey: k },
  ]), [{ publicKey: k, host: "vpn.example", port: 51820 }]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("the watcher: waits a look, resolves once per retry, moves only when the address changed, leaves answered peers alone", async () => {
  const key = new Uint8Array(32).fill(7);
  let unanswered = 0;
  let endpoint: Endpoint = { address: "192.0.2.1", port: 51820 };
  let answer = "192.0.2.1";
  const lookups: string[] = [], moves: Endpoint[] = [], lines: string[] = [];
  const peers: EndpointPeers = { unansweredHandshakes: () => unanswered, endpointOf: () => endpoint };
  const stop = watchNamedEndpoints({
    peers, named: [{ publicKey: key, host: "vpn.example", port: 51820 }], every: 10,
    resolve: async (host, port) => { lookups.push(host); return { address: answer, port }; },
    setEndpoint: (_k, ep) => { endpoint = ep; moves.push(ep); },
    log: (l) => lines.push(l),
  });
  await sleep(50);
  assert.equal(lookups, [], "a peer that answers is never looked up");
  unanswered = 1;
  await sleep(60);
  assert.equal(lookups, ["vpn.example"], "one lookup for the first unanswered initiation, not one per look");
  assert.equal(moves, [], "the same address: nothing set");
  answer = "192.0.2.77";
  await sleep(60);
  assert.is(lookups.length, 1, "no new lookup until a retry");
  unanswered = 2;
  await sleep(60);
  assert.is(lookups.length, 2);
  assert.equal(moves, [{ address: "192.0.2.77", port: 51820 }]);
  assert.equal(lines, ["vpn.example:51820 now resolves to 192.0.2.77:51820 (was 192.0.2.1:51820): handshakes go there"]);
  unanswered = 0;
  await sleep(40);
  unanswered = 1; // a later failure starts afresh
  await sleep(60);
  assert.is(lookups.length, 3);
  stop();
  unanswered = 5;
  await sleep(40);
  assert.is(lookups.length, 3, "stopped");
});

test("a name that stops resolving keeps the old endpoint and is tried again at the next retry", async () => {
  const key = new Uint8Array(32).fill(8);
  let unanswered = 2, calls = 0;
  const moves: Endpoint[] = [];
  const stop = watchNamedEndpoints({
    peers: { unansweredHandshakes: () => unanswered, endpointOf: () => ({ address: "192.0.2.1", port: 1 }) },
    named: [{ publicKey: key, host: "gone.example", port: 1 }], every: 10,
    resolve: async () => { calls++; throw new Error("ENOTFOUND"); },
    setEndpoint: (_k, ep) => moves.push(ep),
  });
  await sleep(50);
  assert.is(calls, 1);
  unanswered = 3;
  await sleep(50);
  assert.is(calls, 2);
  assert.equal(moves, []);
  stop();
});

test.run();
