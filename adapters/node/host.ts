// The host on Node's own APIs (ports/host.ts): node:fs, node:child_process,
// node:dns, node:net and node:dgram; X25519 on node:crypto; the TUN device
// and sendmmsg through koffi, loaded only when asked for (libc.ts); the
// relay's WebSocket server on the `ws` package, likewise.
import { chmodSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import net from "node:net";
import { wasmBytes } from "#engine-wasm";
import type { Endpoint } from "../../src/engine.ts";
import dgram from "node:dgram";
import type { Conn, HostStream, ServerHost } from "../ports/host.ts";
import { nodeFiles, nodeSignals, stdioStreams, stdoutMode } from "../node-compat/process.ts";
import { nodeX25519 } from "../node-compat/x25519.ts";
import { loadLibc } from "./libc.ts";
import { openNodeTun } from "./tun.ts";
import { NodeBind } from "./udp.ts";
import { serveWebSockets, webSocketClient } from "./websocket-server.ts";

function conn(s: net.Socket): Conn {
  s.setEncoding("utf8");
  return {
    write: (t) => { s.write(t); },
    drained: () => new Promise((resolve) => {
      if (!s.writableNeedDrain || s.destroyed) { resolve(); return; }
      const done = () => { s.off("drain", done); s.off("close", done); resolve(); };
      s.on("drain", done);
      s.on("close", done);
    }),
    start: (data, end) => {
      s.on("data", (c: string) => data(c));
      s.on("end", end);
      s.on("error", end);
    },
    close: () => { s.end(); },
  };
}

/** Bytes a host stream's readable holds before the socket is paused. */
const READ_AHEAD = 64 * 1024;

/**
 * A net.Socket (allowHalfOpen) as WHATWG streams: the readable pauses the
 * socket while READ_AHEAD bytes wait unread; a write waits for 'drain' when
 * the socket's buffer is full; closing the writable is end() (FIN).
 */
function hostStream(s: net.Socket): HostStream {
  let done = false;
  s.setNoDelay(true);
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      s.on("data", (d: Buffer) => {
        if (done) return;
        c.enqueue(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        if ((c.desiredSize ?? 0) <= 0) s.pause();
      });
      s.on("end", () => { if (!done) { done = true; c.close(); } });
      s.on("error", (e) => { if (!done) { done = true; c.error(e); } });
      s.on("close", () => { if (!done) { done = true; c.error(Object.assign(new Error("socket closed"), { code: "ECONNABORTED" })); } });
    },
    pull() { s.resume(); },
    cancel() {
      // Nothing more will be read; what we still write goes out first.
      done = true;
      if (s.writableFinished || s.destroyed) { s.destroy(); return; }
      s.once("finish", () => s.destroy());
      s.resume();
    },
  }, { highWaterMark: READ_AHEAD, size: (c) => c.byteLength });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (s.destroyed || s.writableEnded) throw Object.assign(new Error("socket closed"), { code: "EPIPE" });
      if (s.write(chunk)) return;
      return new Promise<void>((resolve, reject) => {
        const settle = () => {
          s.off("drain", settle); s.off("close", settle);
          if (s.destroyed) reject(Object.assign(new Error("socket closed"), { code: "EPIPE" }));
          else resolve();
        };
        s.on("drain", settle); s.on("close", settle);
      });
    },
    close() {
      return new Promise<void>((resolve) => { if (s.destroyed) resolve(); else s.end(() => resolve()); });
    },
    abort() { s.destroy(); },
  }, { highWaterMark: 1 });
  s.on("error", () => {}); // reported through the streams
  return {
    readable, writable,
    remoteAddress: s.remoteAddress ?? "", remotePort: s.remotePort ?? 0,
    localAddress: s.localAddress ?? "", localPort: s.localPort ?? 0,
    close: () => { s.destroy(); },
  };
}

/**
 * The host for Node, with `args` as the command line.
 * @example const t = await openTunnel(nodeHost(), configText);
 */
