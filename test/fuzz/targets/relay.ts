// The WebSocket relay's core (adapters/relay/relay.ts) as a client meets it:
// an upgrade request (its target with to= and token=, its Origin) through
// admit(), then, when admitted, the session's events: binary and text
// messages, the UDP socket being bound, datagrams from the upstream and
// from strangers, time passing (the idle sweep), the client going away.
// In-memory WebSocket and UDP socket; a virtual clock.
//
// Input: a flags byte (bit 0: a WebSocket upgrade; bit 1: an Origin line
// follows the target; bit 2: the relay wants a token and an origin), the
// target up to a newline, the origin up to a newline, then events: an op
// byte, two bytes of length and the bytes (see EVENTS below).
//
// Defects: an exception; a refusal that is not one line with a status of
// 400/401/403/503 or that is not counted; an admission to an upstream the
// allow-list does not hold, or without the token or origin asked for; a
// datagram sent that is empty, too big, or not to the upstream; a message
// to a client that is closed or not from the upstream; counters that
// disagree with what the sockets saw; a close code not in CLOSE.
import { AllowList, CLOSE, Relay, type RelayOptions, type Session, type UdpPort, type WsPort } from "../../../adapters/relay/relay.ts";
import { parseAddress } from "../../../src/ip.ts";

const ALLOW = ["192.0.2.1:51820", "[2001:db8::1]:51820", "10.9.0.0/24:51820", "[fd00::]/64:443"];
const TOKEN = "s3cret", ORIGIN = "https://page.example";
const MAX_MESSAGE = 1500, MAX_CLIENTS = 2;
const CODES = new Set<number>(Object.values(CLOSE));

let allow: AllowList | null = null;
// Literal entries only: from() resolves nothing, and is ready before any input runs.
void AllowList.from(ALLOW, async () => []).then((a) => { allow = a; });

const decoder = new TextDecoder("latin1");

class FakeWs implements WsPort {
  sent: Uint8Array[] = [];
  closedWith: number | null = null;
  backlog = 0;
  send(data: Uint8Array): void {
    if (this.closedWith !== null) throw new Error("a message to a closed client");
    this.sent.push(data);
  }
  close(code: number, reason: string): void {
    if (!CODES.has(code)) throw new Error(`close code ${code}`);
    if (reason.includes("\n") || new TextEncoder().encode(reason).length > 123) throw new Error(`close reason '${reason}'`);
    this.closedWith = code;
  }
  buffered(): number {
    return this.backlog;
  }
}

class FakeUdp implements UdpPort {
  readonly port = 50000;
  sent = 0;
  closed = false;
  constructor(private readonly address: string, private readonly upstreamPort: number) {}
  send(data: Uint8Array, address: string, port: number): void {
    if (this.closed) throw new Error("a datagram on a closed UDP socket");
    if (data.length === 0 || data.length > MAX_MESSAGE) throw new Error(`a datagram of ${data.length} bytes`);
    if (address !== this.address || port !== this.upstreamPort) throw new Error(`a datagram to ${address}:${port}, not the upstream`);
    this.sent++;
  }
  close(): void {
    this.closed = true;
  }
}

function line(data: Uint8Array, at: number): [string, number] {
  let end = data.indexOf(10, at);
  if (end < 0) end = data.length;
  return [decoder.decode(data.subarray(at, end)), end + 1];
}

/** Whether the target names the token once (what admission must have checked). */
function tokenGiven(url: string): boolean {
  try {
    const t = new URL(url, "http://relay").searchParams.getAll("token");
    return t.length === 1 && t[0] === TOKEN;
  } catch {
    return false;
  }
}

function inAllowList(a: AllowList, address: string, port: number): boolean {
  return a.match(address, port) !== null && parseAddress(address).length > 0;
}

// EVENTS: the op byte's low 3 bits.
const MESSAGE = 0, TEXT = 1, BIND = 2, FROM_UPSTREAM = 3, FROM_STRANGER = 4, TIME = 5, GONE = 6, BACKLOG = 7;

