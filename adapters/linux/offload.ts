// A TUN device with offloads: opened with IFF_VNET_HDR, then TUNSETOFFLOAD
// asks the kernel for checksum offload and TSO (it may then hand over TCP
// super-packets of up to 64 KB with a partial checksum) and, on kernels
// from 6.2, USO (the same for UDP). What the kernel refuses falls back one
// step: without USO; without TSO, the device is opened again plainly, as
// if offloads had been turned off. The engine's half is src/offload.ts.
import { errnoText, type Libc } from "./libc.ts";
import { openTunFd } from "./tun.ts";

const TUNSETOFFLOAD = 0x400454d0;
const TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04, TUN_F_USO4 = 0x20, TUN_F_USO6 = 0x40;
const TSO = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
const USO = TUN_F_USO4 | TUN_F_USO6;

export interface TunOffloads {
  fd: number;
  /** Packets carry a virtio_net_hdr: the reader splits, the writer coalesces. */
  vnet: boolean;
  tso: boolean;
  uso: boolean;
  /** One line for the log: "tso on, uso off (kernel refused: ...)". */
  text: string;
}

/**
 * Opens TUN interface `name` with what offloads the kernel grants, or
 * plainly when `want` is false.
 * @throws TunError with a one-line reason (from openTunFd)
 */
export function openOffloadedTun(libc: Libc, name: string, want: boolean): TunOffloads {
  if (!want) return { fd: openTunFd(libc, name), vnet: false, tso: false, uso: false, text: "tso off, uso off (turned off)" };
  let fd = openTunFd(libc, name, true);
  if (libc.ioctlValue(fd, TUNSETOFFLOAD, TSO | USO) === 0) return { fd, vnet: true, tso: true, uso: true, text: "tso on, uso on" };
  const noUso = errnoText(libc, libc.errno());
  if (libc.ioctlValue(fd, TUNSETOFFLOAD, TSO) === 0) {
    return { fd, vnet: true, tso: true, uso: false, text: `tso on, uso off (kernel refused: ${noUso})` };
  }
  const noTso = errnoText(libc, libc.errno());
  // Closing the descriptor removes the interface (it is not persistent): open it again without the header.
  libc.close(fd);
  fd = openTunFd(libc, name);
  return { fd, vnet: false, tso: false, uso: false, text: `tso off, uso off (kernel refused: ${noTso})` };
}
