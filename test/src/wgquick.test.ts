// wg-quick(8) configuration files: every key, every error (with its line),
// toDeviceConfig and `wg-quick strip`.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ConfigError, parseHostPort, parseWgQuick, stripWgQuick, toDeviceConfig, type WgQuickConfig } from "../../src/wgquick.ts";
import { keyFromBase64, keyToBase64 } from "../../src/config.ts";

// Keys made with wg genkey / wg pubkey / wg genpsk.
const PRIV_A = "UM9jp1tgUFcmvOURi4IGcDdzz1Vtw9rtKGHlGwd+f2E=";
const PUB_B = "WZdK0iHuVN/0sp2nk6YUYsu6YcF6zXwSg5yMP+WVzzU=";
const PUB_C = "nhEqQj4jud3rdyG+jTj/p1z65tNywv2m5ACVKCeli0Y=";
const PSK = "sIC9S4vxowvf5wTBFSWIbQe9iLnQl9ncK5H56MuxSfI=";

const b64 = (k: Uint8Array | undefined) => (k ? keyToBase64(k) : undefined);

function fails(text: string, message: string, line?: number): void {
  try {
    parseWgQuick(text);
  } catch (e) {
    assert.instance(e, ConfigError);
    assert.instance(e, Error);
    assert.is((e as Error).message, message);
    assert.is((e as Error).name, "ConfigError");
    assert.not.ok((e as Error).message.includes("\n"), "one line");
    if (line !== undefined) assert.is((e as ConfigError).line, line);
    return;
  }
  assert.unreachable(`no error for:\n${text}`);
}

const FULL = `# a full wg-quick file
[Interface]
PrivateKey = ${PRIV_A}
ListenPort = 51820
FwMark = 0x1234
Address = 10.0.0.1/24, fd00::1/64
Address = 10.0.1.1
MTU = 1380
DNS = 1.1.1.1, example.com, fd00::53 corp.lan
Table = 1234
PreUp = echo pre-up 1
PreUp = echo pre-up 2
PostUp = iptables -A FORWARD -i %i -j ACCEPT # a comment that stays
PreDown = echo pre-down
PostDown = echo post-down 1
PostDown = echo post-down 2
SaveConfig = true

[Peer]
PublicKey = ${PUB_B}
PresharedKey = ${PSK}
AllowedIPs = 10.0.0.2/32, fd00::2/128
AllowedIPs = 192.168.0.0/16
Endpoint = vpn.example.com:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${PUB_C}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = [2001:db8::1]:443
PersistentKeepalive = off
`;

test("every key of a full file", () => {
  const c = parseWgQuick(FULL);
  const i = c.interface;
  assert.is(i.line, 2);
  assert.is(b64(i.privateKey), PRIV_A);
  assert.is(i.listenPort, 51820);
  assert.is(i.fwmark, 0x1234);
  assert.equal(i.addresses, [
    { address: "10.0.0.1", cidr: 24, family: 4 },
    { address: "fd00::1", cidr: 64, family: 6 },
    { address: "10.0.1.1", cidr: 32, family: 4 },
  ]);
  assert.is(i.mtu, 1380);
  assert.equal(i.dns, ["1.1.1.1", "fd00::53"]);
  assert.equal(i.dnsSearch, ["example.com", "corp.lan"]);
  assert.is(i.table, 1234);
  assert.equal(i.preUp, ["echo pre-up 1", "echo pre-up 2"]);
  assert.equal(i.postUp, ["iptables -A FORWARD -i %i -j ACCEPT # a comment that stays"]);
  assert.equal(i.preDown, ["echo pre-down"]);
  assert.equal(i.postDown, ["echo post-down 1", "echo post-down 2"]);
  assert.is(i.saveConfig, true);
  assert.is(c.peers.length, 2);
  const [b, p] = c.peers;
  assert.is(b.line, 19);
  assert.is(b64(b.publicKey), PUB_B);
  assert.is(b64(b.presharedKey), PSK);
  assert.equal(b.allowedIps, ["10.0.0.2/32", "fd00::2/128", "192.168.0.0/16"]);
  assert.equal(b.endpoint, { host: "vpn.example.com", port: 51820 });
  assert.is(b.persistentKeepalive, 25);
  assert.is(p.line, 27);
  assert.is(b64(p.publicKey), PUB_C);
  assert.is(p.presharedKey, undefined);
  assert.equal(p.allowedIps, ["0.0.0.0/0", "::/0"]);
  assert.equal(p.endpoint, { host: "2001:db8::1", port: 443 });
  assert.is(p.persistentKeepalive, 0);
  assert.equal(c.extra, []);
});

