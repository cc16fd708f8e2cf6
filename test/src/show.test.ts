// wg show / wg show FIELD / wg showconf output, compared with exact text.
// The expected strings are what wg(8) (wireguard-tools 1.0.20210914) printed
// for the same device, served over the UAPI socket by UapiSession.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { formatBytes, formatDuration, formatShow, formatShowConf, formatShowField, ntop } from "../../src/show.ts";
import { keyFromBase64, keyHex, type DeviceStatus, type PeerStatus } from "../../src/config.ts";
import { parseAddress } from "../../src/ip.ts";
import { Engine } from "../../src/engine.ts";
import { nobleX25519 } from "../../src/x25519.ts";
import { wasmBytes } from "#engine-wasm";
import { parseWgQuick, toDeviceConfig } from "../../src/wgquick.ts";

const PRIV_A = "UM9jp1tgUFcmvOURi4IGcDdzz1Vtw9rtKGHlGwd+f2E=";
const PUB_A = "0KyovXrH/YV+A3i8vGuKCQMo6nP1psQs6AjokfJXxlM=";
const PUB_B = "WZdK0iHuVN/0sp2nk6YUYsu6YcF6zXwSg5yMP+WVzzU=";
const PUB_C = "nhEqQj4jud3rdyG+jTj/p1z65tNywv2m5ACVKCeli0Y=";
const PUB_D = "Mit0KwwHKbSDch86blL+4HbCu/iutPwhJo9dqAxqzCo=";
const PSK = "sIC9S4vxowvf5wTBFSWIbQe9iLnQl9ncK5H56MuxSfI=";

const NOW = 1_795_656_700_250; // wall clock, ms

function peer(pub: string, p: Partial<PeerStatus> = {}): PeerStatus {
  return {
    publicKey: keyFromBase64(pub), presharedKey: null, endpoint: null, lastHandshakeTime: 0, rxBytes: 0, txBytes: 0,
    persistentKeepalive: 0, allowedIps: [], ...p,
  };
}

function device(peers: PeerStatus[]): DeviceStatus {
  return { privateKey: keyFromBase64(PRIV_A), publicKey: keyFromBase64(PUB_A), listenPort: 51820, fwmark: 0xca6c, peers };
}

// B: no handshake yet. C: handshake 1 min 5 s ago. D: 400 days, 3 hours, 1 second ago.
const STATUS = device([
  peer(PUB_B, {
    presharedKey: keyFromBase64(PSK), endpoint: { address: "192.0.2.1", port: 51820 }, persistentKeepalive: 25,
    allowedIps: ["10.0.0.2/32", "::a01:102/128", "::ffff:a01:101/128", "fd00::2/128"],
  }),
  peer(PUB_C, {
    endpoint: { address: "2001:db8::3", port: 4500 }, allowedIps: ["10.0.3.0/24"], lastHandshakeTime: NOW - 65_200,
    rxBytes: 1152, txBytes: 4781506,
  }),
  peer(PUB_D, {
    endpoint: { address: "fe80::1%lo", port: 9 }, lastHandshakeTime: NOW - (400 * 86400 + 3 * 3600 + 1) * 1000,
    rxBytes: 5 * 1024 ** 4 + 123456789, txBytes: 1023, persistentKeepalive: 3661,
  }),
]);

test("wg show: interface, then peers by latest handshake", () => {
  assert.is(formatShow("wg0", STATUS, NOW), `interface: wg0
  public key: ${PUB_A}
  private key: (hidden)
  listening port: 51820
  fwmark: 0xca6c

peer: ${PUB_C}
  endpoint: [2001:db8::3]:4500
  allowed ips: 10.0.3.0/24
  latest handshake: 1 minute, 5 seconds ago
  transfer: 1.12 KiB received, 4.56 MiB sent

peer: ${PUB_D}
  endpoint: [fe80::1%lo]:9
  allowed ips: (none)
  latest handshake: 1 year, 35 days, 3 hours, 1 second ago
  transfer: 5.00 TiB received, 1023 B sent
  persistent keepalive: every 1 hour, 1 minute, 1 second

peer: ${PUB_B}
  preshared key: (hidden)
  endpoint: 192.0.2.1:51820
  allowed ips: 10.0.0.2/32, ::10.1.1.2/128, ::ffff:10.1.1.1/128, fd00::2/128
  persistent keepalive: every 25 seconds
`);
});

