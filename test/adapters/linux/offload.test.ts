// Opening a TUN device with offloads (adapters/linux/offload.ts) over a fake
// libc: what is asked of the kernel, and the fallbacks when it refuses.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { EINVAL, storeNumberPointer, type Libc } from "../../../adapters/linux/libc.ts";
import { openOffloadedTun } from "../../../adapters/linux/offload.ts";

const TUNSETIFF = 0x400454ca, TUNSETOFFLOAD = 0x400454d0, IFF_VNET_HDR = 0x4000;
const CSUM_TSO = 0x07, USO = 0x60;

/** A libc whose TUNSETOFFLOAD grants only the flag sets in `grants`; it records the calls. */
function fakeLibc(grants: number[]): Libc<number> & { calls: string[] } {
  let next = 10, errno = 0;
  const calls: string[] = [];
  return {
    calls,
    open: () => { calls.push(`open ${next}`); return next++; },
    close: (fd) => { calls.push(`close ${fd}`); return 0; },
    ioctl: (fd, req, arg) => {
      assert.is(req, TUNSETIFF);
      const flags = new DataView(arg.buffer).getUint16(16, true);
      calls.push(`TUNSETIFF ${fd}${flags & IFF_VNET_HDR ? " vnet" : ""}`);
      return 0;
    },
    ioctlValue: (fd, req, v) => {
      assert.is(req, TUNSETOFFLOAD);
      calls.push(`TUNSETOFFLOAD ${fd} ${v.toString(16)}`);
      if (grants.includes(v)) return 0;
      errno = EINVAL;
      return -1;
    },
    read: () => -1, write: () => -1, setsockopt: () => -1, sendmmsg: () => -1,
    errno: () => errno,
    strerror: () => "Invalid argument",
    addressOf: () => 0, add: (p, n) => p + n, storePointer: storeNumberPointer,
  };
}

test("all granted: TSO and USO on, the vnet header kept", () => {
  const c = fakeLibc([CSUM_TSO | USO]);
  const t = openOffloadedTun(c, "wgt0", true);
  assert.equal({ fd: t.fd, vnet: t.vnet, tso: t.tso, uso: t.uso, text: t.text }, { fd: 10, vnet: true, tso: true, uso: true, text: "tso on, uso on" });
  assert.equal(c.calls, ["open 10", "TUNSETIFF 10 vnet", "TUNSETOFFLOAD 10 67"]);
});

test("USO refused (a kernel before 6.2): TSO alone", () => {
  const c = fakeLibc([CSUM_TSO]);
  const t = openOffloadedTun(c, "wgt0", true);
  assert.ok(t.vnet && t.tso && !t.uso);
  assert.is(t.text, "tso on, uso off (kernel refused: Invalid argument (errno 22))");
  assert.equal(c.calls, ["open 10", "TUNSETIFF 10 vnet", "TUNSETOFFLOAD 10 67", "TUNSETOFFLOAD 10 7"]);
});

test("everything refused: the device is opened again without the vnet header", () => {
  const c = fakeLibc([]);
  const t = openOffloadedTun(c, "wgt0", true);
  assert.equal({ fd: t.fd, vnet: t.vnet, tso: t.tso, uso: t.uso }, { fd: 11, vnet: false, tso: false, uso: false });
  assert.is(t.text, "tso off, uso off (kernel refused: Invalid argument (errno 22))");
  assert.equal(c.calls, ["open 10", "TUNSETIFF 10 vnet", "TUNSETOFFLOAD 10 67", "TUNSETOFFLOAD 10 7", "close 10", "open 11", "TUNSETIFF 11"]);
});

test("turned off: opened plainly, nothing asked", () => {
  const c = fakeLibc([CSUM_TSO | USO]);
  const t = openOffloadedTun(c, "wgt0", false);
  assert.ok(!t.vnet && !t.tso && !t.uso);
  assert.is(t.text, "tso off, uso off (turned off)");
  assert.equal(c.calls, ["open 10", "TUNSETIFF 10"]);
});

test.run();
