// wg-quick(8) configuration files: text -> a typed object, -> the engine's
// DeviceConfig (as `wg setconf` would apply it), and the `wg-quick strip`
// subset that wg(8) accepts.
//
// Line handling follows the two programs that read these files:
// - wg-quick consumes its own [Interface] keys (Address, MTU, DNS, Table,
//   PreUp, PostUp, PreDown, PostDown, SaveConfig): key and value trimmed,
//   key case-insensitive, `#` starts a comment, except in hook commands,
//   which keep the whole text after the first `=`.
// - wg setconf reads the rest: everything after `#` dropped, then *all*
//   whitespace removed, keys matched case-insensitively; a key with an empty
//   value is rejected.
// Extra sections as wireproxy reads them ([Socks5], [http], [TCPClientTunnel],
// [TCPServerTunnel], [UDPProxyTunnel], [STDIOTunnel]) are kept raw for their users.
import { keyFromBase64, keyHex, type DeviceConfig, type PeerConfig } from "./config.ts";
import { formatAddress, formatPrefix, parseAddress, parsePrefix } from "./ip.ts";
import type { Endpoint } from "./peer.ts";

/** A configuration file error; the message is one line: `line N: what is wrong`. */
export class ConfigError extends Error {
  /** 1-based line number the error is about. */
  readonly line: number;
  constructor(line: number, detail: string) {
    super(`line ${line}: ${detail}`);
    this.name = "ConfigError";
    this.line = line;
  }
}

/** An interface address (Address =): host bits are kept, the prefix defaults to /32 or /128. */
export interface InterfaceAddress {
  /** Normalised address text: dotted quad, or RFC 5952 IPv6. */
  address: string;
  cidr: number;
  family: 4 | 6;
}

/** An Endpoint as written: a host name or IP literal (IPv6 without brackets), and a port. */
export interface HostPort {
  host: string;
  port: number;
}

export interface WgQuickInterface {
  /** Line of the (first) [Interface] header; 0 when the file has none. */
  line: number;
  privateKey?: Uint8Array;
  listenPort?: number;
  /** 0 for `off`. */
  fwmark?: number;
  addresses: InterfaceAddress[];
  mtu?: number;
  /** DNS servers (normalised IP addresses), in order. */
  dns: string[];
  /** DNS search domains: the DNS entries that are not IP addresses. */
  dnsSearch: string[];
  /** `off` (no routes), `auto` (default table), a table number or a table name. */
  table?: "off" | "auto" | number | string;
  preUp: string[];
  postUp: string[];
  preDown: string[];
  postDown: string[];
  saveConfig: boolean;
}

export interface WgQuickPeer {
  /** Line of this peer's [Peer] header. */
  line: number;
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** Normalised prefixes ("10.0.0.0/24", "fd00::/64"), in order, host bits kept. */
  allowedIps: string[];
  endpoint?: HostPort;
  /** Seconds; 0 for `off`. */
  persistentKeepalive?: number;
}

/** A section that is not WireGuard's own, kept raw: [key, value, line] in order. */
export interface ExtraSection {
  /** The name as written between the brackets. */
  name: string;
  line: number;
  entries: [key: string, value: string, line: number][];
}

export interface WgQuickConfig {
  interface: WgQuickInterface;
  peers: WgQuickPeer[];
  extra: ExtraSection[];
}

/** wireproxy's sections, by lowercase name. */
const EXTRA_SECTIONS = new Set(["socks5", "http", "tcpclienttunnel", "tcpservertunnel", "udpproxytunnel", "stdiotunnel"]);
/** The [Interface] keys wg-quick handles itself (lowercase). */
const QUICK_KEYS = new Set(["address", "mtu", "dns", "table", "preup", "postup", "predown", "postdown", "saveconfig"]);
/** The engine accepts inner MTUs from 576 to 65535 minus the 80 bytes of outer headers. */
const MIN_MTU = 576;
const MAX_MTU = 65535 - 80;

interface Line {
  n: number;
  /** The raw text without its line break. */
  raw: string;
  /** Text before any `#`. */
  stripped: string;
}

function splitLines(text: string): Line[] {
  const parts = text.split("\n");
  // A final line break ends the last line; it does not start another one.
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  return parts.map((raw, i) => {
    const hash = raw.indexOf("#");
    return { n: i + 1, raw, stripped: hash < 0 ? raw : raw.slice(0, hash) };
  });
}

type Section =
  | { kind: "none" }
  | { kind: "interface" }
  | { kind: "peer"; peer: Partial<WgQuickPeer> & { line: number; allowedIps: string[] } }
  | { kind: "extra"; extra: ExtraSection };