test("wg show: keys shown on request (WG_HIDE_KEYS=never)", () => {
  const s = formatShow("wg0", device([peer(PUB_B, { presharedKey: keyFromBase64(PSK) })]), NOW, { showKeys: true });
  assert.ok(s.includes(`  private key: ${PRIV_A}\n`));
  assert.ok(s.includes(`  preshared key: ${PSK}\n`));
});

test("wg show: a bare device, and one with peers but no keys", () => {
  const bare: DeviceStatus = { privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  assert.is(formatShow("wgtest0", bare, NOW), "interface: wgtest0\n");
  assert.is(formatShow("wgtest0", { ...bare, peers: [peer(PUB_B), peer(PUB_C)] }, NOW),
    `interface: wgtest0\n\npeer: ${PUB_B}\n  allowed ips: (none)\n\npeer: ${PUB_C}\n  allowed ips: (none)\n`);
});

test("wg show: handshake now, in the future, and within the first second of the epoch", () => {
  const at = (t: number) => formatShow("wg0", device([peer(PUB_B, { lastHandshakeTime: t })]), NOW);
  assert.ok(at(NOW - 250).includes("  latest handshake: Now\n"), "same second");
  assert.ok(at(NOW - 251).includes("  latest handshake: 1 second ago\n"), "previous second");
  assert.ok(at(NOW + 1000).includes("  latest handshake: (System clock wound backward; connection problems may ensue.)\n"));
  assert.not.ok(at(999).includes("latest handshake"), "wg only prints it when the seconds are not zero");
  // ...but sorts it as a handshake.
  const st = device([peer(PUB_B), peer(PUB_C, { lastHandshakeTime: 999 })]);
  assert.ok(formatShow("wg0", st, NOW).indexOf(PUB_C) < formatShow("wg0", st, NOW).indexOf(PUB_B));
});

test("wg show: equal handshakes keep status order", () => {
  const t = NOW - 5000;
  const st = device([peer(PUB_B), peer(PUB_C, { lastHandshakeTime: t }), peer(PUB_D, { lastHandshakeTime: t }), peer(PUB_A, { lastHandshakeTime: t + 1 })]);
  const order = [...formatShow("wg0", st, NOW).matchAll(/^peer: (.*)$/gm)].map((m) => m[1]);
  assert.equal(order, [PUB_A, PUB_C, PUB_D, PUB_B]);
});

test("sizes: binary units, two decimals, ties to even as printf", () => {
  const cases: [number, string][] = [
    [0, "0 B"], [1, "1 B"], [1023, "1023 B"], [1024, "1.00 KiB"], [1152, "1.12 KiB"], [1408, "1.38 KiB"], [1664, "1.62 KiB"],
    [1260, "1.23 KiB"], [1048575, "1024.00 KiB"], [1048576, "1.00 MiB"], [1179648, "1.12 MiB"], [4781506, "4.56 MiB"],
    [1024 ** 3 * 1.5, "1.50 GiB"], [1024 ** 4 - 1, "1024.00 GiB"], [1024 ** 4, "1.00 TiB"], [5 * 1024 ** 4 + 123456789, "5.00 TiB"],
    [3 * 1024 ** 5 + 5, "3072.00 TiB"], [Number.MAX_SAFE_INTEGER, "8192.00 TiB"],
  ];
  for (const [n, s] of cases) assert.is(formatBytes(n), s, String(n));
});

test("durations: years of 365 days, days, hours, minutes, seconds", () => {
  assert.is(formatDuration(0), "");
  assert.is(formatDuration(1), "1 second");
  assert.is(formatDuration(2), "2 seconds");
  assert.is(formatDuration(60), "1 minute");
  assert.is(formatDuration(65), "1 minute, 5 seconds");
  assert.is(formatDuration(3600 + 59 * 60), "1 hour, 59 minutes");
  assert.is(formatDuration(2 * 86400 + 1), "2 days, 1 second");
  assert.is(formatDuration(365 * 86400), "1 year");
  assert.is(formatDuration(2 * 365 * 86400 + 86400 + 7200 + 120 + 2), "2 years, 1 day, 2 hours, 2 minutes, 2 seconds");
  assert.is(formatDuration(65535), "18 hours, 12 minutes, 15 seconds");
});

test("wg show FIELD, tab-separated as wg prints", () => {
  const f = (field: string) => formatShowField("wg0", STATUS, field, NOW);
  const b = `${PUB_B}\t`, c = `${PUB_C}\t`, d = `${PUB_D}\t`;
  const hsC = Math.floor((NOW - 65_200) / 1000), hsD = Math.floor((NOW - (400 * 86400 + 3 * 3600 + 1) * 1000) / 1000);
  assert.is(f("public-key"), `${PUB_A}\n`);
  assert.is(f("private-key"), `${PRIV_A}\n`);
  assert.is(f("listen-port"), "51820\n");
  assert.is(f("fwmark"), "0xca6c\n");
  assert.is(f("peers"), `${PUB_B}\n${PUB_C}\n${PUB_D}\n`);
  assert.is(f("preshared-keys"), `${b}${PSK}\n${c}(none)\n${d}(none)\n`);
  assert.is(f("endpoints"), `${b}192.0.2.1:51820\n${c}[2001:db8::3]:4500\n${d}[fe80::1%lo]:9\n`);
  assert.is(f("allowed-ips"), `${b}10.0.0.2/32 ::10.1.1.2/128 ::ffff:10.1.1.1/128 fd00::2/128\n${c}10.0.3.0/24\n${d}(none)\n`);
  assert.is(f("latest-handshakes"), `${b}0\n${c}${hsC}\n${d}${hsD}\n`);
  assert.is(f("transfer"), `${b}0\t0\n${c}1152\t4781506\n${d}${5 * 1024 ** 4 + 123456789}\t1023\n`);
  assert.is(f("persistent-keepalive"), `${b}25\n${c}off\n${d}3661\n`);
  assert.is(f("dump"), [
    `${PRIV_A}\t${PUB_A}\t51820\t0xca6c`,
    `${PUB_B}\t${PSK}\t192.0.2.1:51820\t10.0.0.2/32,::10.1.1.2/128,::ffff:10.1.1.1/128,fd00::2/128\t0\t0\t0\t25`,
    `${PUB_C}\t(none)\t[2001:db8::3]:4500\t10.0.3.0/24\t${hsC}\t1152\t4781506\toff`,
    `${PUB_D}\t(none)\t[fe80::1%lo]:9\t(none)\t${hsD}\t${5 * 1024 ** 4 + 123456789}\t1023\t3661`,
    "",
  ].join("\n"));
  assert.throws(() => f("bogus"), (e: Error) => e instanceof RangeError && e.message === "Invalid parameter: `bogus'");
});

test("wg show FIELD on a bare device", () => {
  const bare: DeviceStatus = { privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  const f = (field: string) => formatShowField("wg0", bare, field);
  assert.is(f("public-key"), "(none)\n");
  assert.is(f("private-key"), "(none)\n");
  assert.is(f("listen-port"), "0\n");
  assert.is(f("fwmark"), "off\n");
  for (const field of ["peers", "preshared-keys", "endpoints", "allowed-ips", "latest-handshakes", "transfer", "persistent-keepalive"]) {
    assert.is(f(field), "", field);
  }
  assert.is(f("dump"), "(none)\t(none)\t0\toff\n");
});

test("wg showconf", () => {
  assert.is(formatShowConf("wg0", STATUS), `[Interface]
ListenPort = 51820
FwMark = 0xca6c
PrivateKey = ${PRIV_A}

[Peer]
PublicKey = ${PUB_B}
PresharedKey = ${PSK}
AllowedIPs = 10.0.0.2/32, ::10.1.1.2/128, ::ffff:10.1.1.1/128, fd00::2/128
Endpoint = 192.0.2.1:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${PUB_C}
AllowedIPs = 10.0.3.0/24
Endpoint = [2001:db8::3]:4500

[Peer]
PublicKey = ${PUB_D}
Endpoint = [fe80::1%lo]:9
PersistentKeepalive = 3661
`);
  const bare: DeviceStatus = { privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  assert.is(formatShowConf("wg0", bare), "[Interface]\n\n");
});

test("endpoints: brackets as given are not doubled; v6 normalised", () => {
  const st = device([peer(PUB_B, { endpoint: { address: "[FD00:0::1]", port: 1 } }), peer(PUB_C, { endpoint: { address: "::ffff:192.0.2.1", port: 2 } })]);
  assert.is(formatShowField("wg0", st, "endpoints"), `${PUB_B}\t[fd00::1]:1\n${PUB_C}\t[::ffff:192.0.2.1]:2\n`);
});

test("ntop: glibc's inet_ntop forms", () => {
  const cases: [string, string][] = [
    ["::", "::"], ["::1", "::1"], ["::1.2.3.4", "::1.2.3.4"], ["::ffff:1.2.3.4", "::ffff:1.2.3.4"], ["::ffff:0.0.0.0", "::ffff:0.0.0.0"],
    ["::0.0.0.1", "::1"], ["::1:0:0:1", "::1:0:0:1"], ["1:0:0:1:0:0:0:1", "1:0:0:1::1"], ["1:0:0:0:1:0:0:1", "1::1:0:0:1"],
    ["1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"], ["fd00::", "fd00::"], ["2001:db8::ffff:1.2.3.4", "2001:db8::ffff:102:304"],
    ["::fffe:1.2.3.4", "::fffe:102:304"], ["192.0.2.255", "192.0.2.255"], ["0:0:0:0:0:1:0:0", "::1:0:0"],
  ];
  for (const [input, out] of cases) assert.is(ntop(parseAddress(input)), out, input);
});

test("round trip: engine -> showconf -> wg-quick parser -> engine gives the same status", () => {
  const wasm = new WebAssembly.Module(wasmBytes as Uint8Array<ArrayBuffer>);
  const make = () => new Engine({ wasm, x25519: nobleX25519, epoch: 0 });
  const e = make();
  e.set({
    privateKey: keyFromBase64(PRIV_A), listenPort: 4242, fwmark: 7,
    peers: [
      { publicKey: keyFromBase64(PUB_B), presharedKey: keyFromBase64(PSK), endpoint: { address: "198.51.100.1", port: 9 }, allowedIps: ["10.0.0.0/8", "fd00::/8"], persistentKeepalive: 5 },
      { publicKey: keyFromBase64(PUB_C), endpoint: { address: "2001:db8::1", port: 51820 } },
      { publicKey: keyFromBase64(PUB_D), allowedIps: ["0.0.0.0/0"] },
    ],
  }, 0);
  const conf = formatShowConf("wg0", e.status());
  const e2 = make();
  e2.set(toDeviceConfig(parseWgQuick(conf), (address, port) => ({ address, port })), 0);
  const hexed = (s: DeviceStatus) => JSON.stringify(s, (_k, v) => (v instanceof Uint8Array ? keyHex(v) : v));
  assert.is(hexed(e2.status()), hexed(e.status()));
  assert.is(formatShowConf("wg0", e2.status()), conf);
  assert.is(formatShowField("wg0", e.status(), "public-key"), `${PUB_A}\n`);
});

test.run();
