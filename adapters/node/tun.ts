// A Linux TUN device for Node: opened through koffi (linux/tun.ts), read by
// a worker thread (tun-reader.ts) into the shared ring that linux/ring-tun.ts
// drains into the engine's memory. Node cannot poll a TUN fd, and reads
// through libuv's thread pool top out near 20k packets/s; a blocking read()
// loop in a worker read more than 117k/s.
import { Worker } from "node:worker_threads";
import type { Tun } from "../ports/tun.ts";
import { RingTun } from "../linux/ring-tun.ts";
import { openOffloadedTun } from "../linux/offload.ts";
import { loadLibc } from "./libc.ts";

/**
 * Creates (or attaches to) TUN interface `name`, with offloads if asked and granted.
 * @throws TunError, NoTunError or MissingPackageError, each with a one-line reason
 */
export async function openNodeTun(name: string, mtu: number, opts: { offload?: boolean } = {}): Promise<Tun> {
  const libc = await loadLibc();
  const t = openOffloadedTun(libc, name, opts.offload ?? false);
  return new RingTun(libc, t.fd, name, mtu, {
    spawn: (start) => {
      const w = new Worker(new URL("./tun-reader.js", import.meta.url), { workerData: start });
      w.unref();
      return { onDied: (died) => { w.on("error", died); } };
    },
    yieldToIo: () => new Promise((resolve) => setImmediate(resolve)),
  }, t.vnet, t.text);
}
