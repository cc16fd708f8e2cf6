// `npm run bench [-- --json]`: one run, every figure against its baseline.
//   aead: ChaCha20-Poly1305 through the engine's WASM batch path (encap_batch /
//         decap_batch: route, counter, pad, seal, header and back), node:crypto,
//         libsodium.js and @noble/ciphers, at 64, 1420 and 8192 bytes.
//   handshake: full initiation, response and first data message between two
//         engines, against the bound the X25519 of the same run sets (8
//         X25519 per exchange: 2 key pairs, 6 DH; static-static is precomputed).
//   tunnel, netstack, browser: throughput against their baselines (see each file).
//   gateway: the memory of one edge gateway session, and sessions per 128 MiB.
//   scale: 10k peers and 1M prefixes through the stock wg setconf, beside wireguard-go.
import { createCipheriv, createDecipheriv } from "node:crypto";
import sodium from "libsodium-wrappers";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { instantiate } from "../../src/wasm.ts";
import { parsePrefix } from "../../src/ip.ts";
import { pair, wasmModule, ipv4, nobleX25519, nodeX25519 } from "../helpers/net.ts";
import type { X25519 } from "../../src/crypto.ts";
import { benchNetstack } from "./netstack.ts";
import { benchBrowser } from "./browser.ts";
import { benchTunnel } from "./tunnel.ts";
import { benchScale } from "./scale.ts";
import { benchGatewayMemory } from "./gateway.ts";

const json = process.argv.includes("--json");
// --only=aead,handshake,tunnel,netstack,browser,gateway,scale runs just those sections.
const only = process.argv.find((a) => a.startsWith("--only="))?.slice(7).split(",");
const run = (section: string) => !only || only.includes(section);
const SIZES = [64, 1420, 8192];
const BATCH = 64;
const results: Record<string, number> = {};

function emit(o: Record<string, unknown>): void {
  if (json) console.log(JSON.stringify(o));
  else console.log(Object.entries(o).map(([k, v]) => `${k}=${typeof v === "number" ? +v.toFixed(Math.abs(v) < 10 ? 2 : 1) : v}`).join(" "));
}

/** Runs fn (which processes `bytesPer` bytes) for about `ms`, after a warm-up; MB/s. */
function rate(fn: () => void, bytesPer: number, ms = 1000): number {
  let n = 0;
  const warm = performance.now() + ms / 4;
  while (performance.now() < warm) fn();
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) { for (let i = 0; i < 8; i++) fn(); n += 8; t = performance.now(); }
  return (n * bytesPer) / ((t - t0) / 1000) / 1e6;
}

function wasmAead(size: number): { seal: number; open: number } {
  // Two slots sharing a key: one sends (encap), the other receives (decap).
  const w = instantiate(wasmModule, { maxPeers: 4, maxSlots: 8, batch: BATCH * 3, cell: 8192 + 64, aipNodes: 64 });
  const key = crypto.getRandomValues(new Uint8Array(32));
  const zero = new Uint8Array(32);
  w.growSlots(2);
  w.growPeers(1);
  w.openSlot(0, 0, key, zero, 1, 2, true, 0);
  w.openSlot(1, 0, zero, key, 2, 1, false, 0);
  w.insertPrefix(parsePrefix("10.0.0.0/8"), 0);
  w.x.peer_set_slot(0, 0);
  const pkt = ipv4("10.0.0.1", "10.0.0.2", size);
  const mem = w.mem, d = w.desc;
  const fill = () => {
    for (let i = 0; i < BATCH; i++) { mem.set(pkt, w.cell(i) + 16); d[i * 4] = size; }
  };
  const seal = rate(() => { fill(); w.x.encap_batch(0, BATCH, 1, 65535); }, size * BATCH);
  // Seal+open: every batch is sealed afresh (the window admits each counter once), then opened.
  let sealed = 0;
  const open = rate(() => {
    fill();
    w.x.encap_batch(0, BATCH, 1, 65535);
    for (let i = 0; i < BATCH; i++) {
      const len = d[i * 4];
      mem.copyWithin(w.cell(BATCH + i), w.cell(i), w.cell(i) + len);
      d[(BATCH + i) * 4] = len;
    }
    w.x.decap_batch(BATCH, BATCH, 1);
    sealed += d[BATCH * 4 + 2] === 0 ? 1 : 0;
  }, size * BATCH);
  if (sealed === 0) throw new Error("bench: the WASM path did not open its own packets");
  return { seal, open };
}

function nodeAead(size: number): { seal: number; open: number } {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = new Uint8Array(12);
  const pt = new Uint8Array(size);
  const enc = () => {
    const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    const ct = c.update(pt); c.final();
    return [ct, c.getAuthTag()] as const;
  };
  const seal = rate(() => { enc(); }, size);
  const open = rate(() => {
    const [ct, tag] = enc();
    const dc = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    dc.setAuthTag(tag); dc.update(ct); dc.final();
  }, size);
  return { seal, open };
}

