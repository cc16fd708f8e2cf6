// What wg(8) prints for `wg show NAME`, `wg show NAME FIELD` and
// `wg showconf NAME`, from the engine's DeviceStatus, without colours
// (wireguard-tools: show.c, showconf.c). Addresses print as glibc's
// inet_ntop and getnameinfo do, sizes in binary units with two decimals,
// times in years, days, hours, minutes and seconds.
import { keyToBase64, type DeviceStatus, type PeerStatus } from "./config.ts";
import { parseAddress, parsePrefix } from "./ip.ts";
import type { Endpoint } from "./peer.ts";

/** The fields `wg show NAME FIELD` knows. */
export type ShowField =
  | "public-key" | "private-key" | "listen-port" | "fwmark" | "peers" | "preshared-keys" | "endpoints"
  | "allowed-ips" | "latest-handshakes" | "transfer" | "persistent-keepalive" | "dump";

export interface ShowOptions {
  /** Print private and preshared keys instead of "(hidden)" (wg: WG_HIDE_KEYS=never). */
  showKeys?: boolean;
}

/** An address as glibc's inet_ntop writes it: RFC 5952 zero compression, and ::a.b.c.d / ::ffff:a.b.c.d forms. */
export function ntop(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i] << 8) | b[2 * i + 1]);
  // The longest run of two or more zero words (the first of equals) becomes "::".
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) best = -1;
  const v4 = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  if (best === 0 && bestLen === 6) return `::${v4}`;
  if (best === 0 && bestLen === 5 && w[5] === 0xffff) return `::ffff:${v4}`;
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

/** An allowed-IPs entry as wg prints it (inet_ntop form). */
function prefixText(s: string): string {
  try {
    const p = parsePrefix(s);
    return `${ntop(p.bytes)}/${p.cidr}`;
  } catch {
    return s;
  }
}

/** An endpoint as getnameinfo + wg print it: a.b.c.d:port or [v6]:port. */
function endpointText(ep: Endpoint): string {
  let a = ep.address;
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  const pct = a.indexOf("%");
  try {
    a = ntop(parseAddress(pct < 0 ? a : a.slice(0, pct))) + (pct < 0 ? "" : a.slice(pct));
  } catch { /* not an IP literal: as given */ }
  return a.includes(":") ? `[${a}]:${ep.port}` : `${a}:${ep.port}`;
}

/**
 * A duration as wg prints it: "1 year, 2 days, 1 hour, 5 minutes, 1 second";
 * zero parts left out (so 0 gives "").
 */
export function formatDuration(seconds: number): string {
  let left = Math.floor(seconds);
  const parts: string[] = [];
  const unit = (n: number, name: string) => { if (n) parts.push(`${n} ${name}${n === 1 ? "" : "s"}`); };
  const years = Math.floor(left / (365 * 24 * 3600)); left %= 365 * 24 * 3600;
  const days = Math.floor(left / (24 * 3600)); left %= 24 * 3600;
  const hours = Math.floor(left / 3600); left %= 3600;
  const minutes = Math.floor(left / 60);
  unit(years, "year"); unit(days, "day"); unit(hours, "hour"); unit(minutes, "minute"); unit(left % 60, "second");
  return parts.join(", ");
}

/**
 * A byte count as wg prints it: "512 B", "1.23 KiB", ... "TiB", two decimals
 * rounded as C's printf rounds (exact value, ties to even).
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let k = 0;
  while (k < 3 && n >= 1024 ** (k + 2)) k++;
  // hundredths = round_half_even(n * 100 / 1024^(k+1)), in exact integers.
  const d = 1024n ** BigInt(k + 1);
  const x = BigInt(Math.floor(n)) * 100n;
  let q = x / d;
  const r2 = (x % d) * 2n;
  if (r2 > d || (r2 === d && (q & 1n) === 1n)) q++;
  return `${q / 100n}.${(q % 100n).toString().padStart(2, "0")} ${units[k]}`;
}

function key(k: Uint8Array): string {
  return keyToBase64(k);
}

function maybeKey(k: Uint8Array | null): string {
  return k ? keyToBase64(k) : "(none)";
}

function handshakeSec(p: PeerStatus): number {
  return p.lastHandshakeTime > 0 ? Math.floor(p.lastHandshakeTime / 1000) : 0;
}

/** "Now", "1 minute, 5 seconds ago", or wg's warning when the handshake lies in the future. */
function ago(sec: number, nowMs: number): string {
  const now = Math.floor(nowMs / 1000);
  if (now === sec) return "Now";
  if (now < sec) return "(System clock wound backward; connection problems may ensue.)";
  return `${formatDuration(now - sec)} ago`;
}

/** wg's peer order for `wg show`: latest handshake first, peers without one last (stable otherwise). */
function sortPeers(peers: PeerStatus[]): PeerStatus[] {
  const t = (p: PeerStatus) => (p.lastHandshakeTime > 0 ? p.lastHandshakeTime : 0);
  return [...peers].sort((a, b) => {
    const ta = t(a), tb = t(b);
    if (ta === 0 && tb !== 0) return 1;
    if (tb === 0 && ta !== 0) return -1;
    return tb - ta;
  });
}

/**
 * `wg show NAME`, without colours.
 * @param name the interface name
 * @param status Engine.status()
 * @param nowMs the wall clock (ms since 1970) the handshake ages count to
 * @param opts showKeys prints the private and preshared keys
 * @returns the text, ending with a line break
 * @example formatShow("wg0", engine.status(), Date.now());
 */