test("defaults when keys are absent", () => {
  const c = parseWgQuick(`[Interface]\nPrivateKey = ${PRIV_A}\n`);
  assert.equal(c.interface, {
    line: 1, privateKey: keyFromBase64(PRIV_A), addresses: [], dns: [], dnsSearch: [], preUp: [], postUp: [], preDown: [],
    postDown: [], saveConfig: false,
  });
  assert.equal(c.peers, []);
  const empty = parseWgQuick("");
  assert.is(empty.interface.line, 0, "no [Interface] at all");
  assert.equal(parseWgQuick("# only a comment\n\n").peers, []);
});

test("keys are case-insensitive; comments, blank lines, whitespace and CRLF", () => {
  const text = [
    "  # leading comment",
    "[interface]   # section comment",
    "",
    "privatekey=" + PRIV_A + "#no space before the comment",
    "\tLISTENPORT   =   51821   ",
    "  fwMark = off",
    "ADDRESS=10.9.0.1/16",
    "mtu = 1420",
    "[PEER]",
    "publickey = " + PUB_B,
    "allowedips = 10.9.0.0/16 ,fd09::/64  ",
    "ENDPOINT = 192.0.2.7 : 51820",
    "persistentkeepalive = OFF",
    "",
  ].join("\r\n");
  const c = parseWgQuick(text);
  assert.is(b64(c.interface.privateKey), PRIV_A);
  assert.is(c.interface.listenPort, 51821);
  assert.is(c.interface.fwmark, 0);
  assert.equal(c.interface.addresses, [{ address: "10.9.0.1", cidr: 16, family: 4 }]);
  assert.is(c.interface.mtu, 1420);
  assert.equal(c.peers[0].allowedIps, ["10.9.0.0/16", "fd09::/64"]);
  assert.equal(c.peers[0].endpoint, { host: "192.0.2.7", port: 51820 }, "wg removes all whitespace from its values");
  assert.is(c.peers[0].persistentKeepalive, 0);
  assert.is(c.peers[0].line, 9);
  // wg(8) also ignores whitespace inside its keys.
  assert.equal(parseWgQuick(`[Peer]\nPublic Key = ${PUB_B}\nAllowed IPs = 10.0.0.0/8`).peers[0].allowedIps, ["10.0.0.0/8"]);
});

test("Address: several lines, comma and space lists, IPv4 and IPv6, normalised", () => {
  const c = parseWgQuick("[Interface]\nAddress = 10.0.0.1/24,10.0.0.2/24\nAddress = FD00:0:0::0001/64 2001:db8::7, 192.0.2.1/32\n");
  assert.equal(c.interface.addresses, [
    { address: "10.0.0.1", cidr: 24, family: 4 },
    { address: "10.0.0.2", cidr: 24, family: 4 },
    { address: "fd00::1", cidr: 64, family: 6 },
    { address: "2001:db8::7", cidr: 128, family: 6 },
    { address: "192.0.2.1", cidr: 32, family: 4 },
  ]);
});

test("DNS: servers and search domains, as wg-quick tells them apart", () => {
  const c = parseWgQuick("[Interface]\nDNS = 10.0.0.53,2606:4700:4700::1111\nDNS = home.arpa, 9.9.9.9 search.example\n");
  assert.equal(c.interface.dns, ["10.0.0.53", "2606:4700:4700::1111", "9.9.9.9"]);
  assert.equal(c.interface.dnsSearch, ["home.arpa", "search.example"]);
  assert.equal(parseWgQuick("[Interface]\nDNS =\n").interface.dns, []);
});

test("Table: off, auto, a number, a name; empty means automatic", () => {
  const t = (v: string) => parseWgQuick(`[Interface]\nTable = ${v}\n`).interface.table;
  assert.is(t("off"), "off");
  assert.is(t("auto"), "auto");
  assert.is(t("51820"), 51820);
  assert.is(t("4294967295"), 4294967295);
  assert.is(t("vpn"), "vpn");
  assert.is(t(""), undefined);
  assert.is(parseWgQuick("[Interface]\nTable = 1\nTable =\n").interface.table, undefined, "later empty value resets");
});

