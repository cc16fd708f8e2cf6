// The C library calls the Bun adapter needs, through bun:ffi. Each thread
// that imports this module binds its own copy (the TUN reader is a Worker).
//
// read() and write() return ssize_t; they are bound as returning i32, which
// reads the low half of the register: exact for every count below 2 GiB and
// for -1, and it keeps the call on Bun's fast path (an i64 return is a BigInt).
import { dlopen, read, CString } from "bun:ffi";

export interface Libc {
  open(path: Uint8Array, flags: number): number;
  close(fd: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  read(fd: number, buf: number, count: number): number;
  write(fd: number, buf: number, count: number): number;
  poll(fds: Uint8Array, nfds: number, timeout: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  __errno_location(): number;
  strerror(errnum: number): number;
}

const lib = dlopen("libc.so.6", {
  open: { args: ["ptr", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i32" },
  write: { args: ["i32", "ptr", "u64"], returns: "i32" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "ptr" },
});

export const libc = lib.symbols as unknown as Libc;

// errno lives at a fixed address per thread: find it once.
const errnoAt = libc.__errno_location();

/** errno, as the last failed call on this thread left it. Read it right after the call. */
export function errno(): number {
  return read.i32(errnoAt);
}

/** errno as "No such device (errno 19)". */
export function errnoText(e: number): string {
  return `${new CString(libc.strerror(e))} (errno ${e})`;
}

/** A NUL-terminated copy of `s`, for a const char * argument. */
export function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

export const EINTR = 4, EAGAIN = 11;
