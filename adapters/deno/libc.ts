// The few libc calls the Deno adapter makes through Deno.dlopen (needs
// --allow-ffi): the TUN device, the eventfd that wakes its poll() at close,
// and for the UDP socket its options and sendmmsg. Loaded on first use, so
// commands that never touch a device need no FFI permission.
//
// Synchronous calls run on the main thread, so errno is read straight from
// the main thread's errno word (its address, from __errno_location, never
// changes). poll() is the one call declared `nonblocking`: Deno runs it on a
// thread of its own and resolves a promise, so waiting for the TUN device
// never blocks the event loop.

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // Addresses as bigint (Deno's fast path for 64-bit parameters): no pointer object per packet.
  read: { parameters: ["i32", "usize", "usize"], result: "isize" },
  write: { parameters: ["i32", "usize", "usize"], result: "isize" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libc | null = null;
let errnoWord: Deno.UnsafePointerView | null = null;

/** libc's symbols, opened on first use. Throws Deno.errors.NotCapable without --allow-ffi. */
export function libc(): Libc {
  if (lib === null) {
    lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    errnoWord = new Deno.UnsafePointerView(lib.__errno_location()!);
  }
  return lib;
}

/** errno of the last failed synchronous call (read it before any other libc call). */
export function errno(): number {
  return errnoWord!.getInt32(0);
}

/** strerror(e) and the number, e.g. "No such device (errno 19)". */
export function errnoText(e: number): string {
  const p = libc().strerror(e);
  return `${p === null ? "error" : Deno.UnsafePointerView.getCString(p)} (errno ${e})`;
}

/** The address of a typed array's first byte (for the `usize` parameters above). */
export function addressOf(a: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a)));
}

export const EINTR = 4, EAGAIN = 11;
