// The client half of the cross-platform userspace API: one request per
// connection on /var/run/wireguard/NAME.sock, read until the answer's
// `errno=N` line and the empty line after it, as wg(8) does it
// (https://www.wireguard.com/xplatform/). Works against this project's
// `wg up` and against wireguard-go alike.
import { keyFromHex, type DeviceStatus, type PeerStatus } from "../../src/config.ts";
import type { X25519 } from "../../src/crypto.ts";
import { parseAddress } from "../../src/ip.ts";
import { UserError } from "../ports/errors.ts";
import type { Conn, Files, Processes, UnixSockets } from "../ports/host.ts";

/** What a UAPI client uses of its host. */
export type UapiHost = Files & UnixSockets & Pick<Processes, "run"> & { readonly x25519: X25519 };

/** Where userspace implementations put their sockets (and `wg up` its pid files). */
export const RUN_DIR = "/var/run/wireguard";

export const EPERM = 1, ENOENT = 2, EIO = 5, EBADF = 9, ENOMEM = 12, EACCES = 13, EEXIST = 17, ENODEV = 19,
  EINVAL = 22, ENOSPC = 28, EPROTO = 71, EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EADDRINUSE = 98,
  EADDRNOTAVAIL = 99, ENETUNREACH = 101, ETIMEDOUT = 110, ECONNREFUSED = 111;

/** glibc's strerror() texts for the errno values a UAPI exchange can end in. */
const STRERROR: Record<number, string> = {
  [EPERM]: "Operation not permitted",
  [ENOENT]: "No such file or directory",
  [EIO]: "Input/output error",
  [EBADF]: "Bad file descriptor",
  [ENOMEM]: "Cannot allocate memory",
  [EACCES]: "Permission denied",
  [EEXIST]: "File exists",
  [ENODEV]: "No such device",
  [EINVAL]: "Invalid argument",
  [ENOSPC]: "No space left on device",
  [EPROTO]: "Protocol error",
  [EPROTONOSUPPORT]: "Protocol not supported",
  [EOPNOTSUPP]: "Operation not supported",
  [EADDRINUSE]: "Address already in use",
  [EADDRNOTAVAIL]: "Cannot assign requested address",
  [ENETUNREACH]: "Network is unreachable",
  [ETIMEDOUT]: "Connection timed out",
  [ECONNREFUSED]: "Connection refused",
};

/** strerror(errno) as glibc words it. */
export function strerror(errno: number): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

/** A UAPI exchange failed with `errno` (positive); the message is strerror(errno). */
export class UapiClientError extends UserError {
  readonly errno: number;
  constructor(errno: number) {
    super(strerror(errno));
    this.errno = errno;
  }
}

/** The socket of interface `name`. */
export function socketPath(name: string): string {
  return `${RUN_DIR}/${name}.sock`;
}

/** The errno of an error a runtime threw for a file or socket operation (Node/Bun codes, Deno class names). */
export function errnoOf(e: unknown): number | null {
  const code = (e as { code?: unknown })?.code;
  const name = (e as { name?: unknown })?.name;
  switch (typeof code === "string" ? code : name) {
    case "ENOENT": case "NotFound": return ENOENT;
    case "ECONNREFUSED": case "ConnectionRefused": return ECONNREFUSED;
    case "EACCES": case "PermissionDenied": return EACCES;
    case "EPERM": return EPERM;
    case "ENOTDIR": return ENOENT;
    case "EISDIR": return 21;
    case "ENOTSOCK": return EBADF;
    case "ETIMEDOUT": case "TimedOut": return ETIMEDOUT;
    default: return null;
  }
}

/**
 * Connects to interface `name`'s socket.
 * @throws UapiClientError: EINVAL for a name with '/', ENODEV when there is no socket, else the connect error
 */
export async function connect(rt: UapiHost, name: string): Promise<Conn> {
  if (name.includes("/") || name === "") throw new UapiClientError(EINVAL);
  const path = socketPath(name);
  if (!(await rt.exists(path))) throw new UapiClientError(ENODEV);
  try {
    return await rt.connectUnix(path);
  } catch (e) {
    const errno = errnoOf(e);
    // The socket went away between the two calls: the interface is gone.
    if (errno === ENOENT) throw new UapiClientError(ENODEV);
    if (errno !== null) throw new UapiClientError(errno);
    throw e;
  }
}

