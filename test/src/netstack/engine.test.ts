// Two netstacks over two WireGuard engines: stack output written straight
// into the engine's memory (outputInto at packetOffset), encrypted, carried
// over the in-memory network of _net.ts, decrypted and fed to the other
// stack. The driver loop here is the one src/netstack/README.md describes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { pair, type Net, type Node } from "../../helpers/net.ts";
import { bytes, readAll, settle, writeAll } from "../../helpers/netstack.ts";
import { Stack, type TcpConn } from "../../../src/netstack/index.ts";

class Tunnel {
  readonly net: Net;
  readonly ends: [Stack, Node][];
  wakeups = 0;

  constructor() {
    const { net, a, b } = pair();
    this.net = net;
    const sa = new Stack({ addresses: ["10.0.0.1", "fd00::1"], mtu: a.engine.mtu });
    const sb = new Stack({ addresses: ["10.0.0.2", "fd00::2"], mtu: b.engine.mtu, dns: ["10.0.0.1"] });
    sa.onoutput = sb.onoutput = () => { this.wakeups++; };
    this.ends = [[sa, a], [sb, b]];
  }

  get a(): Stack { return this.ends[0][0]; }
  get b(): Stack { return this.ends[1][0]; }

  /** One round: every stack's output through its engine, the network, and into the other stack. */
  private pump(): boolean {
    const now = this.net.now;
    let moved = false;
    for (const [s, n] of this.ends) {
      const e = n.engine;
      for (;;) {
        let k = 0, len: number;
        while (k < e.batch && (len = s.outputInto(e.memory, e.packetOffset(k), now)) > 0) e.packetLengths[k++] = len;
        if (k === 0) break;
        moved = true;
        this.net.take(n, e.fromTunnel(k, now));
      }
    }
    this.net.flush();
    for (const [s, n] of this.ends) {
      for (const p of n.tunnel.splice(0)) { s.input(p.data, now); moved = true; }
    }
    return moved;
  }

  async until<T>(p: Promise<T>, limit = 120_000): Promise<T> {
    let done = false, failed = false, value: T | undefined, error: unknown;
    p.then((v) => { done = true; value = v; }, (e) => { done = true; failed = true; error = e; });
    const end = this.net.now + limit;
    for (;;) {
      await settle();
      if (done) break;
      if (this.pump()) continue;
      const next = Math.min(this.a.nextTimer(), this.b.nextTimer(), ...this.ends.map(([, n]) => n.wake));
      if (next > end) throw new Error("timed out");
      this.net.advance(Math.max(0, next - this.net.now));
      for (const [s] of this.ends) if (s.nextTimer() <= this.net.now) s.tick(this.net.now);
    }
    if (failed) throw error;
    return value as T;
  }
}

test("ping, TCP both ways (IPv4 and IPv6) and DNS between two stacks through WireGuard", async () => {
  const t = new Tunnel();
  // The first packet starts the handshake; the engine holds it until keys exist.
  assert.ok((await t.until(t.a.ping("10.0.0.2", t.net.now))) >= 0);
  assert.ok((await t.until(t.b.ping("fd00::1", t.net.now))) >= 0);
  assert.ok(t.wakeups > 0, "onoutput told the driver");

  let server: TcpConn | null = null;
  t.b.listen(443, (c) => { server = c; void c.readable.pipeTo(c.writable); });
  for (const host of ["10.0.0.2", "fd00::2"]) {
    const c = await t.until(t.a.connect(host, 443));
    const data = bytes(1 << 20, host.length);
    const [, back] = await t.until(Promise.all([writeAll(c, data), readAll(c)]));
    assert.is(createHash("sha256").update(back).digest("hex"), createHash("sha256").update(data).digest("hex"));
  }
  assert.ok(server);

  // b resolves a name against a tiny DNS server on a's UDP port 53.
  const dns = t.a.udp(53);
  void (async () => {
    const r = dns.readable.getReader();
    for (;;) {
      const { value, done } = await r.read();
      if (done) return;
      // One A record (10.0.0.1) for an A question, no records for anything else.
      const q = value.data, isA = ((q[q.length - 4] << 8) | q[q.length - 3]) === 1;
      const ans = isA ? [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1] : [];
      dns.send(Uint8Array.from([q[0], q[1], 0x81, 0x80, 0, 1, 0, isA ? 1 : 0, 0, 0, 0, 0, ...q.subarray(12), ...ans]), value.address, value.port);
    }
  })();
  assert.equal(await t.until(t.b.resolve("peer.wg")), ["10.0.0.1"]);
  assert.is(t.a.stats.dropChecksum + t.b.stats.dropChecksum + t.a.stats.dropMalformed + t.b.stats.dropMalformed, 0);
});

test.run();
