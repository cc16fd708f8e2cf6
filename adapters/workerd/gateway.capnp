# The WireGuard gateway on workerd, run locally:
#   node build/build.mjs                      # makes build/out/edge/workerd/{worker.js,engine.wasm,workerd.capnp}
#   WG_CONFIG="$(cat gateway.conf)" npx workerd serve build/out/edge/workerd/workerd.capnp
# Clients open ws://127.0.0.1:8080/ (any path); GET /status answers JSON.
#
# engine.wasm is a `wasm` module: workerd compiles it when it loads the
# config, and the worker imports the WebAssembly.Module (it may not compile
# bytes itself). WG_CONFIG comes from the environment here; `text = embed
# "gateway.conf"` would put it in the config instead.
#
# Outbound connect() goes through the worker's globalOutbound, the "net"
# service below: public addresses only, checked after names resolve. The
# gateway also refuses loopback, private, link-local and metadata
# destinations unless WG_ALLOW names them; to reach one of this host's own
# services, name it in WG_ALLOW and add "local" (loopback) or "private"
# here, both: either alone still refuses it.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .gateway),
    (name = "net", network = (allow = ["public"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8080", http = (), service = "main")],
);

const gateway :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "engine.wasm", wasm = embed "engine.wasm"),
  ],
  bindings = [
    (name = "WG_CONFIG", fromEnvironment = "WG_CONFIG"),
    (name = "WG_ALLOW", fromEnvironment = "WG_ALLOW"),
  ],
  globalOutbound = "net",
  compatibilityDate = "2025-09-01",
);