/** A section header's name (lowercase, whitespace removed), or null when the line is no header. */
function headerName(l: Line): string | null {
  const t = l.stripped.trim();
  if (!t.startsWith("[")) return null;
  const compact = t.replace(/\s+/g, "");
  if (!compact.endsWith("]") || compact.indexOf("]") !== compact.length - 1) {
    throw new ConfigError(l.n, `invalid section header '${t}'`);
  }
  return compact.slice(1, -1);
}

/**
 * Parses the text of a wg-quick(8) configuration file.
 * @param text the file's contents (LF or CRLF line breaks)
 * @returns the typed configuration; keys not given are absent (or empty lists)
 * @throws ConfigError naming the line and what is wrong with it
 * @example
 * const conf = parseWgQuick("[Interface]\nPrivateKey = ...\nAddress = 10.0.0.2/24\n[Peer]\n...");
 * conf.interface.addresses[0]; // { address: "10.0.0.2", cidr: 24, family: 4 }
 */
export function parseWgQuick(text: string): WgQuickConfig {
  const iface: WgQuickInterface = {
    line: 0, addresses: [], dns: [], dnsSearch: [], preUp: [], postUp: [], preDown: [], postDown: [], saveConfig: false,
  };
  const peers: WgQuickPeer[] = [];
  const extra: ExtraSection[] = [];
  const firstLine = new Map<string, number>();
  let section: Section = { kind: "none" };

  const endSection = () => {
    if (section.kind !== "peer") return;
    const p = section.peer;
    if (p.publicKey === undefined) throw new ConfigError(p.line, "[Peer] without PublicKey");
    const hex = keyHex(p.publicKey);
    const first = firstLine.get(hex);
    if (first !== undefined) throw new ConfigError(p.line, `duplicate [Peer]: the PublicKey of the [Peer] at line ${first}`);
    firstLine.set(hex, p.line);
    peers.push(p as WgQuickPeer);
  };

  for (const l of splitLines(text)) {
    if (l.stripped.trim() === "") continue;
    const header = headerName(l);
    if (header !== null) {
      endSection();
      const lower = header.toLowerCase();
      if (lower === "interface") {
        section = { kind: "interface" };
        if (iface.line === 0) iface.line = l.n;
      } else if (lower === "peer") {
        section = { kind: "peer", peer: { line: l.n, allowedIps: [] } };
      } else if (EXTRA_SECTIONS.has(lower)) {
        const x: ExtraSection = { name: l.stripped.trim().slice(1, -1).trim(), line: l.n, entries: [] };
        extra.push(x);
        section = { kind: "extra", extra: x };
      } else throw new ConfigError(l.n, `unknown section [${header}]`);
      continue;
    }
    const eq = l.stripped.indexOf("=");
    if (eq < 0) throw new ConfigError(l.n, `expected 'Key = value', got '${l.stripped.trim()}'`);
    const key = l.stripped.slice(0, eq).trim();
    const value = l.stripped.slice(eq + 1).trim();
    if (section.kind === "none") throw new ConfigError(l.n, `key '${key}' outside a section`);
    if (section.kind === "extra") {
      section.extra.entries.push([key, value, l.n]);
      continue;
    }
    if (section.kind === "interface" && QUICK_KEYS.has(key.toLowerCase())) {
      quickKey(iface, key.toLowerCase(), value, l);
      continue;
    }
    // What wg setconf sees: whitespace removed everywhere.
    const wkey = key.replace(/\s+/g, "").toLowerCase();
    const wvalue = value.replace(/\s+/g, "");
    if (section.kind === "interface") {
      if (wkey === "privatekey") iface.privateKey = parseKey(wvalue, "PrivateKey", l.n);
      else if (wkey === "listenport") iface.listenPort = parseListenPort(wvalue, l.n);
      else if (wkey === "fwmark") iface.fwmark = parseFwmark(wvalue, l.n);
      else throw new ConfigError(l.n, `unknown key '${key}' in [Interface]`);
    } else {
      const p = section.peer;
      if (wkey === "publickey") p.publicKey = parseKey(wvalue, "PublicKey", l.n);
      else if (wkey === "presharedkey") p.presharedKey = parseKey(wvalue, "PresharedKey", l.n);
      else if (wkey === "allowedips") p.allowedIps.push(...parseAllowedIps(wvalue, l.n));
      else if (wkey === "endpoint") p.endpoint = parseEndpointValue(wvalue, l.n);
      else if (wkey === "persistentkeepalive") p.persistentKeepalive = parseKeepalive(wvalue, l.n);
      else throw new ConfigError(l.n, `unknown key '${key}' in [Peer]`);
    }
  }
  endSection();
  return { interface: iface, peers, extra };
}

