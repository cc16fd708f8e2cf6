// `wg up --netstack CONFIG`: the tunnel with the userspace TCP/IP stack as
// its inside; no TUN device, no routes, no root. What it offers the host is
// what the config's wireproxy-style sections ask for:
//   [Socks5]          BindAddress, Username, Password   SOCKS5 (CONNECT, UDP ASSOCIATE)
//   [http]            BindAddress, Username, Password   HTTP proxy (CONNECT, absolute URIs)
//   [TCPClientTunnel] BindAddress, Target               host -> tunnel
//   [TCPServerTunnel] ListenPort, Target                tunnel -> host
//   [UDPProxyTunnel]  BindAddress, Target, InactivityTimeout   host UDP -> tunnel
//   [STDIOTunnel]     Target                            stdin/stdout <-> tunnel (ssh ProxyCommand)
// plus the UAPI socket (wg show/set work) when /var/run/wireguard is
// writable. Host names in Targets and requests resolve through the tunnel's
// DNS when the config sets DNS, else on the host. Runs until SIGINT/SIGTERM
// or `wg down NAME`.
import type { Endpoint } from "../../src/engine.ts";
import { keyToBase64 } from "../../src/config.ts";
import { formatEndpoint } from "../../src/uapi.ts";
import { serveUapi } from "../ports/uapi-server.ts";
import { ConfigError, parseWgQuick, toDeviceConfig, type ExtraSection, type WgQuickConfig } from "../../src/wgquick.ts";
import { UserError } from "../ports/errors.ts";
import { readConfig } from "./config-file.ts";
import type { HostServer, Host } from "../ports/host.ts";
import { openTunnel, type Limits, type Tunnel } from "../tunnel/tunnel.ts";
import { serveHost, stdioTunnel, tcpClientTunnel, tcpServerTunnel } from "../proxy/forward.ts";
import { udpProxyTunnel } from "../proxy/udp-forward.ts";
import { namedEndpoints, watchDevice } from "../ports/reresolve.ts";
import { openRelayBind, relayEndpoint } from "./relay-bind.ts";
import { serveHttpProxy } from "../proxy/http-proxy.ts";
import { Slots } from "../proxy/connections.ts";
import { serveSocks5 } from "../proxy/socks5.ts";

/** A failure `wg up --netstack` reports as one line. */
export class NetstackError extends UserError {}

/** Connections relayed at once, over every proxy and forward (each may buffer 2 x 256 KiB in the stack). */
export const MAX_RELAYED = 512;

export interface ProxyAuth { username?: string; password?: string }
export interface ProxySections {
  socks5: ({ bind: [string, number]; line: number } & ProxyAuth)[];
  http: ({ bind: [string, number]; line: number } & ProxyAuth)[];
  clientTunnels: { bind: [string, number]; target: [string, number]; line: number }[];
  serverTunnels: { port: number; target: [string, number]; line: number }[];
  udpTunnels: { bind: [string, number]; target: [string, number]; idleMs: number; line: number }[];
  /** At most one: there is one stdin. */
  stdio: { target: [string, number]; line: number } | null;
}

/** [UDPProxyTunnel]'s InactivityTimeout when none is given (seconds), as a NAT's UDP entries last. */
export const UDP_IDLE_DEFAULT = 60;

/** host:port, [v6]:port, or :port (every IPv4 address), as wireproxy's BindAddress and Target are written. */
export function parseHostPort(value: string, key: string, line: number): [string, number] {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_.-]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new ConfigError(line, `invalid ${key} '${value}': expected host:port`);
  return [m[1] ?? (m[2] || "0.0.0.0"), port];
}

