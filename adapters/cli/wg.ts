// The `wg` command: wg(8)'s show, showconf, set, genkey, genpsk and pubkey,
// speaking the cross-platform UAPI over /var/run/wireguard/NAME.sock (so
// they work against wireguard-go too), plus wg-quick(8)'s up and down for
// interfaces this engine runs. Written once against the host's capabilities
// (ports/host.ts).
//
// Output and error messages follow wireguard-tools where it defines them;
// every failure ends in a line on stderr and a non-zero exit code, never a
// stack trace.
import { keyHex } from "../../src/config.ts";
import { formatPrefix, maskPrefix, parseAddress, parsePrefix, type Prefix } from "../../src/ip.ts";
import { formatShow, formatShowConf, formatShowField } from "../../src/show.ts";
import { formatEndpoint } from "../../src/uapi.ts";
import { ConfigError } from "../../src/wgquick.ts";
import { KeyInputError, genkey, genpsk, isCSpace, keyFromFile, pubkey, strictKeyFromBase64 } from "./keys.ts";
import { UserError } from "../ports/errors.ts";
import type { Host } from "../ports/host.ts";
import {
  ECONNREFUSED, RUN_DIR, UapiClientError, connect, errnoOf, getDevice, listInterfaces, setDevice, socketPath, strerror,
} from "./uapi-client.ts";
import { up } from "./up.ts";
import type { Limits } from "../tunnel/tunnel.ts";
import { relayCommand } from "../relay/cli.ts";

export const VERSION = "0.1.0";
const PROG = "wg";

/** A failure whose message is printed as it is (mostly wg(8)'s own wording), then exit 1. */
class Printed extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Printed";
  }
}

const SUBCOMMANDS: [string, string][] = [
  ["show", "Prints the configuration and state of interfaces"],
  ["showconf", "Prints an interface's configuration in the format `setconf' reads"],
  ["set", "Changes an interface's configuration: listen port, fwmark, private key, peers"],
  ["genkey", "Prints a new private key"],
  ["genpsk", "Prints a new preshared key"],
  ["pubkey", "Reads a private key on stdin and prints its public key"],
  ["up", "Brings up an interface from a wg-quick(8) configuration and runs it in the foreground"],
  ["down", "Stops an interface that `up' brought up"],
  ["relay", "Carries WireGuard datagrams between WebSocket clients (browsers) and UDP endpoints"],
];

function usage(): string {
  let s = `Usage: ${PROG} <cmd> [<args>]\n\nAvailable subcommands:\n`;
  for (const [cmd, what] of SUBCOMMANDS) s += `  ${cmd}: ${what}\n`;
  return s + "Pass `--help' to a subcommand to see its usage.\n";
}

const SHOW_FIELDS = [
  "public-key", "private-key", "listen-port", "fwmark", "peers", "preshared-keys", "endpoints", "allowed-ips",
  "latest-handshakes", "transfer", "persistent-keepalive", "dump",
];
const SHOW_USAGE = `Usage: ${PROG} show { <interface> | all | interfaces } [${SHOW_FIELDS.join(" | ")}]\n`;
const SHOWCONF_USAGE = `Usage: ${PROG} showconf <interface>\n`;
const SET_USAGE = `Usage: ${PROG} set <interface> [listen-port <port>] [fwmark <mark>] [private-key <file path>] ` +
  "[peer <base64 public key> [remove] [preshared-key <file path>] [endpoint <ip>:<port>] " +
  "[persistent-keepalive <interval seconds>] [allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...] ]...\n";
const UP_USAGE = `Usage: ${PROG} up [--netstack] [--relay=<ws-url>] [--no-offload] [--max-peers=<n>] [--max-allowed-ips=<n>] { <interface> | <config file> }\n`;
const DOWN_USAGE = `Usage: ${PROG} down { <interface> | <config file> }\n`;

const isHelp = (a: string | undefined) => a === "--help" || a === "-h" || a === "help";

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}

