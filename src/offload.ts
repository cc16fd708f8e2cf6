// Linux TUN offloads, as the adapters use them: the WASM half
// (assembly/offload.ts) splits what a TUN device opened with IFF_VNET_HDR
// reads (a virtio_net_hdr, then a packet or a TSO/USO super-packet) into
// the engine's packet cells, and joins decrypted TCP segments into
// super-packets to write. Runtime-agnostic: the adapter stages reads in the
// area this hands out and writes what coalesce lists; one WASM call per
// batch each way.
import type { Output } from "./engine.ts";
import { HEADROOM, VNET_HDR, type Wasm } from "./wasm.ts";

export { VNET_HDR };
/** The most one read of a TUN device with a vnet header returns. */
export const MAX_VNET_READ = VNET_HDR + 65535;

const GSO_NONE = 0, GSO_ECN = 0x80;

/** The environment variable that turns TUN offloads off for `wg up`: WG_OFFLOAD=off (or 0, no, false). */
export const OFFLOAD_ENV = "WG_OFFLOAD";

/** Whether a WG_OFFLOAD value turns offloads off. */
export function offloadsOff(value: string | undefined): boolean {
  return value !== undefined && /^(off|0|no|false)$/i.test(value.trim());
}

export class Offload {
  /** Where reads are staged (offset in the engine's memory) and how many bytes there are. */
  readonly stageAt: number;
  readonly stageBytes: number;
  /** The segment the staged read's split goes on from (pending). */
  private first = 0;
  /** Reads staged so far in this batch, and the bytes and cells they take. */
  items = 0;
  stagedBytes = 0;
  stagedCells = 0;
  private table!: Uint32Array;
  private lens!: Int32Array;
  private pkts!: Uint32Array;
  /** Where a UDP GRO buffer is staged to be cut into datagram cells (offset in the engine's memory), and its bytes. */
  readonly udpStageAt: number;
  readonly udpStageBytes: number;
  private resultsView!: Uint32Array;
  private mem!: Uint8Array;

  constructor(private readonly w: Wasm, private readonly batch: number, private readonly mtu: number) {
    const x = w.x;
    this.stageAt = x.offload_stage_ptr();
    this.stageBytes = x.offload_stage_bytes();
    this.udpStageAt = x.offload_udp_stage_ptr();
    this.udpStageBytes = x.offload_udp_stage_bytes();
    this.views();
  }

  /** Takes new views when the engine's memory grew (a configuration change adds to its tables). */
  private views(): void {
    if (this.mem === this.w.mem) return;
    const x = this.w.x, buf = this.w.mem.buffer, batch = this.batch;
    this.mem = this.w.mem;
    this.table = new Uint32Array(buf, x.offload_items_ptr(), batch * 2);
    this.lens = new Int32Array(buf, x.offload_lens_ptr(), batch);
    this.pkts = new Uint32Array(buf, x.offload_pkts_ptr(), batch * 2);
    this.resultsView = new Uint32Array(buf, x.offload_results_ptr(), batch * 2);
  }

  /** After coalesce: output packet i is results[2i + 1] bytes at results[2i] (vnet header included). */
  get results(): Uint32Array {
    this.views();
    return this.resultsView;
  }

  /** Reads split dropped as malformed. */
  get dropped(): number {
    return this.w.x.offload_dropped();
  }

  /**
   * The cells a read of `len` bytes at `at` (a vnet header first) will take
   * at most: 1, or its bytes over gso_size rounded up. `mem` is wherever the
   * read sits (the engine's memory, or a reader thread's ring).
   */
  static cellsFor(mem: Uint8Array, at: number, len: number): number {
    const gso = mem[at + 1] & ~GSO_ECN, size = mem[at + 4] | (mem[at + 5] << 8);
    if (gso === GSO_NONE || size === 0 || len <= VNET_HDR) return 1;
    return Math.ceil((len - VNET_HDR) / size);
  }

  /**
   * Whether a read taking `cells` cells, for which the adapter writes
   * `room` bytes, may be staged for a batch of `max` cells. The first read
   * of a batch always may: if it has more segments than cells, split
   * stops and goes on from there in the next batch (pending).
   */
  fits(room: number, cells: number, max: number): boolean {
    if (this.items === 0) return !this.pending;
    return this.items < this.batch && this.stagedBytes + room <= this.stageBytes && this.stagedCells + cells <= max;
  }

  /** A read split only in part is still staged: split again (before staging more) for its other segments. */
  get pending(): boolean {
    return this.first !== 0;
  }

  /** Records a read of `len` bytes the adapter wrote at stageAt + stagedBytes (fits() said yes). */
  staged(len: number, cells: number): void {
    this.views();
    const i = this.items++;
    this.table[2 * i] = this.stageAt + this.stagedBytes;
    this.table[2 * i + 1] = len;
    // 8-byte steps keep the next read's header aligned.
    this.stagedBytes += (len + 7) & ~7;
    this.stagedCells += cells;
  }

  /**
   * Splits the staged reads into packet cells 0.. with their lengths in
   * `lengths` (the engine's packetLengths), and empties the stage (but for
   * a read split in part: pending).
   * @returns the packets written, for Engine.fromTunnel
   */
  split(lengths: Int32Array, max: number): number {
    if (this.items === 0) return 0;
    this.views();
    const x = this.w.x;
    const n = x.offload_split(this.items, this.w.cell(0) + HEADROOM, this.w.stride, this.mtu, Math.min(max, this.batch), this.first);
    for (let i = 0; i < n; i++) lengths[i] = this.lens[i];
    this.first = x.offload_resume();
    if (this.first === 0) this.items = this.stagedBytes = this.stagedCells = 0;
    return n;
  }

  /**
   * Joins an Output's packets (all in the engine's memory) for writing to
   * a TUN device with a vnet header.
   * @returns how many to write, listed in results; -1 if they are not all
   *   in the engine's memory or are too many (the caller writes them one by one)
   */
  coalesce(out: Output): number {
    const n = out.packets;
    if (n > this.batch) return -1;
    this.views();
    for (let i = 0; i < n; i++) {
      if (out.packetBuf[i] !== this.mem) return -1;
      this.pkts[2 * i] = out.packetOff[i];
      this.pkts[2 * i + 1] = out.packetLen[i];
    }
    return this.w.x.offload_coalesce(n);
  }
}
