// The TUN reader thread on Node (a worker_threads Worker started by tun.ts):
// linux/ring.ts's reader loop over this thread's own koffi binding.
import { workerData } from "node:worker_threads";
import { runReader, type ReaderStart } from "../linux/ring.ts";
import { loadLibc } from "./libc.ts";

runReader(await loadLibc(), workerData as ReaderStart);
