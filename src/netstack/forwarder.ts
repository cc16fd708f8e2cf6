// Forward mode (Stack.forward): the stack stands in for every host the peer
// connects to, the way a gateway does. A SYN to an address that is not the
// stack's own becomes a connection whose local side is that destination.
//
// With `admit`, the SYN is held until the application decides (gVisor's TCP
// forwarder does the same): typically it opens the real connection first,
// so a refused destination is answered with RST|ACK to the SYN, and the peer
// sees ECONNREFUSED instead of a connection that opens and then resets.
// Retransmitted SYNs are ignored while the answer is pending; when it comes,
// the held SYN is fed to the stack again and handled as a listener would.
import { TcpConn } from "./conn.ts";
import type { Tcb, TcbParent } from "./tcb.ts";

/** The flow a SYN asks for, as the forwarder's side will see it. */
export interface ForwardFlow {
  /** Where the peer wants to go: the connection's local side. */
  localAddress: string;
  localPort: number;
  /** The peer. */
  remoteAddress: string;
  remotePort: number;
}

export interface ForwardOptions<T> {
  /**
   * Connections in SYN-RECEIVED plus SYNs waiting for `admit` (default 511).
   * A SYN beyond it takes the place of the oldest half-open connection; a
   * SYN waiting for admit never gives way (its admit, typically an outbound
   * connect, cannot be called back), so with only those the new SYN is dropped.
   */
  backlog?: number;
  /**
   * Decides on a new flow before the handshake is answered: a value (a
   * token, e.g. the outbound socket) accepts it and comes back with the
   * connection; null, false or a rejection refuses it with a reset.
   * Without `admit` every flow is accepted with the token `true`.
   */
  admit?: (flow: ForwardFlow) => T | null | false | Promise<T | null | false>;
  /** Gets back the token of an admitted flow that never reached onConnection (it failed, or forward mode ended). */
  release?: (token: T) => void;
}

/** What admit said about a held SYN. */
interface Decision<T> {
  state: "asking" | "admitted" | "refused";
  token: T | undefined;
}

/** Held SYNs: none is answered yet. */
export const PENDING = 0;
/** Answer with a reset. */
export const REFUSED = 1;

/** The forward-mode listener; made by Stack.forward. */
export class TcpForwarder<T = unknown> implements TcbParent {
  /** Connections in SYN-RECEIVED. */
  halfOpen = 0;
  readonly backlog: number;
  private closedFlag = false;
  private readonly asking = new Map<string, Decision<T>>();
  private readonly tokens = new Map<Tcb, T>();
  private readonly admit: ForwardOptions<T>["admit"];
  private readonly releaseToken: (token: T) => void;

  /** @internal */
  constructor(
    private readonly unlisten: (f: TcpForwarder<T>) => void,
    private readonly onConnection: (conn: TcpConn, token: T) => void,
    opts: ForwardOptions<T>,
  ) {
    const backlog = opts.backlog ?? 511;
    if (!Number.isInteger(backlog) || backlog < 1) throw new RangeError(`invalid backlog ${opts.backlog}`);
    this.backlog = backlog;
    this.admit = opts.admit;
    this.releaseToken = opts.release ?? (() => {});
  }

  /** Ends forward mode: established connections stay, half-open ones are reset, pending decisions are released. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.unlisten(this);
    for (const d of this.asking.values()) if (d.state === "admitted") this.release(d.token!);
    this.asking.clear();
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** SYNs waiting for admit, or admitted and about to be replayed. */
  get waiting(): number {
    return this.asking.size;
  }

  /**
   * @internal The stack's question for a SYN with no connection: PENDING
   * (held, or dropped at the backlog: `full` says so), REFUSED, or the
   * admitted token. At the backlog, `makeRoom` may end a half-open connection. `replay` feeds the held SYN back once admit answers.
   */
  decide(key: string, makeRoom: () => boolean, flow: () => ForwardFlow, replay: () => void): typeof PENDING | typeof REFUSED | { token: T } | "full" {
    if (!this.admit) return { token: true as T };
    const d = this.asking.get(key);
    if (d) {
      if (d.state === "asking") return PENDING;
      this.asking.delete(key);
      return d.state === "refused" ? REFUSED : { token: d.token! };
    }
    if (this.halfOpen + this.asking.size >= this.backlog && !makeRoom()) return "full";
    const entry: Decision<T> = { state: "asking", token: undefined };
    this.asking.set(key, entry);
    const settle = (token: T | null | false | undefined) => {
      if (this.closedFlag || this.asking.get(key) !== entry) {
        if (token !== null && token !== false && token !== undefined) this.release(token);
        return;
      }
      if (token === null || token === false || token === undefined) entry.state = "refused";
      else { entry.state = "admitted"; entry.token = token; }
      replay();
    };
    const f = flow();
    new Promise<T | null | false>((resolve) => resolve(this.admit!(f))).then(settle, () => settle(null));
    return PENDING;
  }

  /** @internal The connection being opened for an admitted token. */
  adopt(t: Tcb, token: T): void {
    this.halfOpen++;
    this.tokens.set(t, token);
  }

  /** @internal An admitted token whose SYN could not become a connection after all (the connection limit). */
  release(token: T): void {
    try { this.releaseToken(token); } catch { /* the application's problem, not the stack's */ }
  }

  /** @internal */
  opened(t: Tcb): void {
    this.halfOpen--;
    const token = this.tokens.get(t) as T;
    this.tokens.delete(t);
    if (this.closedFlag) { t.abort(); this.release(token); return; }
    const conn = new TcpConn(t);
    queueMicrotask(() => this.onConnection(conn, token));
  }

  /** @internal */
  failed(t: Tcb): void {
    this.halfOpen--;
    const token = this.tokens.get(t);
    this.tokens.delete(t);
    if (token !== undefined) this.release(token);
  }
}
