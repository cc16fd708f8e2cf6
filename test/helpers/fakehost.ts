// An in-memory Host for the CLI: captured stdout/stderr, a file table,
// unix sockets as in-memory pipes (a listener gets each connection), `ls`
// for directory listings, a host table for name resolution, fake processes
// that receive signals, and a settable clock.
import type { Conn, Host } from "../../adapters/ports/host.ts";
import type { Bind } from "../../adapters/ports/bind.ts";
import type { Tun } from "../../adapters/ports/tun.ts";
import type { Endpoint, Engine } from "../../src/engine.ts";
import { UapiSession } from "../../src/uapi.ts";
import { nodeX25519, wasmModule, EPOCH } from "./net.ts";

/** An error as Node's APIs throw them: a message and an errno code. */
export function sysError(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/** Two connected ends; what one writes arrives, asynchronously, at the other. */
export function pipe(): [Conn, Conn] {
  const mk = () => ({
    data: null as ((chunk: string) => void) | null,
    end: null as (() => void) | null,
    inbox: [] as string[],
    ended: false,
    closed: false,
  });
  const a = mk(), b = mk();
  const drain = (s: ReturnType<typeof mk>) => {
    if (!s.data) return;
    while (s.inbox.length) s.data(s.inbox.shift()!);
    if (s.ended && s.end) { const end = s.end; s.end = null; end(); }
  };
  const side = (me: ReturnType<typeof mk>, other: ReturnType<typeof mk>): Conn => ({
    write(text) {
      if (me.closed || other.ended) return;
      other.inbox.push(text);
      queueMicrotask(() => drain(other));
    },
    drained: () => Promise.resolve(),
    start(data, end) {
      me.data = data;
      me.end = end;
      queueMicrotask(() => drain(me));
    },
    close() {
      if (me.closed) return;
      me.closed = true;
      other.ended = true;
      me.ended = true;
      queueMicrotask(() => { drain(other); drain(me); });
    },
  });
  return [side(a, b), side(b, a)];
}

export interface FakeOptions {
  args?: string[];
  stdin?: string;
  env?: Record<string, string>;
  root?: boolean;
  /** Host name -> address, for resolve(). */
  hosts?: Record<string, string>;
}

export class FakeHost implements Host {
  readonly command = "wg";
  readonly label = "a fake host";
  args: string[];
  stdin: string;
  envs: Record<string, string>;
  root: boolean;
  hosts: Record<string, string>;
  out = "";
  err = "";
  now = 0;
  readonly clock = { now: () => this.now };
  readonly epoch = EPOCH;
  readonly x25519 = nodeX25519;
  readonly files = new Map<string, string>();
  readonly dirs = new Set<string>(["/", "/var", "/var/run", "/tmp"]);
  /** Socket path -> what a connection to it is handed to. */
  readonly listeners = new Map<string, (conn: Conn) => void>();
  /** Socket files nobody listens on (connect: ECONNREFUSED). */
  readonly stale = new Set<string>();
  /** pid -> what a signal to it does. */
  readonly processes = new Map<number, (signal: string) => void>();
  readonly signals: [number, string][] = [];
  readonly ran: string[][] = [];

  constructor(opts: FakeOptions = {}) {
    this.args = opts.args ?? [];
    this.stdin = opts.stdin ?? "";
    this.envs = opts.env ?? {};
    this.root = opts.root ?? true;
    this.hosts = opts.hosts ?? {};
  }

  wasm = async () => wasmModule;
  stdout(text: string): void { this.out += text; }
  stderr(text: string): void { this.err += text; }
  async drained(): Promise<void> {}
  env(name: string): string | undefined { return this.envs[name]; }
  isRoot(): boolean { return this.root; }

  async readFile(path: string): Promise<string> {
    const t = this.files.get(path);
    if (t === undefined) throw sysError(this.dirs.has(path) ? "EISDIR" : "ENOENT", `no such file or directory, open '${path}'`);
    return t;
  }
  async readStdin(): Promise<string> { return this.stdin; }
  async exists(path: string): Promise<boolean> {
    return this.files.has(path) || this.dirs.has(path) || this.listeners.has(path) || this.stale.has(path);
  }
  async remove(path: string): Promise<void> {
    this.files.delete(path);
    this.listeners.delete(path);
    this.stale.delete(path);
  }
  async mkdir(path: string, _mode: number): Promise<void> {
    for (let p = path; p !== "" && p !== "/"; p = p.slice(0, p.lastIndexOf("/"))) this.dirs.add(p);
  }
  /** Permission bits by path (files written get the mode they were created with; others 0o644). */
  readonly modes = new Map<string, number>();
  /** What stdoutMode() answers: stdout as a file of this mode, or null. */
  stdoutFile: number | null = null;
  async writeFile(path: string, text: string, mode: number): Promise<void> {
    if (!this.files.has(path)) this.modes.set(path, mode);
    this.files.set(path, text);
  }
  async rename(from: string, to: string): Promise<void> {
    const t = this.files.get(from);
    if (t === undefined) throw sysError("ENOENT", `no such file or directory, rename '${from}'`);
    this.files.delete(from);
    this.files.set(to, t);
    this.modes.set(to, this.modes.get(from) ?? 0o644);
    this.modes.delete(from);
  }
  async mode(path: string): Promise<number | null> {
    if (this.dirs.has(path)) return this.modes.get(path) ?? 0o755;
    return this.files.has(path) ? this.modes.get(path) ?? 0o644 : null;
  }
  stdoutMode(): number | null { return this.stdoutFile; }

  /** Only `ls [-flags] DIR`: the names directly in DIR, sorted. */
  async run(argv: string[], _input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    this.ran.push(argv);
    if (argv[0] !== "ls") return { code: 127, stdout: "", stderr: `${argv[0]}: not found in the fake host` };
    const dir = argv.filter((a, i) => i > 0 && !a.startsWith("-"))[0] ?? ".";
    if (!this.dirs.has(dir)) return { code: 2, stdout: "", stderr: `ls: cannot access '${dir}': No such file or directory\n` };
    const names = new Set<string>();
    for (const p of [...this.files.keys(), ...this.dirs, ...this.listeners.keys(), ...this.stale]) {
      if (p.startsWith(dir + "/") && !p.slice(dir.length + 1).includes("/")) names.add(p.slice(dir.length + 1));
    }
    return { code: 0, stdout: [...names].sort().map((n) => n + "\n").join(""), stderr: "" };
  }
  async shell(_command: string): Promise<number> { return 127; }
  async resolve(host: string, port: number): Promise<Endpoint> {
    const h = host.replace(/^\[|\]$/g, "");
    if (/^[0-9.]+$/.test(h) || h.includes(":")) return { address: h, port };
    const a = this.hosts[h];
    if (a === undefined) throw sysError("ENOTFOUND", `getaddrinfo ENOTFOUND ${h}`);
    return { address: a, port };
  }
  async resolveAll(name: string): Promise<string[]> {
    return this.hosts[name] === undefined ? [] : [this.hosts[name]];
  }

  /** A TUN device that cannot be made, as a host without root would refuse. */
  async tunDevices(): Promise<{ openTun(name: string, mtu: number): Promise<Tun> }> {
    return { openTun: async () => { throw new Error("openTun: not in the fake host"); } };
  }
  async openBind(_port: number, _max: number): Promise<Bind> { throw new Error("openBind: not in the fake host"); }
  async listenUnix(path: string, accept: (conn: Conn) => void): Promise<() => void> {
    if (this.listeners.has(path)) throw sysError("EADDRINUSE", `address already in use ${path}`);
    this.mkdir(path.slice(0, path.lastIndexOf("/")), 0o755);
    this.listeners.set(path, accept);
    return () => { if (this.listeners.get(path) === accept) this.listeners.delete(path); };
  }
  async connectUnix(path: string): Promise<Conn> {
    const accept = this.listeners.get(path);
    if (!accept) {
      if (this.stale.has(path)) throw sysError("ECONNREFUSED", `connect ECONNREFUSED ${path}`);
      throw sysError("ENOENT", `connect ENOENT ${path}`);
    }
    const [client, server] = pipe();
    accept(server);
    return client;
  }
  onSignal(_handler: (signal: string) => void): void {}
  kill(pid: number, signal: string): boolean {
    const p = this.processes.get(pid);
    if (!p) return false;
    this.signals.push([pid, signal]);
    p(signal);
    return true;
  }
  pid(): number { return 4000; }

  /** Clears the captured output (between commands of one test). */
  reset(args: string[], stdin = ""): this {
    this.args = args;
    this.stdin = stdin;
    this.out = "";
    this.err = "";
    return this;
  }
}

/**
 * Serves `engine` on /var/run/wireguard/NAME.sock through UapiSession, as
 * `wg up` does; returns the closer.
 */
export function serveEngine(rt: FakeHost, name: string, engine: Engine): Promise<() => void> {
  return rt.listenUnix(`/var/run/wireguard/${name}.sock`, (conn) => {
    const session = new UapiSession();
    conn.start((chunk) => {
      const answer = session.feed(chunk, engine, rt.now);
      if (answer) conn.write(answer);
      if (session.closed) conn.close();
    }, () => conn.close());
  });
}

/** Serves a socket that answers every request with `answer` (for error paths). */
export function serveCanned(rt: FakeHost, name: string, answer: string): Promise<() => void> {
  return rt.listenUnix(`/var/run/wireguard/${name}.sock`, (conn) => {
    let buf = "";
    conn.start((chunk) => {
      buf += chunk;
      if (buf.endsWith("\n\n")) { conn.write(answer); conn.close(); }
    }, () => conn.close());
  });
}