/** The wireproxy sections of a parsed config, checked. */
export function parseProxySections(extra: ExtraSection[]): ProxySections {
  const out: ProxySections = { socks5: [], http: [], clientTunnels: [], serverTunnels: [], udpTunnels: [], stdio: null };
  for (const x of extra) {
    const kind = x.name.toLowerCase();
    const keys = new Map<string, [string, number]>();
    const allowed: Record<string, string[]> = {
      socks5: ["bindaddress", "username", "password"], http: ["bindaddress", "username", "password"],
      tcpclienttunnel: ["bindaddress", "target"], tcpservertunnel: ["listenport", "target"],
      udpproxytunnel: ["bindaddress", "target", "inactivitytimeout"], stdiotunnel: ["target"],
    };
    if (!allowed[kind]) throw new ConfigError(x.line, `[${x.name}] is not supported by --netstack`);
    for (const [k, v, line] of x.entries) {
      const lk = k.toLowerCase();
      if (!allowed[kind].includes(lk)) throw new ConfigError(line, `unknown key '${k}' in [${x.name}]`);
      if (keys.has(lk)) throw new ConfigError(line, `duplicate key '${k}' in [${x.name}]`);
      keys.set(lk, [v, line]);
    }
    const need = (k: string, label: string): [string, number] => {
      const v = keys.get(k);
      if (!v || v[0] === "") throw new ConfigError(x.line, `[${x.name}] needs ${label}`);
      return v;
    };
    if (kind === "socks5" || kind === "http") {
      const [b, line] = need("bindaddress", "BindAddress");
      const u = keys.get("username"), p = keys.get("password");
      if ((u === undefined) !== (p === undefined)) throw new ConfigError((u ?? p)![1], `[${x.name}] needs both Username and Password, or neither`);
      const entry = { bind: parseHostPort(b, "BindAddress", line), line: x.line, username: u?.[0], password: p?.[0] };
      (kind === "socks5" ? out.socks5 : out.http).push(entry);
    } else if (kind === "tcpclienttunnel") {
      const [b, bl] = need("bindaddress", "BindAddress"), [t, tl] = need("target", "Target");
      out.clientTunnels.push({ bind: parseHostPort(b, "BindAddress", bl), target: parseHostPort(t, "Target", tl), line: x.line });
    } else if (kind === "udpproxytunnel") {
      const [b, bl] = need("bindaddress", "BindAddress"), [t, tl] = need("target", "Target");
      const idle = keys.get("inactivitytimeout");
      if (idle && !/^\d{1,9}$/.test(idle[0])) throw new ConfigError(idle[1], `invalid InactivityTimeout '${idle[0]}': expected seconds (0: never)`);
      out.udpTunnels.push({
        bind: parseHostPort(b, "BindAddress", bl), target: parseHostPort(t, "Target", tl),
        idleMs: (idle ? Number(idle[0]) : UDP_IDLE_DEFAULT) * 1000, line: x.line,
      });
    } else if (kind === "stdiotunnel") {
      if (out.stdio) throw new ConfigError(x.line, `only one [${x.name}]: there is one stdin (the first is on line ${out.stdio.line})`);
      const [t, tl] = need("target", "Target");
      out.stdio = { target: parseHostPort(t, "Target", tl), line: x.line };
    } else {
      const [p, pl] = need("listenport", "ListenPort"), [t, tl] = need("target", "Target");
      if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new ConfigError(pl, `invalid ListenPort '${p}': expected 1 to 65535`);
      out.serverTunnels.push({ port: Number(p), target: parseHostPort(t, "Target", tl), line: x.line });
    }
  }
  return out;
}

function addr(h: [string, number]): string {
  return h[0].includes(":") ? `[${h[0]}]:${h[1]}` : `${h[0]}:${h[1]}`;
}

/**
 * Runs `wg up --netstack` for interface `name` from the config at `path`
 * ("-": stdin) until a signal or `wg down`.
 * @returns the exit code
 * @throws NetstackError (or ConfigError text in it) as one line for the user
 */
