// DNS messages: the netstack resolver's response parser (src/netstack/dns.ts)
// and the gateway's stand-in DNS server (adapters/gateway/fakedns.ts).
// The first byte picks which side the rest meets:
//   even: a query to FakeDns. It is answered or dropped (null), never
//         thrown on; an answer parses back with parseResponse as the answer
//         to that query, an A query for a name gets one address of the
//         stand-in range that maps back to the name, asked again the same.
//   odd:  a response to parseResponse, for the question it carries (its ID,
//         its first name when uncompressed, its type when A or AAAA). It
//         is a DnsAnswer or null, never thrown on; addresses have the
//         type's size, the TTL is within the cache's ceiling, and the same
//         bytes under another ID are refused.
// Either way the question's name, when it is a name (normalizeName), is
// asked of FakeDns with encodeQuery's query, whose answer must parse back.
import { TYPE_A, TYPE_AAAA, encodeQuery, normalizeName, parseResponse } from "../../../src/netstack/dns.ts";
import { FakeDns } from "../../../adapters/gateway/fakedns.ts";
import { formatAddress } from "../../../src/ip.ts";

const HEADER = 12;
const MAX_TTL = 3600;

/** The first question's uncompressed name (lower case, as both parsers read it), type and class; null if it is not there. */
function question(m: Uint8Array): { name: string; type: number; cls: number } | null {
  const labels: string[] = [];
  let o = HEADER;
  for (;;) {
    if (o >= m.length) return null;
    const n = m[o++];
    if (n === 0) break;
    if (n > 63 || o + n > m.length) return null;
    labels.push(String.fromCharCode(...m.subarray(o, o + n)).toLowerCase());
    o += n;
  }
  if (o + 4 > m.length) return null;
  return { name: labels.join("."), type: (m[o] << 8) | m[o + 1], cls: (m[o + 2] << 8) | m[o + 3] };
}

function checkAnswerTo(dns: FakeDns, q: Uint8Array, r: Uint8Array | null): void {
  if (r === null) return;
  const asked = question(q);
  if (asked === null) throw new Error("FakeDns answered a query without a question");
  if (r.length > 512 + 16) throw new Error(`an answer of ${r.length} bytes`);
  const id = (q[0] << 8) | q[1];
  const a = parseResponse(r, id, asked.name, asked.type);
  if (a === null) {
    // parseResponse takes only the answers a resolver asks for: a name, class IN.
    if (asked.name.length === 0 || asked.cls !== 1) return;
    throw new Error(`FakeDns's answer to '${asked.name}' type ${asked.type} does not parse back`);
  }
  const cls = asked.cls, wantsA = asked.type === TYPE_A && cls === 1;
  if (!wantsA) {
    if (a.addresses.length !== 0 || a.rcode !== 0) throw new Error(`type ${asked.type} class ${cls}: ${a.addresses.length} addresses, rcode ${a.rcode}`);
    return;
  }
  if (a.rcode === 2) {
    if (/^[a-z0-9_.-]+$/.test(asked.name)) throw new Error(`SERVFAIL for the plain name '${asked.name}'`);
    return;
  }
  if (a.rcode !== 0 || a.addresses.length !== 1 || a.ttl <= 0) throw new Error(`A for '${asked.name}': rcode ${a.rcode}, ${a.addresses.length} addresses, TTL ${a.ttl}`);
  const address = formatAddress(a.addresses[0]);
  if (!FakeDns.owns(address)) throw new Error(`answered ${address}, outside the stand-in range`);
  if (dns.name(address) !== asked.name) throw new Error(`${address} maps back to '${dns.name(address)}', not '${asked.name}'`);
  const again = dns.answer(q);
  const b = again && parseResponse(again, id, asked.name, asked.type);
  if (!b || b.addresses.length !== 1 || formatAddress(b.addresses[0]) !== address) throw new Error(`'${asked.name}' asked again got another answer`);
}

function checkResponse(m: Uint8Array): void {
  const q = question(m);
  const name = q?.name ?? "example.com";
  const type = q && (q.type === TYPE_A || q.type === TYPE_AAAA) ? q.type : TYPE_A;
  const id = m.length >= 2 ? (m[0] << 8) | m[1] : 0;
  const a = parseResponse(m, id, name, type);
  if (a !== null) {
    if (!Number.isInteger(a.rcode) || a.rcode < 0 || a.rcode > 15) throw new Error(`rcode ${a.rcode}`);
    if (!Number.isInteger(a.ttl) || a.ttl < 0 || a.ttl > MAX_TTL) throw new Error(`TTL ${a.ttl}`);
    const size = type === TYPE_A ? 4 : 16;
    if (a.addresses.some((x) => x.length !== size)) throw new Error(`an address not of ${size} bytes`);
    if (a.addresses.length > ((m[6] << 8) | m[7])) throw new Error("more addresses than answer records");
  }
  if (parseResponse(m, id ^ 1, name, type) !== null) throw new Error("a response taken under another ID");
}

export function fuzz(data: Uint8Array): void {
  if (data.length === 0) return;
  const m = data.subarray(1);
  const dns = new FakeDns(8);
  if ((data[0] & 1) === 0) checkAnswerTo(dns, m, dns.answer(m));
  else checkResponse(m);
  // The question's name as a resolver would ask it.
  const q = question(m);
  if (q === null) return;
  let name: string;
  try {
    name = normalizeName(q.name);
  } catch (e) {
    if (!(e instanceof RangeError) || e.message.includes("\n")) throw e;
    return;
  }
  const query = encodeQuery((m[0] << 8) | m[1], name, TYPE_A);
  const r = dns.answer(query);
  if (r === null) throw new Error(`FakeDns dropped encodeQuery's query for '${name}'`);
  checkAnswerTo(dns, query, r);
}
