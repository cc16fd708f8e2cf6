// The cross-platform userspace API: the text protocol wg(8) speaks to a
// userspace implementation over /var/run/wireguard/NAME.sock
// (https://www.wireguard.com/xplatform/), answered as wireguard-go does.
//
// A connection carries requests one after another:
//   get=1\n\n            -> device and peer lines, then errno=0\n\n
//   set=1\nkey=value\n...\n\n -> errno=0\n\n, or errno=-N\n\n
//   stats=1\n\n          -> drop and handshake counters, then errno=0\n\n
//                          (this project's own; see formatUapiStats)
// Key names are lowercase; keys themselves (private_key, public_key,
// preshared_key) are 64 hex digits.
// Unlike wireguard-go, which applies a set request line by line and stops at
// the first bad line, a request here is validated whole before any of it is
// applied, so a request with an error changes nothing.
//
// Large requests never hold the packet loop: a set is applied, and a get
// answered, a slice at a time (UapiSession.busy / work), and the adapter lets
// packets through between slices. A slice is a few thousand prefixes or
// lines, or a few dozen new peers (each costs a DH): a few milliseconds.
import { keyFromHex, keyHex, type DeviceConfig, type DeviceStatus, type PeerConfig, type PeerStatus } from "./config.ts";
import { formatAddress, parseAddress, parsePrefix, type Prefix } from "./ip.ts";
import type { Engine, Output } from "./engine.ts";
import type { Endpoint } from "./peer.ts";

/** Linux errno values the protocol answers with (negated on the wire). */
export const ENOMEM = 12;
export const EINVAL = 22;
export const EPROTO = 71;
export const EADDRINUSE = 98;

/**
 * The longest line a session takes before it gives up on the connection: the
 * longest the protocol has is an endpoint (a scoped IPv6 address and a port),
 * well under this.
 */
const MAX_LINE = 4096;
/**
 * What one set request may buffer before it is applied, by default: about two
 * million allowed_ip lines (wg setconf sends one per prefix, about ten more per
 * peer). A request over it is answered ENOMEM and the connection closed.
 */
export const MAX_REQUEST_BYTES = 64 << 20;

/** A set request that cannot be applied; `errno` is the positive errno. */
export class UapiError extends Error {
  readonly errno: number;
  constructor(errno: number, message: string) {
    super(message);
    this.name = "UapiError";
    this.errno = errno;
  }
}

/** Makes the adapter's Endpoint from an address (no brackets; IPv6 may carry a %zone) and port. */
export type ResolveEndpoint = (address: string, port: number) => Endpoint;

const plainEndpoint: ResolveEndpoint = (address, port) => ({ address, port });

/** An address as Go's netip prints it: like RFC 5952, with IPv4-mapped IPv6 as ::ffff:a.b.c.d. */
function goAddress(b: Uint8Array): string {
  if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  return formatAddress(b);
}

function goPrefix(text: string): string {
  try {
    const p = parsePrefix(text);
    return `${goAddress(p.bytes)}/${p.cidr}`;
  } catch {
    return text;
  }
}

/** `ip:port`, or `[ipv6]:port`, from an engine Endpoint. */
export function formatEndpoint(ep: Endpoint): string {
  let a = ep.address;
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  const pct = a.indexOf("%");
  try {
    a = goAddress(parseAddress(pct < 0 ? a : a.slice(0, pct))) + (pct < 0 ? "" : a.slice(pct));
  } catch { /* not an IP literal: print as given */ }
  return a.includes(":") ? `[${a}]:${ep.port}` : `${a}:${ep.port}`;
}

/** Wall-clock ms (fractions allowed) as whole seconds and nanoseconds; 0, 0 for never. */
function secNsec(ms: number): [number, number] {
  if (!(ms > 0)) return [0, 0];
  let sec = Math.floor(ms / 1000);
  // The division may round up across a second boundary: correct from the remainder.
  let rest = ms - sec * 1000;
  if (rest < 0) { sec--; rest += 1000; }
  return [sec, Math.min(999_999_999, Math.floor(rest * 1e6))];
}

/**
 * The body of a get=1 answer (without the errno line), as wireguard-go
 * writes it: device lines, then per peer public_key, preshared_key (zeros
 * when none), protocol_version, endpoint, handshake time, counters,
 * keepalive and one allowed_ip line per prefix.
 */
