// The relay's tables flooded past their bounds, in process (fake sockets, no
// network): clients, clients per source, and a client's queue while its UDP
// socket is bound. The size stays at the bound, the newcomer past it is the
// one refused or dropped (a live client never gives way; the handshake
// initiation that comes first is kept), and a legitimate client after the
// flood is admitted.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AllowList, DEFAULTS, PENDING_MAX, Relay, remoteSource, type UdpPort, type WsPort } from "../../../adapters/relay/relay.ts";

class FakeWs implements WsPort {
  sent: Uint8Array[] = [];
  closedWith: number | null = null;
  send(d: Uint8Array): void { this.sent.push(d); }
  close(code: number): void { this.closedWith = code; }
  buffered(): number { return 0; }
}

class FakeUdp implements UdpPort {
  readonly port = 40000;
  sent: Uint8Array[] = [];
  send(d: Uint8Array): void { this.sent.push(d); }
  close(): void {}
}

async function relay(o: { maxClients?: number; maxPerSource?: number } = {}): Promise<Relay> {
  return new Relay(await AllowList.from(["192.0.2.1:51820"], async () => []), { ...o, rate: 1e6, burst: 1e6 });
}

const req = (remote: string) => ({ url: "/?to=192.0.2.1:51820", websocket: true, origin: null, remote });

/** Admits and opens a client from `remote`; null when refused at either step. */
function join(r: Relay, remote: string) {
  const v = r.admit(req(remote));
  if (!v.ok) return null;
  return r.open(v, new FakeWs(), remote, 0);
}

test("the defaults are the documented numbers, and a source is an address or an IPv6 /64", () => {
  assert.is(DEFAULTS.maxClients, 256);
  assert.is(DEFAULTS.maxPerSource, 64);
  assert.is(PENDING_MAX, 64);
  assert.is(remoteSource("192.0.2.7:5000"), "192.0.2.7");
  assert.is(remoteSource("[2001:db8:1:2::5]:5000"), remoteSource("[2001:db8:1:2:ffff::9]:6000"));
  assert.is.not(remoteSource("[2001:db8:1:2::5]:5000"), remoteSource("[2001:db8:1:3::5]:5000"));
});

test("one source flooding: at most maxPerSource of its clients, refused as 'source'; another source still gets in", async () => {
  const r = await relay({ maxClients: 100, maxPerSource: 8 });
  const mine: ReturnType<typeof join>[] = [];
  for (let i = 0; i < 1000; i++) {
    // Every address of one /64 counts as the one source.
    const s = join(r, `[2001:db8:0:1::${(i % 65535).toString(16)}]:${1024 + i}`);
    if (s) mine.push(s);
    assert.ok(r.clients <= 8);
  }
  assert.is(mine.length, 8);
  assert.is(r.stats().refused.source, 992);
  assert.is(r.stats().refused.full, 0);
  assert.is(r.sources, 1);
  assert.ok(join(r, "198.51.100.9:4000") !== null, "a client from elsewhere is admitted after the flood");
  // One of the flood's clients leaving frees one place for that source, and the table forgets what goes.
  mine[0]!.closed();
  assert.ok(join(r, "[2001:db8:0:1::77]:9") !== null);
  for (const s of mine) s!.closed();
  assert.is(r.sources, 2);
});

test("many sources flooding: at most maxClients, the newcomers refused with 503; live clients stay; a freed slot admits the next", async () => {
  const r = await relay({ maxClients: 32 });
  const live: NonNullable<ReturnType<typeof join>>[] = [];
  let refused = 0;
  for (let i = 0; i < 5000; i++) {
    const v = r.admit(req(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:1`));
    if (!v.ok) { assert.is(v.status, 503); refused++; continue; }
    live.push(r.open(v, new FakeWs(), `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:1`, 0)!);
    assert.ok(r.clients <= 32);
  }
  assert.is(live.length, 32);
  assert.is(refused, 5000 - 32);
  assert.is(r.stats().refused.full, 5000 - 32);
  assert.ok(r.sources <= 32, "the per-source table is no bigger than the client table");
  live[31].closed();
  assert.ok(join(r, "203.0.113.5:1") !== null);
  // Between admit and open the relay filled up: the upgraded socket is closed with 1013.
  const v = r.admit(req("203.0.113.6:1"));
  assert.not.ok(v.ok);
});

test("a client's queue while its UDP socket binds: PENDING_MAX messages, the first ones kept, freed once sent or closed", async () => {
  const r = await relay();
  const s = join(r, "192.0.2.50:1")!;
  for (let i = 0; i < 1000; i++) {
    s.message(Uint8Array.of(1, i & 255, i >> 8, 0), 0);
    assert.ok(s.queued <= PENDING_MAX);
  }
  assert.is(s.queued, PENDING_MAX);
  assert.is(r.stats().drops.pending, 1000 - PENDING_MAX);
  const udp = new FakeUdp();
  s.attach(udp);
  assert.is(s.queued, 0);
  assert.equal(udp.sent.map((d) => d[1] | (d[2] << 8)), Array.from({ length: PENDING_MAX }, (_, i) => i), "the first 64, in order");
  s.message(Uint8Array.of(4, 0, 0, 0), 0);
  assert.is(udp.sent.length, PENDING_MAX + 1, "after the bind, messages go straight out");
  // A client that leaves while binding lets go of its queue.
  const t = join(r, "192.0.2.51:1")!;
  for (let i = 0; i < 100; i++) t.message(Uint8Array.of(1, 0, 0, 0), 0);
  t.closed();
  assert.is(t.queued, 0);
  assert.is(r.clients, 1);
});

test.run();
