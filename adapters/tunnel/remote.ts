// A Tunnel in another thread (a page's dedicated Worker), used from this one
// over postMessage: serveTunnel() runs beside the tunnel, RemoteTunnel is
// its stand-in where the application is. Only web-standard messaging, so it
// fits any pair of MessagePort-like ends.
//
// Calls are request/answer messages; bytes go over a MessageChannel per
// stream with the chunks' ArrayBuffers transferred (moved, not copied), and
// a credit per chunk so a slow reader holds the sender back instead of
// queueing a whole download in the other thread. Copies: a chunk that does
// not own its whole buffer (a view into a larger one) is copied once to
// become transferable; the netstack's read chunks own theirs.
import { NetError } from "../../src/netstack/index.ts";
import type { ConnectTlsOptions, Tunnel, TunnelFetchInit, TunnelStatus } from "./tunnel.ts";
import type { HttpRequestInit } from "../http/client.ts";

/** The part of a MessagePort (or Worker, or a worker's global scope) this uses. */
export interface PortLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
}

/** Chunks a stream may have in flight before the receiver grants more. */
const WINDOW = 16;

type Call =
  | { op: "fetch"; url: string; init: { method?: string; headers?: [string, string][]; body?: Uint8Array | string | null; tls?: TunnelFetchInit["tls"] } }
  | { op: "connect"; host: string; port: number }
  | { op: "connectTls"; host: string; port: number; opts: ConnectTlsOptions }
  | { op: "ping"; address: string; opts: { timeout?: number; size?: number } }
  | { op: "resolve"; name: string }
  | { op: "status" }
  | { op: "close" };

interface Fault { name: string; message: string; code?: string }

function fault(e: unknown): Fault {
  if (e instanceof NetError) return { name: "NetError", message: e.message, code: e.code };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: "Error", message: String(e) };
}

function raise(f: Fault): Error {
  if (f.name === "NetError" && f.code) return new NetError(f.code as ConstructorParameters<typeof NetError>[0], f.message);
  const E = f.name === "TypeError" ? TypeError : f.name === "RangeError" ? RangeError : Error;
  return new E(f.message);
}

/** A chunk whose buffer can be transferred: itself when it owns the whole buffer, else a copy. */
function transferable(c: Uint8Array): Uint8Array {
  return c.byteOffset === 0 && c.byteLength === c.buffer.byteLength && c.buffer instanceof ArrayBuffer ? c : c.slice();
}

/** Pumps `readable` into `port`: each chunk transferred, at most WINDOW unanswered; "cancel" from the other end stops it. */
async function pumpOut(readable: ReadableStream<Uint8Array>, port: MessagePort): Promise<void> {
  const reader = readable.getReader();
  let credit = WINDOW, wake: (() => void) | null = null, cancelled = false;
  port.onmessage = (e) => {
    if (e.data === "cancel") { cancelled = true; void reader.cancel().catch(() => {}); } else credit += e.data as number;
    wake?.();
  };
  try {
    for (;;) {
      while (credit <= 0 && !cancelled) await new Promise<void>((r) => { wake = r; });
      if (cancelled) break;
      const { value, done } = await reader.read();
      if (done) { port.postMessage({ end: true }); break; }
      const c = transferable(value);
      credit--;
      port.postMessage(c, [c.buffer]);
    }
  } catch (e) {
    if (!cancelled) port.postMessage({ error: fault(e) });
  } finally {
    port.close();
  }
}

/** The other end of pumpOut, as a ReadableStream: a credit back for each chunk read. */
function pumpIn(port: MessagePort): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(c) {
      port.onmessage = (e) => {
        const d = e.data;
        if (d instanceof Uint8Array) c.enqueue(d);
        else if (d.end) { c.close(); port.close(); } else if (d.error) { c.error(raise(d.error)); port.close(); }
      };
    },
    pull() { port.postMessage(1); },
    cancel() { port.postMessage("cancel"); port.close(); },
  }, { highWaterMark: WINDOW });
}

