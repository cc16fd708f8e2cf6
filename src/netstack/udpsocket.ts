// A UDP socket bound to a local port: datagrams out through the stack's
// output, datagrams in as a ReadableStream of messages. Both queues are
// capped and drop when full, as UDP may.
import { NetError } from "./errors.ts";
import { PROTO_UDP, ipHeaderLen, writeIp } from "./ip.ts";
import { storeChecksum } from "./checksum.ts";
import { UDP_HEADER, writeUdp } from "./udp.ts";
import { formatAddress, parseAddress } from "../ip.ts";

/** A datagram received: its bytes and the sender's address and port. */
export interface UdpMessage {
  data: Uint8Array;
  address: string;
  port: number;
}

/**
 * Datagrams waiting to be read, per socket (64). Past it, or past
 * UDP_RX_BYTES, an arriving datagram is dropped and counted (udpDropped):
 * a full socket buffer drops the newcomer in Linux and gVisor too, and what
 * waits stays in order for a reader that is only slow.
 */
export const UDP_RX_QUEUE = 64;
/** Bytes waiting to be read, per socket (256 KiB, Linux's default rmem is 208 KiB): bounds a queue of jumbo datagrams. */
export const UDP_RX_BYTES = 256 * 1024;
/** Datagrams waiting to be sent, per socket. */
export const UDP_TX_QUEUE = 64;

/** What a socket needs from the stack. */
export interface UdpHost {
  readonly mtu: number;
  /** Our address for talking to dst (same family), or null when we have none. */
  source(dst: Uint8Array): Uint8Array | null;
  /** The socket has datagrams to send: the stack will call emit. */
  ready(s: UdpSocket): void;
  unbind(s: UdpSocket): void;
  nextIpId(): number;
  readonly counters: { udpOut: number; udpDropped: number };
}

interface Outgoing {
  data: Uint8Array;
  src: Uint8Array;
  dst: Uint8Array;
  port: number;
  sent: ((now: number) => void) | undefined;
}

export class UdpSocket {
  /** @internal Set by an internal user (the DNS resolver) to take datagrams directly instead of the stream. */
  handler: ((data: Uint8Array, src: Uint8Array, srcPort: number) => void) | null = null;
  private rx: UdpMessage[] = [];
  private rxBytes = 0;
  private tx: Outgoing[] = [];
  private txHead = 0;
  private readWake: (() => void) | null = null;
  private closedFlag = false;
  private readDone = false;
  private stream: ReadableStream<UdpMessage> | null = null;

  /** @internal Made by Stack.udp(). */
  constructor(private readonly host: UdpHost, readonly port: number) {}

  /**
   * Datagrams sent to this socket's port, in arrival order. Made on first
   * use: the resolver's sockets (one per query) take datagrams through
   * `handler` and never read it.
   */
  get readable(): ReadableStream<UdpMessage> {
    if (this.stream) return this.stream;
    this.stream = new ReadableStream<UdpMessage>({
      pull: (c) => {
        if (this.deliver(c)) return;
        return new Promise<void>((resolve) => {
          this.readWake = () => {
            if (!this.deliver(c)) return;
            this.readWake = null;
            resolve();
          };
        });
      },
      cancel: () => {
        this.readDone = true;
        this.readWake = null;
        this.rx.length = 0;
        this.rxBytes = 0;
      },
    }, { highWaterMark: 0 });
    return this.stream;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Queues a datagram to address:port. Returns false when it was dropped
   * because the socket's send queue is full (the driver is not pulling
   * output). Throws RangeError for a bad address, port or a datagram larger
   * than the MTU allows (no fragmentation), NetError ENETUNREACH when the
   * stack has no address of that family, NetError EPIPE after close().
   */
  send(data: Uint8Array, address: string, port: number): boolean {
    if (!(data instanceof Uint8Array)) throw new TypeError("UdpSocket.send takes a Uint8Array");
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`invalid port ${port}`);
    return this.sendTo(data, parseAddress(address), port);
  }

  /** @internal send() with the address in bytes, and a hook called when the datagram leaves. */
  sendTo(data: Uint8Array, dst: Uint8Array, port: number, sent?: (now: number) => void): boolean {
    if (this.closedFlag) throw new NetError("EPIPE", "the socket is closed");
    const src = this.host.source(dst);
    if (!src) throw new NetError("ENETUNREACH", `no local address for ${formatAddress(dst)}`);
    const max = this.host.mtu - ipHeaderLen(dst.length) - UDP_HEADER;
    if (data.length > max) throw new RangeError(`datagram of ${data.length} bytes exceeds ${max} (MTU ${this.host.mtu})`);
    if (this.tx.length - this.txHead >= UDP_TX_QUEUE) {
      this.host.counters.udpDropped++;
      return false;
    }
    this.tx.push({ data: data.slice(), src, dst, port, sent });
    this.host.ready(this);
    return true;
  }

  /** Unbinds the port: the readable ends, queued datagrams are dropped. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.tx.length = 0;
    this.txHead = 0;
    this.rx.length = 0;
    this.rxBytes = 0;
    this.host.unbind(this);
    this.readWake?.();
  }

  /** @internal A datagram for this socket arrived. */
  receive(data: Uint8Array, src: Uint8Array, srcPort: number): void {
    if (this.closedFlag) return;
    if (this.handler) { this.handler(data, src, srcPort); return; }
    if (this.readDone || this.rx.length >= UDP_RX_QUEUE || this.rxBytes + data.length > UDP_RX_BYTES) {
      this.host.counters.udpDropped++;
      return;
    }
    this.rx.push({ data: data.slice(), address: formatAddress(src), port: srcPort });
    this.rxBytes += data.length;
    this.readWake?.();
  }

  private deliver(c: ReadableStreamDefaultController<UdpMessage>): boolean {
    if (this.readDone) return true;
    const m = this.rx.shift();
    if (m) {
      this.rxBytes -= m.data.length;
      c.enqueue(m);
      return true;
    }
    if (this.closedFlag) { this.readDone = true; c.close(); return true; }
    return false;
  }

  /** @internal Writes the next queued datagram as an IP packet at buf[off]; 0 when none. */
  emit(buf: Uint8Array, off: number, now: number): number {
    if (this.txHead >= this.tx.length) return 0;
    const d = this.tx[this.txHead];
    this.tx[this.txHead++] = undefined as unknown as Outgoing;
    if (this.txHead === this.tx.length) { this.tx.length = 0; this.txHead = 0; }
    const ihl = ipHeaderLen(d.src.length), len = UDP_HEADER + d.data.length;
    writeIp(buf, off, d.src, d.dst, PROTO_UDP, len, this.host.nextIpId());
    writeUdp(buf, off + ihl, this.port, d.port, d.data.length);
    buf.set(d.data, off + ihl + UDP_HEADER);
    storeChecksum(buf, off + ihl, len, d.src, d.dst, PROTO_UDP, 6);
    this.host.counters.udpOut++;
    d.sent?.(now);
    return ihl + len;
  }

  /** @internal Bytes of received datagrams waiting to be read. */
  get queuedBytes(): number {
    return this.rxBytes;
  }

  /** @internal Datagrams queued either way, for the stack's accounting. */
  get queued(): number {
    return this.tx.length - this.txHead + this.rx.length;
  }
}
