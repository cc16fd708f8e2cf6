// The UAPI text protocol against a real engine: get=1 output, set=1 with
// every key, requests split across chunks and several per connection,
// invalid requests (errno=-22, nothing applied), and the round trip
// wg-quick file -> engine -> get=1 -> parsed back.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Engine } from "../../src/engine.ts";
import { nobleX25519 } from "../../src/x25519.ts";
import { wasmBytes } from "#engine-wasm";
import {
  UapiSession, UapiError, UapiSetParser, formatUapiGet, parseUapiSet, sliceSet, EINVAL, EPROTO, GET_SLICE_LINES, MAX_REQUEST_BYTES, SET_SLICE_UNITS,
} from "../../src/uapi.ts";
import { keyFromBase64, keyHex, type DeviceStatus } from "../../src/config.ts";
import { parseWgQuick, toDeviceConfig } from "../../src/wgquick.ts";
import { pair, ipv4 } from "../helpers/net.ts";

const wasm = new WebAssembly.Module(wasmBytes as Uint8Array<ArrayBuffer>);
const EPOCH = 1_750_000_000_000;

// Keys made with wg genkey / wg pubkey / wg genpsk; hex as `base64 -d | xxd -p`.
const PRIV_A = "UM9jp1tgUFcmvOURi4IGcDdzz1Vtw9rtKGHlGwd+f2E=";
const PRIV_A_HEX = "50cf63a75b60505726bce5118b8206703773cf556dc3daed2861e51b077e7f61";
const PUB_A = "0KyovXrH/YV+A3i8vGuKCQMo6nP1psQs6AjokfJXxlM=";
const PUB_B = "WZdK0iHuVN/0sp2nk6YUYsu6YcF6zXwSg5yMP+WVzzU=";
const PRIV_B_HEX = "40ed616aabfd2ab3b53fe4b913fb09350421704bce8beb3685009d9ce5cede44";
const PUB_C = "nhEqQj4jud3rdyG+jTj/p1z65tNywv2m5ACVKCeli0Y=";
const PSK = "sIC9S4vxowvf5wTBFSWIbQe9iLnQl9ncK5H56MuxSfI=";
const hex = (b64: string) => keyHex(keyFromBase64(b64));
const B = hex(PUB_B), C = hex(PUB_C);
const ZEROS = "0".repeat(64);

function engine(): Engine {
  return new Engine({ wasm, x25519: nobleX25519, epoch: EPOCH });
}

/** One request on a fresh session; returns the answer. */
function ask(e: Engine, text: string, s = new UapiSession()): string {
  return s.feed(text, e, 0);
}

function set(e: Engine, ...lines: string[]): string {
  return ask(e, `set=1\n${lines.map((l) => l + "\n").join("")}\n`);
}

interface Parsed {
  device: Record<string, string>;
  peers: (Record<string, string> & { allowed_ip: string[] })[];
  errno: string;
}

/** Reads a get=1 answer the way wg(8) does: device keys until the first public_key. */
function parseGet(text: string): Parsed {
  assert.ok(text.endsWith("\n\n"), "ends with an empty line");
  const out: Parsed = { device: {}, peers: [], errno: "" };
  for (const line of text.slice(0, -2).split("\n")) {
    const eq = line.indexOf("=");
    assert.ok(eq > 0, `key=value: ${line}`);
    const k = line.slice(0, eq), v = line.slice(eq + 1);
    if (k === "errno") out.errno = v;
    else if (k === "public_key") out.peers.push({ public_key: v, allowed_ip: [] } as unknown as Parsed["peers"][0]);
    else if (out.peers.length === 0) out.device[k] = v;
    else if (k === "allowed_ip") out.peers[out.peers.length - 1].allowed_ip.push(v);
    else out.peers[out.peers.length - 1][k] = v;
  }
  return out;
}

const get = (e: Engine) => parseGet(ask(e, "get=1\n\n"));

/** Status with byte arrays as hex, for deep comparisons. */
function snapshot(s: DeviceStatus): unknown {
  return JSON.parse(JSON.stringify(s, (_k, v) => (v instanceof Uint8Array ? keyHex(v) : v)));
}

