// TLS as a capability a host may give a tunnel: a client handshake over any
// byte stream pair (a TCP connection through the tunnel). Node, Deno and Bun
// give one made of node:tls (adapters/node-compat/tls.ts); a page has none
// yet, and a JavaScript TLS could fill the same slot there.
import type { StreamEnd } from "./streams.ts";

/** What a TLS client handshake is told. */
export interface TlsClientOptions {
  /** The server's name: sent as SNI and checked against the certificate. Absent for an IP literal (then the address is checked). */
  servername?: string;
  /** The address or name the certificate must match when `servername` is absent. */
  host: string;
  /** PEM certificates trusted besides the runtime's roots. */
  ca?: string | Uint8Array | (string | Uint8Array)[];
  /** ALPN protocols offered, most wanted first. */
  alpn?: string[];
  /** false accepts any certificate (the default, true, verifies it). */
  rejectUnauthorized?: boolean;
  /** ms the handshake may take (default 30000): a server that accepts but never answers fails then. */
  timeout?: number;
}

/** A TLS connection: the plaintext streams, as a TcpConn's. */
export interface TlsConn extends StreamEnd {
  /** Ends the sending side in order (close_notify, then FIN). */
  close(): Promise<void>;
  /** The ALPN protocol the server chose, or null. */
  readonly alpn: string | null;
}

/**
 * Runs a TLS client handshake over `conn` (which it then owns: closing the
 * TlsConn closes it).
 * @throws Error with one line saying why the handshake failed (an untrusted
 *   certificate, a name that does not match, a closed connection)
 */
export type TlsConnector = (conn: StreamEnd & { close(): unknown }, opts: TlsClientOptions) => Promise<TlsConn>;
