// The library API: a WireGuard tunnel inside the process, no TUN device and
// no root. Its inside is the userspace TCP/IP stack (src/netstack), driven by
// a Device whose Tun is the stack (ports/stack-tun.ts); the application
// gets TCP streams, UDP sockets, ping, DNS, TLS (when the host gives it) and
// an HTTP/1.1 fetch through it. The same on every runtime: what differs is
// passed in as `deps` (the host of adapters/node, deno or bun fits).
//
//   const t = await openTunnel(nodeHost(), await readFile("wg0.conf", "utf8"));
//   const conn = await t.connect("10.0.0.1", 22);        // WHATWG streams
//   const page = await (await t.fetch("http://10.0.0.1/")).text();
//   const tls = await t.connectTls("files.wg", 443, { ca });   // with deps.tls
//   t.serve(80, (req) => new Response("hello\n"));          // HTTP inside the tunnel
//   await t.close();
import { Engine, type Endpoint } from "../../src/engine.ts";
import type { X25519 } from "../../src/crypto.ts";
import type { DeviceConfig, DeviceStatus } from "../../src/config.ts";
import { parseWgQuick, toDeviceConfig } from "../../src/wgquick.ts";
import { parseAddress } from "../../src/ip.ts";
import {
  NetError, Stack, type StackOptions, type Stats, type TcpConn, type TcpListener, type UdpSocket, type Usage,
} from "../../src/netstack/index.ts";
import type { Bind } from "../ports/bind.ts";
import { Device } from "../ports/device.ts";
import type { Clock } from "../ports/host.ts";
import { StackTun } from "../ports/stack-tun.ts";
import { namedEndpoints, watchDevice, type NamedEndpoint } from "../ports/reresolve.ts";
import type { TlsClientOptions, TlsConn, TlsConnector } from "../ports/tls.ts";
import { httpFetch, type HttpRequestInit } from "../http/client.ts";
import { serveHttp, type HttpHandler } from "../http/server.ts";

/**
 * What a tunnel needs of its host (ports/host.ts): an EngineHost and a
 * Network have it all (nodeHost(), denoHost(), bunHost()); a page passes its
 * relay's bind.
 */
export interface TunnelDeps {
  /** The compiled engine.wasm, or a function that gives it (EngineHost.wasm). */
  wasm: WebAssembly.Module | (() => Promise<WebAssembly.Module>);
  x25519: X25519;
  clock: Clock;
  /** Wall-clock ms at clock time 0. */
  epoch: number;
  /** Binds the WireGuard UDP port (0: any). */
  openBind(port: number, maxDatagram: number): Promise<Bind>;
  /** Resolves an Endpoint's host name; also names when the config sets no DNS. */
  resolve?(host: string, port: number): Promise<Endpoint>;
  /**
   * Turns a peer's Endpoint host into the engine's Endpoint, instead of
   * resolve (a relay's client passes names on for the relay to resolve).
   */
  endpoint?(host: string, port: number): Endpoint;
  /** The Endpoint of a peer the config gives none (a gateway reached through the bind itself). */
  defaultEndpoint?: Endpoint;
  /** The inner MTU when the config gives none (default 1420): a bind whose datagrams are smaller says so. */
  defaultMtu?: number;
  /** TLS over a tunnel connection (connectTls, https: fetch); without it both fail with one line. */
  tls?: TlsConnector;
}

/** connectTls's options: what is checked and offered (the server's name comes from `host`). */
export interface ConnectTlsOptions {
  /** PEM certificates trusted besides the runtime's roots. */
  ca?: TlsClientOptions["ca"];
  /** The name sent as SNI and checked against the certificate (default: `host` when it is a name). */
  servername?: string;
  /** ALPN protocols offered (default none; fetch offers http/1.1). */
  alpn?: string[];
  /** false accepts any certificate; verified unless said. */
  rejectUnauthorized?: boolean;
  /** ms the handshake may take (default 30000). */
  timeout?: number;
}

