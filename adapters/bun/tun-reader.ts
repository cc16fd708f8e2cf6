// The TUN reader thread on Bun (a Worker started by tun.ts): linux/ring.ts's
// reader loop over this thread's own bun:ffi binding. bun:ffi calls block
// their thread, so they happen here and never on the main thread's loop.
import { runReader, type ReaderStart } from "../linux/ring.ts";
import { loadLibc } from "./libc.ts";

interface WorkerScope {
  onmessage: ((ev: MessageEvent<ReaderStart>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (ev) => {
  runReader(await loadLibc(), ev.data);
  scope.postMessage("done");
  scope.close();
};