/** A WritableStream whose chunks go to `port` (copied once: the writer keeps its own buffers), each write answered by the other end. */
function pushOut(port: MessagePort): WritableStream<Uint8Array> {
  const waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  port.onmessage = (e) => {
    const d = e.data as { ok?: true; error?: Fault };
    const w = waiting.shift();
    if (d.error) { w?.reject(raise(d.error)); for (const x of waiting.splice(0)) x.reject(raise(d.error)); } else w?.resolve();
  };
  const send = (m: unknown, t: Transferable[] = []) => new Promise<void>((resolve, reject) => { waiting.push({ resolve, reject }); port.postMessage(m, t); });
  return new WritableStream<Uint8Array>({
    write(chunk) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError("the writable takes Uint8Array chunks");
      const c = chunk.slice();
      return send(c, [c.buffer]);
    },
    close() { return send({ close: true }); },
    abort() { port.postMessage({ abort: true }); },
  });
}

/** The other end of pushOut: each chunk written to `writable`, answered once written. */
function pushIn(port: MessagePort, writable: WritableStream<Uint8Array>, abort: () => void): void {
  const w = writable.getWriter();
  let chain = Promise.resolve();
  port.onmessage = (e) => {
    const d = e.data as Uint8Array | { close?: true; abort?: true };
    if (!(d instanceof Uint8Array) && d.abort) { abort(); port.close(); return; }
    chain = chain.then(async () => {
      try {
        if (d instanceof Uint8Array) await w.write(d);
        else await w.close();
        port.postMessage({ ok: true });
      } catch (err) {
        port.postMessage({ error: fault(err) });
      }
    });
  };
}

/**
 * Answers RemoteTunnel's calls on `port` with `tunnel`, until close.
 * @returns a function that stops answering
 */
export function serveTunnel(port: PortLike, tunnel: Tunnel): void {
  port.onmessage = (e) => {
    const { id, call } = e.data as { id: number; call: Call };
    void (async () => {
      try {
        const [value, transfer] = await answer(tunnel, call);
        port.postMessage({ id, value }, transfer);
      } catch (err) {
        port.postMessage({ id, error: fault(err) });
      }
    })();
  };
}

async function answer(t: Tunnel, call: Call): Promise<[unknown, Transferable[]]> {
  switch (call.op) {
    case "fetch": {
      const res = await t.fetch(call.url, call.init as HttpRequestInit & Pick<TunnelFetchInit, "tls">);
      const ch = new MessageChannel();
      if (res.body) void pumpOut(res.body, ch.port1);
      else { ch.port1.postMessage({ end: true }); ch.port1.close(); }
      const headers: [string, string][] = [];
      res.headers.forEach((v, k) => headers.push([k, v]));
      return [{ status: res.status, statusText: res.statusText, headers, body: ch.port2 }, [ch.port2]];
    }
    case "connect": {
      const c = await t.connect(call.host, call.port);
      const down = new MessageChannel(), up = new MessageChannel(), closed = new MessageChannel();
      void pumpOut(c.readable, down.port1);
      pushIn(up.port1, c.writable, () => c.abort());
      closed.port1.onmessage = () => c.abort();
      c.closed.then(() => closed.port1.postMessage({ end: true }), (e) => closed.port1.postMessage({ error: fault(e) }));
      const info = { localAddress: c.localAddress, localPort: c.localPort, remoteAddress: c.remoteAddress, remotePort: c.remotePort };
      return [{ ...info, readable: down.port2, writable: up.port2, closed: closed.port2 }, [down.port2, up.port2, closed.port2]];
    }
    case "connectTls": {
      const c = await t.connectTls(call.host, call.port, call.opts);
      const down = new MessageChannel(), up = new MessageChannel(), closed = new MessageChannel();
      void pumpOut(c.readable, down.port1);
      pushIn(up.port1, c.writable, () => c.abort());
      closed.port1.onmessage = () => c.abort();
      return [{ alpn: c.alpn, readable: down.port2, writable: up.port2, abort: closed.port2 }, [down.port2, up.port2, closed.port2]];
    }
    case "ping": return [await t.ping(call.address, call.opts), []];
    case "resolve": return [await t.resolve(call.name), []];
    case "status": return [t.status(), []];
    case "close": await t.close(); return [null, []];
  }
}

function pairs(h: Headers): [string, string][] {
  const out: [string, string][] = [];
  h.forEach((v, k) => out.push([k, v]));
  return out;
}

/** A TCP connection of a RemoteTunnel: the streams of TcpConn, in this thread. */
export interface RemoteConn {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /** Settles when the connection has ended (rejects with its error). */
  readonly closed: Promise<void>;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Resets the connection. */
  abort(): void;
}