test("stats=1 answers every drop and handshake counter and the load state; a stray line after it closes the session", () => {
  const { a, b } = pair({ bOpts: { underLoadBacklog: 1 } });
  a.send(ipv4("10.0.0.1", "10.0.0.2"));
  const junk = new Uint8Array(148);
  junk[0] = 1;
  b.receive(junk, a.ep); // an initiation-sized message with a wrong mac1
  const text = ask(b.engine, "stats=1\n\n");
  assert.ok(text.endsWith("errno=0\n\n"), text);
  const kv = Object.fromEntries(text.trim().split("\n").map((l) => l.split("=")));
  assert.equal(Object.keys(kv).filter((k) => k.startsWith("drop_")).sort(),
    Object.keys(b.engine.drops).map((k) => `drop_${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`).sort());
  assert.is(kv.drop_mac1, "1");
  assert.is(kv.drop_handshake, "0");
  assert.ok("handshake_cookie_replies" in kv && "handshake_completed" in kv && /^(true|false)$/.test(kv.under_load));
  const s = new UapiSession();
  assert.is(ask(b.engine, "stats=1\nx=1\n", s), `errno=-${EINVAL}\n\n`);
  assert.ok(s.closed);
});

test("get=1 on an empty device", () => {
  assert.is(ask(engine(), "get=1\n\n"), "errno=0\n\n");
});

test("get=1 prints what wireguard-go prints, in its order", () => {
  const e = engine();
  e.set({
    privateKey: keyFromBase64(PRIV_A), listenPort: 51999, fwmark: 32,
    peers: [
      {
        publicKey: keyFromBase64(PUB_B), endpoint: { address: "fd00::1", port: 1234 }, persistentKeepalive: 25,
        allowedIps: ["10.0.0.0/24", "fd00::/64", "::ffff:1.2.3.4/128", "::1.2.3.4/128"],
      },
      { publicKey: keyFromBase64(PUB_C), presharedKey: keyFromBase64(PSK), endpoint: { address: "192.0.2.9", port: 51820 } },
    ],
  }, 0);
  // The first peer's lines are, but for their order, what wireguard-go 0.0.20220316 answered for the same configuration.
  assert.is(ask(e, "get=1\n\n"), [
    `private_key=${PRIV_A_HEX}`,
    "listen_port=51999",
    "fwmark=32",
    `public_key=${B}`,
    `preshared_key=${ZEROS}`,
    "protocol_version=1",
    "endpoint=[fd00::1]:1234",
    "last_handshake_time_sec=0",
    "last_handshake_time_nsec=0",
    "tx_bytes=0",
    "rx_bytes=0",
    "persistent_keepalive_interval=25",
    // In the order they were given, as wireguard-go lists them.
    "allowed_ip=10.0.0.0/24",
    "allowed_ip=fd00::/64",
    "allowed_ip=::ffff:1.2.3.4/128",
    "allowed_ip=::102:304/128",
    `public_key=${C}`,
    `preshared_key=${hex(PSK)}`,
    "protocol_version=1",
    "endpoint=192.0.2.9:51820",
    "last_handshake_time_sec=0",
    "last_handshake_time_nsec=0",
    "tx_bytes=0",
    "rx_bytes=0",
    "persistent_keepalive_interval=0",
    "errno=0",
    "",
    "",
  ].join("\n"));
});

test("get=1 leaves out zero port and fwmark, and a peer's missing endpoint", () => {
  const e = engine();
  e.set({ privateKey: keyFromBase64(PRIV_A), peers: [{ publicKey: keyFromBase64(PUB_B) }] }, 0);
  assert.is(ask(e, "get=1\n\n"), `private_key=${PRIV_A_HEX}\npublic_key=${B}\npreshared_key=${ZEROS}\nprotocol_version=1\n` +
    "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nerrno=0\n\n");
});

test("get=1 reports handshake time (sec + nsec) and transfer counters", () => {
  const { net, a, b } = pair();
  net.now = 1234.5;
  a.send(ipv4("10.0.0.1", "10.0.0.2", 100));
  net.flush();
  b.send(ipv4("10.0.0.2", "10.0.0.1", 60));
  net.flush();
  const g = parseGet(new UapiSession().feed("get=1\n\n", a.engine, net.now));
  const st = a.engine.status().peers[0];
  assert.is(g.peers.length, 1);
  const p = g.peers[0];
  assert.is(p.public_key, keyHex(b.publicKey));
  assert.is(p.endpoint, `${b.ep.address}:${b.ep.port}`);
  const wall = 1_750_000_000_000 + 1234.5;
  assert.is(st.lastHandshakeTime, wall);
  assert.is(p.last_handshake_time_sec, String(Math.floor(wall / 1000)));
  assert.is(p.last_handshake_time_nsec, "234500000");
  assert.is(p.tx_bytes, String(st.txBytes));
  assert.is(p.rx_bytes, String(st.rxBytes));
  assert.ok(st.txBytes > 0 && st.rxBytes > 0);
  assert.equal(p.allowed_ip, ["10.0.0.2/32", "fd00::2/128"]);
});

