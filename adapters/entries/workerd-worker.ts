// The gateway's worker as build/edge.mjs bundles it into
// build/out/edge/workerd/worker.js (with engine.wasm beside it as a `wasm`
// module, see adapters/workerd/gateway.capnp): what a worker of your own
// writes with "wg-js/workerd".
import wasm from "#engine-wasm-module";
import { gatewayWorker } from "./workerd.ts";

export default gatewayWorker(wasm);
