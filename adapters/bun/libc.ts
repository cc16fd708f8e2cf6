// libc for Bun through bun:ffi (linux/libc.ts's interface), opened on first
// use: importing this module loads nothing native (bun:ffi itself is
// imported then too, so the module also loads where there is no Bun). Each
// thread that uses it (the TUN reader is a Worker) opens its own copy.
//
// read() and write() return ssize_t; they are bound as returning i32, which
// reads the low half of the register: exact for every count below 2 GiB and
// for -1, and it keeps the call on Bun's fast path (an i64 return is a
// BigInt). Pointers are numbers.
import { NoTunError } from "../ports/errors.ts";
import { storeNumberPointer } from "../linux/libc.ts";
import type { SocketLibc } from "../linux/udp-bind.ts";

const SYMBOLS = {
  open: { args: ["ptr", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i32" },
  write: { args: ["i32", "ptr", "u64"], returns: "i32" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  sendmmsg: { args: ["i32", "ptr", "u32", "i32"], returns: "i32" },
  recvmmsg: { args: ["i32", "ptr", "u32", "i32", "ptr"], returns: "i32" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "ptr" },
} as const;

type Fn = (...args: unknown[]) => number;
let loading: Promise<SocketLibc<number>> | null = null;

/**
 * libc through bun:ffi, opened once per thread.
 * @throws NoTunError on a host that is not Linux or has no libc.so.6 (musl), or where FFI fails
 */
export function loadLibc(): Promise<SocketLibc<number>> {
  return loading ??= bind();
}

async function bind(): Promise<SocketLibc<number>> {
  if (process.platform !== "linux") throw new NoTunError(`TUN devices and sendmmsg are Linux's; this is ${process.platform}`);
  let s: Record<keyof typeof SYMBOLS, Fn>;
  let ffi: typeof import("bun:ffi");
  try {
    ffi = await import("bun:ffi");
    s = ffi.dlopen("libc.so.6", SYMBOLS).symbols as unknown as Record<keyof typeof SYMBOLS, Fn>;
  } catch (e) {
    throw new NoTunError(`cannot load libc.so.6 through bun:ffi: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { ptr, read, CString } = ffi;
  // errno lives at a fixed address per thread: found once.
  const errnoAt = s.__errno_location();
  return {
    open: (path, flags) => s.open(path, flags),
    close: (fd) => s.close(fd),
    ioctl: (fd, req, arg) => s.ioctl(fd, req, arg),
    // bun:ffi passes a number given for a ptr argument as it is: the value itself.
    ioctlValue: (fd, req, v) => s.ioctl(fd, req, v),
    read: (fd, buf, n) => s.read(fd, buf, n),
    write: (fd, buf, n) => s.write(fd, buf, n),
    poll: (fds, n, timeout) => s.poll(fds, n, timeout),
    setsockopt: (fd, level, name, v, len) => s.setsockopt(fd, level, name, v, len),
    sendmmsg: (fd, vec, n, flags) => s.sendmmsg(fd, vec, n, flags),
    recvmmsg: (fd, vec, n, flags) => s.recvmmsg(fd, vec, n, flags, null),
    socket: (domain, type, proto) => s.socket(domain, type, proto),
    bind: (fd, addr, len) => s.bind(fd, addr, len),
    getsockname: (fd, addr, len) => s.getsockname(fd, addr, len),
    errno: () => read.i32(errnoAt),
    strerror: (e) => String(new CString(s.strerror(e))),
    addressOf: (b) => ptr(b),
    add: (p, n) => p + n,
    storePointer: storeNumberPointer,
  };
}