/**
 * The line printed for an error that reached `main`: `wg: <message>` for
 * errors meant for the user (the UserError family, a ConfigError, a
 * RangeError naming a bad value, a system error with a code), `wg: internal
 * error: <message>` for anything else: a bug.
 */
export function errorLine(e: unknown): string {
  if (!(e instanceof Error)) return `${PROG}: internal error: ${oneLine(String(e))}\n`;
  const known = e instanceof UserError || e instanceof ConfigError || e instanceof RangeError ||
    typeof (e as { code?: unknown }).code === "string";
  const msg = oneLine(e.message) || e.name;
  return known ? `${PROG}: ${msg}\n` : `${PROG}: internal error: ${msg}\n`;
}

/**
 * Runs the `wg` command line in `rt.args`.
 * @returns the exit code
 */
export async function main(rt: Host): Promise<number> {
  try {
    return await command(rt, rt.args);
  } catch (e) {
    try {
      rt.stderr(e instanceof Printed ? e.message : errorLine(e));
    } catch { /* stderr is gone: nothing left to tell */ }
    return 1;
  }
}

/**
 * Runs the `wg` command line of an entry (the bins): `main`, and anything
 * that still escaped it as one internal-error line; resolves with the exit
 * code once all that was printed has been written.
 */
export async function runCli(rt: Host): Promise<number> {
  let code = 1;
  try {
    code = await main(rt);
  } catch (e) {
    rt.stderr(`${PROG}: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  // process.exit alone cuts off a piped stdout: everything printed reaches its reader first.
  await rt.drained();
  return code;
}

async function command(rt: Host, argv: string[]): Promise<number> {
  if (argv.length === 1 && ["-v", "--version", "version"].includes(argv[0])) {
    rt.stdout(`wg-js v${VERSION} - a WireGuard engine for JavaScript runtimes (${rt.label})\n`);
    return 0;
  }
  if (argv.length === 1 && isHelp(argv[0])) {
    rt.stdout(usage());
    return 0;
  }
  // As wg(8): no command means `show`.
  if (argv.length === 0) return show(rt, []);
  const [cmd, ...args] = argv;
  switch (cmd) {
    case "show": return show(rt, args);
    case "showconf": return showconf(rt, args);
    case "set": return set(rt, args);
    case "genkey": case "genpsk":
      if (args.length !== 0) throw new Printed(`Usage: ${PROG} ${cmd}\n`);
      // As wg(8): a key written into a file others may read is worth a warning.
      if (((rt.stdoutMode?.() ?? 0) & 0o007) !== 0) {
        rt.stderr("Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n");
      }
      rt.stdout(cmd === "genkey" ? genkey() : genpsk());
      return 0;
    case "pubkey": {
      if (args.length !== 0) throw new Printed(`Usage: ${PROG} pubkey\n`);
      const input = await rt.readStdin();
      try {
        rt.stdout(pubkey(input, rt.x25519));
      } catch (e) {
        if (e instanceof KeyInputError) throw new Printed(`${PROG}: ${e.message}\n`);
        throw e;
      }
      return 0;
    }
    case "up": return upCommand(rt, args);
    case "down": return down(rt, args);
    case "relay": return relayCommand(rt, args);
    default:
      throw new Printed(`Invalid subcommand: \`${cmd}'\n${usage()}`);
  }
}

// ---- show, showconf ----

function nowMs(rt: Host): number {
  return rt.epoch + rt.clock.now();
}

