// The edge gateway (adapters/gateway/gateway.ts) as a page meets it: an HTTP
// request (method, path, upgrade or not), and when it is a WebSocket, one
// session's messages: binary ones of any length as datagrams for the
// session's engine, text ones, typed-array views at an offset, messages
// past the largest datagram, errors and a close in the middle. In-memory
// WebSocket; the outbound connect() refuses.
//
// Input: a flags byte (bit 0: an upgrade; bit 1: GET, else POST), a path up
// to a newline, then events: an op byte, two bytes of length, the bytes.
//
// Defects: an exception out of fetch() or out of a message listener; a
// response of a status other than 200/400/426/503; counters (dropText,
// dropOversized, bytesIn, sessions) that disagree with what was sent; a
// message sent to the page that is no WireGuard message or larger than a
// datagram; a session left open after its socket closed.
import { wasmBytes } from "#engine-wasm";
import { createGateway, type GatewaySocket } from "../../../adapters/gateway/gateway.ts";
import { keyToBase64 } from "../../../src/config.ts";
import { nobleX25519 } from "../../../src/x25519.ts";

// Async: a session's datagrams reach its engine and stack through microtasks.
export const ASYNC = true;

const wasm = new WebAssembly.Module(wasmBytes);
const key = (seed: number) => { const k = new Uint8Array(32); k.fill(seed); return k; };
const CONFIG = `[Interface]\nPrivateKey = ${keyToBase64(key(7))}\nAddress = 10.66.0.1/24\n\n` +
  `[Peer]\nPublicKey = ${keyToBase64(nobleX25519.publicKey(key(9)))}\nAllowedIPs = 10.66.0.2/32\n`;
const STATUSES = new Set([200, 400, 426, 503]);
const MAX_MESSAGE = 1500;

class FakeSocket implements GatewaySocket {
  binaryType = "blob";
  readyState = 1;
  sent: Uint8Array[] = [];
  private readonly listeners: Record<string, ((e: { data: unknown }) => void)[]> = { message: [], close: [], error: [] };
  send(data: Uint8Array | ArrayBuffer): void {
    if (this.readyState !== 1) throw new Error("a message sent on a closed socket");
    this.sent.push(new Uint8Array(data instanceof ArrayBuffer ? data : data.slice()));
  }
  close(): void {
    if (this.readyState !== 1) return;
    this.readyState = 3;
    this.fire("close", null);
  }
  addEventListener(type: string, l: (e: { data: unknown }) => void): void { this.listeners[type].push(l); }
  fire(type: string, data: unknown): void { for (const l of [...this.listeners[type]]) l({ data }); }
}

let socket: FakeSocket | null = null;
const gateway = createGateway({
  config: CONFIG, wasm, x25519: nobleX25519, maxMessage: MAX_MESSAGE, maxSessions: 2, dns: true,
  upgrade: () => { socket = new FakeSocket(); return { socket, response: new Response(null, { status: 200 }) }; },
  connect: () => Promise.reject(new Error("refused")),
});

const settle = async () => { for (let i = 0; i < 8; i++) await null; };
const decoder = new TextDecoder("latin1");

export async function fuzz(data: Uint8Array): Promise<void> {
  if (data.length === 0) return;
  const flags = data[0];
  let i = 1;
  const nl = data.indexOf(10, i);
  const path = decoder.decode(data.subarray(i, nl < 0 ? data.length : nl)).replace(/[^\x21-\x7e]/g, "");
  i = nl < 0 ? data.length : nl + 1;
  const before = gateway.status();
  socket = null;
  const res = await gateway.fetch(new Request(`http://gw.test/${path}`, {
    method: flags & 2 ? "GET" : "POST", headers: flags & 1 ? { upgrade: "websocket" } : {},
  }));
  if (!STATUSES.has(res.status)) throw new Error(`status ${res.status}`);
  const body = await res.text();
  if (res.status !== 200 && (body.trimEnd().includes("\n") || body.trim().length === 0)) throw new Error(`a refusal of '${body}'`);
  const ws = socket as FakeSocket | null;
  if (!(flags & 1) || ws === null) {
    if (gateway.status().sessions !== before.sessions) throw new Error("a session without an upgrade");
    return;
  }
  let text = 0, oversized = 0, bytes = 0;
  while (i + 3 <= data.length && ws.readyState === 1) {
    const op = data[i] % 6, len = (data[i + 1] | (data[i + 2] << 8)) % 2048;
    // A copy: Jazzer hands a Buffer, whose slice is a view into a shared pool.
    const payload = new Uint8Array(data.subarray(i + 3, i + 3 + len));
    i += 3 + len;
    switch (op) {
      case 0: case 1: // a binary message, as an ArrayBuffer
        if (payload.length > MAX_MESSAGE) oversized++; else bytes += payload.length;
        ws.fire("message", payload.buffer);
        break;
      case 2: { // a view into a larger buffer
        const big = new Uint8Array(payload.length + 7);
        big.set(payload, 3);
        if (payload.length > MAX_MESSAGE) oversized++; else bytes += payload.length;
        ws.fire("message", new DataView(big.buffer, 3, payload.length));
        break;
      }
      case 3: // text
        text++;
        ws.fire("message", decoder.decode(payload));
        break;
      case 4: // past the largest datagram
        oversized++;
        ws.fire("message", new Uint8Array(MAX_MESSAGE + 1 + payload.length).buffer);
        break;
      case 5: // the platform reports an error, which ends the session
        ws.fire("error", null);
        break;
    }
    await settle();
  }
  const s = gateway.status();
  if (s.dropText - before.dropText !== text) throw new Error(`${text} text messages, dropText +${s.dropText - before.dropText}`);
  if (s.dropOversized - before.dropOversized !== oversized) throw new Error(`${oversized} oversized, dropOversized +${s.dropOversized - before.dropOversized}`);
  if (s.bytesIn - before.bytesIn !== bytes) throw new Error(`${bytes} bytes sent, bytesIn +${s.bytesIn - before.bytesIn}`);
  for (const m of ws.sent) {
    if (m.length < 4 || m[0] < 1 || m[0] > 4 || m[1] | m[2] | m[3] || m.length > MAX_MESSAGE) throw new Error(`sent to the page: ${m.length} bytes of type ${m[0]}`);
  }
  ws.close();
  await settle();
  if (gateway.status().sessions !== 0) throw new Error("a session outlived its socket");
}