export function formatShow(name: string, status: DeviceStatus, nowMs: number, opts: ShowOptions = {}): string {
  const hidden = (k: Uint8Array) => (opts.showKeys ? key(k) : "(hidden)");
  let s = `interface: ${name}\n`;
  if (status.publicKey) s += `  public key: ${key(status.publicKey)}\n`;
  if (status.privateKey) s += `  private key: ${hidden(status.privateKey)}\n`;
  if (status.listenPort) s += `  listening port: ${status.listenPort}\n`;
  if (status.fwmark) s += `  fwmark: 0x${status.fwmark.toString(16)}\n`;
  const peers = sortPeers(status.peers);
  for (const p of peers) {
    s += `\npeer: ${key(p.publicKey)}\n`;
    if (p.presharedKey) s += `  preshared key: ${hidden(p.presharedKey)}\n`;
    if (p.endpoint) s += `  endpoint: ${endpointText(p.endpoint)}\n`;
    s += `  allowed ips: ${p.allowedIps.length ? p.allowedIps.map(prefixText).join(", ") : "(none)"}\n`;
    const hs = handshakeSec(p);
    if (hs) s += `  latest handshake: ${ago(hs, nowMs)}\n`;
    if (p.rxBytes || p.txBytes) s += `  transfer: ${formatBytes(p.rxBytes)} received, ${formatBytes(p.txBytes)} sent\n`;
    if (p.persistentKeepalive) s += `  persistent keepalive: every ${formatDuration(p.persistentKeepalive)}\n`;
  }
  return s;
}

/**
 * `wg show NAME FIELD`: one value, or one line per peer, tab-separated as wg
 * prints them; `dump` gives the device line and then one line per peer.
 * Peers come in status order (wg sorts only the full `wg show`).
 * @param nowMs unused by any field (handshakes print as Unix seconds); kept for symmetry with formatShow
 * @throws RangeError for a field wg does not know
 */
export function formatShowField(name: string, status: DeviceStatus, field: ShowField | string, nowMs?: number): string {
  void name; void nowMs;
  const fwmark = status.fwmark ? `0x${status.fwmark.toString(16)}` : "off";
  const perPeer = (f: (p: PeerStatus) => string) => status.peers.map((p) => `${key(p.publicKey)}\t${f(p)}\n`).join("");
  switch (field) {
    case "public-key": return `${maybeKey(status.publicKey)}\n`;
    case "private-key": return `${maybeKey(status.privateKey)}\n`;
    case "listen-port": return `${status.listenPort}\n`;
    case "fwmark": return `${fwmark}\n`;
    case "peers": return status.peers.map((p) => `${key(p.publicKey)}\n`).join("");
    case "preshared-keys": return perPeer((p) => maybeKey(p.presharedKey));
    case "endpoints": return perPeer((p) => (p.endpoint ? endpointText(p.endpoint) : "(none)"));
    case "allowed-ips": return perPeer((p) => (p.allowedIps.length ? p.allowedIps.map(prefixText).join(" ") : "(none)"));
    case "latest-handshakes": return perPeer((p) => `${handshakeSec(p)}`);
    case "transfer": return perPeer((p) => `${p.rxBytes}\t${p.txBytes}`);
    case "persistent-keepalive": return perPeer((p) => (p.persistentKeepalive ? `${p.persistentKeepalive}` : "off"));
    case "dump": {
      let s = `${maybeKey(status.privateKey)}\t${maybeKey(status.publicKey)}\t${status.listenPort}\t${fwmark}\n`;
      for (const p of status.peers) {
        s += [
          key(p.publicKey),
          maybeKey(p.presharedKey),
          p.endpoint ? endpointText(p.endpoint) : "(none)",
          p.allowedIps.length ? p.allowedIps.map(prefixText).join(",") : "(none)",
          `${handshakeSec(p)}`,
          `${p.rxBytes}`,
          `${p.txBytes}`,
          p.persistentKeepalive ? `${p.persistentKeepalive}` : "off",
        ].join("\t") + "\n";
      }
      return s;
    }
    default:
      throw new RangeError(`Invalid parameter: \`${field}'`);
  }
}

/**
 * `wg showconf NAME`: the running configuration as a wg(8) configuration file.
 * @returns the text, ending with a line break
 */
export function formatShowConf(name: string, status: DeviceStatus): string {
  void name;
  let s = "[Interface]\n";
  if (status.listenPort) s += `ListenPort = ${status.listenPort}\n`;
  if (status.fwmark) s += `FwMark = 0x${status.fwmark.toString(16)}\n`;
  if (status.privateKey) s += `PrivateKey = ${key(status.privateKey)}\n`;
  s += "\n";
  status.peers.forEach((p, i) => {
    s += `[Peer]\nPublicKey = ${key(p.publicKey)}\n`;
    if (p.presharedKey) s += `PresharedKey = ${key(p.presharedKey)}\n`;
    if (p.allowedIps.length) s += `AllowedIPs = ${p.allowedIps.map(prefixText).join(", ")}\n`;
    if (p.endpoint) s += `Endpoint = ${endpointText(p.endpoint)}\n`;
    if (p.persistentKeepalive) s += `PersistentKeepalive = ${p.persistentKeepalive}\n`;
    if (i < status.peers.length - 1) s += "\n";
  });
  return s;
}
