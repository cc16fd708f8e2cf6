// Hostile input end to end, at the real UDP port of a running `wg up` on
// Node, Deno and Bun (the rig: hostile/rig.ts; the attacker:
// hostile/attacker.proc.ts). Each class runs while a legitimate ping stream
// flows through the same interface from wireguard-go, and records: that our
// process is alive, the stream's delivery, our process's resident memory
// before and after, and the stats=1 counters that moved. Each runtime prints
// the table; a class fails on a crash, delivery under 95% (80% for the
// sustained flood), memory grown past MEMORY_BOUND_MIB (plus the table the class fills), or
// its own check.
// The classes that need a virtual clock (a vanished peer, wall-clock jumps,
// cookies gone stale when the secret rotates) are in
// test/src/hostile-clock.test.ts, on the same three runtimes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readFileSync } from "node:fs";
import { keyFromBase64, keyHex } from "../../src/config.ts";
import { notRun, run, sleep, unavailable, type RuntimeName } from "../helpers/netns.ts";
import { udpDatagrams, type Captured } from "./hostile/pcap.ts";
import { A4, ATTACKER, B4, GO_PORT, INNER_A, INNER_B, INNER_M, OUR_PORT, SOURCES, peerStatus, pingStream, rig, stats, uapi, type Rig } from "./hostile/rig.ts";
import { rssMiB } from "../helpers/proc.ts";

/** How much our resident memory may grow during one class (MiB): the tables are bounded, so this is the GC's slack. */
const MEMORY_BOUND_MIB = 96;
/** wg up's AllowedIPs table at its bound: 2^20 trie nodes of 56 bytes (adapters/cli/up.ts), resident once used. */
const ALLOWED_IPS_MIB = (1 << 20) * 56 / (1 << 20);
/** The sustained flood: initiations a second with a valid mac1, for FLOOD_SECONDS. */
const FLOOD_RATE = 8000, FLOOD_SECONDS = 60;

// Curve25519 points of small order, canonical and not (each plus p): any DH with one is all zeros.
const LOW_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
  "4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
];

interface Row {
  name: string;
  alive: boolean;
  delivery: number;
  sent: number;
  rss: [number, number];
  moved: string;
  note: string;
  failure: string | null;
  minDelivery: number;
  /** What the class may grow our memory by: the GC's slack plus any table it fills (MiB). */
  maxGrowth: number;
}

function why(): string | null {
  const u = unavailable();
  if (u) return u;
  if (!existsSync(ATTACKER)) return `${ATTACKER} is not built (node build/build.mjs)`;
  return null;
}

const toolMissing = async (): Promise<string | null> => (await run(["tcpdump", "--version"])).code === 0 ? null : "missing tcpdump (apt-get install --no-install-recommends tcpdump)";

