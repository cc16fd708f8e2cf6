// `npm run bench`'s gateway figure: what one edge gateway session (an engine,
// a stack and a device behind one WebSocket) costs in memory, measured by
// opening sessions against the gateway in this process with a stand-in
// WebSocket, and how many of them fit in an edge isolate's 128 MiB. Idle
// sessions: each TCP flow adds its stack buffers on top (see src/netstack).
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createGateway } from "../../adapters/gateway/gateway.ts";
import type { AcceptedWebSocket } from "../../adapters/ports/websocket.ts";
import { wasmModule } from "../helpers/net.ts";
import { keypair } from "../helpers/netns.ts";

type Emit = (o: Record<string, unknown>) => void;
const SESSIONS = 40;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function settle(): NodeJS.MemoryUsage {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage();
}

export async function benchGatewayMemory(emit: Emit): Promise<void> {
  const server = keypair(), client = keypair();
  const closers: (() => void)[] = [];
  const gw = createGateway({
    config: `[Interface]\nPrivateKey = ${server.priv}\nAddress = 10.66.0.1/24\n\n[Peer]\nPublicKey = ${client.pub}\nAllowedIPs = 10.66.0.2/32\n`,
    wasm: wasmModule,
    upgrade: () => {
      const socket: AcceptedWebSocket = {
        readyState: 1, send() {}, close() {},
        addEventListener(type: string, listener: (e: { data: unknown }) => void) { if (type === "close") closers.push(() => listener({ data: null })); },
      };
      return { socket, response: new Response(null, { status: 200 }) };
    },
    connect: () => Promise.reject(new Error("no egress in this measurement")),
    maxSessions: SESSIONS + 1,
  });
  const open = () => gw.fetch(new Request("http://gateway/", { headers: { upgrade: "websocket" } }));
  await open(); // the first pays for compiled code and shared tables
  const before = settle();
  for (let i = 1; i < SESSIONS; i++) await open();
  const after = settle();
  if (gw.status().sessions !== SESSIONS) throw new Error(`bench: ${gw.status().sessions} gateway sessions open, not ${SESSIONS}`);
  for (const close of closers) close();
  const per = (k: keyof NodeJS.MemoryUsage) => (after[k] - before[k]) / (SESSIONS - 1) / 1024;
  const rssKiB = per("rss"), heapKiB = per("heapUsed"), externalKiB = per("external");
  // An isolate's own memory (the runtime and this module) comes first; what is left is the sessions'.
  const isolateMiB = before.heapUsed / 1048576;
  emit({
    bench: "gateway-session", state: "idle", rssKiB, heapKiB, externalKiB,
    sessionsPer128MiB: Math.floor((128 * 1024 - before.heapUsed / 1024) / Math.max(rssKiB, heapKiB + externalKiB)), isolateHeapMiB: isolateMiB,
  });
}
