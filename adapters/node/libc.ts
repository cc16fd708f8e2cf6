// libc for Node through koffi (linux/libc.ts's interface), loaded on first
// use: importing this module loads nothing native, so a host without koffi,
// glibc or Linux runs everything but the TUN device (and sends a datagram a
// call instead of a batch). Each thread that uses it (the TUN reader is a
// worker) binds its own copy. Pointers are numbers (intptr_t).
import { MissingPackageError, NoTunError } from "../ports/errors.ts";
import { storeNumberPointer } from "../linux/libc.ts";
import type { RecvLibc } from "../linux/udp-ring.ts";

type KoffiFn = (...args: unknown[]) => unknown;
interface Koffi {
  load(path: string): { func(signature: string): KoffiFn };
  errno(): number;
}

let loading: Promise<RecvLibc<number>> | null = null;

/**
 * libc through koffi, loaded once per thread.
 * @throws NoTunError on a host that is not Linux or has no libc.so.6 (musl); MissingPackageError without koffi
 */
export function loadLibc(): Promise<RecvLibc<number>> {
  return loading ??= bind();
}

async function bind(): Promise<RecvLibc<number>> {
  if (process.platform !== "linux") throw new NoTunError(`TUN devices and sendmmsg are Linux's; this is ${process.platform}`);
  let koffi: Koffi;
  try {
    koffi = ((await import("koffi")) as unknown as { default: Koffi }).default;
  } catch {
    throw new MissingPackageError("koffi", "the TUN device on Node", "use wg up --netstack, which needs no TUN device");
  }
  let lib: ReturnType<Koffi["load"]>;
  try {
    lib = koffi.load("libc.so.6");
  } catch (e) {
    throw new NoTunError(`cannot load libc.so.6: ${e instanceof Error ? e.message : String(e)}`);
  }
  const open = lib.func("int open(const char *path, int flags)");
  const close = lib.func("int close(int fd)");
  const ioctl = lib.func("int ioctl(int fd, unsigned long req, void *arg)");
  const ioctlValue = lib.func("int ioctl(int fd, unsigned long req, unsigned long arg)");
  const read = lib.func("long read(int fd, intptr_t buf, unsigned long n)");
  const write = lib.func("long write(int fd, intptr_t buf, unsigned long n)");
  const setsockopt = lib.func("int setsockopt(int fd, int level, int name, const void *v, unsigned int len)");
  const sendmmsg = lib.func("int sendmmsg(int fd, intptr_t msgvec, unsigned int vlen, int flags)");
  const poll = lib.func("int poll(void *fds, unsigned long n, int timeout)");
  const recvmmsg = lib.func("int recvmmsg(int fd, intptr_t msgvec, unsigned int vlen, int flags, void *timeout)");
  const strerror = lib.func("const char *strerror(int errnum)");
  // memmove(p, p, 0) returns p: the address of a buffer, without a copy.
  const addr = lib.func("intptr_t memmove(void *dst, void *src, unsigned long n)");
  return {
    open: (path, flags) => open(path, flags) as number,
    close: (fd) => close(fd) as number,
    ioctl: (fd, req, arg) => ioctl(fd, req, arg) as number,
    ioctlValue: (fd, req, v) => ioctlValue(fd, req, v) as number,
    read: (fd, buf, n) => read(fd, buf, n) as number,
    write: (fd, buf, n) => write(fd, buf, n) as number,
    setsockopt: (fd, level, name, v, len) => setsockopt(fd, level, name, v, len) as number,
    sendmmsg: (fd, vec, n, flags) => sendmmsg(fd, vec, n, flags) as number,
    poll: (fds, n, timeout) => poll(fds, n, timeout) as number,
    recvmmsg: (fd, vec, n, flags) => recvmmsg(fd, vec, n, flags, null) as number,
    errno: () => koffi.errno(),
    strerror: (e) => String(strerror(e)),
    addressOf: (b) => Number(addr(b, b, 0)),
    add: (p, n) => p + n,
    storePointer: storeNumberPointer,
  };
}
