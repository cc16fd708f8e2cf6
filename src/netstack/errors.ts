// The errors the stack's promises and streams reject with. Bad arguments to
// the public API throw TypeError or RangeError instead.

export type NetErrorCode =
  /** The peer answered the SYN with a reset (nothing listens there). */
  | "ECONNREFUSED"
  /** The peer reset an established connection. */
  | "ECONNRESET"
  /** Retransmissions, probes or DNS queries went unanswered. */
  | "ETIMEDOUT"
  /** This side aborted the connection. */
  | "ECONNABORTED"
  /** A write after the sending side was closed. */
  | "EPIPE"
  /** The port is taken. */
  | "EADDRINUSE"
  /** No local address of the destination's family, or no route. */
  | "ENETUNREACH"
  /** A limit on connections, sockets, pings or queries was reached. */
  | "EMFILE"
  /** The name does not exist or has no address of the families asked for. */
  | "ENOTFOUND"
  /** The DNS servers failed to answer usefully (SERVFAIL, REFUSED, malformed). */
  | "ESERVFAIL";

export class NetError extends Error {
  constructor(readonly code: NetErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = "NetError";
  }
}
