// A Linux TUN device for Bun: opened through bun:ffi (linux/tun.ts), read by
// a Worker (tun-reader.ts) into the shared ring that linux/ring-tun.ts
// drains into the engine's memory. bun:ffi calls are synchronous, so a
// blocking read would stall the event loop.
import type { Tun } from "../ports/tun.ts";
import { RingTun } from "../linux/ring-tun.ts";
import { openOffloadedTun } from "../linux/offload.ts";
import { loadLibc } from "./libc.ts";

/** Bun's Worker has unref() beyond the web Worker: the reader does not keep the process alive. */
type BunWorker = Worker & { unref(): void };

/**
 * Creates (or attaches to) TUN interface `name`, with offloads if asked and granted.
 * @throws TunError or NoTunError, each with a one-line reason
 */
export async function openBunTun(name: string, mtu: number, opts: { offload?: boolean } = {}): Promise<Tun> {
  const libc = await loadLibc();
  const t = openOffloadedTun(libc, name, opts.offload ?? false);
  return new RingTun(libc, t.fd, name, mtu, {
    spawn: (start) => {
      // Bun resolves ./tun-reader.js to the .ts beside it when run from source.
      const w = new Worker(new URL("./tun-reader.js", import.meta.url).href) as BunWorker;
      let finished = false;
      w.addEventListener("message", () => { finished = true; });
      w.postMessage(start);
      w.unref();
      return { onDied: (died) => w.addEventListener("error", () => { if (!finished) died(); }) };
    },
    yieldToIo: () => new Promise((resolve) => setImmediate(resolve)),
  }, t.vnet, t.text);
}