/**
 * Sends one request and reads the answer up to and including the empty line
 * that ends it (or until the server hangs up).
 * @param request the whole request, ending with its empty line
 * @returns the answer's text; it lacks the final empty line when the server hung up first
 */
export async function exchange(rt: UapiHost, name: string, request: string): Promise<string> {
  const conn = await connect(rt, name);
  return await new Promise<string>((resolve) => {
    let buf = "", done = false;
    const finish = () => {
      if (done) return;
      done = true;
      conn.close();
      resolve(buf);
    };
    conn.start((chunk) => {
      if (done) return;
      buf += chunk;
      // The first empty line ends an answer: no line of a get answer is empty.
      const end = buf.startsWith("\n") ? 0 : buf.indexOf("\n\n");
      if (end >= 0) {
        buf = buf.slice(0, end + (end === 0 ? 1 : 2));
        finish();
      }
    }, finish);
    conn.write(request);
  });
}

/** An unsigned decimal as wg reads one (strtoull, first character a digit, nothing after it). */
function num(value: string, max: number): number | null {
  if (!/^[0-9]+$/.test(value)) return null;
  const n = Number(value);
  return n > max ? null : n;
}

function hexKey(value: string): Uint8Array | null {
  try {
    return keyFromHex(value);
  } catch {
    return null;
  }
}

/** `ip:port` or `[ipv6]:port` (an IPv6 address may carry a %zone) as an Endpoint; null if malformed. */
export function parseEndpointText(value: string): { address: string; port: number } | null {
  let host: string, port: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0 || value[close + 1] !== ":") return null;
    host = value.slice(1, close);
    port = value.slice(close + 2);
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0) return null;
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
  }
  const p = num(port, 0xffff);
  if (p === null || host === "" || host !== host.trim()) return null;
  const pct = host.indexOf("%");
  try {
    parseAddress(pct < 0 ? host : host.slice(0, pct));
  } catch {
    return null;
  }
  return { address: host, port: p };
}

/** An `allowed_ip` value: address/cidr with the cidr in range; returned as given. */
function allowedIp(value: string): string | null {
  const slash = value.indexOf("/");
  if (slash < 0) return null;
  const ip = value.slice(0, slash);
  const cidr = num(value.slice(slash + 1), 128);
  if (cidr === null || ip !== ip.trim()) return null;
  let bytes: Uint8Array;
  try { bytes = parseAddress(ip); } catch { return null; }
  if (cidr > bytes.length * 8) return null;
  return `${ip}/${cidr}`;
}

/**
 * Reads a get=1 answer as wg(8) does: device keys until the first
 * public_key, then peer keys; unknown keys are skipped. The public key is
 * derived from the private key. Times come as wall-clock ms.
 * @param text the answer, up to and including its final empty line
 * @throws UapiClientError with the answer's errno when it is not 0, EPROTO when the answer is malformed or cut short
 */
