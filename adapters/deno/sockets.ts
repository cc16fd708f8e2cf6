// Deno's sockets as the ports type them, for code that runs in a fetch
// handler (the edge gateway under `deno serve`): a WebSocket accepted with
// Deno.upgradeWebSocket, and outbound TCP with Deno.connect (half-close
// kept, tcp-streams.ts). Needs --allow-net.
import type { TcpStream } from "../ports/host.ts";
import type { AcceptedWebSocket } from "../ports/websocket.ts";
import { tcpStreams } from "./tcp-streams.ts";

/** Accepts the request's WebSocket: the server end, and the 101 response to return. */
export function upgradeWebSocket(request: Request, protocol?: string): { socket: AcceptedWebSocket; response: Response } {
  const { socket, response } = Deno.upgradeWebSocket(request);
  // Set by hand: Deno's `protocol` option looks for the name in the offer split at ", " only (ws sends "a,b").
  if (protocol) response.headers.set("sec-websocket-protocol", protocol);
  return { socket: socket as unknown as AcceptedWebSocket, response };
}

/** A name's IPv4 and IPv6 addresses from DNS (not /etc/hosts); none when it has none or DNS fails. */
export async function resolveName(name: string): Promise<string[]> {
  const [a, aaaa] = await Promise.all((["A", "AAAA"] as const).map((t) => Deno.resolveDns(name, t).catch(() => [] as string[])));
  return [...a, ...aaaa];
}

/** Opens a TCP connection to host:port; resolves once connected, rejects when refused or unreachable. */
export async function connectTcp(host: string, port: number): Promise<TcpStream> {
  return tcpStreams(await Deno.connect({ transport: "tcp", hostname: host, port }));
}
