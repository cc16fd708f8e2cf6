// The browser's entry: a WireGuard tunnel in a page, through a relay
// (adapters/relay) to any WireGuard server, or to an edge gateway
// (adapters/edge). build/build.mjs bundles it, the WASM included, as
// build/out/browser/wg.js.
//
//   import { connect } from "../browser/wg.js";
//   const t = await connect(configText, { relay: "wss://relay.example/" });
//   // or WebTransport where the browser and the relay have it, WebSocket otherwise:
//   const t = await connect(configText, { relay: "https://relay.example/" });
//   const page = await (await t.fetch("http://10.0.0.1/")).text();
//   // https: and connectTls verify the server against the CA given (no system roots in a page):
//   const doc = await (await t.fetch("https://files.wg/", { tls: { ca: caPem } })).text();
//   console.log(t.status().peers[0].lastHandshake);
//   await t.close();
//   // or the whole tunnel in a Worker, the page's thread left free:
//   const w = await connectWorker(configText, { relay: "wss://relay.example/" });
import { wasmBytes } from "#engine-wasm";
import { nobleX25519 } from "../../src/x25519.ts";
import { parseWgQuick } from "../../src/wgquick.ts";
import { openTunnel, Tunnel, type TunnelConfig, type TunnelOptions } from "../tunnel/tunnel.ts";
import { AutoBind, type TransportEvent } from "../browser/auto-bind.ts";
import type { WebTransportBindOptions } from "../browser/webtransport-bind.ts";
import { WebSocketBind, type WebSocketBindOptions } from "../ports/websocket-bind.ts";
import { GATEWAY } from "../ports/relay-channel.ts";
import { ConfigError } from "../../src/wgquick.ts";
import { RemoteTunnel } from "../tunnel/remote.ts";
import { browserTls } from "../browser/tls.ts";

export { Tunnel, type TunnelConfig, type TunnelStatus } from "../tunnel/tunnel.ts";
export { NetError } from "../../src/netstack/index.ts";
export { ConfigError } from "../../src/wgquick.ts";
export { WebSocketBind, type RelayEvent, type RelayCounters } from "../ports/websocket-bind.ts";
export { WebTransportBind, type WebTransportBindOptions, type WebTransportCounters } from "../browser/webtransport-bind.ts";
export { AutoBind, type TransportEvent, type TransportName } from "../browser/auto-bind.ts";
export { RemoteTunnel, type RemoteConn, type RemoteTlsConn } from "../tunnel/remote.ts";
export { browserTls, type BrowserTlsOptions } from "../browser/tls.ts";

/**
 * The inner MTU when the config gives none and WebTransport may carry the
 * datagrams: a WireGuard datagram is MTU + 32 bytes, and Chromium's
 * WebTransport datagrams hold at most 1211 bytes (WireGuard's default 1420
 * would not fit).
 */
export const WEBTRANSPORT_MTU = 1168;

export interface ConnectOptions extends Omit<WebSocketBindOptions, "onevent">, TunnelOptions {
  /**
   * The relay's URL (ws:, wss:, http:, https:). Each peer's Endpoint is
   * asked of the relay as `?to=host:port`; a peer without one is the
   * URL itself (an edge gateway).
   */
  relay: string | URL;
  /** A compiled engine.wasm, for pages whose CSP forbids compiling bytes. */
  wasm?: WebAssembly.Module;
  /**
   * "auto" (the default): WebTransport datagrams where the runtime has
   * WebTransport and the relay offers it (an https: relay URL, or
   * webtransport.url), each endpoint moving to WebSocket if its session is not
   * ready within webtransport.timeout (3 s), fails, or is refused;
   * "websocket": WebSocket only; "webtransport": WebTransport only.
   */
  transport?: "auto" | "websocket" | "webtransport";
  webtransport?: Omit<WebTransportBindOptions, "token" | "fallback" | "onevent" | "retry" | "queue"> & {
    /** The relay's WebTransport URL (https:); default: the relay URL when it is https:. */
    url?: string | URL;
  };
  /** One line for each WebSocket or WebTransport session that opens, closes, or falls back. */
  onevent?: (event: TransportEvent) => void;
  /**
   * Called with one line for each setting of a wg-quick config that has no
   * meaning in a page (ListenPort, FwMark, Table, hooks, SaveConfig, proxy
   * sections), so none is dropped unsaid; default: console.warn.
   */
  onwarning?: (message: string) => void;
  /**
   * PEM certificates trusted for every TLS connection (connectTls, https:
   * fetch) besides each call's `ca`. A page has no system roots: with
   * neither, a TLS connection fails with one line saying so.
   */
  tlsRoots?: string | string[];
}

