// IP address and prefix text <-> bytes, for configuration and status.
// Errors are RangeErrors whose message names the offending text.

/** An address family and its bytes in network order (4 or 16). */
export interface Prefix {
  bytes: Uint8Array;
  cidr: number;
}

function parseV4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(s: string): Uint8Array | null {
  if (s.includes("%")) return null; // zones never appear in AllowedIPs
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === "") return [];
    const out: number[] = [];
    const parts = h.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseV4(p);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = [...head, ...new Array(fill).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff; });
  return out;
}

/** Parses an IPv4 or IPv6 address. Throws RangeError naming the text. */
export function parseAddress(s: string): Uint8Array {
  const t = s.trim();
  const b = t.includes(":") ? parseV6(t) : parseV4(t);
  if (!b) throw new RangeError(`invalid IP address '${s}'`);
  return b;
}

/**
 * "a.b.c.d/n" as parsePrefix reads it, in one pass without splitting or
 * regular expressions (a setconf of a million prefixes parses each one or
 * twice); null for anything else, which then takes the general path.
 */
function fastV4Prefix(t: string): Prefix | null {
  const bytes = new Uint8Array(4);
  let i = 0, part = 0;
  for (;;) {
    const start = i;
    let n = 0;
    while (i < t.length && i - start < 4) {
      const c = t.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      n = n * 10 + c;
      i++;
    }
    const len = i - start;
    // One to three digits, no leading zero, at most 255 (the rules of parseV4).
    if (len === 0 || len > 3 || (len > 1 && t.charCodeAt(start) === 48) || n > 255) return null;
    if (part < 4) bytes[part++] = n;
    const sep = t.charCodeAt(i++);
    if (part < 4) { if (sep !== 46) return null; continue; }
    if (sep !== 47) return null;
    break;
  }
  const start = i;
  let cidr = 0;
  while (i < t.length) {
    const c = t.charCodeAt(i) - 48;
    if (c < 0 || c > 9 || i - start >= 2) return null;
    cidr = cidr * 10 + c;
    i++;
  }
  if (i === start || (i - start > 1 && t.charCodeAt(start) === 48) || cidr > 32) return null;
  return { bytes, cidr };
}

/** Parses "addr/cidr" (a bare address means a host prefix). Throws RangeError naming the text. */
export function parsePrefix(s: string): Prefix {
  const fast = fastV4Prefix(s);
  if (fast !== null) return fast;
  const t = s.trim();
  const slash = t.indexOf("/");
  const addr = slash < 0 ? t : t.slice(0, slash);
  let bytes: Uint8Array;
  try { bytes = parseAddress(addr); } catch { throw new RangeError(`invalid IP prefix '${s}'`); }
  const max = bytes.length * 8;
  let cidr = max;
  if (slash >= 0) {
    const c = t.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(c) || Number(c) > max) throw new RangeError(`invalid IP prefix '${s}'`);
    cidr = Number(c);
  }
  return { bytes, cidr };
}

/** Zeroes the host bits of a prefix (10.0.0.7/24 -> 10.0.0.0/24). */
/** Whether prefix `p` holds address `a` (bytes of the same family; p's host bits need not be zero). */
export function prefixContains(p: Prefix, a: Uint8Array): boolean {
  if (p.bytes.length !== a.length) return false;
  for (let bit = 0; bit < p.cidr; bit += 8) {
    const mask = (0xff << (8 - Math.min(8, p.cidr - bit))) & 0xff;
    if ((p.bytes[bit >> 3] & mask) !== (a[bit >> 3] & mask)) return false;
  }
  return true;
}

export function maskPrefix(p: Prefix): Prefix {
  const bytes = p.bytes.slice();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, p.cidr - 8 * i));
    bytes[i] &= keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
  }
  return { bytes, cidr: p.cidr };
}

/** Formats an address as wg(8) does: dotted quad, or RFC 5952 IPv6. */
export function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i] << 8) | b[2 * i + 1]);
  // RFC 5952: compress the longest run of two or more zero groups, the first if tied.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function formatPrefix(p: Prefix): string {
  return `${formatAddress(p.bytes)}/${p.cidr}`;
}