export function formatUapiGet(status: DeviceStatus): string {
  let s = deviceLines(status);
  for (const p of status.peers) {
    s += peerLines(p);
    for (const a of p.allowedIps) s += `allowed_ip=${goPrefix(a)}\n`;
  }
  return s;
}

function deviceLines(d: Omit<DeviceStatus, "peers">): string {
  let s = "";
  if (d.privateKey && d.privateKey.some((b) => b !== 0)) s += `private_key=${keyHex(d.privateKey)}\n`;
  if (d.listenPort !== 0) s += `listen_port=${d.listenPort}\n`;
  if (d.fwmark !== 0) s += `fwmark=${d.fwmark}\n`;
  return s;
}

/** A peer's lines of a get=1 answer up to (not including) its allowed_ip lines. */
function peerLines(p: PeerStatus): string {
  const [sec, nsec] = secNsec(p.lastHandshakeTime);
  return `public_key=${keyHex(p.publicKey)}\n` +
    `preshared_key=${p.presharedKey ? keyHex(p.presharedKey) : "0".repeat(64)}\n` +
    "protocol_version=1\n" +
    (p.endpoint ? `endpoint=${formatEndpoint(p.endpoint)}\n` : "") +
    `last_handshake_time_sec=${sec}\nlast_handshake_time_nsec=${nsec}\n` +
    `tx_bytes=${p.txBytes}\nrx_bytes=${p.rxBytes}\n` +
    `persistent_keepalive_interval=${p.persistentKeepalive}\n`;
}

/** Lines of a get=1 answer per slice. */
export const GET_SLICE_LINES = 1024;

/**
 * A get=1 answer a slice at a time, read from the engine as it goes (as
 * formatUapiGet(engine.status()) would print it, without holding every
 * peer and prefix at once). A peer removed meanwhile is left out; one whose
 * prefixes change meanwhile shows the change, or, if the prefix being listed
 * next was removed, ends its list there.
 */
export class UapiGetWriter {
  private id = -1;
  /** Listing the prefixes of peer `id`, from `cursor` (0 with `first`: from the start). */
  private listing = false;
  private first = false;
  private cursor = 0;

  constructor(private readonly engine: Engine) {}

  /** Whether the whole answer has been written. */
  done = false;

  /** About `lines` more lines of the answer (setting `done` with the last). */
  next(lines = GET_SLICE_LINES): string {
    const e = this.engine;
    let s = "";
    if (this.id < 0) { s = deviceLines(e.deviceStatus()); this.id = 0; }
    let left = lines;
    while (left > 0 && this.id < e.peerIdBound) {
      if (!this.listing) {
        const p = e.peerStatus(this.id, { allowedIps: false });
        if (p === null) { this.id++; continue; }
        s += peerLines(p);
        left -= 10;
        this.listing = true;
        this.first = true;
        continue;
      }
      let n = 0;
      this.cursor = e.pageAllowedIps(this.id, this.first ? 0 : this.cursor, left, (bytes, cidr) => {
        s += `allowed_ip=${goAddress(bytes)}/${cidr}\n`;
        n++;
      });
      this.first = false;
      left -= Math.max(1, n);
      if (this.cursor === 0) { this.listing = false; this.id++; }
    }
    this.done = this.id >= e.peerIdBound;
    return s;
  }
}

/** Prefixes to a string in UapiSetParser's packed form. */
const PACK_PREFIXES = 1024;

/** Work units of a set slice: a prefix is one, a peer section PEER_UNITS (a new peer costs a DH). */
export const SET_SLICE_UNITS = 1024;
const PEER_UNITS = 64;

/**
 * Splits a change into changes small enough to apply between packet
 * batches, which applied in order do what the whole does: the device's own
 * fields (and replace_peers) with the first peers, then the other peers, a
 * long AllowedIPs list continued in parts of its own. A small change stays
 * one slice. Made as they are taken, so a packed request (UapiSetParser's
 * packedIps, for the peers it names) is unpacked a slice at a time.
 */
