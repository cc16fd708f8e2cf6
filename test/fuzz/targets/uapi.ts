// The UAPI text protocol (src/uapi.ts): a set request's lines, and whole
// connections through UapiSession, against real engines.
//
// Invariants: any lines either parse (parseUapiSet) or are refused with a
// UapiError of errno EINVAL or EPROTO and a one-line message; what parses,
// applied to an engine, is taken or refused with a RangeError (the engine's
// limits), and the engine's get=1 body then formats, and read back as a set
// request (less the read-only keys) parses and makes an engine that formats
// the same; a connection answers only errno lines wg(8) knows, and answers
// the same whether its text comes in one chunk or in many.
import { EINVAL, ENOMEM, EPROTO, EADDRINUSE, UapiError, UapiSession, formatUapiGet, parseUapiSet } from "../../../src/uapi.ts";
import { Engine } from "../../../src/engine.ts";
import { EPOCH, nodeX25519, wasmModule } from "../../helpers/net.ts";
import { fixedKey } from "../world.ts";

const KEY = fixedKey("uapi").privateKey;
// Small limits, so that a short input can fill them: the refusals are part of what is fuzzed.
const engine = () => new Engine({ wasm: wasmModule, x25519: nodeX25519, epoch: EPOCH, maxPeers: 4, maxAllowedIps: 128 });
const first = engine(), second = engine();
const decoder = new TextDecoder();
const READ_ONLY = /^(last_handshake_time_sec|last_handshake_time_nsec|tx_bytes|rx_bytes)=/;
const ERRNOS = new Set([0, -EINVAL, -EPROTO, -ENOMEM, -EADDRINUSE]);

/** Back to one known state: our key, no port, mark or peers, counters zero. */
function reset(e: Engine): void {
  e.set({ privateKey: KEY, listenPort: 0, fwmark: 0, replacePeers: true }, 0);
  for (const k of Object.keys(e.drops) as (keyof Engine["drops"])[]) e.drops[k] = 0;
  e.handshakes.completed = 0;
  e.handshakes.cookieReplies = 0;
}

function parseOrRefuse(lines: string[]): ReturnType<typeof parseUapiSet> | null {
  try {
    return parseUapiSet(lines);
  } catch (err) {
    if (!(err instanceof UapiError)) throw err;
    if (err.errno !== EINVAL && err.errno !== EPROTO) throw new Error(`errno ${err.errno} from the parser`);
    if (err.message === "" || err.message.includes("\n")) throw new Error(`not a one-line message: ${JSON.stringify(err.message)}`);
    return null;
  }
}

function apply(e: Engine, config: ReturnType<typeof parseUapiSet>["config"]): void {
  try {
    e.set(config, 0);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
  }
}

/** A connection's whole text, fed to a reset engine in chunks of the given sizes (cycled). */
function converse(text: string, sizes: number[]): string {
  reset(first);
  const s = new UapiSession({ onOutput: () => {}, onListenPort: (p) => { if (p === 1) throw new Error("port in use"); } });
  let out = "";
  for (let at = 0, i = 0; at < text.length && !s.closed; i++) {
    const n = sizes[i % sizes.length];
    out += s.feed(text.slice(at, at + n), first, 0);
    // A large request goes a slice at a time, as the UAPI server drives it.
    while (s.busy) out += s.work(first, 0);
    at += n;
  }
  return out;
}

export function fuzz(data: Uint8Array): void {
  const text = decoder.decode(data);

  // A set request's lines: up to the empty line that ends it.
  const lines = text.split("\n");
  const end = lines.indexOf("");
  const req = parseOrRefuse(end < 0 ? lines : lines.slice(0, end));
  if (req !== null) {
    reset(first);
    apply(first, req.config);
    const got = formatUapiGet(first.status());
    const back = got.split("\n").filter((l) => l !== "" && !READ_ONLY.test(l));
    let again;
    try {
      again = parseUapiSet(back);
    } catch (err) {
      throw new Error(`get=1 output that set=1 refuses (${(err as Error).message}):\n${got}`);
    }
    reset(second);
    apply(second, again.config);
    const twice = formatUapiGet(second.status());
    if (twice !== got) throw new Error(`get=1 read back as set=1 formats differently:\n${got}\n---\n${twice}`);
  }

  // The same text as a connection, whole and in pieces.
  const whole = converse(text, [text.length || 1]);
  const sizes = Array.from(data.subarray(0, 8), (x) => 1 + (x % 13));
  const pieces = converse(text, sizes.length > 0 ? sizes : [1]);
  if (whole !== pieces) throw new Error(`one chunk and many answer differently: ${JSON.stringify(whole)} vs ${JSON.stringify(pieces)}`);
  for (const m of whole.matchAll(/^errno=(.*)$/gm)) {
    if (!ERRNOS.has(Number(m[1])) || !/^-?\d+$/.test(m[1])) throw new Error(`answered errno=${m[1]}`);
  }
}
