// The UDP reader thread on Bun (a Worker started by host.ts for a
// linux/udp-bind.ts bind): linux/udp-ring.ts's recvmmsg loop over this
// thread's own bun:ffi binding.
import { runUdpReader, type UdpReaderStart } from "../linux/udp-ring.ts";
import { loadLibc } from "./libc.ts";

interface WorkerScope {
  onmessage: ((ev: MessageEvent<UdpReaderStart>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (ev) => {
  runUdpReader(await loadLibc(), ev.data);
  scope.postMessage("done");
  scope.close();
};
