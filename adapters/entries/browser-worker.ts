// The page's tunnel in a dedicated Worker (connectWorker in browser.ts): the
// WebSocket, the engine and the TCP/IP stack all run here, so the page's
// own thread only sees the bytes of its streams. build/build.mjs bundles
// this file, the WASM inside, as the source connectWorker starts a Worker
// from. The first message carries the config, the options and the port the
// tunnel is served on (tunnel/remote.ts); events and warnings come back on
// the Worker itself.
import { connect, type ConnectOptions } from "./browser.ts";
import { serveTunnel, type PortLike } from "../tunnel/remote.ts";
import type { TunnelConfig } from "../tunnel/tunnel.ts";

interface Start {
  config: string | TunnelConfig;
  options: Omit<ConnectOptions, "onevent" | "onwarning" | "WebSocket">;
  port: MessagePort;
}

const scope = globalThis as unknown as PortLike;
scope.onmessage = (e: MessageEvent) => {
  scope.onmessage = null;
  const { config, options, port } = e.data as Start;
  void connect(config, {
    ...options,
    onevent: (event) => scope.postMessage({ event }),
    onwarning: (warning) => scope.postMessage({ warning }),
  }).then((tunnel) => {
    serveTunnel(port, tunnel);
    scope.postMessage({ ready: true });
  }, (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    scope.postMessage({ failed: { name: e.name, message: e.message, line: (e as { line?: number }).line } });
  });
};
