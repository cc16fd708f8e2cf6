// The UDP datagrams of a pcap file (tcpdump -w on an Ethernet link), for
// replaying what was captured off the wire.

export interface Captured {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  data: Uint8Array;
}

/** Every IPv4 UDP datagram in a classic little-endian pcap of link type Ethernet. */
export function udpDatagrams(file: Uint8Array): Captured[] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < 24 || v.getUint32(0, true) !== 0xa1b2c3d4) throw new Error("not a little-endian microsecond pcap file");
  if (v.getUint32(20, true) !== 1) throw new Error(`pcap link type ${v.getUint32(20, true)}, not Ethernet`);
  const out: Captured[] = [];
  for (let at = 24; at + 16 <= file.length;) {
    const len = v.getUint32(at + 8, true);
    const frame = file.subarray(at + 16, at + 16 + len);
    at += 16 + len;
    if (frame.length < 14 + 20 + 8 || frame[12] !== 0x08 || frame[13] !== 0x00) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0] & 0x0f) * 4;
    if (ip[9] !== 17 || ((ip[6] & 0x3f) | ip[7]) !== 0) continue; // UDP, first fragment only
    const total = (ip[2] << 8) | ip[3];
    const udp = ip.subarray(ihl, total);
    if (udp.length < 8) continue;
    out.push({
      src: ip.subarray(12, 16).join("."), dst: ip.subarray(16, 20).join("."),
      sport: (udp[0] << 8) | udp[1], dport: (udp[2] << 8) | udp[3], data: udp.slice(8),
    });
  }
  return out;
}
