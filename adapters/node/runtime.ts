// The CLI's Runtime on Node's own APIs.
import { readFile, writeFile, mkdir, rm, access } from "node:fs/promises";
import { spawn } from "node:child_process";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import net from "node:net";
import { wasmBytes } from "../../build/out/engine.wasm.js";
import type { Endpoint } from "../../src/engine.ts";
import type { Conn, Runtime } from "../cli/runtime.ts";
import { nodeX25519 } from "./x25519.ts";
import { NodeTun } from "./tun.ts";
import { NodeBind } from "./udp.ts";

function conn(s: net.Socket): Conn {
  s.setEncoding("utf8");
  return {
    write: (t) => { s.write(t); },
    start: (data, end) => {
      s.on("data", (c: string) => data(c));
      s.on("end", end);
      s.on("error", end);
    },
    close: () => { s.end(); },
  };
}

export function nodeRuntime(args: string[]): Runtime {
  return {
    name: "node",
    args,
    clock: { now: () => performance.now() },
    epoch: Date.now() - performance.now(),
    x25519: nodeX25519,
    wasm: async () => new WebAssembly.Module(wasmBytes),

    stdout: (t) => { process.stdout.write(t); },
    stderr: (t) => { process.stderr.write(t); },
    exit: (code) => process.exit(code),
    env: (n) => process.env[n],
    isRoot: () => process.getuid?.() === 0,

    readFile: (p) => readFile(p, "utf8"),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
    exists: (p) => access(p).then(() => true, () => false),
    remove: (p) => rm(p, { force: true }),
    mkdir: async (p, mode) => { await mkdir(p, { recursive: true, mode }); },
    writeFile: (p, text, mode) => writeFile(p, text, { mode }),

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

    openTun: (name, mtu) => NodeTun.open(name, mtu),
    openBind: async (port, maxDatagram) => {
      const b = new NodeBind(maxDatagram);
      await b.open(port);
      return b;
    },
    listenUnix: (path, accept) => new Promise((resolve, reject) => {
      const server = net.createServer((s) => accept(conn(s)));
      server.once("error", reject);
      server.listen(path, () => resolve(() => server.close()));
    }),
    connectUnix: (path) => new Promise((resolve, reject) => {
      const s = net.createConnection(path);
      s.once("connect", () => { s.removeListener("error", reject); resolve(conn(s)); });
      s.once("error", reject);
    }),
    onSignal: (handler) => {
      process.on("SIGINT", () => handler("SIGINT"));
      process.on("SIGTERM", () => handler("SIGTERM"));
    },
    kill: (pid, signal) => {
      try { process.kill(pid, signal as NodeJS.Signals); return true; } catch { return false; }
    },
    pid: () => process.pid,
  };
}