/** A TLS connection of a RemoteTunnel: the plaintext streams of a TlsConn, in this thread. */
export interface RemoteTlsConn {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /** The ALPN protocol the server chose, or null. */
  readonly alpn: string | null;
  /** Ends the sending side (as closing the writable). */
  close(): Promise<void>;
  /** Resets the connection. */
  abort(): void;
}

/**
 * The Tunnel in another thread, through the port serveTunnel answers on:
 * fetch, connect, connectTls, ping, resolve, status (a Promise here) and close.
 */
export class RemoteTunnel {
  private next = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closed = false;

  /** @param onclose runs once the other side has closed the tunnel (ends the worker). */
  constructor(private readonly port: PortLike, private readonly onclose: () => void = () => {}) {
    port.onmessage = (e) => {
      const d = e.data as { id: number; value?: unknown; error?: Fault };
      const c = this.calls.get(d.id);
      if (!c) return;
      this.calls.delete(d.id);
      if (d.error) c.reject(raise(d.error));
      else c.resolve(d.value);
    };
  }

  private call<T>(call: Call, transfer: Transferable[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new TypeError("the tunnel is closed"));
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ id, call }, transfer);
    });
  }

  /** As Tunnel.fetch (`tls` too, for https:); a body is a string or bytes (copied across), the response's body streams back. */
  async fetch(url: string | URL, init: { method?: string; headers?: HeadersInit; body?: string | Uint8Array | ArrayBuffer | null; tls?: TunnelFetchInit["tls"] } = {}): Promise<Response> {
    const b = init.body;
    const body = b == null || typeof b === "string" ? b : b instanceof ArrayBuffer ? new Uint8Array(b.slice(0)) : b.slice();
    const r = await this.call<{ status: number; statusText: string; headers: [string, string][]; body: MessagePort }>(
      { op: "fetch", url: String(url), init: { method: init.method, headers: pairs(new Headers(init.headers)), body, ...(init.tls ? { tls: init.tls } : {}) } },
      body instanceof Uint8Array ? [body.buffer] : [],
    );
    const stream = pumpIn(r.body);
    return new Response([101, 204, 205, 304].includes(r.status) ? (void stream.cancel(), null) : stream, { status: r.status, statusText: r.statusText, headers: r.headers });
  }

  /** As Tunnel.connect. */
  async connect(host: string, port: number): Promise<RemoteConn> {
    const r = await this.call<{ localAddress: string; localPort: number; remoteAddress: string; remotePort: number; readable: MessagePort; writable: MessagePort; closed: MessagePort }>(
      { op: "connect", host, port });
    const closed = new Promise<void>((resolve, reject) => {
      r.closed.onmessage = (e) => { r.closed.close(); if (e.data.error) reject(raise(e.data.error)); else resolve(); };
    });
    closed.catch(() => {});
    return {
      readable: pumpIn(r.readable), writable: pushOut(r.writable), closed,
      localAddress: r.localAddress, localPort: r.localPort, remoteAddress: r.remoteAddress, remotePort: r.remotePort,
      abort: () => r.closed.postMessage("abort"),
    };
  }

  /** As Tunnel.connectTls: the handshake runs in the other thread, the plaintext comes here. */
  async connectTls(host: string, port: number, opts: ConnectTlsOptions = {}): Promise<RemoteTlsConn> {
    const r = await this.call<{ alpn: string | null; readable: MessagePort; writable: MessagePort; abort: MessagePort }>(
      { op: "connectTls", host, port, opts });
    const writable = pushOut(r.writable);
    return {
      readable: pumpIn(r.readable), writable, alpn: r.alpn,
      close: async () => {
        if (!writable.locked) { try { await writable.close(); } catch { /* already closed or failed */ } }
      },
      abort: () => { r.abort.postMessage("abort"); r.abort.close(); },
    };
  }

  ping(address: string, opts: { timeout?: number; size?: number } = {}): Promise<number> {
    return this.call({ op: "ping", address, opts });
  }

  resolve(name: string): Promise<string[]> {
    return this.call({ op: "resolve", name });
  }

  /** The tunnel's status, as Tunnel.status gives it, from the other thread. */
  status(): Promise<TunnelStatus> {
    return this.call({ op: "status" });
  }

  /** Closes the tunnel in the other thread (resets what is open, zeroes the keys), then ends it. */
  async close(): Promise<void> {
    if (this.closed) return;
    try { await this.call({ op: "close" }); } finally {
      this.closed = true;
      this.onclose();
    }
  }
}