test("hooks: several of each, in order, with %i and # kept", () => {
  const c = parseWgQuick([
    "[Interface]",
    "PostUp = echo 'one' # kept",
    "postup=echo two=2",
    "PreDown = ",
    "PostUp =   printf '%s\\n' %i   ",
  ].join("\n"));
  assert.equal(c.interface.postUp, ["echo 'one' # kept", "echo two=2", "printf '%s\\n' %i"]);
  assert.equal(c.interface.preDown, [""]);
});

test("SaveConfig: true or false, any case", () => {
  assert.is(parseWgQuick("[Interface]\nSaveConfig = True\n").interface.saveConfig, true);
  assert.is(parseWgQuick("[Interface]\nSaveConfig = true\nSaveConfig = FALSE\n").interface.saveConfig, false);
});

test("ListenPort, FwMark, PersistentKeepalive ranges and forms", () => {
  const i = (k: string, v: string) => parseWgQuick(`[Interface]\n${k} = ${v}\n`).interface;
  assert.is(i("ListenPort", "0").listenPort, 0);
  assert.is(i("ListenPort", "65535").listenPort, 65535);
  assert.is(i("FwMark", "0").fwmark, 0);
  assert.is(i("FwMark", "51820").fwmark, 51820);
  assert.is(i("FwMark", "0xffffffff").fwmark, 0xffffffff);
  assert.is(i("FwMark", "0xCa").fwmark, 0xca);
  const ka = (v: string) => parseWgQuick(`[Peer]\nPublicKey = ${PUB_B}\nPersistentKeepalive = ${v}\n`).peers[0].persistentKeepalive;
  assert.is(ka("0"), 0);
  assert.is(ka("65535"), 65535);
  assert.is(ka("Off"), 0);
});

test("Endpoint: host:port, [IPv6]:port, names, zones; literals normalised", () => {
  assert.equal(parseHostPort("192.0.2.1:51820"), { host: "192.0.2.1", port: 51820 });
  assert.equal(parseHostPort("[2001:DB8:0::1]:1"), { host: "2001:db8::1", port: 1 });
  assert.equal(parseHostPort("[fe80::1%eth0]:51820"), { host: "fe80::1%eth0", port: 51820 });
  assert.equal(parseHostPort("[::ffff:192.0.2.1]:51820"), { host: "::ffff:c000:201", port: 51820 });
  assert.equal(parseHostPort("wg.example.com:65535"), { host: "wg.example.com", port: 65535 });
  assert.equal(parseHostPort("localhost:9"), { host: "localhost", port: 9 });
  assert.equal(parseHostPort("my_host.example.:9"), { host: "my_host.example.", port: 9 });
  const bad: [string, string][] = [
    ["1.2.3.4", "expected host:port"],
    ["1.2.3.4:", "expected host:port"],
    [":51820", "expected host:port"],
    ["fd00::1:51820", "an IPv6 address needs brackets, as in [fd00::1]:51820"],
    ["[fd00::1]", "expected [IPv6]:port"],
    ["[fd00::1]:", "expected [IPv6]:port"],
    ["[fd00::1:51820", "expected [IPv6]:port"],
    ["[192.0.2.1]:51820", "expected an IPv6 address in brackets"],
    ["[fe80::1%]:51820", "expected an IPv6 address in brackets"],
    ["[nope]:51820", "expected an IPv6 address in brackets"],
    ["1.2.3.400:51820", "invalid IPv4 address"],
    ["1.2.3:51820", "invalid IPv4 address"],
    ["bad..name:1", "invalid host name"],
    ["-bad:1", "invalid host name"],
    ["host/x:1", "invalid host name"],
    ["host:0", "port must be 1 to 65535"],
    ["host:65536", "port must be 1 to 65535"],
    ["host:http", "port must be 1 to 65535"],
    ["host:-1", "port must be 1 to 65535"],
  ];
  for (const [text, why] of bad) assert.throws(() => parseHostPort(text), (e: Error) => e instanceof RangeError && e.message === `invalid Endpoint '${text}': ${why}`, text);
});