async function show(rt: Host, args: string[]): Promise<number> {
  if (args.length > 2) throw new Printed(SHOW_USAGE);
  const opts = { showKeys: rt.env("WG_HIDE_KEYS") === "never" };
  const field = args[1];
  if (args[0] === "interfaces") {
    if (args.length > 1) throw new Printed(SHOW_USAGE);
    const names = await interfaces(rt);
    if (names.length) rt.stdout(names.join(" ") + "\n");
    return 0;
  }
  if (args.length === 1 && isHelp(args[0])) {
    rt.stderr(SHOW_USAGE);
    return 0;
  }
  if (field !== undefined && !SHOW_FIELDS.includes(field)) throw new Printed(`Invalid parameter: \`${field}'\n${SHOW_USAGE}`);
  if (args.length === 0 || args[0] === "all") {
    const names = await interfaces(rt);
    // wg: 1 when there were interfaces and none could be read.
    let code = names.length ? 1 : 0;
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      let status;
      try {
        status = await getDevice(rt, name);
      } catch (e) {
        if (!(e instanceof UapiClientError)) throw e;
        rt.stderr(`Unable to access interface ${name}: ${e.message}\n`);
        continue;
      }
      if (field !== undefined) {
        rt.stdout(formatShowField(name, status, field).split("\n").slice(0, -1).map((l) => `${name}\t${l}\n`).join(""));
      } else {
        rt.stdout(formatShow(name, status, nowMs(rt), opts) + (i < names.length - 1 ? "\n" : ""));
      }
      code = 0;
    }
    return code;
  }
  const name = args[0];
  const status = await access(rt, name);
  rt.stdout(field !== undefined ? formatShowField(name, status, field) : formatShow(name, status, nowMs(rt), opts));
  return 0;
}

async function interfaces(rt: Host): Promise<string[]> {
  try {
    return await listInterfaces(rt);
  } catch (e) {
    if (e instanceof UapiClientError) throw new Printed(`Unable to list interfaces: ${e.message}\n`);
    throw e;
  }
}

/** get=1, with wg's message when the interface cannot be read. */
async function access(rt: Host, name: string) {
  try {
    return await getDevice(rt, name);
  } catch (e) {
    if (e instanceof UapiClientError) throw new Printed(`Unable to access interface: ${e.message}\n`);
    throw e;
  }
}

async function showconf(rt: Host, args: string[]): Promise<number> {
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h")) {
    rt.stderr(SHOWCONF_USAGE);
    return 0;
  }
  if (args.length !== 1) throw new Printed(SHOWCONF_USAGE);
  rt.stdout(formatShowConf(args[0], await access(rt, args[0])));
  return 0;
}

// ---- set ----

interface AllowedIpArg {
  prefix: Prefix;
  remove: boolean;
}

interface PeerArgs {
  publicKey: Uint8Array;
  remove: boolean;
  presharedKey?: Uint8Array;
  endpoint?: string;
  keepalive?: number;
  replaceAllowedIps: boolean;
  allowedIps: AllowedIpArg[];
}

interface SetArgs {
  privateKey?: Uint8Array;
  listenPort?: number;
  fwmark?: number;
  peers: PeerArgs[];
}

/** A port as wg reads one (its getaddrinfo accepts only what names a UDP port; here: decimal numbers). */
function parsePort(value: string): number {
  if (value === "") throw new Printed("Unable to parse empty port\n");
  if (!/^[0-9]+$/.test(value) || Number(value) > 65535) throw new Printed(`Servname not supported for ai_socktype: \`${value}'\n`);
  return Number(value);
}

function parseFwmark(value: string): number {
  if (value.toLowerCase() === "off") return 0;
  let n = NaN;
  if (/^0x[0-9a-fA-F]+$/.test(value)) n = parseInt(value.slice(2), 16);
  else if (/^[0-9]+$/.test(value)) n = Number(value);
  if (!(n <= 0xffffffff)) throw new Printed(`Fwmark is neither 0/off nor 0-0xffffffff: \`${value}'\n`);
  return n;
}

function parseKeepalive(value: string): number {
  if (value.toLowerCase() === "off") return 0;
  if (!/^[0-9]+$/.test(value) || Number(value) > 65535) {
    throw new Printed(`Persistent keepalive interval is neither 0/off nor 1-65535: \`${value}'\n`);
  }
  return Number(value);
}

function parseKey(value: string): Uint8Array {
  const k = strictKeyFromBase64(value);
  if (!k) throw new Printed(`Key is not the correct length or format: \`${value}'\n`);
  return k;
}

