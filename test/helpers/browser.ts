// Debian's Chromium driven by playwright-core, for the tests and the bench
// that run the browser build: optionally inside a network namespace (so the
// page reaches a relay on that namespace's loopback), with the example page
// (examples/) served by examples/serve.mjs on that namespace's loopback, as a
// person would serve it (a page must be local itself to reach a local relay:
// Chromium's Local Network Access checks block a public page).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { ROOT } from "./netns.ts";

export const CHROMIUM = "/usr/bin/chromium";

/** Why Chromium cannot run here, or null. */
export async function browserUnavailable(): Promise<string | null> {
  if (!existsSync(CHROMIUM)) return `no ${CHROMIUM} (apt-get install chromium)`;
  try {
    await import("playwright-core");
  } catch (e) {
    return `playwright-core: ${(e as Error).message}`;
  }
  if (!existsSync(join(ROOT, "build", "out", "browser", "wg.js"))) return "no build/out/browser/wg.js (npm run build)";
  return null;
}


export class ChromiumPage {
  private constructor(
    readonly browser: Browser, readonly page: Page, private readonly dir: string, private readonly server: ChildProcess,
    readonly errors: string[], readonly console: string[],
  ) {}

  /**
   * Launches Chromium (in namespace `ns` if given) and opens the example page;
   * `quic` leaves QUIC on (WebTransport); `server` is the argv of another
   * server of the page, which prints its URL.
   */
  static async open(ns?: string, o: { quic?: boolean; server?: string[] } = {}): Promise<ChromiumPage> {
    const { chromium } = await import("playwright-core");
    const dir = mkdtempSync(join(tmpdir(), "wg-js-chromium-"));
    let exe = CHROMIUM;
    if (ns) {
      // Playwright talks to Chromium over a pipe (fds 3 and 4), which ip netns exec passes on.
      exe = join(dir, "chromium-in-ns");
      writeFileSync(exe, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`);
      chmodSync(exe, 0o755);
    }
    const browser = await chromium.launch({
      executablePath: exe, headless: true, timeout: 30_000,
      args: [
        "--no-sandbox", "--disable-gpu", ...(o.quic ? [] : ["--disable-quic"]), "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
      ],
    }).catch((e) => { rmSync(dir, { recursive: true, force: true }); throw e; });
    const argv = o.server ?? [process.execPath, join(ROOT, "examples", "serve.mjs"), "--port", "0"];
    const server = spawn(ns ? "ip" : argv[0], [...(ns ? ["netns", "exec", ns, ...argv] : argv.slice(1))], { stdio: ["ignore", "pipe", "inherit"] });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      server.stdout!.on("data", (d) => { out += d; const m = /http:\/\/\S+/.exec(out); if (m) resolve(m[0]); });
      server.once("exit", (code) => reject(new Error(`examples/serve.mjs exited (${code})`)));
    }).catch(async (e) => { await browser.close(); rmSync(dir, { recursive: true, force: true }); throw e; });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    const log: string[] = [];
    page.on("console", (m) => { log.push(`${m.type()}: ${m.text()}`); });
    await page.goto(url);
    return new ChromiumPage(browser, page, dir, server, errors, log);
  }

  /** Connects the example page as a person would: the config, the relay URL, the framing, Connect. */
  async connect(config: string, relay: string, token = "", o: { framing?: "batch" | "datagram" } = {}): Promise<void> {
    const p = this.page;
    await p.fill("#config", config);
    await p.fill("#relay", relay);
    await p.fill("#token", token);
    await p.selectOption("#framing", o.framing ?? "batch");
    await p.click("#connect");
    await p.waitForSelector('#state[data-state="open"], #state.error', { timeout: 20_000 });
    const state = await p.getAttribute("#state", "data-state");
    if (state !== "open") throw new Error(`the page did not connect: ${await p.textContent("#state")}`);
  }

  /** Fetches `url` through the page's tunnel with its Fetch button; what the page shows of it. */
  async fetch(url: string, timeout = 60_000): Promise<{ status: string; bytes: number; sha256: string; ms: number; mbps: number; text: string }> {
    const p = this.page;
    await p.fill("#url", url);
    await p.click("#fetch");
    await p.waitForSelector('#result[data-done="true"]', { timeout }).catch(async (e) => {
      throw new Error(`${(e as Error).message.split("\n")[0]}\n${await this.describe()}`);
    });
    const d = await p.$eval("#result", (el) => ({ ...(el as HTMLElement).dataset, text: el.textContent ?? "" }) as Record<string, string | undefined>);
    if (d.status === "error") throw new Error(`the page's fetch failed: ${d.text}`);
    return { status: d.status ?? "", bytes: Number(d.bytes), sha256: d.sha256 ?? "", ms: Number(d.ms), mbps: Number(d.mbps), text: await p.textContent("#body") ?? "" };
  }

  /** What the page shows: its state line and status panel, and its console, for a failure's message. */
  async describe(): Promise<string> {
    const p = this.page;
    const state = await p.textContent("#state").catch(() => "?");
    const status = await p.$$eval("#status dt", (dts) => dts.map((dt) => `${dt.textContent}: ${dt.nextElementSibling?.textContent}`).join("\n")).catch(() => "?");
    return `page state: ${state}\n${status}\nconsole:\n${this.console.slice(-20).join("\n")}`;
  }

  /** Waits until the status panel shows a handshake. */
  async handshake(timeout = 10_000): Promise<void> {
    await this.page.waitForSelector('#status[data-handshake="true"]', { timeout });
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
    this.server.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
