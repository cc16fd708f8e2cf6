// The host on Deno's own APIs (ports/host.ts): Deno.listenDatagram,
// Deno.dlopen of libc (the TUN device, sendmmsg; opened on first use),
// Deno.listen/connect on unix sockets, Deno.Command, Deno.resolveDns,
// Deno.addSignalListener, Deno.serve and Deno.QuicEndpoint for the relay.
// No node: imports.
//
// A call that Deno refuses for want of a permission (Deno.errors.NotCapable)
// becomes a PermissionError whose message names the flag to add, e.g.
// "needs --allow-read=/etc/wireguard/wg0.conf (reading a file)"; the CLI
// prints it as its one line. Nothing here ever prompts: optional things
// (environment variables, the FFI X25519) are only used when already granted.
import { wasmBytes } from "#engine-wasm";
import type { Endpoint } from "../../src/engine.ts";
import { parseAddress } from "../../src/ip.ts";
import { NoTunError, UserError } from "../ports/errors.ts";
import type { Conn, HostStream, ServerHost, TunDevices } from "../ports/host.ts";
import type { WebTransportServers } from "../ports/websocket.ts";
import { libc } from "./libc.ts";
import { listenDatagram } from "./datagram.ts";
import { tcpStreams } from "./tcp-streams.ts";
import { DenoTun } from "./tun.ts";
import { DenoBind } from "./udp.ts";
import { serveWebSockets } from "./websocket-server.ts";
import { serveWebTransport } from "./webtransport-server.ts";
import { denoX25519 } from "./x25519.ts";

/** Deno refused an operation for want of a permission; the message names the flag. */
export class PermissionError extends UserError {
  constructor(readonly flag: string, readonly purpose: string) {
    super(`needs ${flag} (${purpose})`);
  }
}

/** The --allow-... flag a NotCapable error asks for ("--allow-read=/etc/x"), or null for another error. */
export function flagOf(e: unknown): string | null {
  if (!(e instanceof Deno.errors.NotCapable)) return null;
  const m = /Requires (\w+) access(?: to "([^"]*)")?.*?(--allow-[a-z-]+)/.exec(e.message);
  if (!m) return "-A";
  const [, kind, what, flag] = m;
  // For the network, a unix socket's "unix:PATH" is worth naming; an address like "[::]:0" is not,
  // nor a library name (--allow-ffi takes paths).
  if (what === undefined || kind === "ffi" || (kind === "net" && !what.startsWith("unix:"))) return flag;
  return `${flag}=${what}`;
}

/** Runs `f`; a NotCapable error becomes a PermissionError for `purpose`. */
async function guard<T>(purpose: string, f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const flag = flagOf(e);
    if (flag !== null) throw new PermissionError(flag, purpose);
    throw e;
  }
}

/**
 * Deno's "No such file or directory (os error 2): readfile '/x'" as
 * "/x: No such file or directory", the shape Node's messages have (the error
 * keeps its class, which the CLI maps to an errno).
 */
function tidy(e: unknown, path: string): unknown {
  const m = e instanceof Error ? /^(.*?) \(os error \d+\)/.exec(e.message) : null;
  if (m) (e as Error).message = `${path}: ${m[1]}`;
  return e;
}

function guardSync<T>(purpose: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const flag = flagOf(e);
    if (flag !== null) throw new PermissionError(flag, purpose);
    throw e;
  }
}

const enc = new TextEncoder();

function writeAll(w: { writeSync(p: Uint8Array): number }, text: string): void {
  let b = enc.encode(text);
  while (b.length > 0) b = b.subarray(w.writeSync(b));
}

function conn(c: Deno.UnixConn): Conn {
  // Writes are queued in order; close waits for them.
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const safe = (f: () => Promise<unknown> | void) => { queue = queue.then(f).catch(() => {}); };
  return {
    write: (t) => {
      const b = enc.encode(t);
      safe(async () => {
        let off = 0;
        while (off < b.length) off += await c.write(b.subarray(off));
      });
    },
    drained: () => queue.then(() => {}),
    start: (data, end) => {
      void (async () => {
        const dec = new TextDecoder();
        const buf = new Uint8Array(16384);
        try {
          for (;;) {
            const n = await c.read(buf);
            if (n === null) break;
            const s = dec.decode(buf.subarray(0, n), { stream: true });
            if (s) data(s);
          }
        } catch { /* reset or closed: the end either way */ }
        end();
      })();
    },
    close: () => {
      if (closed) return;
      closed = true;
      safe(() => { try { c.close(); } catch { /* closed already */ } });
    },
  };
}

/** A Deno TCP connection as the CLI's HostStream (tcp-streams.ts), with its addresses. */
function hostStream(c: Deno.TcpConn): HostStream {
  const remote = c.remoteAddr as Deno.NetAddr, local = c.localAddr as Deno.NetAddr;
  const { readable, writable, close } = tcpStreams(c);
  return {
    readable, writable, close,
    remoteAddress: remote.hostname, remotePort: remote.port, localAddress: local.hostname, localPort: local.port,
  };
}


/** Literal IPv4/IPv6 address text, or null. */
function literal(h: string): string | null {
  try {
    parseAddress(h);
    return h;
  } catch {
    return null;
  }
}