/** The config's settings a page cannot carry out, one line each. */
export function ignoredInPage(text: string): string[] {
  const c = parseWgQuick(text), i = c.interface, out: string[] = [];
  const at = `line ${i.line}`;
  if (i.listenPort !== undefined) out.push(`${at}: ListenPort is ignored in a page (the relay's UDP socket has its own port)`);
  if (i.fwmark !== undefined) out.push(`${at}: FwMark is ignored in a page (no routing here)`);
  if (i.table !== undefined) out.push(`${at}: Table is ignored in a page (no routing here)`);
  for (const [key, list] of [["PreUp", i.preUp], ["PostUp", i.postUp], ["PreDown", i.preDown], ["PostDown", i.postDown]] as const) {
    if (list.length > 0) out.push(`${at}: ${key} is ignored in a page (no shell)`);
  }
  if (i.saveConfig) out.push(`${at}: SaveConfig is ignored in a page (nothing to save to)`);
  if (i.dnsSearch.length > 0) out.push(`${at}: DNS search domains are ignored in a page`);
  for (const x of c.extra) out.push(`line ${x.line}: [${x.name}] is ignored in a page (a proxy of wg up --netstack)`);
  return out;
}

/** Which bind connect() uses: WebSocket alone, or WebTransport (with or without fallback) at `url`. */
function chooseTransport(opts: ConnectOptions): { url: string | URL; fallback: boolean } | null {
  const mode = opts.transport ?? "auto";
  if (mode !== "auto" && mode !== "websocket" && mode !== "webtransport") {
    throw new TypeError(`invalid transport '${String(mode)}': expected "auto", "websocket" or "webtransport"`);
  }
  if (mode === "websocket") return null;
  const has = typeof (opts.webtransport?.WebTransport ?? (globalThis as { WebTransport?: unknown }).WebTransport) === "function";
  let url = opts.webtransport?.url;
  if (url === undefined) {
    let relay: URL | null = null;
    try { relay = new URL(opts.relay); } catch { /* WebSocketBind names the bad URL */ }
    if (relay?.protocol === "https:") url = relay;
  }
  if (mode === "webtransport") {
    if (!has) throw new TypeError("transport 'webtransport': no WebTransport in this runtime");
    if (url === undefined) throw new TypeError("transport 'webtransport' needs an https: relay URL or webtransport.url");
    return { url, fallback: false };
  }
  return has && url !== undefined ? { url, fallback: true } : null;
}

let compiled: Promise<WebAssembly.Module> | null = null;

/**
 * Opens a tunnel from a wg-quick(8) config's text (or a TunnelConfig) over a
 * relay. Resolves once the engine runs; the handshake follows the first
 * packet, as in WireGuard.
 * @throws ConfigError for a bad config (one line naming the line), TypeError for a bad relay URL
 */
