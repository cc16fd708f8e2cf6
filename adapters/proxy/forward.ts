// Static TCP forwarding, as wireproxy's [TCPClientTunnel] and
// [TCPServerTunnel]: listen on the host and connect inside the tunnel, or
// listen inside the tunnel and connect on the host. Every accepted
// connection takes a slot of a shared cap; beyond it new ones are closed at
// once. Also the accept loop the SOCKS5 and HTTP proxies are served by.
import type { TcpConn, TcpListener } from "../../src/netstack/index.ts";
import type { HostServer, HostStream, TcpSockets } from "../ports/host.ts";
import { join, type StreamEnd } from "../ports/streams.ts";
import type { Slots } from "./connections.ts";
import type { TunnelSide } from "./socks5.ts";

type ListenTcp = TcpSockets["listenTcp"];
type ConnectTcp = TcpSockets["connectTcp"];

export function hostEnd(s: HostStream): StreamEnd {
  return { readable: s.readable, writable: s.writable, abort: () => s.close() };
}

export function tunnelEnd(c: TcpConn): StreamEnd {
  return { readable: c.readable, writable: c.writable, abort: () => c.abort() };
}

/**
 * Accepts TCP connections on the host at host:port and runs `handle` on each
 * while a slot is free (the connection is closed at once otherwise).
 */
export function serveHost(listenTcp: ListenTcp, host: string, port: number, slots: Slots,
  handle: (s: HostStream) => Promise<void>): Promise<HostServer> {
  return listenTcp(host, port, (s) => {
    if (!slots.take()) { s.close(); return; }
    handle(s).catch(() => s.close()).finally(() => slots.give());
  });
}

/** [TCPClientTunnel]: each connection to host:port on the host goes to target inside the tunnel. */
export function tcpClientTunnel(listenTcp: ListenTcp, bind: [string, number], target: [string, number], tunnel: TunnelSide,
  slots: Slots): Promise<HostServer> {
  return serveHost(listenTcp, bind[0], bind[1], slots, async (s) => {
    let conn: TcpConn;
    try {
      conn = await tunnel.connect(target[0], target[1]);
    } catch {
      s.close();
      return;
    }
    await join(hostEnd(s), tunnelEnd(conn));
  });
}

/** [TCPServerTunnel]: each connection to `port` inside the tunnel goes to target on the host. */
export function tcpServerTunnel(tunnel: { listen(port: number, on: (c: TcpConn) => void): TcpListener }, port: number,
  connectTcp: ConnectTcp, target: [string, number], slots: Slots): TcpListener {
  return tunnel.listen(port, (conn) => {
    if (!slots.take()) { conn.abort(); return; }
    (async () => {
      let s: HostStream;
      try {
        s = await connectTcp(target[0], target[1]);
      } catch {
        conn.abort();
        return;
      }
      await join(tunnelEnd(conn), hostEnd(s));
    })().catch(() => conn.abort()).finally(() => slots.give());
  });
}

/**
 * [STDIOTunnel]: `stdio` (the process's stdin and stdout) joined to target
 * inside the tunnel, as ssh's ProxyCommand wants. Resolves when both
 * directions have ended: stdin's end half-closes the connection, the
 * target's end closes stdout.
 * @throws NetError when the connection cannot be made (ECONNREFUSED, ETIMEDOUT, ENOTFOUND...)
 */
export async function stdioTunnel(stdio: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> },
  target: [string, number], tunnel: TunnelSide): Promise<void> {
  const conn = await tunnel.connect(target[0], target[1]);
  // Nothing to tear down on our side: the process ends once this resolves.
  await join({ readable: stdio.readable, writable: stdio.writable, abort: () => {} }, tunnelEnd(conn));
}
