// What Node and Bun do the same way through the node: modules and the
// process global (Bun implements both): files by path with a mode, the
// environment, signals, and who this process is.
import { fstatSync } from "node:fs";
import { access, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { Readable } from "node:stream";
import type { Files, Processes, Stdio } from "../ports/host.ts";

/** Files, except reading (each runtime reads its own way). */
export const nodeFiles: Omit<Files, "readFile"> = {
  exists: (p) => access(p).then(() => true, () => false),
  remove: (p) => rm(p, { force: true }),
  mkdir: async (p, mode) => { await mkdir(p, { recursive: true, mode }); },
  writeFile: (p, text, mode) => writeFile(p, text, { mode }),
  rename: (from, to) => rename(from, to),
  mode: (p) => stat(p).then((s) => s.mode & 0o7777, () => null),
};

/**
 * stdin and stdout as byte streams (Node and Bun). stdout is written with
 * a callback per chunk, so a slow reader holds the writer back; it is not
 * closed at the end (the process exiting does that).
 */
export function stdioStreams(): { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> } {
  const out = process.stdout;
  out.on("error", () => {}); // the reader went away: the write below fails instead
  return {
    readable: Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>,
    writable: new WritableStream<Uint8Array>({
      write: (chunk) => new Promise<void>((resolve, reject) => { out.write(chunk, (e) => e ? reject(e) : resolve()); }),
    }),
  };
}

/** stdout's permission bits when it is a regular file, else null. */
export function stdoutMode(): number | null {
  try {
    const s = fstatSync(1);
    return s.isFile() ? s.mode & 0o7777 : null;
  } catch {
    return null;
  }
}

/** Signals, the process id, root. */
export const nodeSignals: Pick<Processes, "onSignal" | "kill" | "pid" | "isRoot"> & Pick<Stdio, "env"> = {
  onSignal: (handler) => {
    process.on("SIGINT", () => handler("SIGINT"));
    process.on("SIGTERM", () => handler("SIGTERM"));
    process.on("SIGHUP", () => handler("SIGHUP"));
  },
  kill: (pid, signal) => {
    try { process.kill(pid, signal as NodeJS.Signals); return true; } catch { return false; }
  },
  pid: () => process.pid,
  isRoot: () => process.getuid?.() === 0,
  env: (n) => process.env[n],
};
