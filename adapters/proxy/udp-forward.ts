// UDP port forwarding, as wireproxy's [UDPProxyTunnel]: datagrams to a host
// UDP port go to a target inside the tunnel, and the target's answers come
// back to whoever sent them. Each client (address and port) gets a flow of
// its own, a tunnel UDP socket on a port of its own, so the target can tell
// clients apart as it would behind a NAT. A flow ends when it has carried
// nothing either way for the inactivity timeout; at the cap on flows the
// least recently used one makes room for a new client, as a NAT table does.
import type { UdpSocket } from "../../src/netstack/index.ts";
import { formatAddress, parseAddress } from "../../src/ip.ts";
import type { HostUdp, UdpSockets } from "../ports/host.ts";

type BindUdp = UdpSockets["bindUdp"];

/** What the forward needs of the tunnel. */
export interface UdpTunnelSide {
  udp(port?: number): UdpSocket;
  resolve(name: string): Promise<string[]>;
}

export interface UdpForwardOptions {
  /** A flow carrying nothing either way for this long (ms) is closed; 0: never. */
  idleMs: number;
  /** Flows at once (default 1024); past it the least recently used is closed. */
  maxFlows?: number;
  /** Clock for the idle timeout (ms, monotonic). */
  now: () => number;
}

/** A running forward. */
export interface UdpForward {
  /** The host port bound (the real one when 0 was asked for). */
  readonly port: number;
  /** Clients with a flow now. */
  readonly flows: number;
  /** Stops it: the host socket and every flow's tunnel socket close. */
  close(): void;
}

/** An address literal in the stack's own spelling (as received datagrams name their sender), or null for a name. */
function addressText(s: string): string | null {
  try {
    return formatAddress(parseAddress(s));
  } catch {
    return null;
  }
}

/** Datagrams a flow holds while its target's name resolves; more are dropped. */
const PENDING_MAX = 32;

interface Flow {
  sock: UdpSocket | null;
  /** The target's address once resolved. */
  target: string | null;
  pending: Uint8Array[];
  last: number;
  closed: boolean;
}

/**
 * Forwards UDP from host bind[0]:bind[1] to target inside the tunnel.
 * @throws the host's error when the port cannot be bound (EADDRINUSE...)
 */
export async function udpProxyTunnel(bindUdp: BindUdp, bind: [string, number], target: [string, number], tunnel: UdpTunnelSide,
  opts: UdpForwardOptions): Promise<UdpForward> {
  const maxFlows = opts.maxFlows ?? 1024;
  // A Map iterates in insertion order: a flow is moved to the end when used, so the first is the least recently used.
  const flows = new Map<string, Flow>();
  let host: HostUdp | null = null;

  const end = (key: string, f: Flow) => {
    if (f.closed) return;
    f.closed = true;
    f.pending.length = 0;
    f.sock?.close();
    flows.delete(key);
  };

  const start = (key: string, f: Flow, address: string, port: number) => {
    const literal = addressText(target[0]);
    const resolved = literal !== null ? Promise.resolve([literal]) : tunnel.resolve(target[0]);
    resolved.then((list) => {
      if (f.closed) return;
      const first = list.length ? addressText(list[0]) : null;
      if (first === null) { end(key, f); return; }
      f.target = first;
      try {
        f.sock = tunnel.udp();
      } catch {
        end(key, f); // no free port in the stack: this client's datagrams are dropped until it tries again
        return;
      }
      for (const d of f.pending) send(f, d);
      f.pending.length = 0;
      // Only the target's answers go back: anything else reaching this port is not part of the flow.
      const reader = f.sock.readable.getReader();
      (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || f.closed) return;
          if (value.address !== f.target || value.port !== target[1]) continue;
          f.last = opts.now();
          host?.send(value.data, address, port);
        }
      })().catch(() => {}).finally(() => end(key, f));
    }, () => end(key, f));
  };

  const send = (f: Flow, data: Uint8Array) => {
    try {
      f.sock!.send(data, f.target!, target[1]);
    } catch { /* too large for the MTU, no route: dropped, as UDP may */ }
  };

  const receive = (data: Uint8Array, address: string, port: number) => {
    const key = `${address}|${port}`;
    let f = flows.get(key);
    if (f) {
      flows.delete(key);
      flows.set(key, f);
    } else {
      if (flows.size >= maxFlows) {
        const [oldKey, old] = flows.entries().next().value!;
        end(oldKey, old);
      }
      f = { sock: null, target: null, pending: [], last: 0, closed: false };
      flows.set(key, f);
      start(key, f, address, port);
    }
    f.last = opts.now();
    if (f.sock) send(f, data);
    else if (f.pending.length < PENDING_MAX) f.pending.push(data.slice()); // the host's buffer is not ours after this call
  };

  host = await bindUdp(bind[0], bind[1], receive, { receiveBuffer: 1 << 20 });
  const sweep = opts.idleMs > 0 ? setInterval(() => {
    const now = opts.now();
    for (const [key, f] of flows) if (now - f.last >= opts.idleMs) end(key, f);
  }, Math.max(250, Math.min(opts.idleMs / 4, 5000))) : null;

  const h = host;
  return {
    port: h.port,
    get flows() { return flows.size; },
    close() {
      if (sweep !== null) clearInterval(sweep);
      for (const [key, f] of [...flows]) end(key, f);
      h.close();
    },
  };
}