test("wireproxy sections are kept raw, in order, with their lines", () => {
  const c = parseWgQuick([
    "[Interface]",
    `PrivateKey = ${PRIV_A}`,
    "Address = 10.0.0.2/32",
    "DNS = 10.0.0.1",
    "[Peer]",
    `PublicKey = ${PUB_B}`,
    "Endpoint = 192.0.2.1:51820",
    "AllowedIPs = 0.0.0.0/0",
    "",
    "[Socks5]",
    "BindAddress = 127.0.0.1:25344 # comment",
    "Username = user",
    "[http]",
    "BindAddress = 127.0.0.1:25345",
    "[TCPClientTunnel]",
    "BindAddress = 127.0.0.1:25565",
    "Target = play.cubecraft.net:25565",
    "[TCPServerTunnel]",
    "ListenPort = 3422",
    "Target = localhost:25545",
    "[ STDIOTunnel ]",
    "Target = ssh.myserver.net:22",
  ].join("\n"));
  assert.equal(c.extra, [
    { name: "Socks5", line: 10, entries: [["BindAddress", "127.0.0.1:25344", 11], ["Username", "user", 12]] },
    { name: "http", line: 13, entries: [["BindAddress", "127.0.0.1:25345", 14]] },
    { name: "TCPClientTunnel", line: 15, entries: [["BindAddress", "127.0.0.1:25565", 16], ["Target", "play.cubecraft.net:25565", 17]] },
    { name: "TCPServerTunnel", line: 18, entries: [["ListenPort", "3422", 19], ["Target", "localhost:25545", 20]] },
    { name: "STDIOTunnel", line: 21, entries: [["Target", "ssh.myserver.net:22", 22]] },
  ]);
  assert.is(c.peers.length, 1, "the peer before them is complete");
  assert.equal(c.peers[0].allowedIps, ["0.0.0.0/0"]);
});

