// The attacker of test/system/hostile.test.ts: a Node program started in the
// reference peer's namespace, aiming at the real UDP port of a running
// `wg up`. It knows what any attacker on the path knows (the target's
// address and public key, and packets captured off the wire) and holds one
// key of its own ("mallory", a peer the target has configured, for what an
// authenticated peer can try). Commands come one JSON object a line on
// stdin; each answer is one JSON line on stdout, with the command's id.
//
//   node attacker.proc.js '{"target":"192.168.77.2","port":51821,"targetPublic":"<base64>","malloryPrivate":"<base64>"}'
//
// Also `listen PORT` mode: counts UDP datagrams arriving on PORT by source
// address, for the suite to see what a spoofed inner packet reached.
import { createSocket, type Socket } from "node:dgram";
import { createInterface } from "node:readline";
import { wasmBytes } from "#engine-wasm";
import { Engine, type Output } from "../../../src/engine.ts";
import { keyFromBase64 } from "../../../src/config.ts";
import { hash, mac, LABEL_COOKIE, LABEL_MAC1 } from "../../../src/crypto.ts";
import { instantiate } from "../../../src/wasm.ts";
import { nobleX25519 } from "../../../src/x25519.ts";
import { udpPacket } from "../../helpers/netstack-craft.ts";

const rand = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const u32le = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

if (process.argv[2] === "listen") listen(Number(process.argv[3]));
else attack(JSON.parse(process.argv[2]) as Options);

interface Options { target: string; target6: string; port: number; targetPublic: string; malloryPrivate: string }

/** One bound socket and what came back to it. */
interface Source {
  address: string;
  socket: Socket;
  byType: number[];
  /** The latest cookie reply, with the mac1 of the initiation it answers (the one last sent from here). */
  cookieReply: Uint8Array | null;
  lastMac1: Uint8Array | null;
  /** The cookie, decrypted from cookieReply. */
  cookie: Uint8Array | null;
}

function listen(port: number): void {
  const counts: Record<string, number> = {};
  const s = createSocket("udp4");
  s.on("message", (_m, r) => { counts[r.address] = (counts[r.address] ?? 0) + 1; });
  s.bind(port, () => process.stdout.write(`${JSON.stringify({ listening: port })}\n`));
  createInterface({ input: process.stdin }).on("line", (line) => {
    const { id } = JSON.parse(line) as { id: number };
    process.stdout.write(`${JSON.stringify({ id, counts })}\n`);
  });
}