/** The address of `host` in /etc/hosts (as getaddrinfo consults it first), if that file may be read. */
async function fromHosts(host: string): Promise<string | null> {
  if (Deno.permissions.querySync({ name: "read", path: "/etc/hosts" }).state !== "granted") return null;
  let text: string;
  try {
    text = await Deno.readTextFile("/etc/hosts");
  } catch {
    return null;
  }
  const h = host.toLowerCase();
  let v6: string | null = null;
  for (const line of text.split("\n")) {
    const [addr, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (!addr || !names.some((n) => n.toLowerCase() === h) || literal(addr) === null) continue;
    if (!addr.includes(":")) return addr;
    v6 ??= addr;
  }
  return v6;
}

/**
 * A unix socket at `path` that only its owner may use, whatever the umask:
 * bound inside a fresh 0700 directory beside `path` (where nobody else can
 * reach it), made 0600, then moved into place. Deno.umask would need
 * --allow-sys; this needs only the write access to the folder `path` needs anyway.
 */
function listenPrivate(path: string): Deno.UnixListener {
  const dir = path.slice(0, path.lastIndexOf("/") + 1) + `.${path.slice(path.lastIndexOf("/") + 1)}.${crypto.randomUUID()}`;
  Deno.mkdirSync(dir, { mode: 0o700 });
  try {
    const l = Deno.listen({ transport: "unix", path: `${dir}/s` });
    try {
      Deno.chmodSync(`${dir}/s`, 0o600);
      Deno.renameSync(`${dir}/s`, path);
    } catch (e) {
      l.close();
      throw e;
    }
    return l;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Every address of `name`: a literal as it is, the hosts file, then A and AAAA records. */
async function resolveAll(name: string): Promise<string[]> {
  const h = name.replace(/^\[|\]$/g, "");
  if (literal(h) !== null) return [h];
  // "localhost" is not in the DNS: it is the loopback (and /etc/hosts may not be readable).
  if (h.toLowerCase().replace(/\.$/, "") === "localhost") return ["127.0.0.1", "::1"];
  const hosts = await fromHosts(h);
  if (hosts !== null) return [hosts];
  const a = await Deno.resolveDns(h, "A").catch((e) => { if (e instanceof Deno.errors.NotCapable) throw e; return [] as string[]; });
  const aaaa = await Deno.resolveDns(h, "AAAA").catch(() => [] as string[]);
  return [...a, ...aaaa];
}

/** TUN devices: libc loaded (with --allow-ffi), or what stops it said in one line. */
async function tunDevices(): Promise<TunDevices> {
  if (Deno.build.os !== "linux") throw new NoTunError(`TUN devices are Linux's; this is ${Deno.build.os}`);
  guardSync("the TUN device, through libc", () => {
    try {
      libc();
    } catch (e) {
      if (flagOf(e) !== null) throw e;
      throw new NoTunError(`cannot load libc.so.6: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  return { openTun: async (name, mtu, opts) => guardSync("the TUN device, through libc", () => DenoTun.open(name, mtu, opts?.offload)) };
}

/**
 * The host for Deno, with `args` as the command line.
 * @example const t = await openTunnel(denoHost(), configText);
 */
export function denoHost(args: string[] = []): ServerHost & WebTransportServers {
  return {
    command: "deno run -A wg.ts",
    label: `Deno ${Deno.version.deno}`,
    args,
    clock: { now: () => performance.now() },
    epoch: Date.now() - performance.now(),
    x25519: denoX25519,
    wasm: async () => new WebAssembly.Module(wasmBytes),

    stdout: (t) => writeAll(Deno.stdout, t),
    stderr: (t) => writeAll(Deno.stderr, t),
    drained: async () => {}, // writes are synchronous
    env: (n) => Deno.permissions.querySync({ name: "env", variable: n }).state === "granted" ? Deno.env.get(n) : undefined,
    isRoot: () => guardSync("checking for root", () => Deno.uid() === 0),

    readFile: (p) => guard(`reading ${p}`, () => Deno.readTextFile(p).catch((e) => { throw tidy(e, p); })),
    stdioStreams: () => ({ readable: Deno.stdin.readable, writable: Deno.stdout.writable }),
    readStdin: async () => {
      const chunks: Uint8Array[] = [];
      for await (const c of Deno.stdin.readable) chunks.push(c);
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let off = 0;
      for (const c of chunks) { all.set(c, off); off += c.length; }
      return new TextDecoder().decode(all);
    },
    // Deno gives no stat of stdout without read access to /dev/stdout: known only when that is granted (-A).
    stdoutMode: () => {
      if (Deno.permissions.querySync({ name: "read", path: "/dev/stdout" }).state !== "granted") return null;
      try {
        const s = Deno.statSync("/dev/stdout");
        return s.isFile && s.mode !== null ? s.mode & 0o7777 : null;
      } catch {
        return null;
      }
    },
    rename: (from, to) => guard(`renaming ${from}`, () => Deno.rename(from, to)),
    mode: (p) => guard(`looking at ${p}`, async () => {
      try {
        const s = await Deno.stat(p);
        return s.mode === null ? null : s.mode & 0o7777;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
        throw e;
      }
    }),
    exists: (p) => guard(`looking for ${p}`, async () => {
      try {
        await Deno.lstat(p);
        return true;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
        throw e;
      }
    }),
    remove: (p) => guard(`removing ${p}`, async () => {
      try {
        await Deno.remove(p);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }),
    mkdir: (p, mode) => guard(`creating ${p}`, () => Deno.mkdir(p, { recursive: true, mode }).catch((e) => { throw tidy(e, p); })),
    // Deno.open's mode applies when the file is created, as open(2)'s does;
    // Deno.writeTextFile's would also chmod an existing file (EPERM on /proc/sys).
    writeFile: (p, text, mode) => guard(`writing ${p}`, async () => {
      let f: Deno.FsFile;
      try {
        f = await Deno.open(p, { write: true, create: true, truncate: true, mode });
      } catch (e) {
        throw tidy(e, p);
      }
      try {
        let b = enc.encode(text);
        while (b.length > 0) b = b.subarray(await f.write(b));
      } finally {
        f.close();
      }
    }),

    run: (argv, input) => guard(`running ${argv[0]}`, async () => {
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(argv[0], {
          args: argv.slice(1), stdin: input === undefined ? "null" : "piped", stdout: "piped", stderr: "piped",
        }).spawn();
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return { code: 127, stdout: "", stderr: `${argv[0]}: command not found` };
        throw e;
      }
      if (input !== undefined) {
        // A program that does not read its input closes the pipe: not an error here.
        const w = child.stdin.getWriter();
        await w.write(enc.encode(input)).catch(() => {});
        await w.close().catch(() => {});
      }
      const r = await child.output();
      const dec = new TextDecoder();
      return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
    }),
    shell: (command) => guard("running sh (a hook)", async () => {
      try {
        const c = new Deno.Command("sh", { args: ["-c", command], stdin: "inherit", stdout: "inherit", stderr: "inherit" });
        return (await c.output()).code;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return 127;
        throw e;
      }
    }),
    resolve: (host, port) => guard(`resolving ${host}`, async (): Promise<Endpoint> => {
      const h = host.replace(/^\[|\]$/g, "");
      const address = literal(h) ?? await fromHosts(h) ??
        (await Deno.resolveDns(h, "A").catch(() => []))[0] ??
        (await Deno.resolveDns(h, "AAAA").catch((e) => {
          if (e instanceof Deno.errors.NotCapable) throw e;
          return [];
        }))[0];
      if (address === undefined) throw new Deno.errors.NotFound(`cannot resolve '${h}'`);
      return { address, port };
    }),
    resolveAll: (name) => guard(`resolving ${name}`, () => resolveAll(name)),

    tunDevices,
    openBind: (port, maxDatagram) => guard(`binding UDP port ${port}`, () => {
      const b = new DenoBind(maxDatagram);
      b.open(port);
      return b;
    }),
    listenUnix: (path, accept) => guard(`serving ${path}`, () => {
      const l = listenPrivate(path);
      void (async () => {
        try {
          for await (const c of l) accept(conn(c));
        } catch { /* closed */ }
      })();
      return () => { try { l.close(); } catch { /* closed already */ } };
    }),
    connectUnix: (path) => guard(`connecting to ${path}`, async () => conn(await Deno.connect({ transport: "unix", path }))),
    listenTcp: (host, port, accept) => guard(`listening on TCP ${host}:${port}`, () => {
      const l = Deno.listen({ transport: "tcp", hostname: host.replace(/^\[|\]$/g, ""), port });
      void (async () => {
        try {
          for await (const c of l) accept(hostStream(c));
        } catch { /* closed */ }
      })();
      return { port: (l.addr as Deno.NetAddr).port, close: () => { try { l.close(); } catch { /* closed already */ } } };
    }),
    connectTcp: (host, port) => guard(`connecting to ${host}:${port}`, async () =>
      hostStream(await Deno.connect({ transport: "tcp", hostname: host.replace(/^\[|\]$/g, ""), port }))),
    bindUdp: (host, port, receive) => guard(`binding UDP ${host}:${port}`, () => listenDatagram(host, port, receive)),
    webSocketTls: true,
    webSocketClient: async () => WebSocket,
    serveWebSockets: (options, handler) => guard("the relay's sockets", () => serveWebSockets(options, handler)),
    serveWebTransport: (options, session) => guard("the relay's WebTransport endpoint", () => serveWebTransport(options, session)),
    onSignal: (handler) => {
      Deno.addSignalListener("SIGINT", () => handler("SIGINT"));
      Deno.addSignalListener("SIGTERM", () => handler("SIGTERM"));
      Deno.addSignalListener("SIGHUP", () => handler("SIGHUP"));
    },
    kill: (pid, signal) => {
      try {
        Deno.kill(pid, signal as Deno.Signal);
        return true;
      } catch (e) {
        const flag = flagOf(e);
        if (flag !== null) throw new PermissionError(flag, `signalling process ${pid}`);
        return false;
      }
    },
    pid: () => Deno.pid,
  };
}