/** Tunnel.fetch's init: HttpRequestInit, plus how an https: server is checked. */
export interface TunnelFetchInit extends HttpRequestInit {
  tls?: Omit<ConnectTlsOptions, "alpn">;
}

/** A tunnel configured as an object: the engine's DeviceConfig plus what wg-quick adds. */
export interface TunnelConfig extends DeviceConfig {
  /** The tunnel's own addresses ("10.0.0.2" or "10.0.0.2/24"; the prefix is ignored). */
  addresses: string[];
  /** DNS servers inside the tunnel, for resolve() and names given to connect() and fetch(). */
  dns?: string[];
  /** Inner MTU (default 1420). */
  mtu?: number;
}

export interface TunnelOptions {
  /** Options for the stack beyond addresses, MTU and DNS (TCP buffers, connection cap). */
  stack?: Omit<StackOptions, "addresses" | "mtu" | "dns">;
  /** The engine's bounds (EngineOptions maxPeers, maxAllowedIps): tables grow up to them. */
  limits?: Limits;
}

/** Upper bounds on what a configuration (or the UAPI) may add. */
export interface Limits { maxPeers?: number; maxAllowedIps?: number }

/** status(): the UAPI's view, plus the stack's. */
export interface TunnelStatus extends DeviceStatus {
  addresses: string[];
  dns: string[];
  usage: Usage;
  stats: Stats;
}

/**
 * Opens a tunnel: binds the UDP port, configures the engine and starts it.
 * @param deps the host's parts (nodeHost(), denoHost(), bunHost() fit)
 * @param config a wg-quick(8) file's text, or a TunnelConfig
 * @throws ConfigError (text) or RangeError (object) for a bad configuration;
 *   the runtime's error when the port cannot be bound or an Endpoint not resolved
 * @example const t = await openTunnel(nodeHost(), text); console.log(await t.ping("10.0.0.1"));
 */
export async function openTunnel(deps: TunnelDeps, config: string | TunnelConfig, opts: TunnelOptions = {}): Promise<Tunnel> {
  let conf: TunnelConfig;
  let named: NamedEndpoint[] = [];
  if (typeof config === "string") {
    const parsed = parseWgQuick(config);
    // Names this process resolves itself are resolved again when handshakes go unanswered (a relay resolves its own).
    if (!deps.endpoint && deps.resolve) named = namedEndpoints(parsed.peers);
    const endpoints = new Map<string, Endpoint>();
    for (const p of parsed.peers) {
      if (!p.endpoint) continue;
      const { host, port } = p.endpoint;
      endpoints.set(`${host}:${port}`, deps.endpoint ? deps.endpoint(host, port) : await resolveEndpoint(deps, host, port));
    }
    conf = {
      ...toDeviceConfig(parsed, (host, port) => endpoints.get(`${host}:${port}`)!),
      addresses: parsed.interface.addresses.map((a) => a.address),
      dns: parsed.interface.dns,
      mtu: parsed.interface.mtu,
    };
    if (parsed.interface.listenPort === undefined) conf.listenPort = 0;
  } else conf = config;
  if (deps.defaultEndpoint) {
    conf = { ...conf, peers: conf.peers?.map((p) => p.endpoint ? p : { ...p, endpoint: deps.defaultEndpoint }) };
  }
  const addresses = conf.addresses.map((a) => a.replace(/\/\d+$/, ""));
  if (addresses.length === 0) throw new RangeError("a tunnel needs at least one Address");
  const wasm = typeof deps.wasm === "function" ? await deps.wasm() : deps.wasm;
  const engine = new Engine({ wasm, x25519: deps.x25519, epoch: deps.epoch, mtu: conf.mtu ?? deps.defaultMtu, ...opts.limits });
  const stack = new Stack({ ...opts.stack, addresses, mtu: engine.mtu, dns: conf.dns ?? [] });
  const bind = await deps.openBind(conf.listenPort ?? 0, engine.maxDatagram);
  const device = new Device(engine, new StackTun(stack, deps.clock), bind, deps.clock);
  try {
    const { addresses: _a, dns: _d, mtu: _m, ...deviceConfig } = conf;
    device.apply(engine.set({ ...deviceConfig, listenPort: bind.port }, deps.clock.now()));
  } catch (e) {
    await bind.close();
    throw e;
  }
  device.start();
  const tunnel = new Tunnel(deps, device, stack, addresses, conf.dns ?? []);
  const resolve = deps.resolve;
  if (named.length > 0 && resolve) tunnel.onClose(watchDevice(device, deps.clock, named, (h, p) => resolve.call(deps, h, p)));
  return tunnel;
}

