// The edge gateway's limits, in one process: the page's client (adapters/browser)
// and createGateway (adapters/gateway/gateway.ts) joined by an in-memory
// WebSocket pair, the outbound connect() played by the test. The real
// runtimes (workerd, deno serve, Chromium) are in gateway.test.ts; this suite
// covers what those cannot reach quickly: the session limit, the idle
// timeout, the connect timeout, and what a closed session leaves behind.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { wasmBytes } from "#engine-wasm";
import { nobleX25519 } from "../../../src/x25519.ts";
import { keyToBase64 } from "../../../src/config.ts";
import { NetError } from "../../../src/netstack/index.ts";
import { connect } from "../../../adapters/entries/browser.ts";
import { createGateway, type GatewayOptions, type GatewaySocket, type OutboundSocket } from "../../../adapters/gateway/gateway.ts";
import { allowList } from "../../../adapters/gateway/allow.ts";
import { FakeDns } from "../../../adapters/gateway/fakedns.ts";

const wasm = new WebAssembly.Module(wasmBytes);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The gateway's side of the in-memory pair. */
class ServerSide implements GatewaySocket {
  binaryType = "arraybuffer";
  readyState = 1;
  client: ClientSide | null = null;
  private readonly listeners: Record<string, ((e: { data: unknown }) => void)[]> = { message: [], close: [], error: [] };
  send(data: Uint8Array | ArrayBuffer): void {
    if (this.readyState !== 1) return;
    const copy = new Uint8Array(data instanceof ArrayBuffer ? data : data.slice()).buffer;
    queueMicrotask(() => this.client?.deliver(copy));
  }
  close(code = 1000, reason = ""): void {
    if (this.readyState !== 1) return;
    this.readyState = 3;
    queueMicrotask(() => { this.client?.ended(code, reason); this.fire("close", null); });
  }
  addEventListener(type: string, l: (e: { data: unknown }) => void): void { this.listeners[type].push(l); }
  fire(type: string, data: unknown): void { for (const l of this.listeners[type]) l({ data }); }
}

type Gateway = ReturnType<typeof createGateway>;
let gateway: Gateway;
const pending: ServerSide[] = [];

/** The page's side: enough of the standard WebSocket for WebSocketBind. */
class ClientSide {
  binaryType = "blob";
  readyState = 0;
  bufferedAmount = 0;
  /** The subprotocol the gateway answered ("" for none), as the standard WebSocket has it. */
  protocol = "";
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  static opened: ClientSide[] = [];
  private server: ServerSide | null = null;