export function* sliceSet(
  config: DeviceConfig, units = SET_SLICE_UNITS, packed?: ReadonlyMap<PeerConfig, readonly string[]>,
  glued?: ReadonlySet<PeerConfig>,
): Generator<DeviceConfig, void, undefined> {
  const { peers = [], ...device } = config;
  // `glued` entries stay in one slice with the entry after them.
  let cur: PeerConfig[] = [], used = 0, first = true, hold = false;
  const take = (): DeviceConfig => {
    const slice = first ? (cur.length > 0 ? { ...device, peers: cur } : device) : { peers: cur };
    first = false;
    cur = [];
    used = 0;
    return slice;
  };
  for (const p of peers) {
    if (glued?.has(p)) {
      if (used + PEER_UNITS >= units && cur.length > 0) yield take();
      cur.push(p);
      used += PEER_UNITS;
      hold = true;
      continue;
    }
    let started = false;
    for (const chunk of packed?.get(p) ?? [null]) {
      const ips = chunk === null ? p.allowedIps ?? [] : chunk.split("\n");
      let i = 0;
      do {
        const fixed = started ? 0 : PEER_UNITS;
        if (!hold && used + fixed >= units && cur.length > 0) yield take();
        hold = false;
        const n = Math.min(ips.length - i, Math.max(1, units - used - fixed));
        const bit = ips.slice(i, i + n);
        // Past the section's first part, only prefixes are added: nothing else of it again.
        cur.push(started ? { publicKey: p.publicKey, ...(p.updateOnly ? { updateOnly: true } : {}), allowedIps: bit } : { ...p, allowedIps: bit });
        used += fixed + n;
        i += n;
        started = true;
      } while (i < ips.length);
    }
  }
  if (cur.length > 0 || first) yield take();
}

/** An unsigned decimal as Go's strconv.ParseUint(value, 10, bits) accepts it. */
function parseUint(value: string, max: number, what: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > max) throw new UapiError(EINVAL, `invalid ${what} '${value}'`);
  return Number(value);
}

function parseTrue(value: string, what: string): true {
  if (value !== "true") throw new UapiError(EINVAL, `invalid ${what} '${value}': only true is accepted`);
  return true;
}

function parseKey(value: string, what: string): Uint8Array {
  try {
    return keyFromHex(value, what);
  } catch (e) {
    throw new UapiError(EINVAL, (e as Error).message);
  }
}

/** An endpoint as wireguard-go's ParseEndpoint (netip.ParseAddrPort) accepts it: IP:port, [IPv6]:port. */
function parseUapiEndpoint(value: string, resolve: ResolveEndpoint): Endpoint {
  const bad = () => new UapiError(EINVAL, `invalid endpoint '${value}'`);
  let host: string, port: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0 || value[close + 1] !== ":") throw bad();
    host = value.slice(1, close);
    port = value.slice(close + 2);
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0) throw bad();
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
    if (host.includes(":")) throw bad();
  }
  const pct = host.indexOf("%");
  const addr = pct < 0 ? host : host.slice(0, pct);
  let bytes: Uint8Array;
  try { bytes = parseAddress(addr); } catch { throw bad(); }
  const v6 = value.startsWith("[");
  // Brackets only around IPv6; a zone only on IPv6, and not empty.
  if ((bytes.length === 16) !== v6 || (pct >= 0 && (bytes.length !== 16 || pct === host.length - 1))) throw bad();
  if (!/^[0-9]+$/.test(port) || Number(port) > 65535) throw bad();
  return resolve(goAddress(bytes) + (pct < 0 ? "" : host.slice(pct)), Number(port));
}

/** An allowed_ip value as netip.ParsePrefix accepts it: the /bits are required. */
function parseAllowedIp(value: string): Prefix {
  if (!value.includes("/") || value !== value.trim()) throw new UapiError(EINVAL, `invalid allowed_ip '${value}'`);
  try {
    return parsePrefix(value);
  } catch {
    throw new UapiError(EINVAL, `invalid allowed_ip '${value}'`);
  }
}

/** What a set request asks for: the engine configuration, and whether listen_port was among its keys. */
export interface UapiSet {
  config: DeviceConfig;
  listenPort?: number;
}

/**
 * Parses and validates the lines of a set=1 request (without `set=1` and the
 * empty line that ends it), with wireguard-go's meaning of each key and of
 * their order: device keys come before the first public_key, which starts a
 * peer section; after `remove=true` a section's keys are checked but do
 * nothing; a replace_allowed_ips after allowed_ip lines drops those first.
 * A peer section becomes one or more PeerConfigs, in order.
 * @throws UapiError with errno EINVAL for bad keys or values, EPROTO for a line without `=`
 */
