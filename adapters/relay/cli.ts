// `wg relay`: the WebSocket relay from the command line, on whichever host
// runs the CLI (server.ts over its WebSocket servers). Prints one line
// once listening, one line per refused or closed client on stderr, and runs
// until SIGINT or SIGTERM.
import type { Host } from "../ports/host.ts";
import { DEFAULTS, RelayConfigError, type ListenOptions } from "./relay.ts";
import { startRelay } from "./server.ts";

export const RELAY_USAGE = "Usage: wg relay [--listen <host>:<port>] --allow <host>:<port> [--allow ...] [--token-file <file>] " +
  "[--origin <origin>]... [--max-clients <n>] [--max-per-source <n>] [--idle <seconds>] [--max-message <bytes>] [--rate <datagrams/s>] [--no-batch] [--cert <file> --key <file>]\n";

export const RELAY_HELP = RELAY_USAGE + `
Carries WireGuard datagrams between WebSocket clients (browsers) and UDP endpoints:
a client connects to ws://<listen>/?to=<host>:<port>[&token=<token>] and each binary
message is one datagram, both ways, or several with the wg.batch.v1 subprotocol.
Only upstreams on the allow-list are reached.
  --listen       address and port to listen on (default 127.0.0.1:8080; port 0: any free one)
  --allow        an upstream clients may reach: 192.0.2.1:51820, [2001:db8::1]:51820,
                 10.0.0.0/24:51820, or a name resolved at start (repeat for more)
  --token-file   clients must give one of the tokens in this file (one per line) as &token=
  --origin       browsers must come from this origin, e.g. https://example.com (repeatable)
  --max-clients  clients at once (default ${DEFAULTS.maxClients}; more get 503)
  --max-per-source  clients at once from one address, IPv6 by /64 (default ${DEFAULTS.maxPerSource}; more get 503)
  --idle         seconds without a datagram either way before a client is closed (default ${DEFAULTS.idleSeconds})
  --max-message  largest datagram in bytes (default ${DEFAULTS.maxMessage}; a larger message: close 1009;
                 a batch message holds at most 64 KiB)
  --rate         datagrams per second per client; the excess is dropped (default ${DEFAULTS.rate})
  --no-batch     one datagram per message only, as relays before the batch framing
  --cert, --key  a certificate and its key (PEM files): wss: instead of ws:, and where the host has it (Deno) also
                 WebTransport (HTTP/3) on UDP at the same port, the same ?to= and &token=
`;

/** "127.0.0.1:8080", "[::1]:0", "localhost:8080" (port 0-65535). Throws RelayConfigError. */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})$/.exec(s) ?? /^([A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new RelayConfigError(`invalid --listen '${s}': expected <host>:<port> or [<IPv6>]:<port>`);
  return { host: m[1], port: Number(m[2]) };
}

function number(flag: string, v: string, min: number, max: number, integer: boolean): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new RelayConfigError(`invalid ${flag} '${v}': expected ${integer ? "an integer" : "a number"} ${min}-${max}`);
  }
  return n;
}

