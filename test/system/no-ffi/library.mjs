// Run with FFI loading made to fail (see the hooks beside this file, or
// Deno's --deny-ffi): imports every entry of the package, then opens two
// tunnels on loopback with the host's own openTunnel and pings through them.
//   <runtime> library.mjs ENTRIES_DIR EXT HOST
// prints one line, "OK entries=N rtt=MS", or throws.
const args = globalThis.Deno ? Deno.args : process.argv.slice(2);
const [dir, ext, host] = args;
const url = (name) => new URL(`${name}.${ext}`, dir.endsWith("/") ? dir : dir + "/").href;
const names = ["core", "node", "deno", "bun", "browser", "workerd", "deno-gateway", "relay"];
let exports = 0;
for (const n of names) exports += Object.keys(await import(url(n))).length;
const m = await import(url(host));
const ka = m.nobleX25519.generate(), kb = m.nobleX25519.generate();
const a = await m.openTunnel({
  privateKey: ka.privateKey, listenPort: 0, addresses: ["10.232.0.1"],
  peers: [{ publicKey: kb.publicKey, allowedIps: ["10.232.0.2/32"] }],
});
const b = await m.openTunnel({
  privateKey: kb.privateKey, listenPort: 0, addresses: ["10.232.0.2"],
  peers: [{ publicKey: ka.publicKey, endpoint: { address: "127.0.0.1", port: a.engine.listenPort }, allowedIps: ["10.232.0.1/32"] }],
});
try {
  const rtt = await b.ping("10.232.0.1", { timeout: 5000 });
  if (m.keyToBase64(a.status().peers[0].publicKey) !== m.keyToBase64(kb.publicKey)) throw new Error("wrong peer");
  console.log(`OK entries=${names.length} exports=${exports} rtt=${rtt.toFixed(1)}`);
} finally {
  await b.close();
  await a.close();
}