export function parseUapiSet(lines: string[], resolve: ResolveEndpoint = plainEndpoint): UapiSet {
  const p = new UapiSetParser(resolve);
  for (const line of lines) p.line(line);
  return p.result();
}

/**
 * parseUapiSet a line at a time, so that a session holds the request as
 * parsed values instead of its text (a set of 130k allowed_ip lines would
 * otherwise keep every line alive until its end).
 */
export class UapiSetParser {
  private readonly config: DeviceConfig = {};
  private readonly peers: PeerConfig[] = [];
  private listenPort: number | undefined;
  /** The peer section: its PeerConfigs, and whether later keys are ignored (after remove). */
  private section: { parts: PeerConfig[]; dummy: boolean } | null = null;
  /**
   * With `packed`: each part's prefixes as text, PACK_PREFIXES to a string
   * ("\n" between them), instead of in its allowedIps. A request of a million
   * prefixes then holds a thousand strings while it is read and applied, not
   * a million (each a slice pinning the chunk of text it came in), which is
   * what the garbage collector's pauses grow with. sliceSet unpacks them a
   * slice at a time.
   */
  readonly packedIps = new Map<PeerConfig, string[]>();
  private ipBuf: string[] = [];
  private ipBufOf: PeerConfig | null = null;

  constructor(private readonly resolve: ResolveEndpoint = plainEndpoint, private readonly packed = false) {}

  private flushIps(): void {
    const of = this.ipBufOf;
    if (of !== null && this.ipBuf.length > 0) {
      let chunks = this.packedIps.get(of);
      if (!chunks) this.packedIps.set(of, chunks = []);
      chunks.push(this.ipBuf.join("\n"));
    }
    this.ipBuf = [];
    this.ipBufOf = null;
  }

  private hasIps(p: PeerConfig): boolean {
    return (p.allowedIps?.length ?? 0) > 0 || this.packedIps.has(p) || (this.ipBufOf === p && this.ipBuf.length > 0);
  }

  /** Takes one line of the request. @throws UapiError as parseUapiSet does */
  line(line: string): void {
    const { config, peers } = this;
    const eq = line.indexOf("=");
    if (eq < 0) throw new UapiError(EPROTO, `no '=' in line '${line}'`);
    const key = line.slice(0, eq), value = line.slice(eq + 1);
    if (key === "public_key") {
      const part: PeerConfig = { publicKey: parseKey(value, "public_key") };
      this.section = { parts: [part], dummy: false };
      peers.push(part);
      return;
    }
    if (this.section === null) {
      switch (key) {
        case "private_key": config.privateKey = parseKey(value, "private_key"); break;
        case "listen_port": config.listenPort = this.listenPort = parseUint(value, 0xffff, "listen_port"); break;
        case "fwmark": config.fwmark = parseUint(value, 0xffffffff, "fwmark"); break;
        case "replace_peers": config.replacePeers = parseTrue(value, "replace_peers"); break;
        default: throw new UapiError(EINVAL, `invalid device key '${key}'`);
      }
      return;
    }
    const s = this.section;
    let cur = s.parts[s.parts.length - 1];
    switch (key) {
      case "update_only":
        parseTrue(value, "update_only");
        // wireguard-go drops the peer again if this section created it: in
        // effect the whole section only updates.
        for (const p of s.parts) p.updateOnly = true;
        break;
      case "remove":
        parseTrue(value, "remove");
        if (!s.dummy) cur.remove = true;
        s.dummy = true;
        break;
      case "preshared_key": {
        const k = parseKey(value, "preshared_key");
        if (!s.dummy) cur.presharedKey = k;
        break;
      }
      case "endpoint": {
        const ep = parseUapiEndpoint(value, this.resolve);
        if (!s.dummy) cur.endpoint = ep;
        break;
      }
      case "persistent_keepalive_interval": {
        const v = parseUint(value, 0xffff, "persistent_keepalive_interval");
        if (!s.dummy) cur.persistentKeepalive = v;
        break;
      }
      case "replace_allowed_ips":
        parseTrue(value, "replace_allowed_ips");
        if (s.dummy) break;
        if (this.hasIps(cur)) {
          // The prefixes added so far go again: continue in a new part, applied after this one.
          cur = { publicKey: cur.publicKey, ...(cur.updateOnly ? { updateOnly: true } : {}) };
          s.parts.push(cur);
          peers.push(cur);
        }
        cur.replaceAllowedIps = true;
        break;
      case "allowed_ip":
        parseAllowedIp(value);
        // Kept as its (checked) text, which costs a third of a parsed prefix
        // while a long request is read; Engine.set parses it as it applies it.
        if (s.dummy) break;
        if (!this.packed) { (cur.allowedIps ??= []).push(value); break; }
        if (this.ipBufOf !== cur) { this.flushIps(); this.ipBufOf = cur; }
        this.ipBuf.push(value);
        if (this.ipBuf.length >= PACK_PREFIXES) this.flushIps();
        break;
      case "protocol_version":
        if (value !== "1") throw new UapiError(EINVAL, `invalid protocol_version '${value}'`);
        break;
      default:
        throw new UapiError(EINVAL, `invalid peer key '${key}'`);
    }
  }

