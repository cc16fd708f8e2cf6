// libc for Deno through Deno.dlopen (linux/libc.ts's interface, and the
// extras only Deno needs: poll on an FFI thread, the eventfd that wakes it,
// and getsockname/getsockopt to find a socket's descriptor). Opened on first
// use, so commands that never touch a device need no --allow-ffi.
//
// Synchronous calls run on the main thread, so errno is read straight from
// the main thread's errno word (its address, from __errno_location, never
// changes). poll() is the one call declared `nonblocking`: Deno runs it on a
// thread of its own and resolves a promise, so waiting for the TUN device
// never blocks the event loop. Addresses are bigint, Deno's fast path for
// 64-bit parameters (178 against 350 ns a call as a number, measured here).
import type { Libc } from "../linux/libc.ts";
import type { RecvLibc } from "../linux/udp-ring.ts";

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  ioctl_value: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  read: { parameters: ["i32", "usize", "usize"], result: "isize" },
  write: { parameters: ["i32", "usize", "usize"], result: "isize" },
  sendmmsg: { parameters: ["i32", "usize", "u32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  poll_wait: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "usize", "u32", "i32", "pointer"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** linux/libc.ts's calls, and Deno's extras. */
export interface DenoLibc extends Libc<bigint> {
  /** poll(2) on an FFI thread: the event loop runs on. */
  poll(fds: Uint8Array, nfds: bigint, timeout: number): Promise<number>;
  eventfd(initval: number, flags: number): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint8Array): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Uint8Array): number;
}

let lib: DenoLibc | null = null;
let symbols: Symbols | null = null;

/** For a reader thread (a Worker, never the main thread): libc with a blocking poll(), and recvmmsg. */
export function readerLibc(): RecvLibc<bigint> {
  const c = libc(), s = symbols!;
  return {
    ...c,
    poll: (fds, n, timeout) => s.poll_wait(fds, BigInt(n), timeout),
    recvmmsg: (fd, vec, n, flags) => s.recvmmsg(fd, vec, n, flags, null),
  };
}

/** libc, opened on first use. Throws Deno.errors.NotCapable without --allow-ffi. */
export function libc(): DenoLibc {
  if (lib !== null) return lib;
  const s: Symbols = symbols = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  const errnoWord = new Deno.UnsafePointerView(s.__errno_location()!);
  lib = {
    open: (path, flags) => s.open(path, flags),
    close: (fd) => s.close(fd),
    ioctl: (fd, req, arg) => s.ioctl(fd, BigInt(req), arg),
    ioctlValue: (fd, req, v) => s.ioctl_value(fd, BigInt(req), BigInt(v)),
    read: (fd, buf, n) => Number(s.read(fd, buf, BigInt(n))),
    write: (fd, buf, n) => Number(s.write(fd, buf, BigInt(n))),
    sendmmsg: (fd, vec, n, flags) => s.sendmmsg(fd, vec, n, flags),
    setsockopt: (fd, level, name, v, len) => s.setsockopt(fd, level, name, v, len),
    errno: () => errnoWord.getInt32(0),
    strerror: (e) => {
      const p = s.strerror(e);
      return p === null ? "error" : Deno.UnsafePointerView.getCString(p);
    },
    addressOf: (a) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a))),
    add: (p, n) => p + BigInt(n),
    storePointer: (dv, at, p) => dv.setBigUint64(at, p, true),
    poll: (fds, n, timeout) => s.poll(fds, n, timeout),
    eventfd: (v, flags) => s.eventfd(v, flags),
    getsockname: (fd, addr, len) => s.getsockname(fd, addr, len),
    getsockopt: (fd, level, name, v, len) => s.getsockopt(fd, level, name, v, len),
  };
  return lib;
}
