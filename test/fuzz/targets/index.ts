// The fuzz targets by name, for the corpus regression test. Each file here
// is also bundled on its own by build/fuzz.mjs for Jazzer.js.
import { fuzz as dns } from "./dns.ts";
import { fuzz as gateway } from "./gateway.ts";
import { fuzz as handshake } from "./handshake.ts";
import { fuzz as httpProxy } from "./http-proxy.ts";
import { fuzz as netstack } from "./netstack.ts";
import { fuzz as relay } from "./relay.ts";
import { fuzz as socks5 } from "./socks5.ts";
import { fuzz as transport } from "./transport.ts";
import { fuzz as uapi } from "./uapi.ts";
import { fuzz as wgquick } from "./wgquick.ts";

/** A target throws (or rejects) only on a defect; an async one is marked `export const ASYNC = true`. */
export const TARGETS: Record<string, (data: Uint8Array) => void | Promise<void>> = {
  dns, gateway, handshake, "http-proxy": httpProxy, netstack, relay, socks5, transport, uapi, wgquick,
};