  /** The request, once all its lines are in (with `packed`, the prefixes are in packedIps). */
  result(): UapiSet {
    this.flushIps();
    const { config, peers, listenPort } = this;
    if (peers.length > 0) config.peers = peers;
    return listenPort === undefined ? { config } : { config, listenPort };
  }
}

export interface UapiSessionOptions {
  /**
   * Called after a set request that carried listen_port was applied, with
   * the port (also when unchanged: wireguard-go rebinds then too). If it
   * throws, the answer is errno=-98 (EADDRINUSE), as wireguard-go's when
   * binding fails; the configuration stays applied.
   */
  onListenPort?: (port: number) => void;
  /** The most bytes a set request may buffer (default MAX_REQUEST_BYTES). */
  maxRequestBytes?: number;
  /**
   * Called with what Engine.set returned (datagrams to send, e.g. a first
   * keepalive when persistent keepalive was switched on, and `wake`), right
   * after each applied set request. Without it, those datagrams are lost.
   */
  onOutput?: (out: Output) => void;
}

const enum Mode { Idle, Get, Set, Stats }

/**
 * The body of a stats=1 answer: the engine's drop and handshake counters
 * and whether it is under load, `key=value` lines as get=1's. An extension
 * of this project (wg(8) and wireguard-go know no such request), so that an
 * operator or a test can see why packets went missing.
 */
