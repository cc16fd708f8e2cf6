// The UDP GRO reader thread on Deno (a Worker started by udp.ts):
// linux/udp-ring.ts's recvmmsg loop over this thread's own Deno.dlopen,
// with a blocking poll(): it runs off the main thread.
import { runUdpReader, type UdpReaderStart } from "../linux/udp-ring.ts";
import { readerLibc } from "./libc.ts";

interface WorkerScope {
  onmessage: ((ev: MessageEvent<UdpReaderStart>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.onmessage = (ev) => {
  runUdpReader(readerLibc(), ev.data);
  scope.postMessage("done");
  scope.close();
};
