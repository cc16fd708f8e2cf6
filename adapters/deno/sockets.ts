// Deno's sockets as the ports type them, for code that runs in a fetch
// handler (the edge gateway under `deno serve`): a WebSocket accepted with
// Deno.upgradeWebSocket, and outbound TCP with Deno.connect (half-close
// kept, tcp-streams.ts). Needs --allow-net.
import type { TcpStream } from "../ports/host.ts";
import type { AcceptedWebSocket } from "../ports/websocket.ts";
import { tcpStreams } from "./tcp-streams.ts";

/** Accepts the request's WebSocket: the server end, and the 101 response to return. */
export function upgradeWebSocket(request: Request): { socket: AcceptedWebSocket; response: Response } {
  const { socket, response } = Deno.upgradeWebSocket(request);
  return { socket: socket as unknown as AcceptedWebSocket, response };
}

/** Opens a TCP connection to host:port; resolves once connected, rejects when refused or unreachable. */
export async function connectTcp(host: string, port: number): Promise<TcpStream> {
  return tcpStreams(await Deno.connect({ transport: "tcp", hostname: host, port }));
}