function sodiumAead(size: number): { seal: number; open: number } {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = new Uint8Array(12);
  const pt = new Uint8Array(size);
  const seal = rate(() => { sodium.crypto_aead_chacha20poly1305_ietf_encrypt(pt, null, null, nonce, key); }, size);
  const open = rate(() => {
    const ct = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(pt, null, null, nonce, key);
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt(null, ct, null, nonce, key);
  }, size);
  return { seal, open };
}

function nobleAead(size: number): { seal: number; open: number } {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = new Uint8Array(12);
  const pt = new Uint8Array(size);
  const seal = rate(() => { chacha20poly1305(key, nonce).encrypt(pt); }, size, 500);
  const open = rate(() => {
    const ct = chacha20poly1305(key, nonce).encrypt(pt);
    chacha20poly1305(key, nonce).decrypt(ct);
  }, size, 500);
  return { seal, open };
}

/** Counts fn's calls for about `ms` after a short warm-up: calls, wall seconds, and CPU seconds of this process. */
function count(fn: () => void, ms: number): { n: number; wall: number; cpu: number } {
  const warm = performance.now() + ms / 10;
  while (performance.now() < warm) fn();
  let n = 0;
  const c0 = process.cpuUsage(), t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) { fn(); n++; t = performance.now(); }
  const c = process.cpuUsage(c0);
  return { n, wall: (t - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

/**
 * Handshake exchanges between two engines on `x` (initiation, response,
 * first data message), and X25519 operations of the same `x` (shared() on
 * ready keys, as a handshake's DH runs), measured in alternating slices.
 * Rates are per CPU second of this process as well as per wall second: on a
 * machine shared with other work the wall clock counts their time too, so
 * `ratio` is taken from the CPU figures (which also count the garbage
 * collector's helper threads) and `wallRatio` from the wall clock.
 */
function handshakes(x: X25519, ms = 2000) {
  const { net, a, b } = pair({ x25519: x });
  const packet = ipv4("10.0.0.1", "10.0.0.2", 84, 1);
  const one = () => {
    // Past REJECT_AFTER_TIME without ticking: the next packet needs a new session.
    net.now += 200_000;
    const got = b.tunnel.length;
    a.send(packet);
    net.flush();
    if (b.tunnel.length !== got + 1) throw new Error("bench: handshake did not complete");
    b.tunnel.length = 0;
    net.log.length = 0;
  };
  const k1 = x.generate(), k2 = x.generate();
  const shared = (a: Uint8Array, b: Uint8Array) => { if (x.shared(a, b) === null) throw new Error("bench: zero DH"); };
  const dh = () => shared(k1.privateKey, k2.publicKey);
  // An exchange's X25519 alone, in the handshake's order: both key pairs
  // (and their imports), each DH with a fresh remote ephemeral.
  const mix = () => {
    const ei = x.generate();
    shared(ei.privateKey, k2.publicKey); shared(k2.privateKey, ei.publicKey);
    const er = x.generate();
    shared(er.privateKey, ei.publicKey); shared(er.privateKey, k1.publicKey);
    er.privateKey.fill(0);
    shared(ei.privateKey, er.publicKey); shared(k1.privateKey, er.publicKey);
    ei.privateKey.fill(0);
  };
  const ops = { n: 0, wall: 0, cpu: 0 }, mixes = { n: 0, wall: 0, cpu: 0 }, ex = { n: 0, wall: 0, cpu: 0 };
  const add = (to: typeof ops, r: typeof ops) => { to.n += r.n; to.wall += r.wall; to.cpu += r.cpu; };
  for (let slice = 0; slice < 5; slice++) {
    add(ops, count(dh, ms / 20));
    add(mixes, count(mix, ms / 20));
    add(ex, count(one, ms / 10));
  }
  const x25519PerCpuSecond = ops.n / ops.cpu;
  return {
    x25519PerSecond: ops.n / ops.wall, x25519PerCpuSecond, perSecond: ex.n / ex.wall, perCpuSecond: ex.n / ex.cpu,
    // What an exchange's X25519 costs in operations (8 if key pairs cost no more than a DH), and the ratio it alone allows.
    x25519OpsPerExchange: x25519PerCpuSecond / (mixes.n / mixes.cpu),
  };
}

if (run("handshake")) {
  for (const [impl, x, ms] of [["node-crypto", nodeX25519, 3000], ["noble", nobleX25519, 1500]] as const) {
    const r = handshakes(x, ms), bound = r.x25519PerCpuSecond / 8;
    emit({
      bench: "handshake", impl, ...r, bound, ratio: r.perCpuSecond / bound, wallRatio: r.perSecond / (r.x25519PerSecond / 8),
      ceiling: 8 / r.x25519OpsPerExchange, target: 0.7,
    });
  }
}
if (run("tunnel")) await benchTunnel(emit);
if (run("netstack")) await benchNetstack(emit);
if (run("browser")) await benchBrowser(emit);
if (run("gateway")) await benchGatewayMemory(emit);
if (run("scale")) await benchScale(emit);
