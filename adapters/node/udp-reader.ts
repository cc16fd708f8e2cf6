// The UDP GRO reader thread on Node (a worker_threads Worker started by
// udp.ts): linux/udp-ring.ts's recvmmsg loop over this thread's own koffi
// binding.
import { workerData } from "node:worker_threads";
import { runUdpReader, type UdpReaderStart } from "../linux/udp-ring.ts";
import { loadLibc } from "./libc.ts";

runUdpReader(await loadLibc(), workerData as UdpReaderStart);