export function formatUapiStats(engine: Engine, now: number): string {
  let s = "";
  for (const [k, v] of Object.entries(engine.drops)) s += `drop_${snake(k)}=${v}\n`;
  for (const [k, v] of Object.entries(engine.handshakes)) s += `handshake_${snake(k)}=${v}\n`;
  return s + `under_load=${engine.underLoad(now) ? "true" : "false"}\n`;
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Peers removed per slice when a set replaces them all (each frees its prefixes' trie nodes). */
const REMOVE_SLICE = 64;
/** Peers looked at between yields while a large set is checked and planned. */
const PLAN_STEP = 512;

/**
 * A set request's slices, to be applied in order, with `null` between them
 * where only planning was done: the request is first checked whole
 * (Engine.checking, so a refused request changes nothing) and, with
 * replace_peers, the peers to remove are found, each a step at a time, so
 * no step of a request of 10,000 peers holds the event loop up for long.
 *
 * replace_peers is carried out as removals, a slice of them at a time: the
 * same change (every peer goes, then the request's peers come) without one
 * slice that frees every peer and prefix at once. Peers the request gives
 * again are removed where they come, in the slice that adds them back, so
 * their traffic never meets a moment with no such peer.
 */
function* planned(engine: Engine, config: DeviceConfig, packed: ReadonlyMap<PeerConfig, readonly string[]>): Generator<DeviceConfig | null, void, undefined> {
  // parseAllowedIp checked each prefix already.
  const checks = engine.checking(config, { allowedIps: false }, PLAN_STEP);
  for (let r = checks.next(); !r.done; r = checks.next()) yield null;
  // A few peers go in the first slice itself, as set() removes them.
  if (!config.replacePeers || engine.peerIdBound <= REMOVE_SLICE) { yield* sliceSet(config, SET_SLICE_UNITS, packed); return; }
  const wanted = new Set<string>();
  let n = 0;
  for (const p of config.peers ?? []) {
    if (++n % PLAN_STEP === 0) yield null;
    if (!p.remove) wanted.add(keyHex(p.publicKey));
  }
  const gone: Uint8Array[] = [], again = new Set<string>();
  for (let id = 0; id < engine.peerIdBound; id++) {
    if (id % PLAN_STEP === PLAN_STEP - 1) yield null;
    const p = engine.peerStatus(id, { allowedIps: false });
    if (!p) continue;
    const hex = keyHex(p.publicKey);
    if (wanted.has(hex)) again.add(hex);
    else gone.push(p.publicKey);
  }
  for (let i = 0; i < gone.length; i += REMOVE_SLICE) {
    yield { peers: gone.slice(i, i + REMOVE_SLICE).map((publicKey) => ({ publicKey, remove: true })) };
  }
  const peers: PeerConfig[] = [], glued = new Set<PeerConfig>();
  n = 0;
  for (const p of config.peers ?? []) {
    if (++n % PLAN_STEP === 0) yield null;
    const hex = keyHex(p.publicKey);
    if (again.delete(hex)) {
      const remove: PeerConfig = { publicKey: p.publicKey, remove: true };
      glued.add(remove);
      peers.push(remove);
    }
    peers.push(p);
  }
  yield* sliceSet({ ...config, replacePeers: false, peers }, SET_SLICE_UNITS, packed, glued);
}

/** What a session is in the middle of: applying a set's slices, or writing a get's. */
type Job =
  | { kind: "set"; slices: Iterator<DeviceConfig | null, void>; next: IteratorResult<DeviceConfig | null, void> | null; listenPort: number | undefined }
  | { kind: "get"; writer: UapiGetWriter };

/**
 * One UAPI connection. Feed it the text read from the socket, in chunks of
 * any size; write back what `feed` returns. Several requests may follow each
 * other on one connection, and a request may be split across chunks.
 * A large request is carried out a slice at a time: while `busy`, call
 * `work` (after letting other events run) and write what it returns;
 * text fed meanwhile waits its turn.
 * After a line that is no request (anything but get=1, set=1 or this
 * project's stats=1 where a request must begin), a line longer than
 * MAX_LINE or a set request of more than maxRequestBytes, the session is
 * `closed`
 * (as wireguard-go hangs up): feed then returns "" and the adapter should
 * close the socket.
 * @example
 * const s = new UapiSession({ onListenPort: (p) => rebind(p) });
 * socket.on("data", async (d) => {
 *   socket.write(s.feed(decoder.decode(d, { stream: true }), engine, now()));
 *   while (s.busy) { await new Promise((r) => setTimeout(r, 0)); socket.write(s.work(engine, now())); }
 * });
 */
export class UapiSession {
  onListenPort?: (port: number) => void;
  onOutput?: (out: Output) => void;
  /** True once the connection should be closed. */
  closed = false;
  /** Text not yet taken: a partial last line, or whole requests waiting behind a busy one. */
  private pending = "";
  private mode = Mode.Idle;
  private parser: UapiSetParser | null = null;
  /** The errno of the set request's first bad line, 0 while it has none. */
  private setError = 0;
  private bytes = 0;
  private readonly maxRequestBytes: number;
  private job: Job | null = null;

  constructor(opts: UapiSessionOptions = {}) {
    this.onListenPort = opts.onListenPort;
    this.onOutput = opts.onOutput;
    this.maxRequestBytes = opts.maxRequestBytes ?? MAX_REQUEST_BYTES;
  }

  /** Whether a request is under way: call work() until it is false. */
  get busy(): boolean {
    return this.job !== null && !this.closed;
  }

  /**
   * Takes the next chunk of the connection's text and does what it can of
   * it now: everything, unless a request is large (then `busy`).
   * @param chunk text as read (UTF-8 decoded); need not end on a line break
   * @param engine the engine the requests read and change
   * @param now the engine's monotonic clock (ms), for Engine.set
   * @param resolve makes an Endpoint from a set request's endpoint= address and port
   * @returns the text to write back (possibly "", possibly several answers)
   */
  feed(chunk: string, engine: Engine, now: number, resolve: ResolveEndpoint = plainEndpoint): string {
    if (this.closed) return "";
    this.pending += chunk;
    // Text waiting behind a busy request is bounded like a request.
    if (this.job !== null && this.pending.length > this.maxRequestBytes) return this.close();
    return this.job !== null ? "" : this.run(engine, now, resolve);
  }

  /** Does the next slice of the request under way (and what follows it, if that is quick); returns the text to write back. */
  work(engine: Engine, now: number, resolve: ResolveEndpoint = plainEndpoint): string {
    if (this.closed) return "";
    return this.run(engine, now, resolve);
  }

  private close(): string {
    this.closed = true;
    this.pending = "";
    this.parser = null;
    this.job = null;
    return "";
  }

  private run(engine: Engine, now: number, resolve: ResolveEndpoint): string {
    let out = "";
    if (this.job !== null) {
      out += this.step(this.job, engine, now);
      if (this.job !== null) return out;
    }
    const text = this.pending;
    let at = 0;
    for (;;) {
      const nl = text.indexOf("\n", at);
      if (nl < 0) break;
      const line = text.slice(at, nl);
      at = nl + 1;
      out += this.line(line, engine, now, resolve);
      if (this.closed) { this.close(); return out; }
      // A request just began its work: its first slice now, the rest waits.
      if (this.job !== null) {
        out += this.step(this.job, engine, now);
        if (this.job !== null) { this.pending = text.slice(at); return out; }
      }
    }
    this.pending = text.slice(at);
    if (this.pending.length > MAX_LINE) this.close();
    return out;
  }

  /** One slice of a job; clears `job` and adds the answer's end when done. */
  private step(job: Job, engine: Engine, now: number): string {
    if (job.kind === "get") {
      const s = job.writer.next();
      if (!job.writer.done) return s;
      this.job = null;
      return s + "errno=0\n\n";
    }
    let out: Output | null = null;
    try {
      // (The first step takes the first slice, or the first planning step, itself.)
      const slice = (job.next ??= job.slices.next()).value as DeviceConfig | null | undefined;
      job.next = job.slices.next();
      if (slice != null) out = engine.set(slice, now);
    } catch (e) {
      // The request was checked whole before its first slice; what is left is
      // "AllowedIPs table full" (or out of memory) part-way through, the
      // slices before staying applied. wireguard-go answers a failed peer
      // creation with EINVAL too.
      if (!(e instanceof RangeError)) throw e;
      this.job = null;
      return `errno=-${EINVAL}\n\n`;
    }
    if (out !== null) this.onOutput?.(out);
    if (!job.next!.done) return "";
    this.job = null;
    if (job.listenPort !== undefined && this.onListenPort) {
      try {
        this.onListenPort(job.listenPort);
      } catch {
        return `errno=-${EADDRINUSE}\n\n`;
      }
    }
    return "errno=0\n\n";
  }

  private line(line: string, engine: Engine, now: number, resolve: ResolveEndpoint): string {
    if (line.length > MAX_LINE) { this.closed = true; return ""; }
    switch (this.mode) {
      case Mode.Idle:
        if (line === "get=1") this.mode = Mode.Get;
        else if (line === "stats=1") this.mode = Mode.Stats;
        else if (line === "set=1") { this.mode = Mode.Set; this.parser = new UapiSetParser(resolve, true); this.setError = 0; this.bytes = 0; }
        else this.closed = true;
        return "";
      case Mode.Get:
        this.mode = Mode.Idle;
        // get=1 must be followed by the empty line and nothing else.
        if (line !== "") { this.closed = true; return `errno=-${EINVAL}\n\n`; }
        this.job = { kind: "get", writer: new UapiGetWriter(engine) };
        return "";
      case Mode.Stats:
        this.mode = Mode.Idle;
        if (line !== "") { this.closed = true; return `errno=-${EINVAL}\n\n`; }
        return formatUapiStats(engine, now) + "errno=0\n\n";
      case Mode.Set:
        if (line !== "") {
          this.bytes += line.length + 1;
          if (this.bytes > this.maxRequestBytes) { this.closed = true; this.parser = null; return `errno=-${ENOMEM}\n\n`; }
          // After a bad line the rest is read and ignored; the answer waits for the request's end.
          if (this.setError === 0) {
            try {
              this.parser!.line(line);
            } catch (e) {
              if (!(e instanceof UapiError)) throw e;
              this.setError = e.errno;
              this.parser = null;
            }
          }
          return "";
        }
        this.mode = Mode.Idle;
        {
          const parser = this.parser;
          this.parser = null;
          if (parser === null) return `errno=-${this.setError}\n\n`;
          const req = parser.result();
          // Checked and planned in the job's first steps; a refusal there (more
          // peers than the engine's bound) comes back as EINVAL with nothing applied.
          const slices = planned(engine, req.config, parser.packedIps);
          this.job = { kind: "set", slices, next: null, listenPort: req.listenPort };
          return "";
        }
    }
  }
}
