// Opening a Linux TUN device: /dev/net/tun, IFF_TUN | IFF_NO_PI, attached to
// interface NAME with TUNSETIFF, non-blocking, and what each failure means
// in one line. Each host reads and writes the descriptor its own way
// (a reader thread on Node and Bun, a polled drain on Deno).
import { UserError } from "../ports/errors.ts";
import { cstr, errnoText, EACCES, EBUSY, EINVAL, ENODEV, ENOENT, EPERM, type Libc } from "./libc.ts";

const O_RDWR = 2, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
const IFNAMSIZ = 16;

/** A TUN device could not be opened or created; the message says why in one line. */
export class TunError extends UserError {}

/** Throws TunError unless `name` can name an interface (1-15 of A-Z a-z 0-9 _ = + . -). */
export function checkInterfaceName(name: string): void {
  if (new TextEncoder().encode(name).length >= IFNAMSIZ || !/^[A-Za-z0-9_=+.-]+$/.test(name)) {
    throw new TunError(`invalid interface name '${name}': at most 15 of A-Z a-z 0-9 _ = + . -`);
  }
}

/**
 * Creates (or attaches to) TUN interface `name`; with `vnet`, every packet
 * read or written has a virtio_net_hdr before it (linux/offload.ts).
 * @returns its non-blocking file descriptor
 * @throws TunError with a one-line reason
 */
export function openTunFd(libc: Libc, name: string, vnet = false): number {
  checkInterfaceName(name);
  const fd = libc.open(cstr("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const e = libc.errno();
    if (e === ENOENT || e === ENODEV) throw new TunError("cannot open /dev/net/tun: no TUN support (load the tun module, or give the container /dev/net/tun)");
    if (e === EACCES || e === EPERM) throw new TunError("cannot open /dev/net/tun: permission denied (run as root, or with CAP_NET_ADMIN)");
    throw new TunError(`cannot open /dev/net/tun: ${errnoText(libc, e)}`);
  }
  // struct ifreq: the name, then ifr_flags (a short) at offset 16.
  const ifr = new Uint8Array(40);
  ifr.set(new TextEncoder().encode(name));
  new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0), true);
  if (libc.ioctl(fd, TUNSETIFF, ifr) < 0) {
    const e = libc.errno();
    libc.close(fd);
    if (e === EPERM) throw new TunError(`cannot create interface '${name}': operation not permitted (run as root, or with CAP_NET_ADMIN)`);
    if (e === EBUSY) throw new TunError(`cannot create interface '${name}': it exists and is busy`);
    if (e === EINVAL) throw new TunError(`cannot create interface '${name}': an interface of another kind has that name`);
    throw new TunError(`cannot create interface '${name}': ${errnoText(libc, e)}`);
  }
  return fd;
}
