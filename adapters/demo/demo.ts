// `npm start`: WireGuard without root or configuration. Two peers with fresh
// keys in this one process, each a Device (engine + userspace TCP/IP
// stack as its Tun) on its own loopback UDP port; an HTTP server inside the tunnel on
// one, a fetch of its page through the tunnel from the other, then both
// interfaces as `wg show` prints them. Runtime-agnostic: the runtime comes in
// as `deps` (build/demo.mjs runs it on Node).
import { formatShow } from "../../src/show.ts";
import { openTunnel, type Tunnel, type TunnelDeps } from "../tunnel/tunnel.ts";

export interface DemoDeps extends TunnelDeps {
  stdout(text: string): void;
}

const SERVER = { v4: "10.0.0.1", v6: "fd00::1" };
const CLIENT = { v4: "10.0.0.2", v6: "fd00::2" };

/**
 * Runs the demo; resolves with the exit code (0 when the page came through).
 * @example await demo(nodeRuntime([]));
 */
export async function demo(deps: DemoDeps): Promise<number> {
  const out = (s: string) => deps.stdout(s + "\n");
  const ka = deps.x25519.generate(), kb = deps.x25519.generate();
  let server: Tunnel | null = null, client: Tunnel | null = null;
  try {
    server = await openTunnel(deps, {
      privateKey: ka.privateKey, listenPort: 0, addresses: [SERVER.v4, SERVER.v6],
      peers: [{ publicKey: kb.publicKey, allowedIps: [`${CLIENT.v4}/32`, `${CLIENT.v6}/128`] }],
    });
    client = await openTunnel(deps, {
      privateKey: kb.privateKey, listenPort: 0, addresses: [CLIENT.v4, CLIENT.v6],
      peers: [{
        publicKey: ka.publicKey, endpoint: { address: "127.0.0.1", port: server.engine.listenPort },
        allowedIps: [`${SERVER.v4}/32`, `${SERVER.v6}/128`], persistentKeepalive: 25,
      }],
    });
    out(`# two WireGuard peers in one process, no TUN device and no root:`);
    out(`#   server ${SERVER.v4} on UDP 127.0.0.1:${server.engine.listenPort}, client ${CLIENT.v4} on UDP 127.0.0.1:${client.engine.listenPort}`);

    // An HTTP server listening inside the tunnel, on the server peer's netstack.
    let served = 0;
    server.serve(80, (req) => {
      served++;
      const body = `Hello from ${SERVER.v4}, inside the tunnel.\n` +
        `You asked for ${new URL(req.url).pathname} (${req.method}) from ${CLIENT.v4}.\n` +
        `Every byte of this page was encrypted by one peer and decrypted by the other.\n`;
      return new Response(body, { headers: { "content-type": "text/plain", "content-length": String(new TextEncoder().encode(body).length) } });
    });

    const rtt = await client.ping(SERVER.v4);
    out(`# ping ${SERVER.v4} through the tunnel: ${rtt.toFixed(2)} ms (the first packet started the handshake)`);
    out(`# GET http://${SERVER.v4}/ through the tunnel:\n`);
    const res = await client.fetch(`http://${SERVER.v4}/`);
    out(`HTTP/1.1 ${res.status} ${res.statusText}`);
    res.headers.forEach((v, k) => out(`${k}: ${v}`));
    out("");
    deps.stdout(await res.text());
    out("");
    // A moment for the connection's last segments (FIN, ACK) to land, so the two transfer counts agree.
    await new Promise((r) => setTimeout(r, 100));
    const now = deps.epoch + deps.clock.now();
    deps.stdout(formatShow("demo-server", server.status(), now));
    out("");
    deps.stdout(formatShow("demo-client", client.status(), now));
    return res.status === 200 && served === 1 ? 0 : 1;
  } finally {
    await client?.close();
    await server?.close();
  }
}
