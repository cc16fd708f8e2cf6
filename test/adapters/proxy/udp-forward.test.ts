// [UDPProxyTunnel] and [STDIOTunnel] in process: the sections as `wg up
// --netstack` reads them (and the one-line errors for bad ones), and the UDP
// forward's flow table past its cap (the least recently used flow makes room,
// its tunnel socket closed) and after its idle timeout. The real sockets and
// wireguard-go are in test/system/forwards.test.ts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseProxySections, UDP_IDLE_DEFAULT } from "../../../adapters/cli/up-netstack.ts";
import { parseWgQuick } from "../../../src/wgquick.ts";
import { udpProxyTunnel } from "../../../adapters/proxy/udp-forward.ts";
import type { UdpMessage, UdpSocket } from "../../../src/netstack/index.ts";

const KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const conf = (extra: string) => `[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.2/24\n${extra}`;
const sections = (extra: string) => parseProxySections(parseWgQuick(conf(extra)).extra);
const fails = (extra: string, message: RegExp) => {
  try {
    sections(extra);
  } catch (e) {
    assert.match((e as Error).message, message);
    assert.not.match((e as Error).message, /\n/);
    return;
  }
  assert.unreachable(`accepted: ${extra}`);
};

test("[UDPProxyTunnel] and [STDIOTunnel] as wireproxy writes them", () => {
  const s = sections("[UDPProxyTunnel]\nBindAddress = 127.0.0.1:53\nTarget = 10.0.0.1:53\n\n[UDPProxyTunnel]\nBindAddress = :5000\nTarget = [fd00::1]:5000\nInactivityTimeout = 0\n\n[STDIOTunnel]\nTarget = ssh.wg:22\n");
  assert.equal(s.udpTunnels, [
    { bind: ["127.0.0.1", 53], target: ["10.0.0.1", 53], idleMs: UDP_IDLE_DEFAULT * 1000, line: 4 },
    { bind: ["0.0.0.0", 5000], target: ["fd00::1", 5000], idleMs: 0, line: 8 },
  ]);
  assert.equal(s.stdio, { target: ["ssh.wg", 22], line: 13 });
});

test("bad sections are refused with one line naming the line", () => {
  fails("[UDPProxyTunnel]\nTarget = 10.0.0.1:53\n", /^line 4: \[UDPProxyTunnel\] needs BindAddress$/);
  fails("[UDPProxyTunnel]\nBindAddress = 127.0.0.1:53\nTarget = 10.0.0.1:53\nInactivityTimeout = 1m\n", /^line 7: invalid InactivityTimeout '1m': expected seconds/);
  fails("[UDPProxyTunnel]\nBindAddress = 127.0.0.1:53\nTarget = 10.0.0.1\n", /^line 6: invalid Target '10.0.0.1': expected host:port$/);
  fails("[STDIOTunnel]\nTarget = a:22\n[STDIOTunnel]\nTarget = b:22\n", /^line 6: only one \[STDIOTunnel\]: there is one stdin \(the first is on line 4\)$/);
  fails("[STDIOTunnel]\nListenPort = 22\n", /^line 5: unknown key 'ListenPort' in \[STDIOTunnel\]$/);
});

/** A tunnel whose UDP sockets record what they send and can be handed datagrams. */
function fakeTunnel() {
  const socks: { sent: [string, number][]; closed: boolean; push: (m: UdpMessage) => void; port: number }[] = [];
  return {
    socks,
    resolve: async (name: string) => (name === "echo.wg" ? ["10.0.0.1"] : []),
    udp(): UdpSocket {
      let push: (m: UdpMessage) => void = () => {};
      let end: () => void = () => {};
      const rec = { sent: [] as [string, number][], closed: false, push: (m: UdpMessage) => push(m), port: 40000 + socks.length };
      socks.push(rec);
      const readable = new ReadableStream<UdpMessage>({ start(c) { push = (m) => c.enqueue(m); end = () => c.close(); } });
      return {
        port: rec.port, readable, get closed() { return rec.closed; },
        send(_d: Uint8Array, a: string, p: number) { rec.sent.push([a, p]); return true; },
        close() { rec.closed = true; end(); },
      } as unknown as UdpSocket;
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test("the flow table: one flow a client, the least recently used makes room past the cap, answers go back to their client", async () => {
  const t = fakeTunnel();
  let receive: (d: Uint8Array, a: string, p: number) => void = () => {};
  const back: [string, number, string][] = [];
  let now = 0;
  const f = await udpProxyTunnel(async (_h, port, on) => {
    receive = on;
    return { port, send: (d, a, p) => { back.push([a, p, new TextDecoder().decode(d)]); return true; }, close() {} };
  }, ["127.0.0.1", 5353], ["echo.wg", 53], t, { idleMs: 10_000, maxFlows: 4, now: () => now });
  const hi = new TextEncoder().encode("hi");
  for (let c = 1; c <= 4; c++) receive(hi, "127.0.0.1", 1000 + c);
  await tick();
  assert.is(f.flows, 4);
  assert.is(t.socks.length, 4);
  assert.equal(t.socks.map((s) => s.sent), [[["10.0.0.1", 53]], [["10.0.0.1", 53]], [["10.0.0.1", 53]], [["10.0.0.1", 53]]], "the name resolved through the tunnel");
  receive(hi, "127.0.0.1", 1001); // client 1 active again: client 2 is now the least recently used
  receive(hi, "127.0.0.1", 1005);
  await tick();
  assert.is(f.flows, 4);
  assert.equal(t.socks.map((s) => s.closed), [false, true, false, false, false], "client 2's flow made room");
  // An answer from the target goes to its own client; one from elsewhere is not part of the flow.
  t.socks[0].push({ data: new TextEncoder().encode("to 1001"), address: "10.0.0.1", port: 53 });
  t.socks[0].push({ data: new TextEncoder().encode("stray"), address: "10.0.0.7", port: 53 });
  t.socks[4].push({ data: new TextEncoder().encode("to 1005"), address: "10.0.0.1", port: 53 });
  await tick(); await tick();
  assert.equal(back, [["127.0.0.1", 1001, "to 1001"], ["127.0.0.1", 1005, "to 1005"]]);
  f.close();
  assert.ok(t.socks.every((s) => s.closed), "close() ends every flow");
});

test("a flow idle past the timeout is closed; an active one is kept", async () => {
  const t = fakeTunnel();
  let receive: (d: Uint8Array, a: string, p: number) => void = () => {};
  let now = 0;
  const f = await udpProxyTunnel(async (_h, port, on) => { receive = on; return { port, send: () => true, close() {} }; },
    ["127.0.0.1", 0], ["10.0.0.1", 9], t, { idleMs: 300, now: () => now });
  receive(new Uint8Array(1), "127.0.0.1", 1);
  receive(new Uint8Array(1), "127.0.0.1", 2);
  await tick();
  now = 200;
  receive(new Uint8Array(1), "127.0.0.1", 2);
  now = 350; // client 1 idle 350 ms, client 2 150 ms
  await new Promise((r) => setTimeout(r, 400)); // the sweep runs every 250 ms at least
  assert.is(f.flows, 1);
  assert.equal(t.socks.map((s) => s.closed), [true, false]);
  f.close();
});

test.run();
