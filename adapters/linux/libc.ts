// The few C library calls the Linux code makes (the TUN device, socket
// options, sendmmsg), as one small interface. Each host binds it with its
// own FFI: koffi on Node (adapters/node/libc.ts), Deno.dlopen
// (adapters/deno/libc.ts), bun:ffi (adapters/bun/libc.ts), each loaded on
// first use, so nothing native is loaded until a TUN or sendmmsg is asked
// for. The code over it (tun.ts, mmsg.ts, ring.ts) is written once.
//
// A pointer is what the FFI passes fastest: a number for koffi and bun:ffi,
// a bigint for Deno (measured: a usize parameter as bigint 178 ns a call,
// as number 350 ns). Code over the interface never does arithmetic on one
// itself: it asks add().

export type Pointer = number | bigint;

export interface Libc<P extends Pointer = Pointer> {
  /** open(2); `path` NUL-terminated. */
  open(path: Uint8Array, flags: number): number;
  close(fd: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** ioctl(2) whose argument is an integer passed by value (TUNSETOFFLOAD). */
  ioctlValue(fd: number, request: number, value: number): number;
  read(fd: number, buf: P, count: number): number;
  write(fd: number, buf: P, count: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  sendmmsg(fd: number, msgvec: P, vlen: number, flags: number): number;
  /** errno as the last failed call on this thread left it: read it right after the call. */
  errno(): number;
  /** strerror(errnum). */
  strerror(errnum: number): string;
  /** The address of a typed array's first byte (ArrayBuffers never move). */
  addressOf(view: Uint8Array): P;
  /** p + n bytes. */
  add(p: P, n: number): P;
  /** Stores pointer p at byte `at` of `view`, as a C struct's pointer field (64-bit, little-endian). */
  storePointer(view: DataView, at: number, p: P): void;
}

// errno values the Linux code tells apart.
export const EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, EACCES = 13, EBUSY = 16, ENODEV = 19, EINVAL = 22, EADDRINUSE = 98;

/** "No such device (errno 19)". */
export function errnoText(libc: Libc, e: number): string {
  return `${libc.strerror(e)} (errno ${e})`;
}

/** A NUL-terminated copy of `s`, for a const char * argument. */
export function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

/** Libc.storePointer for FFIs whose pointers are numbers (koffi, bun:ffi): low and high 32 bits, little-endian. */
export function storeNumberPointer(view: DataView, at: number, p: number): void {
  view.setUint32(at, p % 0x1_0000_0000, true);
  view.setUint32(at + 4, Math.floor(p / 0x1_0000_0000), true);
}