export async function upNetstack(rt: Host, name: string, path: string, runDir: string, limits: Limits = {}, relay: URL | null = null): Promise<number> {
  let stop: (why: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => { stop = resolve; });
  rt.onSignal((signal) => stop(signal));
  let quiet = false;
  const note = (s: string) => { if (!quiet) rt.stderr(`[#] ${s}\n`); };

  let text: string;
  try {
    text = await readConfig(rt, path);
  } catch (e) {
    throw new NetstackError(`cannot read ${path}: ${(e as Error).message.replace(/^.*?: /, "")}`);
  }
  let conf: WgQuickConfig, sections: ProxySections;
  try {
    conf = parseWgQuick(text);
    sections = parseProxySections(conf.extra);
  } catch (e) {
    throw new NetstackError(`${path}: ${(e as Error).message}`);
  }
  const where = `${path}: line ${conf.interface.line}`;
  // With [STDIOTunnel], stdin and stdout carry the connection: the config cannot come from stdin, and the
  // process is one ssh session's (no UAPI socket, so that sessions may run at once; no chatter on stderr).
  const stdio = sections.stdio;
  if (stdio && path === "-") throw new NetstackError(`${path}: line ${stdio.line}: [STDIOTunnel] needs stdin for its connection: give the config as a file`);
  if (stdio && !rt.stdioStreams) throw new NetstackError(`this host cannot hand over stdin and stdout for [STDIOTunnel]`);
  quiet = stdio !== null;
  if (conf.interface.addresses.length === 0) throw new NetstackError(`${where}: --netstack needs Address = (the tunnel's own addresses)`);
  const hostNeeds = sections.socks5.length + sections.http.length + sections.clientTunnels.length + sections.serverTunnels.length;
  const { listenTcp, connectTcp, bindUdp } = rt;
  if (hostNeeds > 0 && (!listenTcp || !connectTcp)) throw new NetstackError(`this host has no TCP sockets for the proxies`);
  if (sections.udpTunnels.length > 0 && !bindUdp) throw new NetstackError(`this host has no UDP sockets for [UDPProxyTunnel]`);
  const ignored = [
    ...(conf.interface.preUp.length + conf.interface.postUp.length + conf.interface.preDown.length + conf.interface.postDown.length ? ["PreUp/PostUp/PreDown/PostDown"] : []),
    ...(conf.interface.table !== undefined ? ["Table"] : []), ...(conf.interface.dnsSearch.length ? ["DNS search domains"] : []),
  ];
  if (ignored.length) note(`--netstack: ${ignored.join(", ")} ignored (no interface, routes or resolvconf)`);

  const endpoints = new Map<string, Endpoint>();
  for (const peer of conf.peers) {
    if (!peer.endpoint) continue;
    // Through a relay a name is the relay's to resolve.
    if (relay) { endpoints.set(`${peer.endpoint.host}:${peer.endpoint.port}`, relayEndpoint(peer.endpoint.host, peer.endpoint.port)); continue; }
    try {
      endpoints.set(`${peer.endpoint.host}:${peer.endpoint.port}`, await rt.resolve(peer.endpoint.host, peer.endpoint.port));
    } catch {
      throw new NetstackError(`${path}: line ${peer.line}: cannot resolve Endpoint host '${peer.endpoint.host}'`);
    }
  }
  const sock = `${runDir}/${name}.sock`;
  // Another `wg up` of this name is running when its socket answers (not knowable without read access: then no UAPI either).
  const live = !stdio && await rt.exists(sock).then((e) => e && rt.connectUnix(sock).then((c) => { c.close(); return true; }, () => false), () => false);
  if (live) throw new NetstackError(`'${name}' is already up (${sock} answers)`);

  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    while (cleanups.length) {
      try { await cleanups.pop()!(); } catch { /* best effort: keep removing the rest */ }
    }
  };
  try {
    const device = toDeviceConfig(conf, (host, port) => endpoints.get(`${host}:${port}`)!);
    let tunnel: Tunnel;
    try {
      const deps = relay ? { ...rt, openBind: () => openRelayBind(rt, relay, note) } : rt;
      tunnel = await openTunnel(deps, {
        ...device, addresses: conf.interface.addresses.map((a) => a.address), dns: conf.interface.dns, mtu: conf.interface.mtu,
      }, { limits });
    } catch (e) {
      throw new NetstackError((e as Error).message);
    }
    cleanups.push(() => tunnel.close());
    const engine = tunnel.engine;
    // Endpoints given as names follow their name when handshakes go unanswered.
    if (!relay) cleanups.push(watchDevice(tunnel.device, rt.clock, namedEndpoints(conf.peers), (h, p) => rt.resolve(h, p), note));
    note(`netstack ${name}: ${tunnel.addresses.join(", ")}, ${relay ? `through the relay ${relay.protocol}//${relay.host}` : `UDP port ${engine.listenPort}`}${tunnel.dns.length ? `, DNS ${tunnel.dns.join(", ")}` : ""}`);

    // The userspace API, when its folder may be written (not as an ordinary user, usually).
    if (!stdio) try {
      cleanups.push(await serveUapi(rt, runDir, name, engine, tunnel.device));
      note(`UAPI on ${sock}`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      const why = code === "EACCES" || code === "EPERM" || e instanceof Error && /^Permission/.test(e.name) ? `${runDir} is not writable` : (e as Error).message;
      note(`note: no UAPI socket (${why}): wg show ${name} and wg down ${name} will not see this tunnel; stop it with Ctrl-C or SIGTERM`);
    }

    const slots = new Slots(MAX_RELAYED);
    // What GET /status on the HTTP proxy shows: no private or preshared keys.
    const status = () => {
      const st = tunnel.status();
      return {
        name, publicKey: st.publicKey ? keyToBase64(st.publicKey) : null, listenPort: st.listenPort,
        addresses: st.addresses, dns: st.dns,
        peers: st.peers.map((p) => ({
          publicKey: keyToBase64(p.publicKey), endpoint: p.endpoint ? formatEndpoint(p.endpoint) : null,
          latestHandshake: Math.floor(p.lastHandshakeTime / 1000), rxBytes: p.rxBytes, txBytes: p.txBytes, allowedIps: p.allowedIps,
        })),
        usage: st.usage, stats: st.stats, relayed: { active: slots.active, refused: slots.refused, max: slots.max },
      };
    };
    const servers: HostServer[] = [];
    cleanups.push(() => { for (const s of servers) s.close(); });
    const listenOn = async (what: string, bind: [string, number], line: number, f: () => Promise<HostServer>) => {
      try {
        servers.push(await f());
      } catch (e) {
        throw new NetstackError(`${path}: line ${line}: ${what} cannot listen on ${addr(bind)}: ${(e as Error).message}`);
      }
      note(`${what} on ${addr(bind)}`);
    };
    for (const s of sections.socks5) {
      await listenOn("SOCKS5 proxy", s.bind, s.line, () => serveHost(listenTcp!, s.bind[0], s.bind[1], slots,
        (c) => serveSocks5(c, tunnel, { username: s.username, password: s.password, bindUdp })));
    }
    for (const s of sections.http) {
      await listenOn("HTTP proxy", s.bind, s.line, () => serveHost(listenTcp!, s.bind[0], s.bind[1], slots,
        (c) => serveHttpProxy(c, tunnel, { username: s.username, password: s.password, status })));
    }
    for (const t of sections.clientTunnels) {
      await listenOn(`TCP tunnel to ${addr(t.target)}`, t.bind, t.line, () => tcpClientTunnel(listenTcp!, t.bind, t.target, tunnel, slots));
    }
    for (const t of sections.serverTunnels) {
      try {
        const l = tcpServerTunnel(tunnel, t.port, connectTcp!, t.target, slots);
        cleanups.push(() => l.close());
      } catch (e) {
        throw new NetstackError(`${path}: line ${t.line}: cannot listen on port ${t.port} in the tunnel: ${(e as Error).message}`);
      }
      note(`tunnel port ${t.port} to ${addr(t.target)} on the host`);
    }
    for (const t of sections.udpTunnels) {
      try {
        const f = await udpProxyTunnel(bindUdp!, t.bind, t.target, tunnel, { idleMs: t.idleMs, now: () => rt.clock.now() });
        cleanups.push(() => f.close());
      } catch (e) {
        throw new NetstackError(`${path}: line ${t.line}: UDP forward cannot bind ${addr(t.bind)}: ${(e as Error).message}`);
      }
      note(`UDP forward on ${addr(t.bind)} to ${addr(t.target)}${t.idleMs ? `, flows idle ${t.idleMs / 1000} s closed` : ""}`);
    }
    note("ready");

    if (stdio) {
      // The session ends when both directions have, or at a signal.
      const done = stdioTunnel(rt.stdioStreams!(), stdio.target, tunnel).then(() => "", (e) => {
        throw new NetstackError(`${path}: line ${stdio.line}: [STDIOTunnel] cannot connect to ${addr(stdio.target)}: ${(e as Error).message}`);
      });
      await Promise.race([done, stopped]);
      await cleanup();
      return 0;
    }
    const signal = await stopped;
    note(`${signal}: taking ${name} down`);
    await cleanup();
    return 0;
  } catch (e) {
    await cleanup();
    throw e;
  }
}