test("set=1 with every device and peer key", () => {
  const e = engine();
  const ports: number[] = [];
  const s = new UapiSession({ onListenPort: (p) => ports.push(p) });
  const answer = s.feed([
    "set=1",
    `private_key=${PRIV_A_HEX}`,
    "listen_port=51820",
    "fwmark=4660",
    "replace_peers=true",
    `public_key=${B}`,
    "protocol_version=1",
    `preshared_key=${hex(PSK)}`,
    "endpoint=192.0.2.1:51820",
    "persistent_keepalive_interval=0",
    "replace_allowed_ips=true",
    "allowed_ip=10.0.0.2/32",
    "allowed_ip=fd00::2/128",
    `public_key=${C}`,
    "update_only=true",
    "allowed_ip=10.0.0.3/32",
    `public_key=${hex(PUB_A)}`,
    "remove=true",
    "",
    "",
  ].join("\n"), e, 0);
  assert.is(answer, "errno=0\n\n");
  assert.equal(ports, [51820]);
  const st = e.status();
  assert.is(keyHex(st.privateKey!), PRIV_A_HEX);
  assert.is(keyHex(st.publicKey!), hex(PUB_A), "the engine derives the public key wg pubkey gives");
  assert.is(st.listenPort, 51820);
  assert.is(st.fwmark, 4660);
  assert.is(st.peers.length, 1, "update_only did not create C");
  const p = st.peers[0];
  assert.is(keyHex(p.publicKey), B);
  assert.is(keyHex(p.presharedKey!), hex(PSK));
  assert.equal(p.endpoint, { address: "192.0.2.1", port: 51820 });
  assert.is(p.persistentKeepalive, 0);
  assert.equal(p.allowedIps, ["10.0.0.2/32", "fd00::2/128"]);

  // Now change the existing peer: update_only applies, a zero preshared key removes it.
  assert.is(set(e, `public_key=${B}`, "update_only=true", `preshared_key=${ZEROS}`, "endpoint=[2001:DB8::0:1]:443",
    "persistent_keepalive_interval=25"), "errno=0\n\n");
  const q = e.status().peers[0];
  assert.is(q.presharedKey, null);
  assert.equal(q.endpoint, { address: "2001:db8::1", port: 443 }, "addresses are normalised");
  assert.is(q.persistentKeepalive, 25);
  // A zero private key removes it; fwmark and port go back to 0.
  assert.is(set(e, `private_key=${ZEROS}`, "listen_port=0", "fwmark=0"), "errno=0\n\n");
  const d = e.status();
  assert.is(d.privateKey, null);
  assert.is(d.listenPort, 0);
  assert.is(d.fwmark, 0);
  assert.equal(get(e).device, {});
});

test("set=1: replace_peers, remove, and the peer with our own public key", () => {
  const e = engine();
  assert.is(set(e, `private_key=${PRIV_A_HEX}`, `public_key=${B}`, `public_key=${C}`), "errno=0\n\n");
  assert.is(e.status().peers.length, 2);
  assert.is(set(e, `public_key=${B}`, "remove=true", "allowed_ip=10.0.0.0/8", "endpoint=1.1.1.1:1"), "errno=0\n\n");
  assert.equal(e.status().peers.map((p) => keyHex(p.publicKey)), [C], "after remove, the section's keys do nothing");
  assert.is(set(e, "replace_peers=true", `public_key=${B}`, "allowed_ip=10.1.0.0/16"), "errno=0\n\n");
  assert.equal(e.status().peers.map((p) => [keyHex(p.publicKey), p.allowedIps]), [[B, ["10.1.0.0/16"]]]);
  assert.is(set(e, `public_key=${hex(PUB_A)}`, "allowed_ip=10.2.0.0/16"), "errno=0\n\n");
  assert.is(e.status().peers.length, 1, "a peer with our own public key is ignored");
  assert.is(set(e, `public_key=${C}`, "remove=true"), "errno=0\n\n", "removing a peer that does not exist is fine");
});

