// A SOCKS5 server (RFC 1928) whose far side is the tunnel: CONNECT opens a
// TCP connection through the netstack, UDP ASSOCIATE relays datagrams
// between a host UDP port and a UDP socket of the netstack. Authentication:
// none, or username/password (RFC 1929) when configured. BIND is refused
// (command not supported). Host names in requests resolve through the
// tunnel (its DNS, see Tunnel.resolve).
import { NetError, type TcpConn, type UdpSocket } from "../../src/netstack/index.ts";
import { formatAddress, parseAddress } from "../../src/ip.ts";
import type { HostStream, HostUdp } from "../ports/host.ts";
import { StreamReader } from "../http/reader.ts";
import { answerAndRelay, deadline, endWith, writeBytes } from "./connections.ts";

/** What the proxies need of the tunnel (a Tunnel has it). */
export interface TunnelSide {
  connect(host: string, port: number): Promise<TcpConn>;
  resolve(name: string): Promise<string[]>;
  udp(port?: number): UdpSocket;
}

export type BindUdp = (host: string, port: number, receive: (data: Uint8Array, address: string, port: number) => void) => Promise<HostUdp>;

export interface Socks5Options {
  /** With both set, clients must authenticate with them (RFC 1929); else no authentication. */
  username?: string;
  password?: string;
  /** Host UDP for UDP ASSOCIATE; without it the command is refused. */
  bindUdp?: BindUdp;
  /** ms a client has to finish its greeting and request (default 30 s). */
  handshakeTimeout?: number;
}

// RFC 1928 section 3, 4, 6 and 7.
const VERSION = 5;
const METHOD_NONE = 0x00, METHOD_USERPASS = 0x02, METHOD_UNACCEPTABLE = 0xff;
const CMD_CONNECT = 1, CMD_UDP_ASSOCIATE = 3;
const ATYP_IPV4 = 1, ATYP_DOMAIN = 3, ATYP_IPV6 = 4;
export const REP = {
  SUCCEEDED: 0, GENERAL_FAILURE: 1, NOT_ALLOWED: 2, NETWORK_UNREACHABLE: 3, HOST_UNREACHABLE: 4, CONNECTION_REFUSED: 5,
  TTL_EXPIRED: 6, COMMAND_NOT_SUPPORTED: 7, ADDRESS_TYPE_NOT_SUPPORTED: 8,
} as const;
// RFC 1929 section 2.
const AUTH_VERSION = 1;

/** Host names a UDP association remembers (name -> address). */
const UDP_NAME_CACHE = 64;

/** An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as plain IPv4. */
export function plainAddress(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1] : a;
}

/** ATYP, address and port as SOCKS5 writes them. */
function encodeAddress(address: string, port: number): Uint8Array {
  let ip: Uint8Array;
  try { ip = parseAddress(plainAddress(address)); } catch { ip = new Uint8Array(4); }
  const b = new Uint8Array(1 + ip.length + 2);
  b[0] = ip.length === 4 ? ATYP_IPV4 : ATYP_IPV6;
  b.set(ip, 1);
  b[1 + ip.length] = port >> 8;
  b[2 + ip.length] = port & 0xff;
  return b;
}

function reply(rep: number, address = "0.0.0.0", port = 0): Uint8Array {
  const a = encodeAddress(address, port);
  const b = new Uint8Array(3 + a.length);
  b[0] = VERSION; b[1] = rep; b[2] = 0;
  b.set(a, 3);
  return b;
}

/** The REP for a failure to reach the destination. */
export function repFor(e: unknown): number {
  if (e instanceof NetError) {
    switch (e.code) {
      case "ECONNREFUSED": return REP.CONNECTION_REFUSED;
      case "ENETUNREACH": return REP.NETWORK_UNREACHABLE;
      case "ETIMEDOUT": case "ENOTFOUND": case "ESERVFAIL": return REP.HOST_UNREACHABLE;
    }
  }
  if (e instanceof RangeError) return REP.ADDRESS_TYPE_NOT_SUPPORTED;
  return REP.GENERAL_FAILURE;
}

function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
  let d = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) d |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return d === 0;
}

/** Reads ATYP, address and port (a request's DST): [host, port]; null for an unknown ATYP. */
async function readAddress(r: StreamReader): Promise<[string, number] | null> {
  const atyp = await r.byte();
  let host: string;
  if (atyp === ATYP_IPV4) host = formatAddress(await r.exact(4));
  else if (atyp === ATYP_IPV6) host = formatAddress(await r.exact(16));
  else if (atyp === ATYP_DOMAIN) host = new TextDecoder().decode(await r.exact(await r.byte()));
  else return null;
  const p = await r.exact(2);
  return [host, (p[0] << 8) | p[1]];
}

/**
 * Serves one SOCKS5 client connection until it ends.
 * @returns resolves when the client is done (never rejects; failures close the connection)
 */
