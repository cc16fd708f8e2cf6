// The one workerd module the workerd host imports, typed for tsc (no
// @cloudflare/workers-types among the dependencies).
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
