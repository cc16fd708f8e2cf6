// What the relay tests stand on: a UDP echo server as the WireGuard
// endpoint, a WebSocket client (the `ws` package) that queues what it
// receives, and a raw TCP client that speaks the HTTP upgrade by hand and
// then writes whatever bytes a test wants.
import dgram from "node:dgram";
import { randomBytes } from "node:crypto";
import net from "node:net";
import * as assert from "uvu/assert";
import WebSocket from "ws";

/** Polls `cond` every 10 ms until true; fails naming `what` after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.unreachable(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A UDP echo server: every datagram goes back to its sender; what came from where is kept. */
export interface Echo {
  readonly port: number;
  readonly socket: dgram.Socket;
  /** "address:port" of each datagram's sender, in order. */
  readonly from: string[];
  /** Each datagram's length, in order. */
  readonly sizes: number[];
  close(): Promise<void>;
}

export async function echoServer(family: 4 | 6 = 4, reply = true): Promise<Echo> {
  const socket = dgram.createSocket(family === 4 ? "udp4" : "udp6");
  const from: string[] = [], sizes: number[] = [];
  socket.on("message", (d, r) => {
    from.push(`${r.address}:${r.port}`);
    sizes.push(d.length);
    if (reply) socket.send(d, r.port, r.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, family === 4 ? "127.0.0.1" : "::1", resolve));
  return {
    port: socket.address().port, socket, from, sizes,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A connected WebSocket client; received binary messages queue up for next(). */
export class Client {
  readonly messages: Buffer[] = [];
  texts = 0;
  closed: { code: number; reason: string } | null = null;
  private wake: (() => void) | null = null;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (d: Buffer, binary: boolean) => {
      if (binary) this.messages.push(d); else this.texts++;
      this.wake?.();
    });
    ws.on("close", (code: number, reason: Buffer) => { this.closed = { code, reason: reason.toString() }; this.wake?.(); });
    ws.on("error", () => {});
  }

  /** The next binary message, or a failure after `ms`. */
  async next(ms = 3000): Promise<Buffer> {
    const end = Date.now() + ms;
    while (this.messages.length === 0) {
      if (this.closed) assert.unreachable(`closed (${this.closed.code} ${this.closed.reason}) while waiting for a message`);
      if (Date.now() > end) assert.unreachable("timed out waiting for a message");
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, 50); });
    }
    return this.messages.shift()!;
  }

  send(d: Uint8Array | string): void {
    this.ws.send(d);
  }

  /** Waits for the close event; returns its code and reason. */
  async waitClosed(ms = 3000): Promise<{ code: number; reason: string }> {
    await waitFor("the WebSocket to close", () => this.closed !== null, ms);
    return this.closed!;
  }

  /** Sends `d` and expects the same bytes back as one message. */
  async echo(d: Uint8Array): Promise<void> {
    this.send(d);
    const got = await this.next();
    assert.is(got.length, d.length, `echoed size`);
    assert.ok(got.equals(d), `echoed bytes of a ${d.length}-byte message`);
  }
}

export type Outcome = { client: Client } | { status: number; body: string } | { error: string };

/** Opens a WebSocket; resolves with the client, or the HTTP refusal (status, body), or a network error. */
export function connect(url: string, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.on("open", () => resolve({ client: new Client(ws) }));
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on("error", (e) => resolve({ error: e.message }));
  });
}

/** Opens a WebSocket that must be accepted. */
export async function open(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const o = await connect(url, headers);
  if (!("client" in o)) assert.unreachable(`expected the upgrade, got ${JSON.stringify(o)}`);
  return (o as { client: Client }).client;
}

/** Bytes 0, 1, 2, ... offset by `seed`, `n` long. */
export function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/**
 * A raw TCP connection that has done the WebSocket handshake by hand (or
 * not, with `handshake` false): tests then write any bytes they like.
 */
export class Raw {
  data = Buffer.alloc(0);
  ended = false;
  /** The status of the answer to the upgrade (0: none, or not asked). */
  status = 0;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d) => { this.data = Buffer.concat([this.data, d]); });
    socket.on("close", () => { this.ended = true; });
    socket.on("error", () => {});
  }

  /**
   * `local`: the address to connect from (any of 127/8). `expect`: the
   * upgrade's status the test requires, or null to take whatever comes (see
   * `status`) within 5 s. `protocols`: the subprotocols to offer.
   */
  static async open(port: number, path: string, handshake = true, opts: { local?: string; expect?: number | null; protocols?: string[] } = {}): Promise<Raw> {
    const s = net.connect({ port, host: "127.0.0.1", localAddress: opts.local });
    await new Promise<void>((resolve, reject) => { s.once("connect", resolve); s.once("error", reject); });
    const r = new Raw(s);
    if (handshake) {
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
        (opts.protocols?.length ? `Sec-WebSocket-Protocol: ${opts.protocols.join(", ")}\r\n` : "") + "\r\n");
      const expect = opts.expect === undefined ? 101 : opts.expect;
      const answered = () => r.data.includes("\r\n\r\n");
      if (expect !== null) await waitFor(`the ${expect} answer`, answered);
      else for (const end = Date.now() + 5000; !answered() && !r.ended && Date.now() < end;) await sleep(5);
      r.status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(r.data.toString("latin1"))?.[1] ?? 0);
      if (expect !== null) assert.is(r.status, expect, `the upgrade's answer: ${r.data.toString("latin1").split("\r\n")[0]}`);
      r.data = r.data.subarray(r.data.indexOf("\r\n\r\n") + 4);
    }
    return r;
  }

  write(b: Uint8Array | string): void {
    this.socket.write(b);
  }

  /** A masked client frame; `announce` is the length its header claims (the payload's own by default, up to 2^64 - 1). */
  static frame(opcode: number, payload: Uint8Array, fin = true, announce: bigint | number = payload.length): Buffer {
    const mask = randomBytes(4), n = BigInt(announce), b0 = (fin ? 0x80 : 0) | opcode;
    const head = n < 126n ? Buffer.from([b0, 0x80 | Number(n)])
      : n < 65536n ? Buffer.from([b0, 0x80 | 126, Number(n >> 8n), Number(n & 255n)])
        : Buffer.concat([Buffer.from([b0, 0x80 | 127]), Buffer.from(Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(56 - 8 * i)) & 255n)))]);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
    return Buffer.concat([head, mask, body]);
  }
}