test("errors name the line and what is wrong", () => {
  fails(`[Interface]\n# c\nPrivateKey = abc\n`, "line 3: invalid PrivateKey: expected 44 base64 characters", 3);
  fails(`[Interface]\nPrivateKey = ${PRIV_A.slice(0, 42)}B=\n`, "line 2: invalid PrivateKey: expected 44 base64 characters");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nPresharedKey = ${PSK}x\n`, "line 3: invalid PresharedKey: expected 44 base64 characters");
  fails(`[Peer]\nPublicKey = ${PUB_B.slice(1)}\n`, "line 2: invalid PublicKey: expected 44 base64 characters");
  fails(`[Interface]\nPrivateKey = ${PRIV_A}\n\n[Peer]\nPublicKey = ${PUB_B}\n\nFoo = bar\n`, "line 7: unknown key 'Foo' in [Peer]", 7);
  fails(`[Interface]\nAllowedIPs = 10.0.0.0/8\n`, "line 2: unknown key 'AllowedIPs' in [Interface]");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nAddress = 10.0.0.1/24\n`, "line 3: unknown key 'Address' in [Peer]");
  fails(`[Interface]\n\n\n\n\n\n[Peer]\nPublicKey = ${PUB_B}\nEndpoint = 1.2.3.4\n`, "line 9: invalid Endpoint '1.2.3.4': expected host:port", 9);
  fails(`[Peer]\nPublicKey = ${PUB_B}\n\nAllowedIPs = 10.0.0.0/8, 10.0.0.0/33\n`, "line 4: invalid AllowedIPs '10.0.0.0/33'", 4);
  fails(`[Peer]\nPublicKey = ${PUB_B}\nAllowedIPs = 10.0.0.0/8,\n`, "line 3: invalid AllowedIPs ''");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nAllowedIPs = fd00::/129\n`, "line 3: invalid AllowedIPs 'fd00::/129'");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nAllowedIPs = 10.0.0.256/32\n`, "line 3: invalid AllowedIPs '10.0.0.256/32'");
  fails(`# comment\nPrivateKey = ${PRIV_A}\n[Interface]\n`, "line 2: key 'PrivateKey' outside a section", 2);
  fails(`[Interface]\nPrivateKey = ${PRIV_A}\n\n[Peer]\nAllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = ${PUB_B}\n`, "line 4: [Peer] without PublicKey", 4);
  fails(`[Peer]\nPublicKey = ${PUB_B}\n[Peer]\nPublicKey = ${PUB_C}\n[Peer]\n`, "line 5: [Peer] without PublicKey", 5);
  fails(`[Peer]\nPublicKey = ${PUB_B}\n\n[Peer]\nPublicKey = ${PUB_C}\n[Peer]\nPublicKey = ${PUB_B}\n`,
    "line 6: duplicate [Peer]: the PublicKey of the [Peer] at line 1", 6);
  fails(`[Interface]\nMTU = 70000\n`, "line 2: invalid MTU '70000': expected 576 to 65455");
  fails(`[Interface]\nMTU = 575\n`, "line 2: invalid MTU '575': expected 576 to 65455");
  fails(`[Interface]\nMTU = 65456\n`, "line 2: invalid MTU '65456': expected 576 to 65455");
  fails(`[Interface]\nMTU = 1400a\n`, "line 2: invalid MTU '1400a': expected 576 to 65455");
  fails(`[Interface]\nListenPort = 65536\n`, "line 2: invalid ListenPort '65536': expected 0 to 65535");
  fails(`[Interface]\nListenPort = wireguard\n`, "line 2: invalid ListenPort 'wireguard': expected 0 to 65535");
  fails(`[Interface]\nFwMark = 0x100000000\n`, "line 2: invalid FwMark '0x100000000': expected off or 0 to 0xffffffff");
  fails(`[Interface]\nFwMark = 0X10\n`, "line 2: invalid FwMark '0X10': expected off or 0 to 0xffffffff");
  fails(`[Interface]\nFwMark = -1\n`, "line 2: invalid FwMark '-1': expected off or 0 to 0xffffffff");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nPersistentKeepalive = 65536\n`, "line 3: invalid PersistentKeepalive '65536': expected off or 0 to 65535");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nPersistentKeepalive = never\n`, "line 3: invalid PersistentKeepalive 'never': expected off or 0 to 65535");
  fails(`[Interface]\nSaveConfig = yes\n`, "line 2: invalid SaveConfig 'yes': expected true or false");
  fails(`[Interface]\nSaveConfig =\n`, "line 2: invalid SaveConfig '': expected true or false");
  fails(`[Interface]\nAddress = 10.0.0.1/24, 10.0.0.300\n`, "line 2: invalid Address '10.0.0.300'");
  fails(`[Interface]\nAddress = 10.0.0.1/40\n`, "line 2: invalid Address '10.0.0.1/40'");
  fails(`[Interface]\nDNS = 1.1.1.1, 1.2.3\n`, "line 2: invalid DNS '1.2.3'");
  fails(`[Interface]\nDNS = fd00:::1\n`, "line 2: invalid DNS 'fd00:::1'");
  fails(`[Interface]\nTable = 4294967296\n`, "line 2: invalid Table '4294967296'");
  fails(`[Interface]\nTable = my table\n`, "line 2: invalid Table 'my table'");
  fails(`[Interface]\nPrivateKey =\n`, "line 2: missing value for PrivateKey");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nAllowedIPs = # nothing\n`, "line 3: missing value for AllowedIPs");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nEndpoint =\n`, "line 3: missing value for Endpoint");
  fails(`[Interface]\n[Wat]\n`, "line 2: unknown section [Wat]");
  fails(`[Interface\n`, "line 1: invalid section header '[Interface'");
  fails(`[Interface] x\n`, "line 1: invalid section header '[Interface] x'");
  fails(`[Interface]\nPrivateKey\n`, "line 2: expected 'Key = value', got 'PrivateKey'");
  fails(`[Socks5]\nBindAddress\n`, "line 2: expected 'Key = value', got 'BindAddress'");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nEndpoint = [fd00::1]51820\n`, "line 3: invalid Endpoint '[fd00::1]51820': expected [IPv6]:port");
  fails(`[Peer]\nPublicKey = ${PUB_B}\nEndpoint = host:99999\n`, "line 3: invalid Endpoint 'host:99999': port must be 1 to 65535");
});

test("the last of a repeated single key wins, as in wg(8)", () => {
  const c = parseWgQuick(`[Interface]\nListenPort = 1\nListenPort = 2\nMTU = 1400\nMTU = 1300\n[Peer]\nPublicKey = ${PUB_B}\nEndpoint = a:1\nEndpoint = b:2\n`);
  assert.is(c.interface.listenPort, 2);
  assert.is(c.interface.mtu, 1300);
  assert.equal(c.peers[0].endpoint, { host: "b", port: 2 });
});

test("toDeviceConfig: what wg setconf applies", () => {
  const calls: [string, number][] = [];
  const dc = toDeviceConfig(parseWgQuick(FULL), (host, port) => {
    calls.push([host, port]);
    return { address: host === "vpn.example.com" ? "198.51.100.7" : host, port };
  });
  assert.equal(calls, [["vpn.example.com", 51820], ["2001:db8::1", 443]]);
  assert.equal(dc, {
    privateKey: keyFromBase64(PRIV_A),
    listenPort: 51820,
    fwmark: 0x1234,
    replacePeers: true,
    peers: [
      {
        publicKey: keyFromBase64(PUB_B), replaceAllowedIps: true, allowedIps: ["10.0.0.2/32", "fd00::2/128", "192.168.0.0/16"],
        presharedKey: keyFromBase64(PSK), endpoint: { address: "198.51.100.7", port: 51820 }, persistentKeepalive: 25,
      },
      {
        publicKey: keyFromBase64(PUB_C), replaceAllowedIps: true, allowedIps: ["0.0.0.0/0", "::/0"],
        endpoint: { address: "2001:db8::1", port: 443 }, persistentKeepalive: 0,
      },
    ],
  });
  // Absent device keys are reset, as setconf does.
  const bare = toDeviceConfig(parseWgQuick(`[Peer]\nPublicKey = ${PUB_B}\nAllowedIPs = 10.0.0.0/8\n`), () => { throw new Error("no endpoint to resolve"); });
  assert.equal(bare, {
    privateKey: null, listenPort: 0, fwmark: 0, replacePeers: true,
    peers: [{ publicKey: keyFromBase64(PUB_B), replaceAllowedIps: true, allowedIps: ["10.0.0.0/8"] }],
  });
});

test("toDeviceConfig does not share buffers with the parsed config", () => {
  const parsed: WgQuickConfig = parseWgQuick(FULL);
  const dc = toDeviceConfig(parsed, (address, port) => ({ address, port }));
  dc.privateKey!.fill(0);
  dc.peers![0].allowedIps!.push("1.2.3.4/32");
  assert.is(b64(parsed.interface.privateKey), PRIV_A);
  assert.is(parsed.peers[0].allowedIps.length, 3);
});

test("stripWgQuick prints what wg-quick strip prints, without wireproxy sections", () => {
  // The expected text is what wg-quick strip (wireguard-tools 1.0.20210914)
  // printed for this file, less the [Socks5] section.
  const text = [
    "# top comment",
    "[Interface]",
    `PrivateKey = ${PRIV_A}  # key`,
    "address = 10.0.0.1/24, fd00::1/64",
    "Address=10.0.1.1",
    "DNS = 1.1.1.1, example.com,fd00::53 corp.lan",
    "MTU = 1380",
    "postup = echo \"a # b\" %i",
    "Table = off",
    "SaveConfig = false",
    "",
    "[Peer]",
    `PublicKey = ${PUB_B}`,
    "AllowedIPs = 0.0.0.0/0",
    "Endpoint = example.com:51820",
    "",
    "[Socks5]",
    "BindAddress = 127.0.0.1:1080",
    "",
  ].join("\n");
  assert.is(stripWgQuick(text), [
    "# top comment",
    "[Interface]",
    `PrivateKey = ${PRIV_A}  # key`,
    "",
    "[Peer]",
    `PublicKey = ${PUB_B}`,
    "AllowedIPs = 0.0.0.0/0",
    "Endpoint = example.com:51820",
    "",
    "",
    "",
  ].join("\n"));
  // A last line without a line break still ends with one, plus echo's.
  assert.is(stripWgQuick(`[Interface]\nMTU = 1400\nListenPort = 1`), "[Interface]\nListenPort = 1\n\n");
  // wg-quick keys only count in [Interface]: in [Peer] they stay (and fail to parse).
  assert.throws(() => stripWgQuick(`[Peer]\nPublicKey = ${PUB_B}\nDNS = 1.1.1.1\n`), (e: Error) => e instanceof ConfigError);
  // The result parses to the same WireGuard configuration.
  const again = parseWgQuick(stripWgQuick(FULL));
  assert.equal(toDeviceConfig(again, (address, port) => ({ address, port })), toDeviceConfig(parseWgQuick(FULL), (address, port) => ({ address, port })));
  assert.equal(again.interface.addresses, []);
  assert.equal(again.interface.postUp, []);
});

test.run();
