// Endpoint re-resolution, as wireguard-tools' reresolve-dns.sh does it
// from cron, but driven by the engine: a peer whose Endpoint was given as a
// name is resolved again once one of its handshake initiations has gone
// unanswered for a second or two (a live peer answers in milliseconds), and
// again at each retry, and the new address is used when it differs: the next
// retry (REKEY_TIMEOUT, 5 s, after the first initiation) already goes there.
// A peer that answers is left alone, so an endpoint learned by roaming is
// never overwritten by the name; one that does not costs one lookup per
// retry, the cadence at which it is being retried anyway.
import type { Endpoint, Engine, Output } from "../../src/engine.ts";
import type { Clock } from "./host.ts";
import { parseAddress } from "../../src/ip.ts";

/** A peer's Endpoint as the config wrote it, when it is a name. */
export interface NamedEndpoint {
  publicKey: Uint8Array;
  host: string;
  port: number;
}

/** What the watcher needs of the engine. */
export interface EndpointPeers {
  unansweredHandshakes(publicKey: Uint8Array): number | null;
  endpointOf(publicKey: Uint8Array): Endpoint | null;
}

export interface WatchOptions {
  peers: EndpointPeers;
  named: NamedEndpoint[];
  resolve(host: string, port: number): Promise<Endpoint>;
  /** Sets one peer's endpoint (an updateOnly set through the device, so its output is carried out). */
  setEndpoint(publicKey: Uint8Array, endpoint: Endpoint): void;
  /** One line per move, e.g. to stderr; never a key beyond the public one's base64. */
  log?(line: string): void;
  /** How often the peers are looked at (ms, default 1000). */
  every?: number;
}

/** Whether `host` is an IP address literal (nothing to re-resolve). */
export function isAddressLiteral(host: string): boolean {
  try {
    parseAddress(host.replace(/^\[(.*)\]$/, "$1"));
    return true;
  } catch {
    return false;
  }
}

/** The peers of a parsed config whose Endpoint is a name. */
export function namedEndpoints(peers: { publicKey: Uint8Array; endpoint?: { host: string; port: number } }[]): NamedEndpoint[] {
  return peers.flatMap((p) => p.endpoint && !isAddressLiteral(p.endpoint.host)
    ? [{ publicKey: p.publicKey.slice(), host: p.endpoint.host, port: p.endpoint.port }] : []);
}

/**
 * Watches `named` peers and re-resolves each whose initiations go
 * unanswered. Returns a stopper. With no named peers it does nothing.
 */
export function watchNamedEndpoints(o: WatchOptions): () => void {
  if (o.named.length === 0) return () => {};
  // The retry count last resolved at, per peer: one lookup per retry, not one per look;
  // and how many looks in a row found an initiation unanswered.
  const resolvedAt = new Map<NamedEndpoint, number>();
  const looks = new Map<NamedEndpoint, number>();
  const busy = new Set<NamedEndpoint>();
  let stopped = false;
  const look = () => {
    for (const n of o.named) {
      const unanswered = o.peers.unansweredHandshakes(n.publicKey);
      if (unanswered === null || unanswered === 0) {
        // Answered: the next unanswered run starts afresh.
        resolvedAt.delete(n);
        looks.delete(n);
        continue;
      }
      // The first look may come just after the initiation left: wait for the next.
      const seen = (looks.get(n) ?? 0) + 1;
      looks.set(n, seen);
      if (seen < 2 || busy.has(n) || resolvedAt.get(n) === unanswered) continue;
      busy.add(n);
      resolvedAt.set(n, unanswered);
      o.resolve(n.host, n.port).then((ep) => {
        if (stopped) return;
        const now = o.peers.endpointOf(n.publicKey);
        if (now && now.address === ep.address && now.port === ep.port) return;
        o.setEndpoint(n.publicKey, ep);
        o.log?.(`${n.host}:${n.port} now resolves to ${fmt(ep)}${now ? ` (was ${fmt(now)})` : ""}: handshakes go there`);
      }, () => { /* the name does not resolve now: the old endpoint stays, tried again at the next retry */ })
        .finally(() => busy.delete(n));
    }
  };
  const timer = setInterval(look, o.every ?? 1000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/**
 * watchNamedEndpoints on a running device: each move is an updateOnly set of
 * that one peer's endpoint, its output carried out by the device.
 */
export function watchDevice(device: { readonly engine: Engine; apply(out: Output): void }, clock: Clock, named: NamedEndpoint[],
  resolve: WatchOptions["resolve"], log?: (line: string) => void): () => void {
  return watchNamedEndpoints({
    peers: device.engine, named, resolve, log,
    setEndpoint: (publicKey, endpoint) => {
      if (device.engine.isClosed) return;
      device.apply(device.engine.set({ peers: [{ publicKey, updateOnly: true, endpoint }] }, clock.now()));
    },
  });
}

function fmt(e: Endpoint): string {
  return e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