function quickKey(iface: WgQuickInterface, key: string, value: string, l: Line): void {
  switch (key) {
    case "address":
      for (const a of value.split(/[\s,]+/).filter((s) => s !== "")) {
        let p;
        try { p = parsePrefix(a); } catch { throw new ConfigError(l.n, `invalid Address '${a}'`); }
        iface.addresses.push({ address: formatAddress(p.bytes), cidr: p.cidr, family: p.bytes.length === 4 ? 4 : 6 });
      }
      return;
    case "mtu":
      if (value === "") { delete iface.mtu; return; } // wg-quick: empty means automatic
      if (!/^[0-9]{1,6}$/.test(value) || Number(value) < MIN_MTU || Number(value) > MAX_MTU) {
        throw new ConfigError(l.n, `invalid MTU '${value}': expected ${MIN_MTU} to ${MAX_MTU}`);
      }
      iface.mtu = Number(value);
      return;
    case "dns":
      // wg-quick: entries of digits and dots, or with a colon, are servers; the rest are search domains.
      for (const d of value.split(/[\s,]+/).filter((s) => s !== "")) {
        if (/^[0-9.]+$/.test(d) || d.includes(":")) {
          try { iface.dns.push(formatAddress(parseAddress(d))); } catch { throw new ConfigError(l.n, `invalid DNS '${d}'`); }
        } else iface.dnsSearch.push(d);
      }
      return;
    case "table":
      if (value === "") { delete iface.table; return; }
      if (value === "off" || value === "auto") iface.table = value;
      else if (/^[0-9]+$/.test(value)) {
        if (value.length > 10 || Number(value) > 0xffffffff) throw new ConfigError(l.n, `invalid Table '${value}'`);
        iface.table = Number(value);
      } else if (/^\S+$/.test(value)) iface.table = value;
      else throw new ConfigError(l.n, `invalid Table '${value}'`);
      return;
    case "preup": case "postup": case "predown": case "postdown": {
      // Hooks keep `#` and everything else after the first `=`.
      const cmd = l.raw.slice(l.raw.indexOf("=") + 1).trim();
      const list = key === "preup" ? iface.preUp : key === "postup" ? iface.postUp : key === "predown" ? iface.preDown : iface.postDown;
      list.push(cmd);
      return;
    }
    case "saveconfig":
      if (/^true$/i.test(value)) iface.saveConfig = true;
      else if (/^false$/i.test(value)) iface.saveConfig = false;
      else throw new ConfigError(l.n, `invalid SaveConfig '${value}': expected true or false`);
      return;
  }
}

function requireValue(value: string, what: string, n: number): void {
  if (value === "") throw new ConfigError(n, `missing value for ${what}`);
}

function parseKey(value: string, what: string, n: number): Uint8Array {
  requireValue(value, what, n);
  try {
    return keyFromBase64(value, what);
  } catch (e) {
    throw new ConfigError(n, (e as Error).message);
  }
}

function parseListenPort(value: string, n: number): number {
  requireValue(value, "ListenPort", n);
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ConfigError(n, `invalid ListenPort '${value}': expected 0 to 65535`);
  }
  return Number(value);
}

function parseFwmark(value: string, n: number): number {
  requireValue(value, "FwMark", n);
  if (value.toLowerCase() === "off") return 0;
  // As wg(8): decimal, or hexadecimal after a lowercase 0x.
  const m = /^0x([0-9a-fA-F]+)$/.exec(value);
  const v = m ? parseInt(m[1], 16) : /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(v <= 0xffffffff)) throw new ConfigError(n, `invalid FwMark '${value}': expected off or 0 to 0xffffffff`);
  return v;
}

function parseKeepalive(value: string, n: number): number {
  requireValue(value, "PersistentKeepalive", n);
  if (value.toLowerCase() === "off") return 0;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ConfigError(n, `invalid PersistentKeepalive '${value}': expected off or 0 to 65535`);
  }
  return Number(value);
}

function parseAllowedIps(value: string, n: number): string[] {
  requireValue(value, "AllowedIPs", n);
  return value.split(",").map((a) => {
    try {
      return formatPrefix(parsePrefix(a));
    } catch {
      throw new ConfigError(n, `invalid AllowedIPs '${a}'`);
    }
  });
}