  constructor(url: string, protocols?: string | string[]) {
    ClientSide.opened.push(this);
    const offer = protocols === undefined ? [] : ([] as string[]).concat(protocols);
    const headers: Record<string, string> = { upgrade: "websocket", ...(offer.length ? { "sec-websocket-protocol": offer.join(", ") } : {}) };
    void gateway.fetch(new Request(url.replace(/^ws/, "http"), { headers })).then((res) => {
      const s = pending.shift();
      if (res.status !== 200 || !s) { this.ended(1006, `HTTP ${res.status}`); return; }
      this.protocol = res.headers.get("sec-websocket-protocol") ?? "";
      this.server = s;
      s.client = this;
      this.readyState = 1;
      this.onopen?.();
    });
  }
  send(data: Uint8Array): void {
    if (this.readyState !== 1) return;
    const copy = data.slice().buffer;
    queueMicrotask(() => this.server?.fire("message", copy));
  }
  close(): void {
    if (this.readyState > 1) return;
    this.readyState = 3;
    queueMicrotask(() => { this.server?.close(1000, "client"); });
  }
  deliver(data: ArrayBuffer): void { if (this.readyState === 1) this.onmessage?.({ data }); }
  ended(code: number, reason: string): void {
    if (this.readyState === 3 && code !== 1000) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const gw = nobleX25519.generate(), page = nobleX25519.generate();
const gatewayConf = `[Interface]\nPrivateKey = ${keyToBase64(gw.privateKey)}\nAddress = 10.66.0.1/24\n\n[Peer]\nPublicKey = ${keyToBase64(page.publicKey)}\nAllowedIPs = 10.66.0.2/32\n`;
const pageConf = `[Interface]\nPrivateKey = ${keyToBase64(page.privateKey)}\nAddress = 10.66.0.2/32\n\n[Peer]\nPublicKey = ${keyToBase64(gw.publicKey)}\nAllowedIPs = 0.0.0.0/0\n`;

/** An outbound connection that echoes what it is sent. */
function echo(): OutboundSocket {
  const t = new TransformStream<Uint8Array, Uint8Array>();
  return { readable: t.readable, writable: t.writable, close: () => { void t.writable.abort().catch(() => {}); } };
}

function make(o: { maxSessions?: number; idleTimeout?: number; connectTimeout?: number; connect?: (h: string, p: number) => Promise<OutboundSocket> } & Pick<GatewayOptions, "allow" | "resolve" | "batch"> = {}): Gateway {
  ClientSide.opened = [];
  pending.length = 0;
  gateway = createGateway({
    config: gatewayConf, wasm,
    upgrade: (_req, protocol) => {
      const s = new ServerSide();
      pending.push(s);
      return { socket: s, response: new Response(null, { status: 200, headers: protocol ? { "sec-websocket-protocol": protocol } : {} }) };
    },
    connect: o.connect ?? (async () => echo()),
    maxSessions: o.maxSessions, idleTimeout: o.idleTimeout, connectTimeout: o.connectTimeout, allow: o.allow, resolve: o.resolve, batch: o.batch,
  });
  return gateway;
}

const open = (batch?: boolean) => connect(pageConf, { relay: "ws://gateway.test/", transport: "websocket", batch, WebSocket: ClientSide as unknown as typeof WebSocket });

async function roundTrip(t: Awaited<ReturnType<typeof open>>, host: string): Promise<string> {
  const c = await t.connect(host, 7);
  const w = c.writable.getWriter();
  await w.write(new TextEncoder().encode("ping"));
  const { value } = await c.readable.getReader().read();
  c.abort();
  return new TextDecoder().decode(value);
}

test("a flow through the gateway reaches connect() with the address the page asked for", async () => {
  const asked: string[] = [];
  const g = make({ connect: async (h, p) => { asked.push(`${h}:${p}`); return echo(); } });
  const t = await open();
  try {
    assert.is(await roundTrip(t, "198.51.100.9"), "ping");
    assert.equal(asked, ["198.51.100.9:7"]);
    assert.is(g.status().sessions, 1);
    assert.is(g.status().flowsOpened, 1);
  } finally {
    await t.close();
  }
  await sleep(10);
  assert.is(g.status().sessions, 0, "closing the page's tunnel ends the session");
});

test("framing: batch where page and gateway both speak it; one datagram per message when either does not; a malformed batch is a counted drop", async () => {
  for (const [pageBatch, gatewayBatch, want] of [[true, true, "batch"], [true, false, "datagram"], [false, true, "datagram"]] as const) {
    const g = make({ batch: gatewayBatch });
    const t = await open(pageBatch);
    try {
      assert.is(await roundTrip(t, "198.51.100.9"), "ping", `page batch ${pageBatch}, gateway batch ${gatewayBatch}`);
      assert.equal(g.status().framing, { datagram: want === "datagram" ? 1 : 0, batch: want === "batch" ? 1 : 0 });
      const c = (t.device.bind as unknown as { counters: Record<string, number> }).counters;
      if (want === "datagram") assert.is(c.messagesSent, c.sent);
      if (want === "batch") {
        // Junk in the batch framing: a cut-short length, a zero length, a datagram longer than the message.
        const server = ClientSide.opened[0] as unknown as { send(d: Uint8Array): void };
        for (const junk of [Uint8Array.of(5), Uint8Array.of(0, 0, 1), Uint8Array.of(0xff, 0xff, 1, 2)]) server.send(junk);
        await sleep(10);
        assert.is(g.status().dropMalformed, 3);
        assert.is(await roundTrip(t, "198.51.100.9"), "ping", "the session goes on after junk");
      }
    } finally {
      await t.close();
    }
  }
});

test("names: the gateway answers DNS with stand-in addresses, and a flow to one leaves as connect(name, port)", async () => {
  const asked: string[] = [];
  make({ connect: async (h, p) => { asked.push(`${h}:${p}`); return echo(); } });
  const t = await connect(pageConf.replace("Address = 10.66.0.2/32\n", "Address = 10.66.0.2/32\nDNS = 10.66.0.1\n"),
    { relay: "ws://gateway.test/", transport: "websocket", WebSocket: ClientSide as unknown as typeof WebSocket });
  try {
    const [a] = await t.resolve("Service.Example");
    assert.match(a, /^198\.(18|19)\.\d+\.\d+$/);
    assert.equal(await t.resolve("service.example"), [a], "the same name, the same address");
    assert.is.not((await t.resolve("other.example"))[0], a);
    assert.is(await roundTrip(t, "service.example"), "ping");
    assert.equal(asked, ["service.example:7"]);
    // An address of the range the gateway never gave out is refused, not connected.
    const e = await t.connect("198.19.255.1", 7).then(() => null, (x) => x);
    assert.is((e as NetError).code, "ECONNREFUSED");
    assert.equal(asked, ["service.example:7"]);
  } finally {
    await t.close();
  }
});

test("the gateway's DNS answers only well-formed queries, and never throws on junk", () => {
  const dns = new FakeDns(2);
  const query = (name: string, type = 1) => {
    const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
    return new Uint8Array([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, type, 0, 1]);
  };
  const a = dns.answer(query("a.example"))!;
  assert.equal([...a.subarray(0, 4)], [0x12, 0x34, 0x81, 0x80]);
  assert.is((a[6] << 8) | a[7], 1, "one answer");
  assert.equal([...a.subarray(a.length - 4)], [198, 18, 0, 1]);
  assert.is(dns.name("198.18.0.1"), "a.example");
  const aaaa = dns.answer(query("a.example", 28))!;
  assert.is((aaaa[6] << 8) | aaaa[7], 0, "AAAA: no answer");
  assert.is(aaaa[3] & 0xf, 0, "AAAA: NOERROR");
  dns.answer(query("b.example"));
  const c = dns.answer(query("c.example"))!;
  assert.is(c[3] & 0xf, 0, "beyond the limit: answered, the least recently used name gave way");
  assert.equal([...c.subarray(c.length - 4)], [198, 18, 0, 3]);
  assert.is(dns.name("198.18.0.1"), undefined);
  assert.is(dns.size, 2);
  assert.is(dns.answer(query("bad!name"))![3] & 0xf, 2, "a name of other characters: SERVFAIL");
  const response = query("a.example");
  response[2] |= 0x80;
  assert.is(dns.answer(response), null, "a response is not answered");
  for (let i = 0; i < 20000; i++) {
    const junk = crypto.getRandomValues(new Uint8Array(1 + (i % 80)));
    if (i % 2) junk.set([0, 0, 0, 0, 0, 1].slice(0, Math.min(6, junk.length)), 0);
    dns.answer(junk);
  }
});

test("by default a flow reaches public destinations only: loopback, private, link-local and metadata ones are reset, never connected", async () => {
  const asked: string[] = [];
  make({ connect: async (h, p) => { asked.push(`${h}:${p}`); return echo(); } });
  const t = await connect(pageConf.replace("Address = 10.66.0.2/32\n", "Address = 10.66.0.2/32\nDNS = 10.66.0.1\n"),
    { relay: "ws://gateway.test/", transport: "websocket", WebSocket: ClientSide as unknown as typeof WebSocket });
  try {
    for (const host of ["127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "169.254.169.254", "100.100.100.200", "0.1.2.3"]) {
      const e = await t.connect(host, 80).then(() => null, (x) => x);
      assert.is((e as NetError)?.code, "ECONNREFUSED", host);
    }
    for (const name of ["localhost", "metadata.google.internal", "db.internal", "printer.local", "router", "127.1"]) {
      const [a] = await t.resolve(name);
      const e = await t.connect(a, 80).then(() => null, (x) => x);
      assert.is((e as NetError)?.code, "ECONNREFUSED", name);
    }
    assert.equal(asked, [], "nothing local was connected to");
    assert.is(await roundTrip(t, "198.51.100.7"), "ping", "a public address still goes out");
    assert.equal(asked, ["198.51.100.7:7"]);
  } finally {
    await t.close();
  }
});

test("with resolve, a public name that resolves to a local address is refused, and a flow goes to the first allowed address; a name WG_ALLOW names is passed as it is", async () => {
  const asked: string[] = [];
  const dns: Record<string, string[]> = { "rebind.example": ["127.0.0.1"], "mixed.example": ["10.0.0.9", "203.0.113.5"], "db.example": ["10.0.0.5"] };
  make({
    connect: async (h, p) => { asked.push(`${h}:${p}`); return echo(); },
    resolve: async (n) => dns[n] ?? [],
    allow: allowList("db.example:7, *"),
  });
  const t = await connect(pageConf.replace("Address = 10.66.0.2/32\n", "Address = 10.66.0.2/32\nDNS = 10.66.0.1\n"),
    { relay: "ws://gateway.test/", transport: "websocket", WebSocket: ClientSide as unknown as typeof WebSocket });
  try {
    const e = await t.connect((await t.resolve("rebind.example"))[0], 7).then(() => null, (x) => x);
    assert.is((e as NetError)?.code, "ECONNREFUSED", "rebinding");
    const gone = await t.connect((await t.resolve("nxdomain.example"))[0], 7).then(() => null, (x) => x);
    assert.is((gone as NetError)?.code, "ECONNREFUSED", "no address");
    assert.is(await roundTrip(t, "mixed.example"), "ping");
    assert.is(await roundTrip(t, "db.example"), "ping");
    assert.equal(asked, ["203.0.113.5:7", "db.example:7"]);
  } finally {
    await t.close();
  }
});

test("sessions beyond maxSessions are answered 503; a freed one admits the next", async () => {
  const g = make({ maxSessions: 1 });
  const a = await open(), b = await open();
  try {
    assert.is(await roundTrip(a, "198.51.100.1"), "ping");
    const c = b.connect("198.51.100.2", 7).catch((e) => e);
    await sleep(50);
    assert.is(g.status().sessionsRefused, 1, "the second page's WebSocket was refused");
    assert.is(g.status().sessions, 1);
    await a.close();
    await sleep(10);
    assert.is(g.status().sessions, 0);
    void c;
  } finally {
    await a.close();
    await b.close();
  }
});

test("a session that moves nothing for idleTimeout is closed, and its page's socket with it", async () => {
  const g = make({ idleTimeout: 300 });
  const t = await open();
  try {
    assert.is(await roundTrip(t, "198.51.100.3"), "ping");
    assert.is(g.status().sessions, 1);
    await sleep(1500);
    assert.is(g.status().sessions, 0, "idle session closed");
    assert.ok(ClientSide.opened.every((c) => c.readyState === 3), "the page's WebSocket was closed");
  } finally {
    await t.close();
  }
});

test("a connect() that hangs past connectTimeout is a refused connection for the page, not a hang", async () => {
  const g = make({ connectTimeout: 300, connect: () => new Promise<OutboundSocket>(() => {}) });
  const t = await open();
  try {
    const started = performance.now();
    const e = await t.connect("198.51.100.4", 7).then(() => null, (x) => x);
    assert.instance(e, NetError);
    assert.is((e as NetError).code, "ECONNREFUSED");
    assert.ok(performance.now() - started < 5000, `refused after ${performance.now() - started} ms`);
    assert.is(g.status().flowsRefused, 1);
  } finally {
    await t.close();
  }
});

test("closing the session aborts its flows and closes their outbound sockets", async () => {
  let closed = 0;
  const g = make({ connect: async () => { const e = echo(); return { ...e, close: () => { closed++; e.close(); } }; } });
  const t = await open();
  const c = await t.connect("198.51.100.5", 7);
  await sleep(20);
  assert.is(g.status().flows, 1);
  await t.close();
  await sleep(20);
  assert.is(g.status().sessions, 0);
  assert.is(g.status().flows, 0);
  assert.ok(closed >= 1, "the outbound socket was closed");
  void c;
});

test.run();