export function parseGetAnswer(text: string, x25519: X25519): DeviceStatus {
  const dev: DeviceStatus = { privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let peer: (PeerStatus & { sec: number; nsec: number }) | null = null;
  let errno = -1;
  const bad = () => new UapiClientError(EPROTO);
  let at = 0;
  for (;;) {
    const nl = text.indexOf("\n", at);
    if (nl < 0) throw bad(); // the server hung up before the empty line
    const line = text.slice(at, nl);
    at = nl + 1;
    if (line === "") break;
    const eq = line.indexOf("=");
    if (eq < 0) throw bad();
    const key = line.slice(0, eq), value = line.slice(eq + 1);
    let ok = true;
    if (key === "errno") {
      // wg reads only a bare number here; servers write -N on Unix (wireguard-go too), so take either.
      const n = num(value.replace(/^-/, ""), 0x7fffffff);
      if (n === null) throw bad();
      errno = n;
    } else if (key === "public_key") {
      const k = hexKey(value);
      if (!k) throw bad();
      peer = {
        publicKey: k, presharedKey: null, endpoint: null, lastHandshakeTime: 0, rxBytes: 0, txBytes: 0,
        persistentKeepalive: 0, allowedIps: [], sec: 0, nsec: 0,
      };
      dev.peers.push(peer);
    } else if (!peer) {
      switch (key) {
        case "private_key": {
          const k = hexKey(value);
          if (!k) { ok = false; break; }
          dev.privateKey = k;
          dev.publicKey = x25519.publicKey(k);
          break;
        }
        case "listen_port": {
          const n = num(value, 0xffff);
          if (n === null) ok = false; else dev.listenPort = n;
          break;
        }
        case "fwmark": {
          const n = num(value, 0xffffffff);
          if (n === null) ok = false; else dev.fwmark = n;
          break;
        }
      }
    } else {
      switch (key) {
        case "preshared_key": {
          const k = hexKey(value);
          if (!k) ok = false;
          else peer.presharedKey = k.some((b) => b !== 0) ? k : null;
          break;
        }
        case "endpoint": {
          const ep = parseEndpointText(value);
          if (!ep) ok = false; else peer.endpoint = ep;
          break;
        }
        case "persistent_keepalive_interval": {
          const n = num(value, 0xffff);
          if (n === null) ok = false; else peer.persistentKeepalive = n;
          break;
        }
        case "allowed_ip": {
          const a = allowedIp(value);
          if (a === null) ok = false; else peer.allowedIps.push(a);
          break;
        }
        case "last_handshake_time_sec": case "last_handshake_time_nsec": case "rx_bytes": case "tx_bytes": {
          // u64 (i64 for the time): checked exactly, kept as a (possibly rounded) number.
          const max = key.startsWith("last_") ? (1n << 63n) - 1n : (1n << 64n) - 1n;
          if (!/^[0-9]+$/.test(value) || BigInt(value) > max) { ok = false; break; }
          const n = Number(value);
          if (key === "last_handshake_time_sec") peer.sec = n;
          else if (key === "last_handshake_time_nsec") peer.nsec = n;
          else if (key === "rx_bytes") peer.rxBytes = n;
          else peer.txBytes = n;
          break;
        }
      }
    }
    if (!ok) throw bad();
  }
  if (errno < 0) throw bad();
  if (errno !== 0) throw new UapiClientError(errno);
  for (const p of dev.peers as (PeerStatus & { sec?: number; nsec?: number })[]) {
    p.lastHandshakeTime = p.sec ? p.sec * 1000 + Math.floor((p.nsec ?? 0) / 1e6) : 0;
    delete p.sec;
    delete p.nsec;
  }
  return dev;
}

/**
 * get=1 on interface `name`.
 * @throws UapiClientError (ENODEV when the interface does not exist)
 */
export async function getDevice(rt: UapiHost, name: string): Promise<DeviceStatus> {
  return parseGetAnswer(await exchange(rt, name, "get=1\n\n"), rt.x25519);
}

/**
 * set=1 on interface `name` with the given key=value lines.
 * @throws UapiClientError with the errno the interface answered (EPROTO when the answer is malformed)
 */
export async function setDevice(rt: UapiHost, name: string, lines: string[]): Promise<void> {
  const answer = await exchange(rt, name, `set=1\n${lines.map((l) => l + "\n").join("")}\n`);
  const m = /^errno=(-?[0-9]+)\n\n$/.exec(answer);
  if (!m) throw new UapiClientError(EPROTO);
  const errno = Math.abs(Number(m[1]));
  if (errno !== 0) throw new UapiClientError(errno);
}

/**
 * The interfaces with a socket in /var/run/wireguard that accepts a
 * connection, as `wg show interfaces` lists them. Files has no directory
 * listing, so this runs `ls`.
 * @throws UapiClientError when the directory exists but cannot be listed
 */
export async function listInterfaces(rt: UapiHost): Promise<string[]> {
  const r = await rt.run(["ls", "-1A", RUN_DIR]);
  if (r.code !== 0) {
    if (!(await rt.exists(RUN_DIR))) return [];
    throw new UapiClientError(r.code === 127 ? ENOENT : EACCES);
  }
  const names: string[] = [];
  for (const f of r.stdout.split("\n")) {
    if (f.length <= ".sock".length || !f.endsWith(".sock")) continue;
    const name = f.slice(0, -".sock".length);
    try {
      (await connect(rt, name)).close();
    } catch (e) {
      // A socket nobody listens on is what a crashed process leaves behind.
      if (e instanceof UapiClientError && (e.errno === ECONNREFUSED || e.errno === ENODEV || e.errno === EINVAL)) continue;
    }
    names.push(name);
  }
  return names;
}