export function fuzz(data: Uint8Array): void {
  if (allow === null) throw new Error("the allow-list is not ready");
  if (data.length === 0) return;
  const flags = data[0];
  const strict = (flags & 4) !== 0;
  const opts: Omit<RelayOptions, "allow"> = { maxClients: MAX_CLIENTS, maxMessage: MAX_MESSAGE, rate: 1000, burst: 4, idleSeconds: 1 };
  if (strict) { opts.tokens = [TOKEN]; opts.origins = [ORIGIN]; }
  const relay = new Relay(allow, opts);
  let [url, i] = line(data, 1);
  let origin: string | null = null;
  if (flags & 2) [origin, i] = line(data, i);
  const req = { url, websocket: (flags & 1) !== 0, origin, remote: "192.0.2.9:1234" };
  const v = relay.admit(req);
  const refused = Object.values(relay.stats().refused).reduce((a, b) => a + b, 0);
  if (!v.ok) {
    if (![400, 401, 403, 503].includes(v.status)) throw new Error(`refused with ${v.status}`);
    if (v.message.length === 0 || v.message.includes("\n") || v.message.includes("\r")) throw new Error(`refusal message ${JSON.stringify(v.message)}`);
    if (refused !== 1) throw new Error(`a refusal counted ${refused} times`);
    return;
  }
  if (refused !== 0) throw new Error("an admission counted as a refusal");
  if (!req.websocket) throw new Error("admitted without a WebSocket upgrade");
  if (strict && (!tokenGiven(url) || origin === null || origin.replace(/\/$/, "").toLowerCase() !== ORIGIN)) {
    throw new Error(`admitted without the token or origin: ${JSON.stringify(req)}`);
  }
  if (!inAllowList(allow, v.address, v.port)) throw new Error(`admitted to ${v.address}:${v.port}, not in the allow-list`);
  if ((v.family === 4) !== (parseAddress(v.address).length === 4)) throw new Error(`family ${v.family} for ${v.address}`);

  let now = 0;
  const ws = new FakeWs();
  const s: Session | null = relay.open(v, ws, req.remote, now);
  if (s === null) throw new Error("an admitted client was not opened");
  let udp: FakeUdp | null = null, fromUpstream = 0;
  while (i < data.length) {
    const op = data[i] & 7;
    const len = i + 3 <= data.length ? Math.min((data[i + 1] << 8) | data[i + 2], data.length - i - 3) : 0;
    const bytes = data.subarray(i + 3, i + 3 + len);
    i += 3 + len;
    if (op === MESSAGE) s.message(bytes.slice(), now);
    else if (op === TEXT) s.message(decoder.decode(bytes), now);
    else if (op === BIND) { if (udp === null) { udp = new FakeUdp(v.address, v.port); s.attach(udp); } }
    else if (op === FROM_UPSTREAM || op === FROM_STRANGER) {
      const before = ws.sent.length;
      const stranger = op === FROM_STRANGER;
      s.datagram(bytes.slice(), stranger ? "192.0.2.66" : v.address, stranger ? v.port : v.port, now);
      if (ws.sent.length > before) {
        if (stranger) throw new Error("a stranger's datagram reached the client");
        fromUpstream++;
      }
    } else if (op === TIME) { now += (bytes[0] ?? 0) * 10; relay.sweep(now); }
    else if (op === GONE) s.closed("client", 1000);
    else ws.backlog = (bytes[0] ?? 0) << 16;
    const st = relay.stats();
    if (st.clients > MAX_CLIENTS || st.sockets < 0 || st.sockets > st.clients) throw new Error(`clients ${st.clients}, sockets ${st.sockets}`);
    if (st.up.datagrams !== (udp?.sent ?? 0)) throw new Error(`${st.up.datagrams} datagrams counted up, ${udp?.sent ?? 0} sent`);
    if (st.down.datagrams !== fromUpstream || ws.sent.length !== fromUpstream) throw new Error(`${st.down.datagrams} datagrams counted down, ${ws.sent.length} sent`);
    if (st.clients === 0 && udp !== null && !udp.closed) throw new Error("a closed client's UDP socket stayed open");
  }
}