async function resolveEndpoint(deps: TunnelDeps, host: string, port: number): Promise<Endpoint> {
  try {
    parseAddress(host);
    return { address: host, port };
  } catch { /* a name */ }
  if (!deps.resolve) throw new RangeError(`cannot resolve Endpoint host '${host}': no resolver given`);
  return deps.resolve(host, port);
}

export class Tunnel {
  /** Connections made or accepted through this object, aborted by close(). */
  private readonly conns = new Set<TcpConn>();
  private readonly listeners = new Set<TcpListener>();
  private readonly sockets = new Set<UdpSocket>();
  private readonly closers: (() => void)[] = [];
  private closed = false;

  /** @internal Made by openTunnel. */
  constructor(
    private readonly deps: TunnelDeps,
    readonly device: Device,
    readonly stack: Stack,
    readonly addresses: string[],
    readonly dns: string[],
  ) {}

  get engine(): Engine { return this.device.engine; }

  /**
   * Opens a TCP connection through the tunnel. A host name is resolved with
   * the tunnel's DNS (else the runtime's resolver); each address is tried.
   * @returns a TcpConn: `readable` and `writable` are WHATWG streams
   * @throws NetError ECONNREFUSED, ETIMEDOUT, ENETUNREACH, ENOTFOUND, EMFILE...
   */
  async connect(host: string, port: number): Promise<TcpConn> {
    this.check();
    let last: unknown = null;
    for (const address of await this.resolve(host)) {
      try {
        return this.track(await this.stack.connect(address, port));
      } catch (e) {
        last = e;
        if (!(e instanceof NetError) || !["ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH"].includes(e.code)) throw e;
      }
    }
    throw last;
  }

  /**
   * Accepts TCP connections on `port` of the tunnel's addresses.
   * @throws NetError EADDRINUSE; RangeError for a bad port
   */
  listen(port: number, onConnection: (conn: TcpConn) => void, opts: { backlog?: number } = {}): TcpListener {
    this.check();
    const l = this.stack.listen(port, (c) => onConnection(this.track(c)), opts);
    for (const x of this.listeners) if (x.closed) this.listeners.delete(x);
    this.listeners.add(l);
    return l;
  }

  /** A UDP socket on the tunnel's addresses (`port` 0 or absent: a free one). */
  udp(port = 0): UdpSocket {
    this.check();
    const s = this.stack.udp(port);
    for (const x of this.sockets) if (x.closed) this.sockets.delete(x);
    this.sockets.add(s);
    return s;
  }

  /** Pings `address` through the tunnel; resolves with the round trip in ms. */
  ping(address: string, opts: { timeout?: number; size?: number } = {}): Promise<number> {
    this.check();
    return this.stack.ping(address, this.deps.clock.now(), opts);
  }

  /**
   * The addresses of `name`: an IP literal as it is; a name through the
   * tunnel's DNS servers, or the runtime's resolver when the config sets none.
   */
  async resolve(name: string): Promise<string[]> {
    this.check();
    const bare = name.replace(/^\[|\]$/g, "");
    try {
      parseAddress(bare);
      return [bare];
    } catch { /* a name */ }
    if (this.dns.length > 0) return this.stack.resolve(bare);
    if (!this.deps.resolve) throw new NetError("ENOTFOUND", `cannot resolve '${name}': the tunnel has no DNS server`);
    return [(await this.deps.resolve(bare, 0)).address];
  }

