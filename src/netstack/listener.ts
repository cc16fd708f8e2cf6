// A listening TCP port (RFC 9293 LISTEN): it takes SYNs for its port (the
// stack creates a TCB in SYN-RECEIVED per SYN, up to the backlog) and hands
// each connection to the application once it is ESTABLISHED.
import { TcpConn } from "./conn.ts";
import type { Tcb, TcbParent } from "./tcb.ts";

/** A listening port; made by Stack.listen. */
export class TcpListener implements TcbParent {
  /** Connections in SYN-RECEIVED. */
  halfOpen = 0;
  private closedFlag = false;

  /** @internal */
  constructor(
    private readonly unlisten: (l: TcpListener) => void,
    readonly port: number,
    private readonly onConnection: (conn: TcpConn) => void,
    readonly backlog: number,
  ) {}

  /** Stops accepting; established connections are not affected, half-open ones are reset. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.unlisten(this);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** @internal */
  opened(t: Tcb): void {
    this.halfOpen--;
    if (this.closedFlag) { t.abort(); return; }
    const conn = new TcpConn(t);
    queueMicrotask(() => this.onConnection(conn));
  }

  /** @internal */
  failed(): void {
    this.halfOpen--;
  }
}