test("set=1: allowed_ip and replace_allowed_ips apply in their order", () => {
  const e = engine();
  set(e, `public_key=${B}`, "allowed_ip=10.0.0.0/24", "allowed_ip=10.0.1.0/24");
  set(e, `public_key=${B}`, "allowed_ip=10.0.2.0/24");
  assert.equal(e.status().peers[0].allowedIps, ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"], "added without replace");
  set(e, `public_key=${B}`, "allowed_ip=10.9.0.0/16", "replace_allowed_ips=true", "allowed_ip=10.0.5.0/24", "allowed_ip=10.0.5.7/24");
  assert.equal(e.status().peers[0].allowedIps, ["10.0.5.0/24"], "what came before replace_allowed_ips is gone; host bits masked");
  // A prefix moved to C before C's replace goes with it, as in wireguard-go.
  set(e, `public_key=${C}`, "allowed_ip=10.0.5.0/24", "replace_allowed_ips=true", "allowed_ip=192.168.0.0/16");
  const [pb, pc] = e.status().peers;
  assert.equal(pb.allowedIps, []);
  assert.equal(pc.allowedIps, ["192.168.0.0/16"]);
  assert.equal(parseUapiSet([`public_key=${B}`, "allowed_ip=1.0.0.0/8", "replace_allowed_ips=true", "update_only=true"]).config.peers!.map((p) => p.updateOnly), [true, true]);
});

test("requests split across chunks, several per connection", () => {
  const e = engine();
  const s = new UapiSession();
  const text = `set=1\nprivate_key=${PRIV_A_HEX}\nlisten_port=1\n\nget=1\n\nset=1\nlisten_port=2\n\nget=1\n\n`;
  let out = "";
  for (const c of text) out += s.feed(c, e, 0); // one character at a time
  const answers = out.split("errno=0\n\n");
  assert.is(answers.length, 5);
  assert.equal(answers, ["", `private_key=${PRIV_A_HEX}\nlisten_port=1\n`, "", `private_key=${PRIV_A_HEX}\nlisten_port=2\n`, ""]);
  // All of it in one chunk gives the same.
  const e2 = engine();
  assert.is(new UapiSession().feed(text, e2, 0), out);
  // A chunk ending mid-line answers nothing yet.
  const s3 = new UapiSession();
  assert.is(s3.feed("get=1\n", e, 0), "");
  assert.is(s3.feed("\nget", e, 0), `private_key=${PRIV_A_HEX}\nlisten_port=2\nerrno=0\n\n`);
  assert.is(s3.feed("=1\n\n", e, 0), `private_key=${PRIV_A_HEX}\nlisten_port=2\nerrno=0\n\n`);
  assert.not.ok(s3.closed);
});

test("invalid set requests answer errno=-22 and apply nothing", () => {
  const e = engine();
  set(e, `private_key=${PRIV_A_HEX}`, "listen_port=7", `public_key=${B}`, "endpoint=192.0.2.1:1", "allowed_ip=10.0.0.0/8");
  const before = snapshot(e.status());
  const bad: string[][] = [
    ["foo=1"],
    ["listen_port=65536"], ["listen_port=-1"], ["listen_port=+5"], ["listen_port="], ["listen_port=0x10"],
    ["fwmark=4294967296"], ["fwmark=0x20"], ["fwmark=off"],
    ["private_key=abcd"], [`private_key=${PRIV_A_HEX}0`], [`private_key=${"g".repeat(64)}`], ["private_key=" + PRIV_A],
    ["replace_peers=false"], ["replace_peers=1"],
    [`public_key=${B.slice(2)}`],
    [`public_key=${B}`, "update_only=false"],
    [`public_key=${B}`, "remove=yes"],
    [`public_key=${B}`, "replace_allowed_ips=false"],
    [`public_key=${B}`, "preshared_key=00"],
    [`public_key=${B}`, "protocol_version=2"],
    [`public_key=${B}`, "persistent_keepalive_interval=65536"],
    [`public_key=${B}`, "persistent_keepalive_interval=off"],
    [`public_key=${B}`, "allowed_ip=10.0.0.0"],
    [`public_key=${B}`, "allowed_ip=10.0.0.0/33"],
    [`public_key=${B}`, "allowed_ip=fd00::/129"],
    [`public_key=${B}`, "allowed_ip=fe80::1%eth0/64"],
    [`public_key=${B}`, "allowed_ip= 10.0.0.0/8"],
    [`public_key=${B}`, "endpoint=192.0.2.1"],
    [`public_key=${B}`, "endpoint=example.com:51820"],
    [`public_key=${B}`, "endpoint=fd00::1:51820"],
    [`public_key=${B}`, "endpoint=[192.0.2.1]:51820"],
    [`public_key=${B}`, "endpoint=[fd00::1]51820"],
    [`public_key=${B}`, "endpoint=192.0.2.1:65536"],
    [`public_key=${B}`, "endpoint=192.0.2.1:"],
    [`public_key=${B}`, "endpoint=192.0.2.1%eth0:1"],
    [`public_key=${B}`, "listen_port=1"],
    [`public_key=${B}`, "replace_peers=true"],
    [`public_key=${B}`, "private_key=" + PRIV_A_HEX],
    [`public_key=${B}`, "Endpoint=192.0.2.1:1"],
  ];
  for (const lines of bad) {
    // Valid lines first, so a line-by-line implementation would have changed something.
    const req = [`private_key=${PRIV_B_HEX}`, "listen_port=9", "replace_peers=true", `public_key=${C}`, "allowed_ip=10.0.0.0/8", ...lines];
    assert.is(set(e, ...req), "errno=-22\n\n", lines.join(" / "));
    assert.equal(snapshot(e.status()), before, lines.join(" / "));
    assert.throws(() => parseUapiSet(req), (err: unknown) => err instanceof UapiError && err.errno === EINVAL);
  }
  // A line without '=' is a protocol error, as in wireguard-go (EPROTO).
  assert.is(set(e, "listen_port=9", "garbage"), "errno=-71\n\n");
  assert.throws(() => parseUapiSet(["garbage"]), (err: unknown) => err instanceof UapiError && err.errno === EPROTO);
  assert.equal(snapshot(e.status()), before);
  // The connection goes on after an error.
  const s = new UapiSession();
  assert.is(s.feed("set=1\nfoo=1\n\nset=1\nlisten_port=8\n\n", e, 0), "errno=-22\n\nerrno=0\n\n");
  assert.is(e.status().listenPort, 8);
});

test("set=1 accepts what Go's parsers accept", () => {
  const e = engine();
  assert.is(set(e, "listen_port=051820", `private_key=${PRIV_A_HEX.toUpperCase()}`, "fwmark=4294967295"), "errno=0\n\n");
  assert.is(e.status().listenPort, 51820);
  assert.is(e.status().fwmark, 4294967295);
  assert.is(keyHex(e.status().privateKey!), PRIV_A_HEX);
  assert.is(set(e, `public_key=${B}`, "endpoint=[fe80::1%eth0]:0", "allowed_ip=::ffff:10.0.0.1/128"), "errno=0\n\n");
  assert.equal(e.status().peers[0].endpoint, { address: "fe80::1%eth0", port: 0 });
  assert.is(set(e, `public_key=${B}`, "endpoint=[::ffff:192.0.2.1]:9"), "errno=0\n\n");
  assert.is(get(e).peers[0].endpoint, "[::ffff:192.0.2.1]:9");
  assert.is(get(e).peers[0].allowed_ip[0], "::ffff:10.0.0.1/128");
  assert.is(set(e), "errno=0\n\n", "an empty set request");
});

test("a set request's endpoints go through resolve", () => {
  const e = engine();
  const s = new UapiSession();
  const seen: [string, number][] = [];
  const answer = s.feed(`set=1\npublic_key=${B}\nendpoint=[fd00::7]:9\n\n`, e, 0, (address, port) => {
    seen.push([address, port]);
    return { address, port, extra: "adapter data" } as { address: string; port: number };
  });
  assert.is(answer, "errno=0\n\n");
  assert.equal(seen, [["fd00::7", 9]]);
  assert.is((e.status().peers[0].endpoint as unknown as { extra: string }).extra, "adapter data");
});

test("onListenPort: called with the port whenever listen_port is set; a throw answers EADDRINUSE", () => {
  const e = engine();
  const seen: number[] = [];
  const s = new UapiSession({ onListenPort: (p) => seen.push(p) });
  s.feed("set=1\nlisten_port=4000\n\nset=1\nfwmark=1\n\nset=1\nlisten_port=4000\n\nset=1\nlisten_port=x\n\n", e, 0);
  assert.equal(seen, [4000, 4000]);
  const failing = new UapiSession({ onListenPort: () => { throw new Error("in use"); } });
  assert.is(failing.feed("set=1\nlisten_port=4001\n\n", e, 0), "errno=-98\n\n");
  assert.is(e.status().listenPort, 4001, "like wireguard-go, the port stays set");
});

test("onOutput gets the datagrams Engine.set produces", () => {
  const { net, a, b } = pair();
  const outs: number[] = [];
  const s = new UapiSession({ onOutput: (out) => { outs.push(out.datagrams); net.take(a, out); } });
  // Switching persistent keepalive on sends at once (a handshake initiation first, as there is no session).
  const answer = s.feed(`set=1\npublic_key=${keyHex(b.publicKey)}\npersistent_keepalive_interval=25\n\n`, a.engine, net.now);
  assert.is(answer, "errno=0\n\n");
  assert.equal(outs, [1]);
  assert.is(net.sent(1, a).length, 1);
});

test("what is no request closes the session, as wireguard-go hangs up", () => {
  const e = engine();
  for (const text of ["hello=1\n", "\n", "get=2\n\n", "set=1 \n"]) {
    const s = new UapiSession();
    assert.is(s.feed(text, e, 0), "", JSON.stringify(text));
    assert.ok(s.closed);
    assert.is(s.feed("get=1\n\n", e, 0), "", "closed stays closed");
  }
  // get=1 followed by anything but the empty line: EINVAL, then the connection ends.
  const s = new UapiSession();
  assert.is(s.feed("get=1\nx\nget=1\n\n", e, 0), "errno=-22\n\n");
  assert.ok(s.closed);
  // Lines longer than any the protocol has (4 KiB) are not buffered, whole or in part.
  const long = new UapiSession();
  assert.is(long.feed("set=1\n" + "a".repeat(5000), e, 0), "");
  assert.ok(long.closed);
  const longLine = new UapiSession();
  assert.is(longLine.feed(`set=1\npublic_key=${"a".repeat(5000)}\n`, e, 0), "");
  assert.ok(longLine.closed);
  const ok = new UapiSession();
  ok.feed("set=1\n", e, 0);
  assert.not.ok(ok.closed);
});

test("a set request is bounded while it is buffered: over the limit it is answered ENOMEM, the connection closed, nothing applied", () => {
  const e = engine();
  const s = new UapiSession({ maxRequestBytes: 64 * 1024 });
  let answer = s.feed("set=1\n", e, 0);
  let fed = 0;
  const line = `public_key=${B}\nallowed_ip=10.0.0.0/8\n`;
  while (!s.closed && fed < 1 << 20) { answer += s.feed(line, e, 0); fed += line.length; }
  assert.ok(s.closed, "closed");
  assert.ok(fed <= 64 * 1024 + line.length, `buffered ${fed} bytes at most`);
  assert.is(answer, "errno=-12\n\n");
  assert.is(e.status().peers.length, 0, "nothing applied");
  // The default takes a real setconf's size: 2,000 peers with 64 prefixes each in one request.
  const big = new UapiSession();
  let req = "set=1\n";
  for (let p = 0; p < 2000; p++) {
    req += `public_key=${keyHex(nobleX25519.generate().publicKey)}\n`;
    for (let i = 0; i < 64; i++) req += `allowed_ip=10.${p >> 8}.${p & 255}.${i * 4}/30\n`;
  }
  assert.ok(req.length < MAX_REQUEST_BYTES);
});

test("round trip: wg-quick file -> engine -> get=1 -> the same configuration", () => {
  const text = `[Interface]
PrivateKey = ${PRIV_A}
ListenPort = 51820
FwMark = 0xca6c
Address = 10.0.0.1/24

[Peer]
PublicKey = ${PUB_B}
PresharedKey = ${PSK}
AllowedIPs = 10.0.0.2/32, fd00::2/128
Endpoint = 192.0.2.1:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${PUB_C}
AllowedIPs = 10.0.3.0/24
Endpoint = [2001:db8::3]:4500
`;
  const parsed = parseWgQuick(text);
  const e = engine();
  e.set(toDeviceConfig(parsed, (address, port) => ({ address, port })), 0);
  const g = get(e);
  assert.is(g.errno, "0");
  assert.equal(g.device, { private_key: PRIV_A_HEX, listen_port: "51820", fwmark: String(0xca6c) });
  assert.is(g.peers.length, 2);
  const byKey = new Map(g.peers.map((p) => [p.public_key, p]));
  for (const p of parsed.peers) {
    const q = byKey.get(keyHex(p.publicKey))!;
    assert.ok(q);
    assert.is(q.preshared_key, p.presharedKey ? keyHex(p.presharedKey) : ZEROS);
    assert.is(q.protocol_version, "1");
    const h = p.endpoint!.host;
    assert.is(q.endpoint, `${h.includes(":") ? `[${h}]` : h}:${p.endpoint!.port}`);
    assert.is(q.persistent_keepalive_interval, String(p.persistentKeepalive ?? 0));
    assert.equal(q.allowed_ip, p.allowedIps);
  }
  // And the get output, fed back as a set request (less the read-only keys), rebuilds the device.
  const e2 = engine();
  const readOnly = /^(last_handshake_time_sec|last_handshake_time_nsec|tx_bytes|rx_bytes|errno)=/;
  const lines = ask(e, "get=1\n\n").split("\n").filter((l) => l !== "" && !readOnly.test(l));
  assert.is(set(e2, ...lines), "errno=0\n\n");
  assert.equal(snapshot(e2.status()), snapshot(e.status()));
});

test("formatUapiGet works on a status alone", () => {
  const status: DeviceStatus = {
    privateKey: null, publicKey: null, listenPort: 0, fwmark: 0,
    peers: [{
      publicKey: keyFromBase64(PUB_B), presharedKey: null, endpoint: { address: "[fd00::9]", port: 7 }, lastHandshakeTime: 1_700_000_000_999.5,
      rxBytes: 2 ** 40, txBytes: 5, persistentKeepalive: 0, allowedIps: [],
    }],
  };
  assert.is(formatUapiGet(status), `public_key=${B}\npreshared_key=${ZEROS}\nprotocol_version=1\nendpoint=[fd00::9]:7\n` +
    "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=999500000\ntx_bytes=5\nrx_bytes=1099511627776\npersistent_keepalive_interval=0\n");
  // The largest double below a whole second still prints in its own second.
  const ms = 1_700_000_001_000 - 2 ** -12;
  status.peers[0].lastHandshakeTime = ms;
  const g = parseGet(formatUapiGet(status) + "errno=0\n\n").peers[0];
  assert.is(g.last_handshake_time_sec, "1700000000");
  assert.ok(Number(g.last_handshake_time_nsec) >= 999_999_000 && Number(g.last_handshake_time_nsec) <= 999_999_999, g.last_handshake_time_nsec);
});

/** A set request of `peers` peers with `each` host prefixes apiece (keys are any 32 bytes). */
function bigSet(peers: number, each: number, first = 0): string {
  let s = "set=1\n";
  for (let i = first; i < first + peers; i++) {
    s += `public_key=${(i + 1).toString(16).padStart(8, "0").repeat(8)}\nreplace_allowed_ips=true\n`;
    for (let j = 0; j < each; j++) s += `allowed_ip=11.${i & 255}.${(j >> 8) & 255}.${j & 255}/32\n`;
  }
  return s + "\n";
}

test("sliceSet: slices within the budget that, applied in order, do what the whole does", () => {
  const config = parseUapiSet(bigSet(40, 3000).split("\n").slice(1, -2)).config;
  config.privateKey = keyFromBase64(PRIV_A);
  const slices = [...sliceSet(config)];
  assert.ok(slices.length > 20, `${slices.length} slices`);
  for (const s of slices) {
    const units = (s.peers ?? []).reduce((n, p) => n + 64 + (p.allowedIps?.length ?? 0), 0);
    assert.ok(units <= SET_SLICE_UNITS + 64, `slice of ${units} units`);
  }
  assert.ok(slices[0].privateKey, "the device's fields come first");
  assert.ok(slices.slice(1).every((s) => s.privateKey === undefined && !s.peers!.some((p) => p.replaceAllowedIps && p.allowedIps!.length === 0)));
  const whole = engine(), sliced = engine();
  whole.set(config, 0);
  for (const s of slices) sliced.set(s, 0);
  assert.equal(sliced.status(), whole.status());
  assert.is(sliced.status().peers[39].allowedIps.length, 3000);
  // A small change stays whole.
  assert.is([...sliceSet({ listenPort: 1 })].length, 1);
  assert.is([...sliceSet(parseUapiSet([`public_key=${B}`, "allowed_ip=10.0.0.0/8"]).config)].length, 1);
  // The packed form (a session's) slices to the same changes.
  const p = new UapiSetParser(undefined, true);
  for (const line of bigSet(40, 3000).split("\n").slice(1, -2)) p.line(line);
  const req = p.result();
  assert.ok(req.config.peers!.every((x) => x.allowedIps === undefined), "prefixes held packed");
  assert.is(p.packedIps.size, 40);
  const packed = engine();
  for (const s of sliceSet({ ...req.config, privateKey: config.privateKey }, SET_SLICE_UNITS, p.packedIps)) packed.set(s, 0);
  assert.equal(packed.status(), whole.status());
});

test("a large set or get goes a slice per work() call; requests behind it wait their turn", () => {
  const e = engine(), s = new UapiSession();
  // 200 peers x 500 prefixes: 100,000 prefixes.
  assert.is(s.feed(bigSet(200, 500), e, 0), "");
  assert.ok(s.busy);
  // Pipelined behind it: a get, and another small set.
  assert.is(s.feed(`get=1\n\nset=1\npublic_key=${B}\nallowed_ip=192.168.0.0/16\n\n`, e, 0), "");
  let setSteps = 0, out = "";
  while (s.busy && !out.includes("errno")) { out += s.work(e, 0); setSteps++; }
  assert.ok(setSteps >= 100000 / SET_SLICE_UNITS, `set in ${setSteps} slices`);
  assert.ok(out.startsWith("errno=0\n\n"), out.slice(0, 40));
  assert.is(e.status().peers.length, 200);
  // The get that waited: in slices too, the same text formatUapiGet gives, and then the set behind it.
  let getSteps = 0;
  const before = formatUapiGet(e.status());
  while (s.busy) { out += s.work(e, 0); getSteps++; }
  assert.ok(getSteps >= Math.floor(100000 / GET_SLICE_LINES), `get in ${getSteps} slices`);
  assert.is(out, `errno=0\n\n${before}errno=0\n\nerrno=0\n\n`);
  assert.equal(e.status().peers.at(-1)!.allowedIps, ["192.168.0.0/16"]);
});

test("between slices the data path runs, and a get sees changes made meanwhile", () => {
  const { net, a, b } = pair();
  const s = new UapiSession();
  assert.is(s.feed(bigSet(100, 1000), a.engine, net.now), "");
  let delivered = 0;
  while (s.busy) {
    s.work(a.engine, net.now);
    a.send(ipv4("10.0.0.1", "10.0.0.2", 84, delivered));
    net.flush();
    delivered++;
  }
  assert.is(b.tunnel.length, delivered, "every packet sent between slices arrived");
  assert.ok(delivered > 10);
  // A get in progress while a peer goes: that peer is left out, the rest is whole.
  const g = new UapiSession();
  let text = g.feed("get=1\n\n", a.engine, net.now);
  assert.ok(g.busy);
  a.engine.set({ peers: [{ publicKey: keyFromBase64(PUB_B), remove: true }] }, net.now);
  const gone = a.engine.set(parseUapiSet([`public_key=${"00000064".repeat(8)}`, "remove=true"]).config, net.now);
  assert.ok(gone);
  while (g.busy) text += g.work(a.engine, net.now);
  const parsed = parseGet(text);
  assert.is(parsed.errno, "0");
  assert.is(parsed.peers.length, 100, "101 peers less the one removed ahead of the listing");
  assert.ok(parsed.peers.every((p) => p.public_key !== "00000064".repeat(8)));
});

test("replace_peers over many peers removes them a slice at a time, and ends as set() would", () => {
  const e = engine(), ref = engine(), s = new UapiSession();
  const many = bigSet(1000, 20).replace("set=1\n", `set=1\nprivate_key=${PRIV_A_HEX}\n`);
  for (const x of [e, ref]) { const t = new UapiSession(); t.feed(many, x, 0); while (t.busy) t.work(x, 0); }
  assert.is(e.status().peers.length, 1000);
  // Replace them all with 5 peers (3 of them among the old, with new prefixes).
  const next = `set=1\nreplace_peers=true\n${bigSet(5, 3, 998).slice(6, -1)}\n`;
  assert.is(s.feed(next, e, 0), "");
  let steps = 1, out = "";
  while (s.busy) { out += s.work(e, 0); steps++; }
  assert.is(out, "errno=0\n\n");
  assert.ok(steps >= 1000 / 256, `in ${steps} slices`);
  ref.set(parseUapiSet(next.split("\n").slice(1, -2)).config, 0);
  assert.equal(e.status(), ref.status());
  assert.is(e.status().peers.length, 5);
});

test("a set of many peers is checked and planned a step at a time: the request's end applies nothing, a refusal found last leaves all as it was", () => {
  const e = new Engine({ wasm, x25519: nobleX25519, epoch: EPOCH, maxPeers: 1000 });
  const t = new UapiSession();
  t.feed(bigSet(600, 2).replace("set=1\n", `set=1\nprivate_key=${PRIV_A_HEX}\n`), e, 0);
  while (t.busy) t.work(e, 0);
  const before = e.status();
  assert.is(before.peers.length, 600);
  // 1100 new peers in place of the 600: past maxPeers, which only the whole walk shows.
  const s = new UapiSession();
  assert.is(s.feed(bigSet(1100, 1, 5000).replace("set=1\n", "set=1\nreplace_peers=true\n"), e, 0), "");
  assert.ok(s.busy, "the check is work of its own, not done as the request's last line is read");
  assert.equal(e.status(), before);
  let steps = 0, out = "";
  while (s.busy) { out += s.work(e, 0); steps++; }
  assert.is(out, `errno=-${EINVAL}\n\n`);
  assert.ok(steps >= 1, `checked in ${steps} more steps`);
  assert.equal(e.status(), before, "nothing applied");
  // 900 of them fit: then the old peers go a slice at a time, after the check's steps.
  assert.is(s.feed(bigSet(900, 1, 5000).replace("set=1\n", "set=1\nreplace_peers=true\n"), e, 0), "");
  assert.equal(e.status(), before, "nothing applied as the request ends");
  while (s.busy) out += s.work(e, 0);
  assert.is(e.status().peers.length, 900);
  assert.ok(e.status().peers.every((p) => !before.peers.some((q) => keyHex(q.publicKey) === keyHex(p.publicKey))));
});

test.run();
