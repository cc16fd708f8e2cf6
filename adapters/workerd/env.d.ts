// The few workerd APIs the gateway's workerd entry uses (no @cloudflare/workers-types here).
declare module "cloudflare:sockets" {
  export interface Socket {
    readonly readable: ReadableStream<Uint8Array>;
    readonly writable: WritableStream<Uint8Array>;
    readonly opened: Promise<unknown>;
    readonly closed: Promise<void>;
    close(): Promise<void>;
  }
  export function connect(address: { hostname: string; port: number } | string, options?: { allowHalfOpen?: boolean; secureTransport?: "off" | "on" | "starttls" }): Socket;
}

/** workerd's server-side WebSocket: accept() before use. */
interface WorkerdWebSocket extends WebSocket {
  accept(): void;
}

declare class WebSocketPair {
  0: WorkerdWebSocket;
  1: WorkerdWebSocket;
}

interface ResponseInit {
  /** workerd: the client end of a WebSocketPair, with status 101. */
  webSocket?: WebSocket;
}