function table(runtime: string, rows: Row[]): string {
  const lines = [`| ${runtime} class | alive | legit delivery | RSS MiB before → after (bound) | counters that moved | notes |`, "|---|---|---|---|---|---|"];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${r.alive ? "yes" : "NO"} | ${(100 * r.delivery).toFixed(1)}% of ${r.sent} | ${r.rss[0]} → ${r.rss[1]} (+${r.maxGrowth}) | ${r.moved || "none"} | ${r.note}${r.failure ? ` FAILED: ${r.failure}` : ""} |`);
  }
  return lines.join("\n");
}

/** The counters that differ, as "name +delta". */
function moved(before: Record<string, number>, after: Record<string, number>): string {
  return Object.keys(after).filter((k) => k !== "under_load" && after[k] !== before[k]).map((k) => `${k} +${after[k] - (before[k] ?? 0)}`).join(", ");
}

/** One class: the ping stream around `attack`, and what it moved. `attack` returns a note, and throws when its own check fails. */
async function klass(r: Rig, rows: Row[], name: string, attack: (before: Record<string, number>) => Promise<string>, minDelivery = 0.95, maxGrowth = MEMORY_BOUND_MIB): Promise<void> {
  const before = await stats(r.name);
  const rss0 = rssMiB(r.ours.child.pid!);
  const stream = pingStream(r.L, r.L.a, INNER_B);
  await sleep(300);
  let note = "", failure: string | null = null;
  try {
    note = await attack(before);
  } catch (e) {
    failure = e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
  const { sent, received } = await stream.stop();
  const alive = r.ours.running;
  const after = alive ? await stats(r.name) : before;
  const rss1 = alive ? rssMiB(r.ours.child.pid!) : NaN;
  rows.push({ name, alive, delivery: sent ? received / sent : 0, sent, rss: [rss0, rss1], moved: moved(before, after), note, failure, minDelivery, maxGrowth });
}

const hex = (b64: string) => keyHex(keyFromBase64(b64));
const b64 = (d: Uint8Array) => Buffer.from(d).toString("base64");
const type = (c: Captured) => (c.data.length >= 4 ? c.data[0] : -1);

async function classes(r: Rig, runtime: RuntimeName): Promise<Row[]> {
  const rows: Row[] = [];
  const a = r.attacker;
  const goHex = hex(r.keys.go.pub), malloryHex = hex(r.keys.mallory.pub);
  const captured = () => udpDatagrams(new Uint8Array(readFileSync(r.capFile)));
  const fromGo = (t: number) => captured().filter((c) => c.src === A4 && c.sport === GO_PORT && c.dport === OUR_PORT && type(c) === t);
  const fromOurs = (t: number) => captured().filter((c) => c.src === B4 && c.sport === OUR_PORT && type(c) === t);
  const legitEndpoint = async () => (await peerStatus(r.name, goHex)).endpoint;

  await klass(r, rows, "garbage: every length 0..2000 x 9 type prefixes", async () => {
    const { sent } = await a.ask("garbage", { max: 2000, rate: 6000 });
    return `${sent} datagrams`;
  });

  await klass(r, rows, "captured data replayed, reordered, duplicated, from a new address", async (before) => {
    const data = fromGo(4).slice(-400);
    assert.ok(data.length >= 50, `captured ${data.length} data packets`);
    const ep = await legitEndpoint();
    const { sent } = await a.ask("replay", { packets: data.map((c) => b64(c.data)), copies: 2, from: SOURCES.v4[0], rate: 3000 });
    await sleep(200);
    const s = await stats(r.name);
    if (s.drop_replay - before.drop_replay !== sent) throw new Error(`${sent} replays, ${s.drop_replay - before.drop_replay} counted as replays`);
    if ((await legitEndpoint()) !== ep) throw new Error(`the endpoint moved to ${await legitEndpoint()}`);
    return `${sent} replays, endpoint stays ${ep}`;
  });

  await klass(r, rows, "captured initiation replayed later", async () => {
    const inits = fromGo(1);
    assert.ok(inits.length >= 1, "an initiation was captured");
    const last = (await peerStatus(r.name, goHex)).last_handshake_time_sec;
    const res = await a.ask("replay", { packets: inits.map((c) => b64(c.data)), copies: 3, from: SOURCES.v4[1], rate: 100 });
    await sleep(300);
    const now = (await peerStatus(r.name, goHex)).last_handshake_time_sec;
    if (now !== last) throw new Error(`the latest handshake moved from ${last} to ${now}`);
    if ((await legitEndpoint()) !== `${A4}:${GO_PORT}`) throw new Error("the endpoint moved");
    return `${res.sent} replays of ${inits.length}; latest handshake stays`;
  });

  await klass(r, rows, "captured responses and cookie replies replayed", async () => {
    const list = [...fromOurs(2), ...fromOurs(3), ...fromGo(2), ...fromGo(3)];
    assert.ok(list.length >= 1, "a response was captured");
    const res = await a.ask("replay", { packets: list.map((c) => b64(c.data)), copies: 3, from: SOURCES.v4[2], rate: 100 });
    return `${res.sent} replays`;
  });

  await klass(r, rows, "forged counters near the limits on the live receiver index", async (before) => {
    const index = new DataView(fromGo(4).at(-1)!.data.buffer).getUint32(4, true);
    const counters = ["0", "1", "8192", "4294967295", "4294967296", "281474976710656", "1152921504606846976",
      "18446744073709543423", "18446744073709543424", "18446744073709551614", "18446744073709551615"];
    const { sent } = await a.ask("forged", { index, counters, lengths: [0, 16, 100, 1400] });
    await sleep(300);
    const s = await stats(r.name);
    // Too short to be one (the empty ones), past the message limit, or failing authentication: each counted, none delivered.
    const counted = ["drop_auth", "drop_replay", "drop_expired", "drop_malformed"].reduce((n, k) => n + s[k] - before[k], 0);
    if (counted !== sent) throw new Error(`${sent} forged, ${counted} counted`);
    return `${sent} forged packets`;
  });

  await klass(r, rows, "initiations with low-order and zero ephemeral keys", async () => {
    const res = await a.ask("lowOrder", { from: SOURCES.v4[3], points: LOW_ORDER });
    if (res.answered !== 0) throw new Error(`${res.answered} answers sent`);
    return `${res.sent} initiations, nothing sent back`;
  });

  await klass(r, rows, "responses with low-order ephemeral keys to our own initiation", async () => {
    const { malloryPort } = await a.ready as { malloryPort: number };
    await uapi(r.name, `set=1\npublic_key=${malloryHex}\nendpoint=${A4}:${malloryPort}\n\n`);
    const answering = a.ask("answerLowOrder", { points: LOW_ORDER, ms: 2500 });
    await run(["ping", "-n", "-c", "2", "-i", "0.5", "-W", "1", INNER_M], { ns: r.L.b, timeout: 5000 });
    const res = await answering as { initiations: number; responses: number; answeredWith: { data: number; response: number } };
    if (res.initiations < 1) throw new Error("we sent mallory no initiation");
    if (res.answeredWith.data !== 0 || res.answeredWith.response !== 0) throw new Error(`sent after the forged responses: ${JSON.stringify(res.answeredWith)}`);
    return `${res.responses} forged responses to ${res.initiations} initiations, no session`;
  });

  await klass(r, rows, "inner-source spoofing by an authenticated peer", async () => {
    const up = await a.ask("malloryUp", { inner: INNER_M, dst: INNER_B, ms: 15_000 });
    if (!up.up) throw new Error("mallory's handshake did not complete");
    const c0 = (await r.listener.ask("count")).counts as Record<string, number>;
    await a.ask("mallorySend", { packets: [
      { src: INNER_A, dst: INNER_B, port: 9, size: 100, count: 300 },
      { src: "10.77.0.99", dst: INNER_B, port: 9, size: 100, count: 300 },
      { src: INNER_M, dst: INNER_B, port: 9, size: 100, count: 50 },
    ] });
    const c1 = (await r.listener.ask("count")).counts as Record<string, number>;
    const got = (ip: string) => (c1[ip] ?? 0) - (c0[ip] ?? 0);
    if (got(INNER_A) !== 0 || got("10.77.0.99") !== 0) throw new Error(`spoofed packets delivered: ${got(INNER_A)} as ${INNER_A}, ${got("10.77.0.99")} as 10.77.0.99`);
    if (got(INNER_M) !== 50) throw new Error(`${got(INNER_M)} of mallory's 50 genuine packets delivered`);
    return "600 spoofed dropped, 50 genuine delivered";
  });

  await klass(r, rows, "MTU extremes: inner packets of 28..65000 bytes, datagrams of 9000 and 65507", async () => {
    const c0 = (await r.listener.ask("count")).counts as Record<string, number>;
    await a.ask("mallorySend", { packets: [28, 29, 1420, 1421, 1500, 9000, 65000].map((size) => ({ src: INNER_M, dst: INNER_B, port: 9, size, count: 5 })) });
    await a.ask("rawSizes", { sizes: [9000, 65507, 1, 2, 3] });
    const full = await run(["ping", "-n", "-q", "-c", "20", "-i", "0.05", "-s", "1392", "-M", "do", INNER_B], { ns: r.L.a, timeout: 10_000 });
    const c1 = (await r.listener.ask("count")).counts as Record<string, number>;
    const got = (c1[INNER_M] ?? 0) - (c0[INNER_M] ?? 0);
    if (!/20 received/.test(full.stdout)) throw new Error(`full-MTU pings: ${full.stdout.trim().split("\n").at(-2)}`);
    if (got < 15) throw new Error(`${got} of the 15 packets that fit the MTU delivered`);
    return `${got} of the fitting packets delivered, larger dropped; 20/20 full-MTU pings`;
  });

  await klass(r, rows, "churn of 130k allowed IPs on a peer while traffic runs", async () => {
    const prefixes = (base: number) => Array.from({ length: 131_072 }, (_, i) => `172.${16 + ((base + i) >> 16 & 15)}.${(base + i) >> 8 & 255}.${(base + i) & 255}/32`);
    const times: number[] = [];
    for (const base of [0, 65_536, 0]) {
      const t = performance.now();
      const answer = await uapi(r.name, `set=1\npublic_key=${malloryHex}\nreplace_allowed_ips=true\nallowed_ip=${INNER_M}/32\n${prefixes(base).map((p) => `allowed_ip=${p}\n`).join("")}\n`);
      times.push(Math.round(performance.now() - t));
      if (!answer.startsWith("errno=0")) throw new Error(`set of 131073 prefixes: ${answer.trim()}`);
    }
    const t = performance.now();
    await uapi(r.name, `set=1\npublic_key=${malloryHex}\nreplace_allowed_ips=true\nallowed_ip=${INNER_M}/32\n\n`);
    times.push(Math.round(performance.now() - t));
    const back = (await peerStatus(r.name, malloryHex)).allowed_ip;
    if (back !== `${INNER_M}/32`) throw new Error(`after the churn: ${back}`);
    return `3 x 131073 prefixes set, then 1: ${times.join(", ")} ms`;
  }, 0.95, MEMORY_BOUND_MIB + ALLOWED_IPS_MIB);

  await klass(r, rows, "routing loop: a peer's endpoint routed through its own tunnel", async (before) => {
    await uapi(r.name, `set=1\npublic_key=${malloryHex}\nreplace_allowed_ips=true\nallowed_ip=10.77.0.64/27\nendpoint=10.77.0.70:51820\n\n`);
    await run(["ping", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "1", "10.77.0.80"], { ns: r.L.b, timeout: 5000 });
    await sleep(500);
    const s = await stats(r.name);
    await uapi(r.name, `set=1\npublic_key=${malloryHex}\nreplace_allowed_ips=true\nallowed_ip=${INNER_M}/32\nendpoint=${A4}:${((await a.ready) as { malloryPort: number }).malloryPort}\n\n`);
    if (!(s.drop_loop > before.drop_loop)) throw new Error("no packet counted as a routing loop");
    return `${s.drop_loop - before.drop_loop} looping packets dropped`;
  });

  const everyone = [...SOURCES.v4, ...SOURCES.v4routed, ...SOURCES.v6sameNet, ...SOURCES.v6nets];
  await klass(r, rows, "initiation flood just under the load threshold (300/s, 300 sources)", async (before) => {
    const res = await a.ask("flood", { addresses: everyone, rate: 300, seconds: 8 });
    const s = await stats(r.name);
    if (s.handshake_cookie_replies !== before.handshake_cookie_replies) throw new Error("under load below the threshold");
    return `${res.sent} initiations, each refused after its DH, no cookie reply`;
  });

  /** wireguard-go forgets its session and must handshake again; seconds until ours records the new handshake, or -1. */
  const rehandshake = async (): Promise<number> => {
    const last = (await peerStatus(r.name, goHex)).last_handshake_time_sec;
    await run(["wg", "set", r.goName, "peer", r.keys.ours.pub, "remove"], { ns: r.L.a });
    await run(["wg", "set", r.goName, "peer", r.keys.ours.pub, "allowed-ips", `${INNER_B}/32`, "endpoint", `${B4}:${OUR_PORT}`], { ns: r.L.a });
    const t = performance.now();
    while (performance.now() - t < 25_000) {
      if ((await peerStatus(r.name, goHex)).last_handshake_time_sec !== last) return Math.round((performance.now() - t) / 100) / 10;
      await sleep(250);
    }
    return -1;
  };
  const half = FLOOD_SECONDS / 2;
  await klass(r, rows, `initiation flood: ${FLOOD_RATE}/s for ${FLOOD_SECONDS} s from ${everyone.length} sources (150 IPv4, 100 in one IPv6 /64, 50 other /64s), without mac2 and then with each source's genuine cookie; the legitimate peer handshakes anew in each half`, async (before) => {
    const flood = (async () => {
      const plain = await a.ask("flood", { addresses: everyone, rate: FLOOD_RATE, seconds: half }, (half + 60) * 1000);
      const cookied = await a.ask("flood", { addresses: everyone, rate: FLOOD_RATE, seconds: half, cookies: true }, (half + 60) * 1000);
      return { plain, cookied };
    })();
    await sleep(10_000);
    const loaded = await stats(r.name);
    const first = await rehandshake();
    await sleep(Math.max(0, (half + 10) * 1000 - 10_000 - first * 1000));
    const second = await rehandshake();
    const { plain, cookied } = await flood;
    if (!loaded.under_load) throw new Error("not under load during the flood");
    if (first < 0 || second < 0) throw new Error(`the legitimate peer's new handshake did not complete under the flood (${first} s, ${second} s)`);
    const s = await stats(r.name);
    return `${plain.sent} without mac2 (${plain.cookieReplies} cookie replies), then ${cookied.sent} with the cookies of ${cookied.withCookie} sources ` +
      `(${s.drop_rate_limited - before.drop_rate_limited} rate limited); legitimate handshakes under load in ${first} s and ${second} s`;
  }, 0.8);

  await klass(r, rows, "forged cookies, and a genuine cookie from another source, under load", async () => {
    const load = a.ask("flood", { addresses: everyone, rate: 3000, seconds: 6 });
    await sleep(1500);
    const res = await a.ask("cookies", { addresses: SOURCES.v4.slice(0, 20), count: 200 }) as { forged: number; borrowed: number; cookieReplies: number; error?: string };
    await load;
    if (res.cookieReplies < (res.forged + res.borrowed) * 0.9) throw new Error(`${res.cookieReplies} cookie replies to ${res.forged + res.borrowed}`);
    return `${res.forged} forged + ${res.borrowed} borrowed mac2, each answered with a cookie reply`;
  });

  await klass(r, rows, "the cookie replies received, replayed", async () => {
    const { packets } = await a.ask("cookieReplies") as { packets: string[] };
    assert.ok(packets.length > 0);
    const res = await a.ask("replay", { packets: packets.slice(0, 500), copies: 2, from: SOURCES.v4[4], rate: 2000 });
    return `${res.sent} replays`;
  });

  void runtime;
  return rows;
}

