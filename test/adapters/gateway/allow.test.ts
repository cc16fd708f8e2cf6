// WG_ALLOW and the gateway's least-privilege default (adapters/gateway/allow.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AllowListError, allowList, isLocalDestination } from "../../../adapters/gateway/allow.ts";

test("loopback, private, shared, link-local, metadata, multicast and reserved addresses are local; others are not", () => {
  const local = ["127.0.0.1", "127.255.1.2", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.0.1", "169.254.169.254",
    "100.64.0.1", "100.100.100.200", "0.0.0.0", "192.0.0.192", "198.18.0.1", "224.0.0.1", "255.255.255.255",
    "::", "::1", "[::1]", "fd00:ec2::254", "fc00::1", "fe80::1", "fec0::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1", "2002:c0a8:101::1"];
  const open = ["1.1.1.1", "8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "100.128.0.1", "198.51.100.7", "203.0.113.5",
    "2001:db8::1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"];
  for (const a of local) assert.ok(isLocalDestination(a), a);
  for (const a of open) assert.not.ok(isLocalDestination(a), a);
});

test("names of this host, its site and metadata services are local, and so are names a resolver could read as numbers", () => {
  for (const n of ["localhost", "LOCALHOST.", "a.localhost", "metadata", "metadata.google.internal", "instance-data.ec2.internal",
    "db.internal", "printer.local", "nas.home.arpa", "router", "127.1", "0x7f000001", "2130706433", "1.2.3.4.5"]) {
    assert.ok(isLocalDestination(n), n);
  }
  for (const n of ["example.com", "service.example", "a-b.c-d.org", "x.io."]) assert.not.ok(isLocalDestination(n), n);
});

test("no entries: public destinations on any port, nothing local", () => {
  for (const spec of [undefined, "", " , "]) {
    const a = allowList(spec);
    assert.ok(a("198.51.100.1", 443));
    assert.ok(a("example.com", 22));
    assert.not.ok(a("127.0.0.1", 8080));
    assert.not.ok(a("169.254.169.254", 80));
    assert.not.ok(a("localhost", 80));
    assert.not.ok(a.names("example.com", 22), "nothing is named");
  }
});

test("a wildcard never reaches a local destination; naming it (address, prefix or name) does", () => {
  const a = allowList("*:443, 127.0.0.1:8080, 10.1.0.0/16:5432, [fd00::/8]:*, localhost:3000, db.internal");
  assert.ok(a("198.51.100.1", 443));
  assert.not.ok(a("198.51.100.1", 80), "only the listed ports of public ones");
  assert.not.ok(a("127.0.0.1", 443), "the wildcard does not name loopback");
  assert.ok(a("127.0.0.1", 8080));
  assert.not.ok(a("127.0.0.1", 8081));
  assert.ok(a("10.1.200.3", 5432));
  assert.not.ok(a("10.2.0.1", 5432));
  assert.ok(a("fd00:ec2::254", 80), "a prefix names what it holds");
  assert.ok(a("localhost", 3000) && a.names("localhost", 3000));
  assert.ok(a("DB.internal", 1) && a.names("db.internal.", 9));
  assert.not.ok(a("other.internal", 443));
  assert.ok(a("example.com", 443) && !a.names("example.com", 443));
  const everything = allowList("0.0.0.0/0, ::/0");
  assert.ok(everything("127.0.0.1", 1) && everything("::1", 1) && everything("8.8.8.8", 53));
  assert.not.ok(everything("localhost", 1), "a prefix names addresses, not names");
});

test("a malformed entry is one line naming it", () => {
  for (const [spec, why] of [["127.0.0.1:99999", /'127\.0\.0\.1:99999': port '99999'/], ["10.0.0.0/33:*", /'10\.0\.0\.0\/33'/],
    ["a b:80", /'a b' is not a host name/], [":80", /no host/], ["[::1]:x", /port 'x'/], ["999.1.1.1", /not an IP address/]] as [string, RegExp][]) {
    try {
      allowList(`*:443, ${spec}`);
      assert.unreachable(spec);
    } catch (e) {
      assert.instance(e, AllowListError, spec);
      assert.match((e as Error).message, /^WG_ALLOW: invalid entry /);
      assert.match((e as Error).message, why);
      assert.not.match((e as Error).message, /\n/);
    }
  }
});

test.run();
