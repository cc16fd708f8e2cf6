// The host on Bun's own APIs (ports/host.ts): Bun.udpSocket, bun:ffi (TUN,
// socket options; opened on first use), Bun.listen / Bun.connect (UAPI),
// Bun.spawn, Bun.dns, Bun.file, Bun.serve (the relay). Where Bun has no API
// of its own it uses Bun's node: modules as Node's host does
// (adapters/node-compat): files with a mode, signals, and X25519 (node:crypto,
// which Bun implements on BoringSSL: measured under Bun 1.4.5 on the 2-core test machine, 31,800
// cached DH/s against @noble/curves' 2,700, and 10,400 handshake rounds
// (generate + 2 DH) per second against 1,100).
import { wasmBytes } from "#engine-wasm";
import type { Endpoint } from "../../src/engine.ts";
import { parseAddress } from "../../src/ip.ts";
import type { HostStream, ServerHost } from "../ports/host.ts";
import { nodeFiles, nodeSignals, stdioStreams, stdoutMode } from "../node-compat/process.ts";
import { nodeX25519 } from "../node-compat/x25519.ts";
import { Bun, type SpawnIO } from "./bun.ts";
import { loadLibc } from "./libc.ts";
import { openBunTun } from "./tun.ts";
import { BunBind } from "./udp.ts";
import { listenUnix, connectUnix } from "./unix.ts";
import { serveWebSockets } from "./websocket-server.ts";
import { LinuxUdpBind, type UdpReaderHost } from "../linux/udp-bind.ts";

/** The reader thread of a LinuxUdpBind: a Worker over bun:ffi (udp-reader.ts) that does not keep the process alive. */
const udpReaderHost: UdpReaderHost = {
  spawn: (start, died) => {
    const w = new Worker(new URL("./udp-reader.js", import.meta.url).href) as Worker & { unref(): void };
    let finished = false;
    w.addEventListener("message", () => { finished = true; });
    w.addEventListener("error", () => { if (!finished) died(); });
    w.postMessage(start);
    w.unref();
  },
  yieldToIo: () => new Promise((resolve) => setImmediate(resolve)),
};

/** Everything a stream has to say, as text. */
async function text(s: ReadableStream<Uint8Array> | null): Promise<string> {
  return s === null ? "" : await new Response(s).text();
}

/** A TCP socket of Bun.listen / Bun.connect (bun.ts types only the unix ones); `data` carries our state. */
interface TcpSocket {
  data: BunTcp;
  write(data: Uint8Array): number;
  /** shutdown(2) for writing: FIN, reading goes on (allowHalfOpen). */
  shutdown(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(on: boolean): void;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}
type TcpBun = {
  listen(o: object): { port: number; stop(closeActive?: boolean): void };
  connect(o: object): Promise<TcpSocket>;
};
const tcpBun = Bun as unknown as TcpBun;

/** Bytes a host stream's readable holds before the socket is paused. */
const READ_AHEAD = 64 * 1024;

/**
 * A Bun TCP socket as the CLI's HostStream: data enqueued until READ_AHEAD
 * waits unread (then paused); a write keeps what the kernel did not take
 * until the drain event; closing the writable is shutdown (half-close).
 */
class BunTcp {
  readonly stream: HostStream;
  private rc: ReadableStreamDefaultController<Uint8Array> | null = null;
  private done = false;
  private unsent: { chunk: Uint8Array; resolve: () => void; reject: (e: Error) => void } | null = null;

  constructor(private readonly s: TcpSocket) {
    s.setNoDelay(true);
    const readable = new ReadableStream<Uint8Array>({
      start: (c) => { this.rc = c; },
      pull: () => { s.resume(); },
      cancel: () => { this.done = true; s.resume(); },
    }, { highWaterMark: READ_AHEAD, size: (c) => c.byteLength });
    const writable = new WritableStream<Uint8Array>({
      write: (chunk) => {
        const n = s.write(chunk);
        if (n >= chunk.length) return;
        return new Promise<void>((resolve, reject) => { this.unsent = { chunk: chunk.subarray(Math.max(0, n)), resolve, reject }; });
      },
      close: () => { s.shutdown(); },
      abort: () => { s.terminate(); },
    }, { highWaterMark: 1 });
    this.stream = {
      readable, writable, close: () => s.terminate(),
      remoteAddress: s.remoteAddress, remotePort: s.remotePort, localAddress: s.localAddress, localPort: s.localPort,
    };
  }

  data(d: Uint8Array): void {
    if (this.done || !this.rc) return;
    this.rc.enqueue(d.slice());
    if ((this.rc.desiredSize ?? 0) <= 0) this.s.pause();
  }

  drain(): void {
    const u = this.unsent;
    if (!u) return;
    const n = this.s.write(u.chunk);
    if (n >= u.chunk.length) { this.unsent = null; u.resolve(); } else u.chunk = u.chunk.subarray(Math.max(0, n));
  }

  end(): void {
    if (!this.done) { this.done = true; this.rc?.close(); }
  }

