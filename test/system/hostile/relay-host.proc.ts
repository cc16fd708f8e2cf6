// The relay as a user starts it from the installed package, on whichever
// runtime runs this file: argv[2] is the package entry to import (its
// ./node, ./deno or ./bun export), argv[3] the relay's options as JSON. It
// prints where it listens, then its counters every 200 ms, one JSON object
// a line, for the hostile suite to read.
export {};

const args: string[] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const [entry, options] = args;
const { startRelay } = await import(entry) as { startRelay(o: unknown): Promise<{ url: string; port: number; stats(): unknown }> };
const relay = await startRelay(JSON.parse(options));
console.log(JSON.stringify({ url: relay.url, port: relay.port }));
setInterval(() => console.log(JSON.stringify({ stats: relay.stats() })), 200);