async function readKeyFile(rt: Host, path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await rt.readFile(path);
  } catch (e) {
    const errno = errnoOf(e);
    throw new Printed(`fopen: ${errno !== null ? strerror(errno) : oneLine((e as Error).message ?? String(e))}\n`);
  }
  try {
    return keyFromFile(text);
  } catch (e) {
    if (e instanceof KeyInputError) throw new Printed(e.message + "\n");
    throw e;
  }
}

/** `host:port` or `[v6]:port`, resolved with the runtime, as UAPI endpoint text. */
async function parseEndpoint(rt: Host, value: string): Promise<string> {
  if (value === "") throw new Printed("Unable to parse empty endpoint\n");
  let host: string, port: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0) throw new Printed(`Unable to find matching brace of endpoint: \`${value}'\n`);
    if (value[close + 1] !== ":" || close + 2 === value.length) throw new Printed(`Unable to find port of endpoint: \`${value}'\n`);
    host = value.slice(1, close);
    port = value.slice(close + 2);
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0 || colon === value.length - 1) throw new Printed(`Unable to find port of endpoint: \`${value}'\n`);
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
  }
  if (!/^[0-9]+$/.test(port) || Number(port) > 65535) throw new Printed(`Servname not supported for ai_socktype: \`${value}'\n`);
  if (host === "") throw new Printed(`Name or service not known: \`${value}'\n`);
  let ep;
  try {
    ep = await rt.resolve(host, Number(port));
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const why = code === "EAI_AGAIN" ? "Temporary failure in name resolution"
      : code === "ENOTFOUND" || code === "ENODATA" || (e as Error).name === "NotFound" ? "Name or service not known"
      : oneLine((e as Error).message ?? String(e));
    throw new Printed(`${why}: \`${value}'\n`);
  }
  return formatEndpoint(ep);
}

/** One `allowed-ips` argument, added to `peer` with wg's rules for `+` and `-`. */
function parseAllowedIps(rt: Host, peer: PeerArgs, arg: string): void {
  const text = [...arg].filter((c) => !isCSpace(c)).join("");
  peer.replaceAllowedIps = true;
  if (text === "") return;
  for (let entry of text.split(",")) {
    let remove = false;
    if (entry[0] === "-" || entry[0] === "+") {
      // An incremental change: the peer's other prefixes stay.
      remove = entry[0] === "-";
      peer.replaceAllowedIps = false;
      entry = entry.slice(1);
    }
    const slash = entry.indexOf("/");
    const ip = slash < 0 ? entry : entry.slice(0, slash);
    let bytes: Uint8Array | null = null;
    try { bytes = parseAddress(ip); } catch { /* reported below */ }
    if (!bytes || (bytes.length === 16) !== ip.includes(":")) throw new Printed(`Unable to parse IP address: \`${ip}'\n`);
    let cidr = bytes.length * 8;
    if (slash >= 0) {
      const mask = entry.slice(slash + 1);
      if (!/^[0-9]+$/.test(mask) || Number(mask) > bytes.length * 8) throw new Printed(`AllowedIP is not in the correct format: \`${entry}'\n`);
      cidr = Number(mask);
      const prefix = { bytes, cidr };
      if (!maskPrefix(prefix).bytes.every((b, i) => b === bytes![i])) rt.stderr(`Warning: AllowedIP has nonzero host part: ${ip}/${mask}\n`);
    }
    peer.allowedIps.push({ prefix: { bytes, cidr }, remove });
  }
}