export async function connect(config: string | TunnelConfig, opts: ConnectOptions): Promise<Tunnel> {
  if (!opts || opts.relay === undefined) throw new TypeError("connect needs a relay URL: connect(config, { relay: 'wss://...' })");
  const wt = chooseTransport(opts);
  const { onevent } = opts;
  const bind = wt === null
    ? new WebSocketBind(opts.relay, { ...opts, onevent: onevent && ((e) => onevent({ ...e, transport: "websocket" })) })
    : new AutoBind(opts.relay, wt.url, { ...opts, fallback: wt.fallback });
  const start = performance.now();
  try {
    if (typeof config === "string") for (const w of ignoredInPage(config)) (opts.onwarning ?? console.warn)(w);
    return await openTunnel({
      wasm: opts.wasm ?? (() => (compiled ??= WebAssembly.compile(wasmBytes))),
      x25519: nobleX25519,
      clock: { now: () => performance.now() - start },
      epoch: Date.now(),
      openBind: async () => bind,
      // The relay resolves names; the page passes them on as written.
      endpoint: (host, port) => ({ address: host, port }),
      defaultEndpoint: GATEWAY,
      tls: browserTls({ roots: opts.tlsRoots }),
      ...(wt === null ? {} : { defaultMtu: WEBTRANSPORT_MTU }),
    }, config, opts);
  } catch (e) {
    bind.close();
    throw e;
  }
}

export interface WorkerConnectOptions extends Omit<ConnectOptions, "WebSocket"> {
  /**
   * The Worker to run the tunnel in: one started from build/out/browser-worker's
   * source, or your own of adapters/entries/browser-worker.ts (a page whose CSP
   * forbids blob: workers). Default: one started from the source this module carries.
   */
  worker?: Worker;
}

/**
 * As connect, but the tunnel (WebSocket, engine, TCP/IP stack) runs in a
 * dedicated Worker and this thread gets a RemoteTunnel: fetch, connect,
 * ping, resolve, status (a Promise) and close, with the streams' bytes
 * moved across as transferred buffers.
 * @throws ConfigError for a bad config, TypeError for a bad relay URL or a runtime without Worker
 * @example const t = await connectWorker(text, { relay: "wss://relay.example/" }); await (await t.fetch("http://10.0.0.1/")).text();
 */
export async function connectWorker(config: string | TunnelConfig, opts: WorkerConnectOptions): Promise<RemoteTunnel> {
  if (!opts || opts.relay === undefined) throw new TypeError("connectWorker needs a relay URL: connectWorker(config, { relay: 'wss://...' })");
  const { worker: given, onevent, onwarning, webtransport, ...rest } = opts;
  const W = (globalThis as { Worker?: typeof Worker }).Worker;
  if (!given && !W) throw new TypeError("no Worker in this runtime: use connect()");
  let url: string | null = null;
  let worker: Worker;
  if (given) worker = given;
  else {
    const { workerSource } = await import("#browser-worker");
    url = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
    worker = new W!(url, { type: "module", name: "wg-js tunnel" });
  }
  const { WebTransport: _wt, ...wtOptions } = webtransport ?? {};
  const channel = new MessageChannel();
  const relay = String(opts.relay);
  try {
    await new Promise<void>((resolve, reject) => {
      worker.onerror = (e) => { e.preventDefault?.(); reject(new Error(`the tunnel's Worker failed to start: ${e.message ?? "error"}`)); };
      worker.onmessage = (e: MessageEvent) => {
        const d = e.data as { ready?: true; failed?: { name: string; message: string; line?: number }; event?: TransportEvent; warning?: string };
        const f = d.failed;
        if (d.ready) resolve();
        else if (f) {
          reject(f.name === "ConfigError" && f.line ? new ConfigError(f.line, f.message.replace(/^line \d+: /, ""))
            : f.name === "TypeError" ? new TypeError(f.message) : new Error(f.message));
        }
        else if (d.event) onevent?.(d.event);
        else if (d.warning !== undefined) (onwarning ?? console.warn)(d.warning);
      };
      worker.postMessage({ config, options: { ...rest, relay, ...(webtransport ? { webtransport: wtOptions } : {}) }, port: channel.port2 }, [channel.port2]);
    });
  } catch (e) {
    worker.terminate();
    throw e;
  } finally {
    if (url !== null) URL.revokeObjectURL(url);
  }
  return new RemoteTunnel(channel.port1, () => worker.terminate());
}
