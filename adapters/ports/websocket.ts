// The server side of WebSockets (and of WebTransport, where a host has it):
// what the relay (adapters/relay) listens with. A host implements it with
// its own server (node:http and the `ws` package, Deno.serve, Bun.serve);
// the application decides, per request, before the upgrade, and gets each
// accepted socket's messages.

/** An HTTP request asking to become a WebSocket, as the server sees it before answering. */
export interface UpgradeRequest {
  /** The request target or full URL ("/?to=..." or "http://host/?to=..."). */
  url: string;
  /** GET with "Upgrade: websocket". */
  websocket: boolean;
  origin: string | null;
  /** The client's address and port ("192.0.2.1:5000", "[::1]:5000"), for log lines. */
  remote: string;
  /** The subprotocols the client offers (Sec-WebSocket-Protocol), in its order; none when it offers none. */
  protocols: string[];
}

/** A refusal, answered before any upgrade: an HTTP status and a one-line body. */
export interface Refusal {
  status: number;
  message: string;
}

/** An accepted WebSocket, server side. */
export interface ServerSocket {
  /** Sends one binary message. */
  send(data: Uint8Array): void;
  /** Starts the closing handshake (the server cuts the connection if it does not finish). */
  close(code: number, reason: string): void;
  /** Bytes queued and not yet written to the connection. */
  buffered(): number;
}

/** What the application does with an accepted socket's events. */
export interface SocketEvents {
  /** A message: bytes for a binary one, a string for a text one. */
  message(data: Uint8Array | string): void;
  /**
   * The socket is gone: closed by the client (with its close code), or by the
   * server for a message over maxMessage ("too-big", 1009) or a broken frame
   * ("protocol", 1002).
   */
  closed(why: "client" | "too-big" | "protocol", code: number): void;
}

/** The application's side of a WebSocket server; `T` is what admit hands on to open. */
export interface WebSocketHandler<T> {
  /**
   * Before the upgrade: refuse (answered as it is), or accept with what open
   * needs and the subprotocol to answer (one of req.protocols; null or
   * absent: none).
   */
  admit(req: UpgradeRequest): { refuse: Refusal } | { accept: T; protocol?: string | null };
  /** After the upgrade; returns the socket's event handlers, or null when the application closed it at once. */
  open(socket: ServerSocket, accepted: T, req: UpgradeRequest): SocketEvents | null;
}

export interface WebSocketListenOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /**
   * The largest message taken: a larger one closes its socket with 1009
   * (closed "too-big"), or, on a host whose server takes any size, reaches
   * the application to refuse.
   */
  maxMessage: number;
  /** A certificate and its key (PEM): wss: instead of ws:. Only where `webSocketTls` is true. */
  tls?: { cert: string; key: string };
}

/** A listening WebSocket server. */
export interface WebSocketListener {
  readonly host: string;
  /** The port bound (the real one when 0 was asked for). */
  readonly port: number;
  /** Sockets open now. */
  connections(): number;
  /** Stops listening and cuts every connection still open. */
  close(): Promise<void>;
}

/** WebSocket servers on the host. */
export interface WebSocketServers {
  /** Whether serveWebSockets takes `tls` (wss:). */
  readonly webSocketTls: boolean;
  /** Listens on host:port; rejects with the system's error when the port cannot be bound. */
  serveWebSockets<T>(options: WebSocketListenOptions, handler: WebSocketHandler<T>): Promise<WebSocketListener>;
}

/** A WebTransport session (HTTP/3 over QUIC) that asked to be accepted. */
export interface IncomingSession {
  /** The extended CONNECT's URL. */
  readonly url: string;
  /** The client's address and port. */
  readonly remote: string;
  /** Closes the session at once with `code` and `reason` (its only answer: the CONNECT was already answered). */
  refuse(code: number, reason: string): Promise<void>;
  /** Waits until the session is ready. */
  accept(): Promise<WebTransportSession>;
}

/** A ready WebTransport session's datagrams. */
export interface WebTransportSession {
  /** The largest datagram the session can send now. */
  readonly maxDatagramSize: number;
  /** Queues one datagram; false when it is larger than maxDatagramSize. */
  send(data: Uint8Array): boolean;
  /** Whether the queue of datagrams to send is full (the sender should drop, as UDP does). */
  full(): boolean;
  close(code: number, reason: string): void;
  /** Each datagram the client sends, until the session ends. */
  readonly datagrams: AsyncIterable<Uint8Array>;
  /** Resolves when the session has ended, with the close code when there was one. */
  readonly closed: Promise<number | undefined>;
}

/** A listening WebTransport endpoint. */
export interface WebTransportListener {
  /** The UDP port. */
  readonly port: number;
  /** Stops accepting and closes the endpoint. */
  close(): void;
}

/** WebTransport servers on the host (HTTP/3 on UDP; Deno has them). */
export interface WebTransportServers {
  /** Accepts sessions on UDP host:port with the certificate; `session` is called for each. */
  serveWebTransport(options: { host: string; port: number; cert: string; key: string },
    session: (incoming: IncomingSession) => void): Promise<WebTransportListener>;
}

/**
 * The server side of a WebSocket accepted from a fetch handler, as the
 * standard WebSocket has it (workerd's WebSocketPair, Deno.upgradeWebSocket):
 * the part the edge gateway uses.
 */
export interface AcceptedWebSocket {
  binaryType?: string;
  readonly readyState: number;
  send(data: Uint8Array | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "message", listener: (e: { data: unknown }) => void): void;
  addEventListener(type: "close" | "error", listener: () => void): void;
}

/**
 * A platform's WebSocket upgrade of a fetch Request: the socket, and the
 * response (101) to return, answering `protocol` as the subprotocol when given.
 */
export type UpgradeWebSocket = (request: Request, protocol?: string) => { socket: AcceptedWebSocket; response: Response };
