// The CLI's Runtime on Bun's own APIs: Bun.udpSocket, bun:ffi (TUN, socket
// options), Bun.listen / Bun.connect (UAPI), Bun.spawn, Bun.dns, Bun.file.
// Where Bun has no API of its own it uses Bun's node: modules: mkdir, rm and
// writing with a file mode (node:fs/promises), and X25519 (node:crypto,
// which Bun implements on BoringSSL: measured under Bun 1.4.5 on the 2-core
// test machine, 31,800 cached DH/s against @noble/curves' 2,700, and 10,400
// handshake rounds (generate + 2 DH) per second against 1,100).
import { mkdir, rm, writeFile, access } from "node:fs/promises";
import type { Endpoint } from "../../src/engine.ts";
import { parseAddress } from "../../src/ip.ts";
import type { Runtime } from "../cli/runtime.ts";
import { nodeX25519 } from "../node/x25519.ts";
import { Bun, type SpawnIO } from "./bun.ts";
import { BunTun } from "./tun.ts";
import { BunBind } from "./udp.ts";
import { listenUnix, connectUnix } from "./unix.ts";

/** Everything a stream has to say, as text. */
async function text(s: ReadableStream<Uint8Array> | null): Promise<string> {
  return s === null ? "" : await new Response(s).text();
}

/** The Runtime, and `drained`: resolves once all that stdout and stderr were given is written. */
export type BunRuntime = Runtime & { drained(): Promise<void> };

export function bunRuntime(args: string[]): BunRuntime {
  // process.stdout.write may still hold output when process.exit runs (a
  // `wg show` of 1,000 peers into a pipe lost a third of its lines), and
  // its callback comes too early; Bun.write resolves when all is written.
  let out: Promise<unknown> = Promise.resolve(), err: Promise<unknown> = Promise.resolve();
  return {
    name: "bun",
    args,
    clock: { now: () => performance.now() },
    epoch: Date.now() - performance.now(),
    x25519: nodeX25519,
    // Built by `npm install` next to this folder, in a clone and in an installed package alike.
    wasm: async () => WebAssembly.compile(await Bun.file(new URL("../../build/out/engine.wasm", import.meta.url)).arrayBuffer()),

    stdout: (t) => { out = out.then(() => Bun.write(Bun.stdout, t)).catch(() => {}); },
    stderr: (t) => { err = err.then(() => Bun.write(Bun.stderr, t)).catch(() => {}); },
    drained: async () => { await Promise.all([out, err]); },
    exit: (code) => process.exit(code),
    env: (n) => process.env[n],
    isRoot: () => process.getuid?.() === 0,

    readFile: (p) => Bun.file(p).text(),
    readStdin: () => Bun.stdin.text(),
    exists: (p) => access(p).then(() => true, () => false),
    remove: (p) => rm(p, { force: true }),
    mkdir: async (p, mode) => { await mkdir(p, { recursive: true, mode }); },
    writeFile: (p, t, mode) => writeFile(p, t, { mode }),

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

    openTun: (name, mtu) => BunTun.open(name, mtu),
    openBind: async (port) => {
      const b = new BunBind();
      await b.open(port);
      return b;
    },
    listenUnix,
    connectUnix,
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