export function nodeHost(args: string[] = []): ServerHost {
  let out: Promise<void> = Promise.resolve(), err: Promise<void> = Promise.resolve();
  const write = (s: NodeJS.WriteStream, t: string) => new Promise<void>((resolve) => { s.write(t, () => resolve()); });
  return {
    command: "npx wg",
    label: `Node ${process.versions.node}`,
    args,
    clock: { now: () => performance.now() },
    epoch: Date.now() - performance.now(),
    x25519: nodeX25519,
    wasm: async () => new WebAssembly.Module(wasmBytes),

    stdout: (t) => { out = write(process.stdout, t); },
    stderr: (t) => { err = write(process.stderr, t); },
    drained: async () => { await Promise.all([out, err]); },

    readFile: (p) => readFile(p, "utf8"),
    stdioStreams,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
    ...nodeFiles,

    run: (argv, input) => new Promise((resolve) => {
      const c = spawn(argv[0], argv.slice(1), { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
      let stdout = "", stderr = "";
      c.stdout!.on("data", (d) => { stdout += d; });
      c.stderr!.on("data", (d) => { stderr += d; });
      c.on("error", (e) => resolve({ code: 127, stdout, stderr: `${argv[0]}: ${e.message}` }));
      c.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
      if (c.stdin) {
        c.stdin.on("error", () => {}); // a program that does not read its input
        c.stdin.end(input);
      }
    }),
    shell: (command) => new Promise((resolve) => {
      const c = spawn("/bin/sh", ["-c", command], { stdio: "inherit" });
      c.on("error", () => resolve(127));
      c.on("close", (code) => resolve(code ?? 1));
    }),
    resolve: async (host, port): Promise<Endpoint> => {
      const h = host.replace(/^\[|\]$/g, "");
      if (isIP(h)) return { address: h, port };
      const r = await lookup(h);
      return { address: r.address, port };
    },
    resolveAll: async (name) => (await lookup(name, { all: true }).catch(() => [])).map((a) => a.address),

    tunDevices: async () => { await loadLibc(); return { openTun: openNodeTun }; },
    openBind: async (port, maxDatagram) => {
      const b = new NodeBind(maxDatagram);
      await b.open(port);
      return b;
    },
    listenUnix: (path, accept) => new Promise((resolve, reject) => {
      const server = net.createServer((s) => accept(conn(s)));
      server.once("error", reject);
      // The socket is bound inside listen(): under umask 077 it is created owner-only (as wireguard-go makes
      // its own), then made 0600.
      const old = process.umask(0o077);
      try {
        server.listen(path, () => {
          try { chmodSync(path, 0o600); } catch (e) { server.close(); reject(e); return; }
          resolve(() => server.close());
        });
      } finally {
        process.umask(old);
      }
    }),
    connectUnix: (path) => new Promise((resolve, reject) => {
      const s = net.createConnection(path);
      s.once("connect", () => { s.removeListener("error", reject); resolve(conn(s)); });
      s.once("error", reject);
    }),
    listenTcp: (host, port, accept) => new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true }, (s) => accept(hostStream(s)));
      server.once("error", reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.removeListener("error", reject);
        server.on("error", () => {});
        resolve({ port: (server.address() as net.AddressInfo).port, close: () => server.close() });
      });
    }),
    connectTcp: (host, port) => new Promise((resolve, reject) => {
      const s = net.connect({ host: host.replace(/^\[|\]$/g, ""), port, allowHalfOpen: true });
      s.once("connect", () => { s.removeListener("error", reject); resolve(hostStream(s)); });
      s.once("error", reject);
    }),
    bindUdp: (host, port, receive, options) => new Promise((resolve, reject) => {
      const h = host.replace(/^\[|\]$/g, "");
      const s = dgram.createSocket({ type: isIP(h) === 6 ? "udp6" : "udp4", ipv6Only: isIP(h) === 6, recvBufferSize: options?.receiveBuffer });
      s.once("error", reject);
      s.bind(port, h, () => {
        s.removeListener("error", reject);
        s.on("error", () => {});
        s.on("message", (m, r) => receive(new Uint8Array(m.buffer, m.byteOffset, m.byteLength), r.address, r.port));
        let open = true;
        resolve({
          port: s.address().port,
          send: (data, address, p) => {
            if (!open) return false;
            s.send(data, p, address);
            return true;
          },
          close: () => { if (open) { open = false; s.close(); } },
        });
      });
    }),
    webSocketTls: true,
    serveWebSockets,
    webSocketClient,
    ...nodeSignals,
    stdoutMode,
  };
}
