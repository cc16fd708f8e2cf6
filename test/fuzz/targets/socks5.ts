// SOCKS5's synchronous parsing (adapters/proxy/socks5.ts): a UDP ASSOCIATE
// client's request datagram (parseUdpRequest: RSV RSV FRAG ATYP DST.ADDR
// DST.PORT DATA) and the dual-stack address a client is seen from
// (plainAddress). (The TCP greeting and request are read by serveSocks5
// through streams, whose promise jobs a synchronous Jazzer.js target never
// lets run.)
//
// Defects: an exception; a datagram taken with FRAG set, a port of 0, an
// address that is not one, a domain longer than its length byte allows, or
// data that is not the datagram's tail.
import { parseUdpRequest, plainAddress } from "../../../adapters/proxy/socks5.ts";
import { parseAddress } from "../../../src/ip.ts";

export function fuzz(data: Uint8Array): void {
  const d = parseUdpRequest(data);
  if (d !== null) {
    if (data[2] !== 0 || data[0] !== 0 || data[1] !== 0) throw new Error("a fragment or a reserved byte taken");
    if (!Number.isInteger(d.port) || d.port < 1 || d.port > 65535) throw new Error(`port ${d.port}`);
    if (d.domain === null) {
      const b = parseAddress(d.host);
      if (b.length !== (data[3] === 1 ? 4 : 16)) throw new Error(`ATYP ${data[3]} gave ${d.host}`);
    } else if (data[3] !== 3 || new TextEncoder().encode(d.domain).length > 255 * 3 || d.host !== d.domain) throw new Error(`domain ${d.domain}`);
    if (d.data.buffer !== data.buffer || d.data.byteOffset + d.data.length !== data.byteOffset + data.length) throw new Error("data is not the datagram's tail");
    const header = data.length - d.data.length;
    if (header < 10 && data[3] !== 3) throw new Error(`a header of ${header} bytes`);
  }
  const text = new TextDecoder().decode(data);
  const plain = plainAddress(text);
  if (plain !== text && !/^\d+\.\d+\.\d+\.\d+$/.test(plain)) throw new Error(`plainAddress('${text}') = '${plain}'`);
}