async function attack(o: Options): Promise<void> {
  const targetPublic = keyFromBase64(o.targetPublic);
  const mac1Key = hash(LABEL_MAC1, targetPublic);
  const cookieKey = hash(LABEL_COOKIE, targetPublic);
  const aead = instantiate(new WebAssembly.Module(wasmBytes), { maxPeers: 1, maxSlots: 4, batch: 1, cell: 2048, aipNodes: 16 });
  const sources = new Map<string, Source>();

  async function source(address: string): Promise<Source> {
    let s = sources.get(address);
    if (s) return s;
    s = await bound(address);
    sources.set(address, s);
    return s;
  }

  async function bound(address: string): Promise<Source> {
    const socket = createSocket({ type: address.includes(":") ? "udp6" : "udp4", recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
    const src: Source = { address, socket, byType: [0, 0, 0, 0, 0], cookieReply: null, lastMac1: null, cookie: null };
    socket.on("message", (m) => {
      const t = m.length >= 4 ? u32le(m, 0) : 0;
      src.byType[t < 5 ? t : 0]++;
      if (t === 3 && m.length === 64 && src.lastMac1) {
        src.cookieReply = new Uint8Array(m);
        const cookie = new Uint8Array(16);
        if (aead.xopen(cookieKey, src.cookieReply.subarray(8, 32), src.lastMac1, src.cookieReply.subarray(32, 64), cookie)) src.cookie = cookie;
      }
    });
    socket.on("error", () => {});
    await new Promise<void>((resolve, reject) => { socket.once("error", reject); socket.bind(0, address, () => resolve()); });
    return src;
  }

  const main = await source("0.0.0.0");
  // IPv6 sources aim at the target's IPv6 address, the same socket of `wg up` (it listens on both).
  const send = (s: Source, b: Uint8Array) => new Promise<void>((resolve) => s.socket.send(b, o.port, s.address.includes(":") ? o.target6 : o.target, () => resolve()));

  /** Sends `count` datagrams made by `make(i)` at `rate` a second (bursts each ms), from `from(i)`. */
  async function paced(count: number, rate: number, make: (i: number) => Uint8Array, from: (i: number) => Source): Promise<number> {
    const start = performance.now();
    let i = 0;
    while (i < count) {
      const due = Math.min(count, Math.ceil(((performance.now() - start) / 1000) * rate) + 1);
      const batch: Promise<void>[] = [];
      for (; i < due; i++) batch.push(send(from(i), make(i)));
      await Promise.all(batch);
      await sleep(1);
    }
    return i;
  }

  /** An initiation with random contents and a valid mac1 (no mac2, or mac2 under `cookie`). */
  function initiation(s: Source, cookie: Uint8Array | null = null, ephemeral?: Uint8Array): Uint8Array {
    const m = rand(148);
    m.set([1, 0, 0, 0]);
    if (ephemeral) m.set(ephemeral, 8);
    const m1 = mac(mac1Key, m.subarray(0, 116));
    m.set(m1, 116);
    s.lastMac1 = m1;
    if (cookie) m.set(mac(cookie, m.subarray(0, 132)), 132);
    else m.fill(0, 132, 148);
    return m;
  }

  // ---- mallory: an authenticated peer of the target ----
  let mallory: Engine | null = null;
  let malloryTimer: ReturnType<typeof setTimeout> | null = null;
  const malloryIn: Uint8Array[] = [];
  /** When set, mallory's socket answers the target's initiations with this instead of its engine. */
  let intercept: ((m: Uint8Array) => void) | null = null;
  const malloryClock = () => performance.now();
  const mSource = await bound("0.0.0.0");
  function take(out: Output): void {
    for (let i = 0; i < out.datagrams; i++) {
      const b = out.datagramBuf[i].slice(out.datagramOff[i], out.datagramOff[i] + out.datagramLen[i]);
      mSource.socket.send(b, out.datagramTo[i].port, out.datagramTo[i].address);
    }
    for (let i = 0; i < out.packets; i++) malloryIn.push(out.packetBuf[i].slice(out.packetOff[i], out.packetOff[i] + out.packetLen[i]));
    if (malloryTimer) clearTimeout(malloryTimer);
    if (out.wake !== Infinity && mallory) malloryTimer = setTimeout(() => mallory && take(mallory.tick(malloryClock())), Math.max(0, out.wake - malloryClock()));
  }
  mSource.socket.removeAllListeners("message");
  mSource.socket.on("message", (m, r) => {
    const b = new Uint8Array(m);
    const t = b.length >= 4 ? u32le(b, 0) : 0;
    mSource.byType[t < 5 ? t : 0]++;
    if (intercept && t === 1) { intercept(b); return; }
    if (!mallory) return;
    mallory.memory.set(b.subarray(0, Math.min(b.length, mallory.maxDatagram)), mallory.datagramOffset(0));
    mallory.datagramLengths[0] = b.length;
    mallory.datagramFrom[0] = { address: r.address, port: r.port };
    take(mallory.fromNetwork(1, malloryClock()));
  });
  function mallorySend(packets: Uint8Array[]): void {
    const e = mallory!;
    for (let at = 0; at < packets.length; at += e.batch) {
      const n = Math.min(e.batch, packets.length - at);
      for (let i = 0; i < n; i++) { e.memory.set(packets[at + i], e.packetOffset(i)); e.packetLengths[i] = packets[at + i].length; }
      take(e.fromTunnel(n, malloryClock()));
    }
  }

  const commands: Record<string, (a: Record<string, unknown>) => Promise<Record<string, unknown>>> = {
    /** Binds a socket on each address (added to the namespace's link by the suite). */
    async bind(a) {
      for (const addr of a.addresses as string[]) await source(addr);
      return { bound: sources.size };
    },

    /** Every length 0..max, each with every message type's first bytes (and some that are none). */
    async garbage(a) {
      const max = a.max as number, types = [0, 1, 2, 3, 4, 5, 0xff, 0x01000000, 0xffffffff];
      const sent = await paced((max + 1) * types.length, a.rate as number, (i) => {
        const len = Math.floor(i / types.length), t = types[i % types.length];
        const b = rand(len);
        for (let k = 0; k < 4 && k < len; k++) b[k] = (t >>> (8 * k)) & 0xff;
        return b;
      }, () => main);
      return { sent };
    },

    /** Captured datagrams again: each `copies` times, in a shuffled order, from `from`. */
    async replay(a) {
      const packets = (a.packets as string[]).map(unb64);
      const list: Uint8Array[] = [];
      for (let c = 0; c < (a.copies as number); c++) list.push(...packets);
      for (let i = list.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [list[i], list[j]] = [list[j], list[i]]; }
      const from = await source(a.from as string);
      const sent = await paced(list.length, a.rate as number, (i) => list[i], () => from);
      return { sent };
    },

    /** Transport data for the target's receiver `index` with the given counters and random ciphertext. */
    async forged(a) {
      const counters = (a.counters as string[]).map(BigInt), lengths = a.lengths as number[];
      const list: Uint8Array[] = [];
      for (const c of counters) {
        for (const len of lengths) {
          const b = rand(16 + len);
          b.set([4, 0, 0, 0]);
          new DataView(b.buffer).setUint32(4, a.index as number, true);
          new DataView(b.buffer).setBigUint64(8, c, true);
          list.push(b);
        }
      }
      const sent = await paced(list.length, 2000, (i) => list[i], () => main);
      return { sent };
    },

    /** Initiations whose ephemeral key is each low-order point (valid mac1); counts what comes back. */
    async lowOrder(a) {
      const s = await source(a.from as string);
      const before = s.byType.slice();
      const points = (a.points as string[]).map((h) => Uint8Array.from(Buffer.from(h, "hex")));
      let sent = 0;
      for (const p of points) for (let k = 0; k < 3; k++) { await send(s, initiation(s, null, p)); sent++; await sleep(25); }
      await sleep(500);
      return { sent, answered: s.byType.reduce((n, x, i) => n + x - before[i], 0) };
    },

    /**
     * Initiations with valid mac1 from `addresses` round robin at `rate` for
     * `seconds`; with `cookies`, each source that holds a cookie sends a valid
     * mac2 (a legitimate-looking client), else none.
     */
    async flood(a) {
      const from = await Promise.all((a.addresses as string[]).map(source));
      const before = from.reduce((n, s) => n + s.byType[3], 0);
      const useCookies = a.cookies === true;
      const sent = await paced(Math.round((a.seconds as number) * (a.rate as number)), a.rate as number,
        (i) => { const s = from[i % from.length]; return initiation(s, useCookies ? s.cookie : null); }, (i) => from[i % from.length]);
      await sleep(300);
      const replies = from.reduce((n, s) => n + s.byType[3], 0) - before;
      return { sent, cookieReplies: replies, withCookie: from.filter((s) => s.cookie !== null).length };
    },

    /**
     * Under load (the suite keeps a flood running): initiations with a mac2
     * under a forged cookie, and under a genuine cookie of another source;
     * both must be answered with a cookie reply, not a handshake.
     */
    async cookies(a) {
      const from = await Promise.all((a.addresses as string[]).map(source));
      const holder = from.find((s) => s.cookie !== null);
      if (!holder) return { error: "no source holds a cookie" };
      const others = from.filter((s) => s !== holder);
      const before = others.reduce((n, s) => n + s.byType[3], 0);
      let forged = 0, borrowed = 0;
      for (let i = 0; i < (a.count as number); i++) {
        const s = others[i % others.length];
        await send(s, initiation(s, rand(16))); forged++;
        await send(s, initiation(s, holder.cookie)); borrowed++;
        await sleep(2);
      }
      await sleep(500);
      return { forged, borrowed, cookieReplies: others.reduce((n, s) => n + s.byType[3], 0) - before };
    },

    /** Cookie replies the sources received, for replaying. */
    async cookieReplies() {
      return { packets: [...sources.values()].filter((s) => s.cookieReply).map((s) => b64(s.cookieReply!)) };
    },

    /** Mallory's own handshake with the target; resolves once its session is up. */
    async malloryUp(a) {
      mallory ??= new Engine({ wasm: new WebAssembly.Module(wasmBytes), x25519: nobleX25519, epoch: Date.now() - performance.now(), mtu: 65000 - 80, maxPeers: 1 });
      take(mallory.set({
        privateKey: keyFromBase64(o.malloryPrivate), replacePeers: true,
        peers: [{ publicKey: targetPublic, endpoint: { address: o.target, port: o.port }, allowedIps: ["0.0.0.0/0"], replaceAllowedIps: true }],
      }, malloryClock()));
      const end = performance.now() + (a.ms as number);
      while (performance.now() < end) {
        mallorySend([udpPacket(a.inner as string, a.dst as string, 40000, 9, new Uint8Array(8))]);
        await sleep(200);
        if (mallory.status().peers[0]?.lastHandshakeTime) return { up: true, port: mSource.socket.address().port };
      }
      return { up: false };
    },

    /** Inner UDP packets from mallory's session: `count` of each {src, dst, port, size}. */
    async mallorySend(a) {
      let sent = 0;
      for (const p of a.packets as { src: string; dst: string; port: number; size: number; count: number }[]) {
        const packet = udpPacket(p.src, p.dst, 40000, p.port, new Uint8Array(Math.max(0, p.size - 28)));
        for (let i = 0; i < p.count; i++) { mallorySend([packet]); sent++; if (i % 50 === 49) await sleep(5); }
      }
      await sleep(300);
      return { sent };
    },

    /** Raw datagrams of `sizes` bytes from mallory's socket (no encryption): a datagram larger than any cell. */
    async rawSizes(a) {
      let sent = 0;
      for (const size of a.sizes as number[]) {
        const b = rand(size);
        b.set([4, 0, 0, 0].slice(0, size));
        await new Promise<void>((resolve) => mSource.socket.send(b, o.port, o.target, () => resolve()));
        sent++;
      }
      return { sent };
    },

    /**
     * Until `ms` pass, each initiation the target sends to mallory's socket is
     * answered with responses whose ephemeral key is each low-order point
     * (valid mac1 under the target's key, its sender index echoed).
     */
    async answerLowOrder(a) {
      const points = (a.points as string[]).map((h) => Uint8Array.from(Buffer.from(h, "hex")));
      let initiations = 0, responses = 0;
      const before = mSource.byType.slice();
      intercept = (init) => {
        initiations++;
        for (const p of points) {
          const r = rand(92);
          r.set([2, 0, 0, 0]);
          r.set(init.subarray(4, 8), 8); // receiver: the initiation's sender
          r.set(p, 12);
          r.set(mac(mac1Key, r.subarray(0, 60)), 60);
          r.fill(0, 76, 92);
          mSource.socket.send(r, o.port, o.target);
          responses++;
        }
      };
      await sleep(a.ms as number);
      intercept = null;
      const after = mSource.byType;
      return { initiations, responses, answeredWith: { data: after[4] - before[4], response: after[2] - before[2], cookie: after[3] - before[3] } };
    },

    async received() {
      return { mallory: mSource.byType, packets: malloryIn.length };
    },
  };

  createInterface({ input: process.stdin }).on("line", (line) => {
    const { id, cmd, ...a } = JSON.parse(line) as { id: number; cmd: string } & Record<string, unknown>;
    const f = commands[cmd];
    (f ? f(a) : Promise.resolve({ error: `no command ${cmd}` }))
      .then((r) => process.stdout.write(`${JSON.stringify({ id, ...r })}\n`))
      .catch((e) => process.stdout.write(`${JSON.stringify({ id, error: String(e?.stack ?? e) })}\n`));
  });
  process.stdout.write(`${JSON.stringify({ ready: true, malloryPort: mSource.socket.address().port })}\n`);
}