  /** The socket is gone: an error ends the readable with it; without one (both sides' FINs seen), cleanly. */
  closed(err?: Error): void {
    if (!this.done) {
      this.done = true;
      if (err) this.rc?.error(err);
      else this.rc?.close();
    }
    this.unsent?.reject(err ?? Object.assign(new Error("socket closed"), { code: "EPIPE" }));
    this.unsent = null;
  }

  static handlers(open: (t: BunTcp) => void) {
    return {
      open: (s: TcpSocket) => { s.data = new BunTcp(s); open(s.data); },
      data: (s: TcpSocket, d: Uint8Array) => s.data.data(d),
      drain: (s: TcpSocket) => s.data.drain(),
      end: (s: TcpSocket) => s.data.end(),
      close: (s: TcpSocket, e?: Error) => s.data?.closed(e),
      error: (s: TcpSocket, e: Error) => s.data?.closed(e),
    };
  }
}

/**
 * The host for Bun, with `args` as the command line.
 * @example const t = await openTunnel(bunHost(), configText);
 */
export function bunHost(args: string[] = []): ServerHost {
  // process.stdout.write may still hold output when process.exit runs (a
  // `wg show` of 1,000 peers into a pipe lost a third of its lines), and
  // its callback comes too early; Bun.write resolves when all is written.
  let out: Promise<unknown> = Promise.resolve(), err: Promise<unknown> = Promise.resolve();
  return {
    command: "bun wg",
    label: `Bun ${Bun.version}`,
    args,
    clock: { now: () => performance.now() },
    epoch: Date.now() - performance.now(),
    x25519: nodeX25519,
    wasm: async () => new WebAssembly.Module(wasmBytes),

    stdout: (t) => { out = out.then(() => Bun.write(Bun.stdout, t)).catch(() => {}); },
    stderr: (t) => { err = err.then(() => Bun.write(Bun.stderr, t)).catch(() => {}); },
    drained: async () => { await Promise.all([out, err]); },

    readFile: (p) => Bun.file(p).text(),
    stdioStreams,
    readStdin: () => Bun.stdin.text(),
    ...nodeFiles,

    run: async (argv, input) => {
      let child;
      try {
        const stdin: SpawnIO = input === undefined ? "ignore" : new TextEncoder().encode(input);
        child = Bun.spawn(argv, { stdin, stdout: "pipe", stderr: "pipe" });
      } catch (e) {
        return { code: 127, stdout: "", stderr: `${argv[0]}: ${(e as Error).message}` };
      }
      const [stdout, stderr, code] = await Promise.all([text(child.stdout), text(child.stderr), child.exited]);
      return { code, stdout, stderr };
    },
    shell: async (command) => {
      try {
        return await Bun.spawn(["/bin/sh", "-c", command], { stdin: "inherit", stdout: "inherit", stderr: "inherit" }).exited;
      } catch {
        return 127;
      }
    },
    resolve: async (host, port): Promise<Endpoint> => {
      const h = host.replace(/^\[|\]$/g, "");
      try {
        parseAddress(h);
        return { address: h, port };
      } catch {
        // a name, not a literal
      }
      const [first] = await Bun.dns.lookup(h);
      if (!first) throw new Error(`cannot resolve ${h}`);
      return { address: first.address, port };
    },
    resolveAll: async (name) => (await Bun.dns.lookup(name, { family: 0 }).catch(() => [])).map((a) => a.address),

    tunDevices: async () => { await loadLibc(); return { openTun: openBunTun }; },
    openBind: async (port, _maxDatagram, opts) => {
      // With offloads, a socket of our own through bun:ffi (linux/udp-bind.ts): Bun.udpSocket reads its
      // socket itself and cannot be paused, so GRO's coalesced buffers would reach it whole.
      const libc = opts?.offload ? await loadLibc().catch(() => null) : null;
      if (libc !== null) return new LinuxUdpBind(libc, port, udpReaderHost);
      const b = new BunBind(opts?.offload ? "no libc through bun:ffi" : "turned off");
      await b.open(port);
      return b;
    },
    listenUnix,
    connectUnix,
    listenTcp: async (host, port, accept) => {
      const server = tcpBun.listen({
        hostname: host.replace(/^\[|\]$/g, ""), port, allowHalfOpen: true, socket: BunTcp.handlers((t) => accept(t.stream)),
      });
      return { port: server.port, close: () => server.stop(false) };
    },
    connectTcp: async (host, port) => {
      let conn: BunTcp | null = null;
      const s = await tcpBun.connect({
        hostname: host.replace(/^\[|\]$/g, ""), port, allowHalfOpen: true, socket: BunTcp.handlers((t) => { conn = t; }),
      });
      return (conn ?? s.data).stream;
    },
    bindUdp: async (host, port, receive) => {
      let open = true;
      const s = await Bun.udpSocket({
        hostname: host.replace(/^\[|\]$/g, ""), port, binaryType: "uint8array",
        socket: { data: (_s, data, p, address) => receive(data, address, p), error: () => {} },
      });
      return {
        port: s.port,
        send: (data, address, p) => open && s.send(data, p, address),
        close: () => { if (open) { open = false; s.close(); } },
      };
    },
    webSocketTls: true,
    serveWebSockets,
    webSocketClient: async () => WebSocket,
    ...nodeSignals,
    stdoutMode,
  };
}
