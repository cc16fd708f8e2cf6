// Where a gateway's connections may go. A gateway on a server's network
// would otherwise hand every page that holds a client key the server's own
// loopback, its private networks and its cloud's metadata service, so the
// default is least privilege: public destinations only. WG_ALLOW widens it
// by naming what else is wanted; a wildcard never names a local one.
import { parseAddress, parsePrefix, prefixContains, type Prefix } from "../../src/ip.ts";

/**
 * A destination check: may a flow go to `host` (an address literal or a
 * name) port `port`? `names(host, port)` says whether an entry named that
 * destination itself (not by a wildcard): a name it does not name is public
 * only if every address it resolves to is (see GatewayOptions.resolve).
 */
export interface AllowList {
  (host: string, port: number): boolean;
  names(host: string, port: number): boolean;
}

/** Why a WG_ALLOW entry is refused: one line, naming it. */
export class AllowListError extends Error {
  override name = "AllowListError";
}

// Ranges no gateway reaches unless WG_ALLOW names them: "this network",
// private, shared (CGNAT, where Alibaba's metadata service lives), loopback,
// link-local (169.254.169.254, the metadata service of AWS, GCP and Azure),
// IETF protocol assignments, the benchmark range (the gateway's own stand-in
// DNS answers), multicast, reserved and broadcast; for IPv6 unspecified,
// loopback, unique-local (AWS's fd00:ec2::254), link- and site-local and
// multicast. IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4) is judged by
// the IPv4 address it carries.
const LOCAL_V4 = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
  "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4"].map((p) => parsePrefix(p));
const LOCAL_V6 = ["::/128", "::1/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"].map((p) => parsePrefix(p));

// Names that mean this host or its site: a single label (resolved through
// the host's search domains), these suffixes, and the metadata services'
// names. A last label that is not alphabetic may be read as a number by
// the resolver ("127.1", "0x7f000001"), so it is not a public name either.
const LOCAL_SUFFIXES = ["localhost", "local", "internal", "home.arpa", "lan", "intranet", "corp", "private"];

/** The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), if any. */
function embeddedV4(a: Uint8Array): Uint8Array | null {
  const zero = (from: number, to: number) => a.subarray(from, to).every((x) => x === 0);
  if (zero(0, 10) && a[10] === 0xff && a[11] === 0xff) return a.subarray(12, 16);
  if (zero(0, 12) && !zero(12, 16) && !(zero(12, 15) && a[15] === 1)) return a.subarray(12, 16);
  if (a[0] === 0x00 && a[1] === 0x64 && a[2] === 0xff && a[3] === 0x9b && zero(4, 12)) return a.subarray(12, 16);
  if (a[0] === 0x20 && a[1] === 0x02) return a.subarray(2, 6);
  return null;
}

/** The address `host` is, or null when it is a name. */
function literal(host: string): Uint8Array | null {
  if (!/^[0-9.]+$/.test(host) && !host.includes(":")) return null;
  try {
    return parseAddress(host);
  } catch {
    return null;
  }
}

/** Is this address or name one a gateway reaches only when named (loopback, private, link-local, metadata...)? */
export function isLocalDestination(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  const a = literal(h);
  if (a !== null) {
    if (a.length === 4) return LOCAL_V4.some((p) => prefixContains(p, a));
    const v4 = embeddedV4(a);
    return v4 !== null ? LOCAL_V4.some((p) => prefixContains(p, v4)) : LOCAL_V6.some((p) => prefixContains(p, a));
  }
  const name = h.replace(/\.$/, "");
  const labels = name.split(".");
  const last = labels[labels.length - 1];
  if (labels.length < 2 || !/^[a-z][a-z0-9-]*$/.test(last)) return true;
  if (name === "metadata.google.internal" || name === "instance-data.ec2.internal") return true;
  return LOCAL_SUFFIXES.some((s) => name === s || name.endsWith("." + s));
}

interface Rule {
  text: string;
  host: string | null; // null: any host ("*")
  prefix: Prefix | null; // an address or CIDR entry
  port: number | null; // null: any port
}

function parseRule(text: string): Rule {
  const bad = (why: string) => new AllowListError(`WG_ALLOW: invalid entry '${text}': ${why}`);
  let host = text, port = "*";
  // host:port, [v6]:port, [v6], v6 (more than one colon, no brackets) or host.
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracket) {
    host = bracket[1];
    port = bracket[2] ?? "*";
  } else if (text.indexOf(":") === text.lastIndexOf(":") && text.includes(":")) {
    host = text.slice(0, text.indexOf(":"));
    port = text.slice(text.indexOf(":") + 1);
  }
  if (host === "") throw bad("no host");
  if (port !== "*" && (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) throw bad(`port '${port}' is not 1-65535 or *`);
  const p = port === "*" ? null : Number(port);
  if (host === "*") return { text, host: null, prefix: null, port: p };
  if (host.includes("/") || host.includes(":") || /^[0-9.]+$/.test(host)) {
    try {
      return { text, host: null, prefix: parsePrefix(host), port: p };
    } catch {
      throw bad(`'${host}' is not an IP address or prefix`);
    }
  }
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i.test(host)) throw bad(`'${host}' is not a host name`);
  return { text, host: host.toLowerCase().replace(/\.$/, ""), prefix: null, port: p };
}

/**
 * `WG_ALLOW` as an AllowList: comma-separated entries `host:port`, `host`
 * (any port), an address or CIDR prefix (`10.0.0.0/8:5432`,
 * `[fd00::/8]:*`), either part `*`. Whatever the entries, a loopback,
 * private, link-local or metadata destination is reached only when an
 * entry names it (its address, a prefix holding it, or its name); `*` means
 * any public destination. Empty or unset: public destinations only.
 * Throws AllowListError naming a malformed entry.
 * @example allowList("127.0.0.1:8080, *:443, [::1]:*, 10.1.0.0/16:5432")
 */
export function allowList(spec: string | undefined): AllowList {
  const rules = (spec ?? "").split(",").map((r) => r.trim()).filter(Boolean).map(parseRule);
  const wildcardOnly = rules.length === 0;
  const names = (host: string, port: number): boolean => {
    const h = host.replace(/^\[|\]$/g, "").toLowerCase().replace(/\.$/, "");
    const a = literal(h);
    return rules.some((r) => (r.port === null || r.port === port) &&
      (r.prefix !== null ? a !== null && prefixContains(r.prefix, a) : r.host !== null && r.host === h));
  };
  const check = ((host: string, port: number): boolean => {
    if (names(host, port)) return true;
    if (isLocalDestination(host)) return false;
    return wildcardOnly || rules.some((r) => r.host === null && r.prefix === null && (r.port === null || r.port === port));
  }) as AllowList;
  check.names = names;
  return check;
}
