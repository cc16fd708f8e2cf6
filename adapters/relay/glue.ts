// What each runtime's relay glue (node.ts, deno.ts, bun.ts) does the same
// way around the core: the idle sweep's timer, the URL it listens on, and the
// grace given to clients to answer the close frame on shutdown. Web-standard
// timers only.
import type { Relay } from "./relay.ts";

/** How long shutdown waits for clients to answer the close frame. */
const CLOSE_GRACE_MS = 500;

/** Runs relay.sweep often enough for its idle timeout (4 times per timeout, 10 ms to 1 s apart); returns the timer. */
export function startSweep(relay: Relay, clock: () => number): ReturnType<typeof setInterval> {
  return setInterval(() => relay.sweep(clock()), Math.min(1000, Math.max(10, relay.idleMs / 4)));
}

/** "ws://127.0.0.1:8080/", "wss://[::1]:8443/". */
export function listenUrl(scheme: "ws" | "wss", host: string, port: number): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}/`;
}

/** Closes every client (1001) and waits until `open()` counts none, or the grace is over. */
export async function closeClients(relay: Relay, clock: () => number, open: () => number): Promise<void> {
  relay.closeAll(clock());
  const deadline = Date.now() + CLOSE_GRACE_MS;
  while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
