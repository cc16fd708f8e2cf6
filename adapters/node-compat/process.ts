// What Node and Bun do the same way through the node: modules and the
// process global (Bun implements both): files by path with a mode, the
// environment, signals, and who this process is.
import { fstatSync } from "node:fs";
import { access, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
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
  },
  kill: (pid, signal) => {
    try { process.kill(pid, signal as NodeJS.Signals); return true; } catch { return false; }
  },
  pid: () => process.pid,
  isRoot: () => process.getuid?.() === 0,
  env: (n) => process.env[n],
};
