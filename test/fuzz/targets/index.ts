// The fuzz targets by name, for the corpus regression test. Each file here
// is also bundled on its own by build/fuzz.mjs for Jazzer.js.
import { fuzz as handshake } from "./handshake.ts";
import { fuzz as transport } from "./transport.ts";
import { fuzz as uapi } from "./uapi.ts";
import { fuzz as wgquick } from "./wgquick.ts";

export const TARGETS: Record<string, (data: Uint8Array) => void> = { handshake, transport, uapi, wgquick };
