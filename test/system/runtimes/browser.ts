// A browser (Chromium): engine.wasm is fetched and compiled as it streams in,
// the way a web page loads it. The result, or the error, goes into the page
// for test/runtimes.test.ts to read.
import { exchange } from "./exchange.ts";

const report = (text: string) => {
  const out = document.getElementById("result")!;
  out.textContent = text;
  out.dataset.done = "true";
};

try {
  const wasm = await WebAssembly.compileStreaming(fetch("engine.wasm"));
  report(JSON.stringify(exchange(wasm, navigator.userAgent, "compileStreaming(fetch)")));
} catch (e) {
  report(JSON.stringify({ error: e instanceof Error ? e.stack ?? e.message : String(e) }));
}