  /**
   * Opens a TCP connection through the tunnel and runs a TLS handshake over
   * it with the host's TLS (TunnelDeps.tls): the certificate is verified
   * against the runtime's roots plus `ca`, for `servername` or else `host`.
   * @returns the plaintext streams (`readable`, `writable`), `alpn`, close(), abort()
   * @throws TypeError when the host has no TLS; Error with one line when the
   *   handshake fails (untrusted certificate, wrong name); NetError as connect()
   * @example const s = await tunnel.connectTls("files.wg", 443, { ca: pem, alpn: ["http/1.1"] });
   */
  async connectTls(host: string, port: number, opts: ConnectTlsOptions = {}): Promise<TlsConn> {
    this.check();
    const tls = this.tlsConnector();
    const bare = host.replace(/^\[|\]$/g, "");
    let literal = true;
    try { parseAddress(bare); } catch { literal = false; }
    const conn = await this.connect(bare, port);
    try {
      return await tls(conn, {
        host: bare, servername: opts.servername ?? (literal ? undefined : bare),
        ca: opts.ca, alpn: opts.alpn, rejectUnauthorized: opts.rejectUnauthorized, timeout: opts.timeout,
      });
    } catch (e) {
      conn.abort();
      throw e;
    }
  }

  /**
   * An HTTP/1.1 request through the tunnel, as the standard fetch returns it.
   * http:, and https: over connectTls (ALPN http/1.1, certificate verified;
   * `init.tls` adds a CA). One connection per request; redirects are
   * returned, not followed.
   * @throws TypeError for https: when the host has no TLS
   */
  fetch(url: string | URL, init: TunnelFetchInit = {}): Promise<Response> {
    this.check();
    const { tls, ...rest } = init;
    return httpFetch((host, port) => this.connect(host, port), url, rest,
      (host, port) => this.connectTls(host, port, { ...tls, alpn: ["http/1.1"] }));
  }

  /**
   * Serves HTTP/1.1 on `port` inside the tunnel: each request becomes a
   * standard Request for `handler`, its Response goes back (one request per
   * connection, no TLS).
   * @example tunnel.serve(80, (req) => new Response(`hello ${new URL(req.url).pathname}\n`));
   */
  serve(port: number, handler: HttpHandler): TcpListener {
    return this.listen(port, (conn) => void serveHttp(conn, handler, this.addresses[0]));
  }

  /** The engine's status (as `wg show` prints it) with the tunnel's addresses and the stack's usage and counters. */
  status(): TunnelStatus {
    return {
      ...this.engine.status(),
      addresses: [...this.addresses],
      dns: [...this.dns],
      usage: this.stack.usage(),
      stats: { ...this.stack.stats },
    };
  }

  /** @internal Runs `f` when the tunnel closes (before the device stops). */
  onClose(f: () => void): void {
    this.closers.push(f);
  }

  /** Resets what is still open through this object, then stops the device and closes the UDP port. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.closers.splice(0)) f();
    for (const l of this.listeners) l.close();
    for (const s of this.sockets) s.close();
    for (const c of this.conns) c.abort();
    // Let one pump carry the resets out before the port closes.
    await new Promise<void>((r) => setTimeout(r, 0));
    await this.device.close();
  }

  private track(c: TcpConn): TcpConn {
    this.conns.add(c);
    const gone = () => { this.conns.delete(c); };
    c.closed.then(gone, gone);
    return c;
  }

  private tlsConnector(): TlsConnector {
    if (!this.deps.tls) throw new TypeError("TLS is not available on this host: its TunnelDeps give no tls connector");
    return this.deps.tls;
  }

  private check(): void {
    if (this.closed) throw new TypeError("the tunnel is closed");
  }
}