export async function serveSocks5(client: HostStream, tunnel: TunnelSide, opts: Socks5Options = {}): Promise<void> {
  const r = new StreamReader(client.readable);
  const cancel = deadline(opts.handshakeTimeout ?? 30_000, () => client.close());
  try {
    // Greeting: VER, NMETHODS, METHODS.
    if ((await r.byte()) !== VERSION) { client.close(); return; }
    const methods = await r.exact(await r.byte());
    const auth = opts.username !== undefined && opts.password !== undefined;
    const method = auth ? METHOD_USERPASS : METHOD_NONE;
    if (!methods.includes(method)) { await endWith(client, r, Uint8Array.of(VERSION, METHOD_UNACCEPTABLE)); return; }
    await writeBytes(client.writable, Uint8Array.of(VERSION, method));
    if (auth) {
      // RFC 1929: VER, ULEN, UNAME, PLEN, PASSWD -> VER, STATUS.
      if ((await r.byte()) !== AUTH_VERSION) { client.close(); return; }
      const user = new TextDecoder().decode(await r.exact(await r.byte()));
      const pass = new TextDecoder().decode(await r.exact(await r.byte()));
      const ok = sameSecret(user, opts.username!) && sameSecret(pass, opts.password!);
      if (!ok) { await endWith(client, r, Uint8Array.of(AUTH_VERSION, 1)); return; }
      await writeBytes(client.writable, Uint8Array.of(AUTH_VERSION, 0));
    }
    // Request: VER, CMD, RSV, ATYP, DST.ADDR, DST.PORT.
    const [ver, cmd] = await r.exact(3);
    if (ver !== VERSION) { client.close(); return; }
    const dst = await readAddress(r);
    if (dst === null) { await endWith(client, r, reply(REP.ADDRESS_TYPE_NOT_SUPPORTED)); return; }
    if (cmd === CMD_CONNECT) {
      let conn: TcpConn;
      try {
        conn = await tunnel.connect(dst[0], dst[1]);
      } catch (e) {
        await endWith(client, r, reply(repFor(e)));
        return;
      }
      cancel();
      await answerAndRelay(client, r.rest(), { readable: conn.readable, writable: conn.writable, abort: () => conn.abort() },
        reply(REP.SUCCEEDED, conn.localAddress, conn.localPort));
      return;
    }
    if (cmd === CMD_UDP_ASSOCIATE && opts.bindUdp) {
      cancel();
      await associate(client, r, tunnel, opts.bindUdp, dst[1]);
      return;
    }
    await endWith(client, r, reply(REP.COMMAND_NOT_SUPPORTED));
  } catch {
    client.close();
  } finally {
    cancel();
  }
}

/**
 * UDP ASSOCIATE (RFC 1928 section 7): a host UDP port for the client, a
 * netstack UDP socket for the tunnel, datagrams carried between them with
 * the SOCKS UDP header, until the TCP connection ends. Only datagrams from
 * the client's address (and port, when the request named one) are taken;
 * fragments (FRAG != 0) are dropped.
 */
async function associate(client: HostStream, r: StreamReader, tunnel: TunnelSide, bindUdp: BindUdp, clientPort: number): Promise<void> {
  const clientIp = plainAddress(client.remoteAddress);
  const hostIp = plainAddress(client.localAddress);
  let sock: UdpSocket, host: HostUdp;
  let learnedPort = clientPort;
  const names = new Map<string, string>();
  try {
    sock = tunnel.udp();
  } catch (e) {
    await endWith(client, r, reply(repFor(e)));
    return;
  }
  const toTunnel = (data: Uint8Array, address: string, port: number) => {
    if (plainAddress(address) !== clientIp || (clientPort !== 0 && port !== clientPort)) return;
    learnedPort = port;
    const d = parseUdpRequest(data);
    if (d === null) return;
    const send = (ip: string) => {
      try { sock.send(d.data, ip, d.port); } catch { /* too large, no route, closed: dropped as UDP may */ }
    };
    if (d.domain === null) { send(d.host); return; }
    const known = names.get(d.host);
    if (known !== undefined) { send(known); return; }
    const data2 = d.data.slice(); // the host's buffer is not ours after this call
    tunnel.resolve(d.host).then((list) => {
      if (list.length === 0) return;
      if (names.size >= UDP_NAME_CACHE) names.clear();
      names.set(d.host, list[0]);
      try { sock.send(data2, list[0], d.port); } catch { /* dropped */ }
    }, () => {});
  };
  try {
    host = await bindUdp(hostIp, 0, toTunnel);
  } catch {
    sock.close();
    await endWith(client, r, reply(REP.GENERAL_FAILURE));
    return;
  }
  // Datagrams from the tunnel, headed with their source, to the client.
  const reader = sock.readable.getReader();
  const back = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (learnedPort === 0) continue;
      const a = encodeAddress(value.address, value.port);
      const out = new Uint8Array(3 + a.length + value.data.length);
      out.set(a, 3);
      out.set(value.data, 3 + a.length);
      host.send(out, clientIp, learnedPort);
    }
  })().catch(() => {});
  try {
    await writeBytes(client.writable, reply(REP.SUCCEEDED, hostIp, host.port));
    // The association lives as long as the TCP connection: read it to its end.
    while ((await r.some(4096)) !== null) { /* nothing more is expected; ignored */ }
  } catch { /* the connection failed: the association ends */ }
  host.close();
  sock.close();
  reader.cancel().catch(() => {});
  await back;
  client.close();
}

/** A client's UDP request datagram: RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA; null when malformed or a fragment. */
export function parseUdpRequest(b: Uint8Array): { host: string; domain: string | null; port: number; data: Uint8Array } | null {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || b[2] !== 0) return null;
  let o = 4, host: string, domain: string | null = null;
  if (b[3] === ATYP_IPV4) { if (b.length < o + 6) return null; host = formatAddress(b.subarray(o, o + 4)); o += 4; }
  else if (b[3] === ATYP_IPV6) { if (b.length < o + 18) return null; host = formatAddress(b.subarray(o, o + 16)); o += 16; }
  else if (b[3] === ATYP_DOMAIN) {
    const n = b[o];
    if (n === undefined || b.length < o + 1 + n + 2) return null;
    host = domain = new TextDecoder().decode(b.subarray(o + 1, o + 1 + n));
    o += 1 + n;
  } else return null;
  const port = (b[o] << 8) | b[o + 1];
  if (port === 0) return null;
  return { host, domain, port, data: b.subarray(o + 2) };
}
