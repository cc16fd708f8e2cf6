// A Deno UDP socket with a receive callback: the host sockets of the CLI's
// proxies (runtime.ts, SOCKS5 UDP ASSOCIATE) and the relay's per-client
// sockets (adapters/relay/deno.ts). The WireGuard port itself is udp.ts.

export interface DatagramSocket {
  /** The port bound (the real one when 0 was asked for). */
  readonly port: number;
  /** Sends one datagram; false once the socket is closed. */
  send(data: Uint8Array, address: string, port: number): boolean;
  close(): void;
}

/** Binds UDP `host`:`port` (brackets allowed around IPv6); `receive` gets each datagram. */
export function listenDatagram(host: string, port: number, receive: (data: Uint8Array, address: string, port: number) => void): DatagramSocket {
  const s = Deno.listenDatagram({ transport: "udp", hostname: host.replace(/^\[|\]$/g, ""), port });
  let open = true;
  void (async () => {
    try {
      for await (const [data, from] of s) {
        const a = from as Deno.NetAddr;
        receive(data, a.hostname, a.port);
      }
    } catch { /* closed */ }
  })();
  return {
    port: (s.addr as Deno.NetAddr).port,
    send: (data, address, p) => {
      if (!open) return false;
      s.send(data, { transport: "udp", hostname: address, port: p }).catch(() => {});
      return true;
    },
    close: () => { if (open) { open = false; try { s.close(); } catch { /* closed already */ } } },
  };
}
