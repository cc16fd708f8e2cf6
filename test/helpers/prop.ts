// Settings shared by the fast-check suites. The seed is fixed so a run
// repeats exactly; a failure prints its seed and shrink path, and FC_SEED,
// FC_PATH and FC_RUNS replay it or explore further without editing a suite:
//   FC_SEED=$RANDOM FC_RUNS=500 node build/test.mjs prop
import type { Parameters } from "fast-check";

const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};

/** fast-check parameters: the suite's own run count and a fixed seed unless overridden. */
export function params<T>(numRuns: number, seed: number): Parameters<T> {
  const s = env.FC_SEED, r = env.FC_RUNS, p = env.FC_PATH;
  return { numRuns: r ? Number(r) : numRuns, seed: s ? Number(s) : seed, ...(p ? { path: p } : {}), includeErrorInReport: true };
}