function parseEndpointValue(value: string, n: number): HostPort {
  requireValue(value, "Endpoint", n);
  try {
    return parseHostPort(value);
  } catch (e) {
    throw new ConfigError(n, (e as Error).message);
  }
}

/**
 * Parses `host:port`, `[IPv6]:port` (a zone allowed: `[fe80::1%eth0]:51820`),
 * with a host name or IP literal, as Endpoint values are written.
 * IP literals come back normalised; IPv6 hosts without brackets.
 * @throws RangeError naming the text and what is wrong
 * @example parseHostPort("[fd00::1]:51820"); // { host: "fd00::1", port: 51820 }
 */
export function parseHostPort(text: string): HostPort {
  const bad = (why: string) => new RangeError(`invalid Endpoint '${text}': ${why}`);
  let host: string, port: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":" || close + 2 === text.length) throw bad("expected [IPv6]:port");
    host = text.slice(1, close);
    port = text.slice(close + 2);
    const pct = host.indexOf("%");
    const addr = pct < 0 ? host : host.slice(0, pct);
    let bytes: Uint8Array | null = null;
    try { bytes = parseAddress(addr); } catch { /* reported below */ }
    if (bytes === null || bytes.length !== 16 || pct === host.length - 1) throw bad("expected an IPv6 address in brackets");
    host = formatAddress(bytes) + (pct < 0 ? "" : host.slice(pct));
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0 || colon === text.length - 1) throw bad("expected host:port");
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host.includes(":")) throw bad("an IPv6 address needs brackets, as in [fd00::1]:51820");
    if (/^[0-9.]+$/.test(host)) {
      try { host = formatAddress(parseAddress(host)); } catch { throw bad("invalid IPv4 address"); }
    } else if (!/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/.test(host) || host.includes("..")) {
      throw bad("invalid host name");
    }
  }
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw bad("port must be 1 to 65535");
  return { host, port: Number(port) };
}

/**
 * The engine configuration `wg setconf` would apply for this file: every
 * device field set (absent ones to none / 0, as setconf does), all peers
 * replaced, each peer's AllowedIPs replaced.
 * @param parsed a parsed configuration (parseWgQuick)
 * @param resolveEndpoint turns an Endpoint's host (name or literal) and port
 *   into the adapter's Endpoint; resolving names is the adapter's job
 * @returns a DeviceConfig for Engine.set
 * @example engine.set(toDeviceConfig(parseWgQuick(text), (address, port) => ({ address, port })), now);
 */
export function toDeviceConfig(parsed: WgQuickConfig, resolveEndpoint: (host: string, port: number) => Endpoint): DeviceConfig {
  const i = parsed.interface;
  const peers = parsed.peers.map((p) => {
    const pc: PeerConfig = { publicKey: p.publicKey.slice(), replaceAllowedIps: true, allowedIps: [...p.allowedIps] };
    if (p.presharedKey !== undefined) pc.presharedKey = p.presharedKey.slice();
    if (p.endpoint !== undefined) pc.endpoint = resolveEndpoint(p.endpoint.host, p.endpoint.port);
    if (p.persistentKeepalive !== undefined) pc.persistentKeepalive = p.persistentKeepalive;
    return pc;
  });
  return {
    privateKey: i.privateKey ? i.privateKey.slice() : null,
    listenPort: i.listenPort ?? 0,
    fwmark: i.fwmark ?? 0,
    replacePeers: true,
    peers,
  };
}

/**
 * The part of a wg-quick file that `wg setconf` accepts, as `wg-quick strip`
 * prints it: the file's lines, comments and blank lines included, without the
 * wg-quick [Interface] keys, and ending with an empty line as its `echo` does.
 * Unlike wg-quick, the extra (wireproxy) sections are left out too, since
 * wg(8) would reject them.
 * @throws ConfigError if the file does not parse (parseWgQuick)
 */
export function stripWgQuick(text: string): string {
  parseWgQuick(text);
  let out = "";
  let inInterface = false, inExtra = false;
  for (const l of splitLines(text)) {
    const header = l.stripped.trim().startsWith("[") ? headerName(l) : null;
    if (header !== null) {
      inInterface = header.toLowerCase() === "interface";
      inExtra = EXTRA_SECTIONS.has(header.toLowerCase());
    }
    if (inExtra) continue;
    if (inInterface && header === null) {
      const eq = l.stripped.indexOf("=");
      if (eq >= 0 && QUICK_KEYS.has(l.stripped.slice(0, eq).trim().toLowerCase())) continue;
    }
    out += l.raw + "\n";
  }
  return out + "\n";
}
