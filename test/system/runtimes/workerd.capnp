# workerd config for test/runtimes.test.ts, which copies it beside the bundled
# worker.js and engine.wasm and sets the socket's address with --socket-addr.
# engine.wasm is declared a `wasm` module: workerd compiles it at load time
# and the worker imports the WebAssembly.Module.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "engine.wasm", wasm = embed "engine.wasm"),
  ],
  compatibilityDate = "2025-09-01",
);
