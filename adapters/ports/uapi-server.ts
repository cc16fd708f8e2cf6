// Serving the cross-platform userspace API for a running interface, so the
// stock wg(8) works against it: NAME.sock and NAME.pid in the run directory.
// Shared by `wg up` (TUN) and `wg up --netstack`.
import type { Engine, Output } from "../../src/engine.ts";
import { UapiSession } from "../../src/uapi.ts";
import type { Bind } from "./bind.ts";
import type { Clock, Files, Network, Processes, UnixSockets } from "./host.ts";

/** Resolves after the event loop has had a turn (I/O callbacks included). */
const nextTurn: () => Promise<void> = typeof setImmediate === "function"
  ? () => new Promise((r) => setImmediate(r))
  : () => new Promise((r) => setTimeout(r, 0));

/** The longest a large request works in one turn of the event loop (ms). */
const TURN_MS = 3;

/** What serving the UAPI uses of its host. */
export type UapiServerHost = Files & UnixSockets & Network & Pick<Processes, "pid"> & { readonly clock: Clock };

/** What the UAPI drives besides the engine: the UDP bind it may replace, and the output of a set. */
export interface UapiDevice {
  readonly bind: Bind;
  apply(out: Output): void;
  rebind(bind: Bind): Promise<void>;
}

/**
 * Listens on `${runDir}/${name}.sock` and writes the pid file beside it.
 * Returns what removes both again. Throws (nothing left behind) if the
 * directory cannot be made or written.
 */
export async function serveUapi(rt: UapiServerHost, runDir: string, name: string, engine: Engine, device: UapiDevice): Promise<() => Promise<void>> {
  const sock = `${runDir}/${name}.sock`, pidFile = `${runDir}/${name}.pid`;
  // A new listen port (wg set listen-port) means a new UDP bind, marked like the old one.
  const rebind = async (port: number) => {
    if (port === device.bind.port) return;
    const b = await rt.openBind(port, engine.maxDatagram, { offload: engine.offload !== null });
    if (engine.fwmark) b.setMark?.(engine.fwmark);
    await device.rebind(b);
    engine.listenPort = b.port;
  };
  await rt.mkdir(runDir, 0o755);
  await rt.remove(sock);
  const close = await rt.listenUnix(sock, (conn) => {
    const session = new UapiSession({
      onListenPort: (port) => { void rebind(port); },
      onOutput: (out) => device.apply(out),
    });
    const resolve = (address: string, port: number) => ({ address, port });
    let pumping = false;
    const answer = (reply: string) => {
      if (reply) conn.write(reply);
      if (session.closed) conn.close();
    };
    // A large request goes a few slices per turn of the event loop, for at
    // most TURN_MS, so packets (and timers) keep their usual latency
    // meanwhile; and an answer is made only as fast as the client reads it.
    const pump = async () => {
      pumping = true;
      while (session.busy) {
        await nextTurn();
        await conn.drained();
        const start = rt.clock.now();
        do answer(session.work(engine, rt.clock.now(), resolve));
        while (session.busy && rt.clock.now() - start < TURN_MS);
      }
      pumping = false;
    };
    conn.start((chunk) => {
      answer(session.feed(chunk, engine, rt.clock.now(), resolve));
      if (session.busy && !pumping) void pump();
    }, () => {});
  });
  try {
    await rt.writeFile(pidFile, `${rt.pid()}\n`, 0o644);
  } catch (e) {
    close();
    await rt.remove(sock);
    throw e;
  }
  return async () => {
    close();
    await rt.remove(sock);
    await rt.remove(pidFile);
  };
}