// HOSTILE_RUNTIMES=node runs one runtime's table (all three unless set).
for (const runtime of (process.env.HOSTILE_RUNTIMES ?? "node,deno,bun").split(",") as RuntimeName[]) {
  test(`${runtime}: wg up under every class of hostile input at its UDP port, legitimate traffic flowing`, async () => {
    const w = why() ?? (await toolMissing());
    if (w) return notRun(w);
    const r = await rig(`hx${process.pid % 1000}${runtime[0]}`, runtime);
    try {
      const warm = pingStream(r.L, r.L.a, INNER_B);
      await sleep(1500);
      const first = await warm.stop();
      assert.ok(first.received > 0, `no ping through the tunnel\n${r.ours.output()}`);
      const rows = await classes(r, runtime);
      console.log(`\n${table(runtime, rows)}`);
      for (const row of rows) {
        assert.ok(row.alive, `${row.name}: wg up died\n${r.ours.output()}`);
        assert.is(row.failure, null, `${row.name}: ${row.failure}`);
        assert.ok(row.delivery >= row.minDelivery, `${row.name}: legitimate delivery ${(100 * row.delivery).toFixed(1)}%`);
        assert.ok(row.rss[1] - row.rss[0] <= row.maxGrowth, `${row.name}: memory grew ${row.rss[1] - row.rss[0]} MiB, more than ${row.maxGrowth}`);
      }
    } finally {
      await r.L.destroy();
    }
  });
}

test.run();