async function parseSetArgs(rt: Host, argv: string[]): Promise<SetArgs> {
  const out: SetArgs = { peers: [] };
  let peer: PeerArgs | null = null;
  for (let i = 0; i < argv.length;) {
    const a = argv[i], v = argv[i + 1], has = i + 1 < argv.length;
    if (a === "listen-port" && has && !peer) out.listenPort = parsePort(v);
    else if (a === "fwmark" && has && !peer) out.fwmark = parseFwmark(v);
    else if (a === "private-key" && has && !peer) out.privateKey = await readKeyFile(rt, v);
    else if (a === "peer" && has) {
      peer = { publicKey: parseKey(v), remove: false, replaceAllowedIps: false, allowedIps: [] };
      out.peers.push(peer);
    } else if (a === "remove" && peer) {
      peer.remove = true;
      i += 1;
      continue;
    } else if (a === "endpoint" && has && peer) peer.endpoint = await parseEndpoint(rt, v);
    else if (a === "allowed-ips" && has && peer) parseAllowedIps(rt, peer, v);
    else if (a === "persistent-keepalive" && has && peer) peer.keepalive = parseKeepalive(v);
    else if (a === "preshared-key" && has && peer) peer.presharedKey = await readKeyFile(rt, v);
    else throw new Printed(`Invalid argument: ${a}\n`);
    i += 2;
  }
  return out;
}

const prefixKey = (p: Prefix) => formatPrefix(maskPrefix(p));

/** The set=1 lines for parsed `wg set` arguments, in the order wg writes them. */
async function setLines(rt: Host, name: string, req: SetArgs): Promise<string[]> {
  const lines: string[] = [];
  if (req.privateKey) lines.push(`private_key=${keyHex(req.privateKey)}`);
  if (req.listenPort !== undefined) lines.push(`listen_port=${req.listenPort}`);
  if (req.fwmark !== undefined) lines.push(`fwmark=${req.fwmark}`);
  // The UAPI has no key for removing one prefix: for `-` entries the peer's
  // current list is read, edited, and sent whole with replace_allowed_ips.
  let current: Map<string, string[]> | null = null;
  for (const p of req.peers) {
    lines.push(`public_key=${keyHex(p.publicKey)}`);
    if (p.remove) {
      lines.push("remove=true");
      continue;
    }
    if (p.presharedKey) lines.push(`preshared_key=${keyHex(p.presharedKey)}`);
    if (p.endpoint !== undefined) lines.push(`endpoint=${p.endpoint}`);
    if (p.keepalive !== undefined) lines.push(`persistent_keepalive_interval=${p.keepalive}`);
    let ips = p.allowedIps.map((a) => formatPrefix(a.prefix));
    let replace = p.replaceAllowedIps;
    if (p.allowedIps.some((a) => a.remove)) {
      if (!current) {
        current = new Map();
        try {
          for (const peer of (await getDevice(rt, name)).peers) {
            current.set(keyHex(peer.publicKey), peer.allowedIps.map((s) => prefixKey(parsePrefix(s))));
          }
        } catch (e) {
          if (e instanceof UapiClientError) throw new Printed(`Unable to modify interface: ${e.message}\n`);
          throw e;
        }
      }
      const list = replace ? [] : [...(current.get(keyHex(p.publicKey)) ?? [])];
      for (const a of p.allowedIps) {
        const k = prefixKey(a.prefix);
        const at = list.indexOf(k);
        if (a.remove) { if (at >= 0) list.splice(at, 1); } else if (at < 0) list.push(k);
      }
      ips = list;
      replace = true;
    }
    if (replace) lines.push("replace_allowed_ips=true");
    for (const ip of ips) lines.push(`allowed_ip=${ip}`);
  }
  return lines;
}

async function set(rt: Host, args: string[]): Promise<number> {
  if (args.length < 2) throw new Printed(SET_USAGE);
  const name = args[0];
  const req = await parseSetArgs(rt, args.slice(1));
  try {
    await setDevice(rt, name, await setLines(rt, name, req));
  } catch (e) {
    if (e instanceof UapiClientError) throw new Printed(`Unable to modify interface: ${e.message}\n`);
    throw e;
  }
  return 0;
}

// ---- up, down ----