/** Parses `wg relay`'s arguments (no I/O: the token file is read later). Throws RelayConfigError. */
export function parseRelayArgs(args: string[]): ListenOptions & { tokenFile?: string; certFile?: string; keyFile?: string } {
  const o: ListenOptions & { tokenFile?: string; certFile?: string; keyFile?: string } = { allow: [], host: "127.0.0.1", port: 8080 };
  const origins: string[] = [];
  for (let i = 0; i < args.length; i++) {
    let flag = args[i], value: string | undefined;
    const eq = flag.indexOf("=");
    if (flag.startsWith("--") && eq > 0) { value = flag.slice(eq + 1); flag = flag.slice(0, eq); }
    const known = ["--listen", "--allow", "--token-file", "--origin", "--max-clients", "--max-per-source", "--idle", "--max-message", "--rate", "--cert", "--key"];
    if (flag === "--no-batch" && value === undefined) { o.batch = false; continue; }
    if (!known.includes(flag)) throw new RelayConfigError(`unknown relay option '${flag}' (see wg relay --help)`);
    if (value === undefined) {
      if (i + 1 >= args.length) throw new RelayConfigError(`${flag} needs a value`);
      value = args[++i];
    }
    switch (flag) {
      case "--listen": Object.assign(o, parseListen(value)); break;
      case "--allow": o.allow.push(value); break;
      case "--token-file": o.tokenFile = value; break;
      case "--cert": o.certFile = value; break;
      case "--key": o.keyFile = value; break;
      case "--origin": origins.push(value); break;
      case "--max-clients": o.maxClients = number(flag, value, 1, 1_000_000, true); break;
      case "--max-per-source": o.maxPerSource = number(flag, value, 1, 1_000_000, true); break;
      case "--idle": o.idleSeconds = number(flag, value, 0.01, 86_400, false); break;
      case "--max-message": o.maxMessage = number(flag, value, 1, 65_535, true); break;
      case "--rate": o.rate = number(flag, value, 1, 10_000_000, false); break;
    }
  }
  if (o.allow.length === 0) throw new RelayConfigError("missing --allow: name at least one upstream <host>:<port>");
  if (origins.length) o.origins = origins;
  if ((o.certFile === undefined) !== (o.keyFile === undefined)) throw new RelayConfigError("--cert and --key go together");
  return o;
}

/**
 * Runs `wg relay ARGS` until SIGINT or SIGTERM.
 * @returns the exit code
 * @throws RelayConfigError for a bad argument (the CLI prints its one line)
 */
export async function relayCommand(rt: Host, args: string[]): Promise<number> {
  if (args.some((a) => a === "--help" || a === "-h")) {
    rt.stdout(RELAY_HELP);
    return 0;
  }
  const { serveWebSockets, bindUdp } = rt;
  if (serveWebSockets === undefined || bindUdp === undefined) throw new RelayConfigError("the relay needs WebSocket servers and UDP sockets, which this host does not have");
  const { tokenFile, certFile, keyFile, ...options } = parseRelayArgs(args);
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = await rt.readFile(tokenFile);
    } catch (e) {
      const why = e instanceof Error ? e.message.replace(/^[A-Z]+: /, "").replace(/,.*$/, "") : String(e);
      throw new RelayConfigError(`cannot read --token-file '${tokenFile}': ${why}`);
    }
    const tokens = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
    if (tokens.length === 0) throw new RelayConfigError(`--token-file '${tokenFile}' has no token`);
    options.tokens = tokens;
  }
  let tls: { cert: string; key: string } | null = null;
  if (certFile !== undefined && keyFile !== undefined) {
    if (!rt.webSocketTls) throw new RelayConfigError("--cert and --key: this host's WebSocket server cannot serve TLS (put a TLS proxy in front)");
    const read = async (flag: string, file: string) => {
      try {
        return await rt.readFile(file);
      } catch (e) {
        const why = e instanceof Error ? e.message.replace(/^[A-Z]+: /, "").replace(/,.*$/, "") : String(e);
        throw new RelayConfigError(`cannot read ${flag} '${file}': ${why}`);
      }
    };
    tls = { cert: await read("--cert", certFile), key: await read("--key", keyFile) };
  }
  const log = (line: string) => { try { rt.stderr(`${line}\n`); } catch { /* stderr is gone */ } };
  const relay = await startRelay({ ...rt, serveWebSockets, bindUdp, webSocketTls: rt.webSocketTls ?? false }, { ...options, ...tls, log });
  const n = options.allow.length;
  const wt = relay.webtransport() !== null;
  rt.stdout(`relay listening on ${relay.url}${wt ? ` and WebTransport on udp port ${relay.port}` : ""} for ${n} upstream${n === 1 ? "" : "s"}\n`);
  await new Promise<void>((resolve) => rt.onSignal(() => resolve()));
  await relay.close();
  return 0;
}