async function upCommand(rt: Host, args: string[]): Promise<number> {
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h")) {
    rt.stderr(UP_USAGE);
    return 0;
  }
  let netstack = false, noOffload = false, relay: string | undefined;
  const rest: string[] = [];
  const limits: Limits = {};
  // Bounds for what the configuration and the UAPI may add (the engine's tables grow up to them).
  const bound = (a: string, name: string, max: number): number => {
    const v = a.slice(name.length + 3);
    if (!/^[1-9][0-9]{0,9}$/.test(v) || Number(v) > max) throw new Printed(`Invalid ${name}: '${v}' (a whole number from 1 to ${max})\n${UP_USAGE}`);
    return Number(v);
  };
  for (const a of args) {
    if (a === "--netstack") netstack = true;
    else if (a === "--no-offload") noOffload = true;
    else if (a.startsWith("--relay=")) relay = a.slice(8);
    else if (a.startsWith("--max-peers=")) limits.maxPeers = bound(a, "max-peers", 1 << 24);
    else if (a.startsWith("--max-allowed-ips=")) limits.maxAllowedIps = bound(a, "max-allowed-ips", 1 << 25);
    else if (a.startsWith("--")) throw new Printed(`Invalid argument: ${a}\n${UP_USAGE}`);
    else rest.push(a);
  }
  if (rest.length !== 1) throw new Printed(UP_USAGE);
  return await up(rt, rest[0], { netstack, noOffload, limits, relay });
}

/** The interface a `down` argument names: NAME, or a config path whose file name is NAME.conf. */
function interfaceName(arg: string): string | null {
  let name = arg;
  if (arg.includes("/") || arg.endsWith(".conf")) name = arg.slice(arg.lastIndexOf("/") + 1).replace(/\.conf$/, "");
  return /^[a-zA-Z0-9_=+.-]{1,15}$/.test(name) ? name : null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const DOWN_WAIT_MS = 10_000;
const DOWN_POLL_MS = 50;

async function down(rt: Host, args: string[]): Promise<number> {
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h")) {
    rt.stderr(DOWN_USAGE);
    return 0;
  }
  if (args.length !== 1) throw new Printed(DOWN_USAGE);
  const name = interfaceName(args[0]);
  if (name === null) throw new Printed(`${PROG}: '${args[0]}' is not an interface name (1-15 of a-z A-Z 0-9 _ = + . -) or a NAME.conf path\n`);
  const sock = socketPath(name), pidFile = `${RUN_DIR}/${name}.pid`;
  const notUp = `${PROG}: interface '${name}' is not up\n`;
  if (!(await rt.exists(sock))) throw new Printed(notUp);
  let pidText: string;
  try {
    pidText = await rt.readFile(pidFile);
  } catch {
    throw new Printed(`${PROG}: interface '${name}' was not brought up by '${PROG} up' (no ${pidFile}); stop the program serving ${sock}\n`);
  }
  const m = /^\s*([0-9]+)\s*$/.exec(pidText);
  const pid = m ? Number(m[1]) : 0;
  if (!(pid > 1)) throw new Printed(`${PROG}: ${pidFile} holds no process id\n`);
  if (!rt.kill(pid, "SIGTERM")) {
    // Either the process is gone (a stale socket nobody listens on) or it is not ours to signal.
    let stale = false;
    try {
      (await connect(rt, name)).close();
    } catch (e) {
      stale = e instanceof UapiClientError && e.errno === ECONNREFUSED;
    }
    if (stale) {
      await rt.remove(sock);
      await rt.remove(pidFile);
      throw new Printed(`${PROG}: interface '${name}' is not up (process ${pid} is gone; removed its stale ${sock})\n`);
    }
    throw new Printed(`${PROG}: cannot send SIGTERM to process ${pid} of interface '${name}'${rt.isRoot() ? "" : " (not root?)"}\n`);
  }
  const deadline = rt.clock.now() + DOWN_WAIT_MS;
  while (await rt.exists(sock)) {
    if (rt.clock.now() >= deadline) {
      throw new Printed(`${PROG}: interface '${name}' (process ${pid}) did not stop within ${DOWN_WAIT_MS / 1000} seconds\n`);
    }
    await sleep(DOWN_POLL_MS);
  }
  return 0;
}
