import {
  type Clock,
  type Counter,
  Counters,
  isWriteOnce,
  Prng,
  type Timer,
  type TraceBus,
} from '@stepwire/wire';
import { type ImpairedLink, type Impairments, impair } from './impair.ts';
import type { Link, LinkOffloads, PacketHandler, PacketInfo } from './link.ts';

/**
 * Copies of packets in flight, cut from shared slabs: one allocation per SLAB_SIZE bytes
 * instead of one (or two, with Buffer's pool) per packet. A receiver may keep what it gets
 * (TCP keeps payload views in its queues); a kept view keeps its slab alive, which is the
 * price of not copying again on the receive side (Linux's skb truesize is the same trade).
 * Slabs are small (64 KiB) so that what a few kept packets pin stays small: TCP copies
 * pieces under 512 bytes out of the packet, so a view pins at most 128 times its size.
 */
class Slab {
  private buf = freshSlab(SLAB_SIZE);
  private used = 0;

  copy(packet: Uint8Array): Uint8Array {
    const n = packet.length;
    if (n > SLAB_SIZE / 4) return packet.slice();
    // Each copy starts on an 8-byte boundary, so headers and checksums read aligned words.
    if (this.used + n > SLAB_SIZE) {
      this.buf = freshSlab(SLAB_SIZE);
      this.used = 0;
    }
    const out = new Uint8Array(this.buf, this.used, n);
    out.set(packet);
    this.used = (this.used + n + 7) & ~7;
    return out;
  }
}

const SLAB_SIZE = 64 * 1024;

/**
 * Slab memory without zeroing it first (every byte handed out is written before it is
 * seen through its view), as Buffer.allocUnsafe's pool is: a zeroed slab per 40-odd
 * packets was a measurable share of the send path.
 */
function freshSlab(size: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
}

/**
 * Every packet in flight on any MemoryLink of one clock, in the order they were sent,
 * delivered from one clock timer due now rather than one timer per packet. The FIFO is
 * shared by all the links of a clock, so packets on different links still arrive in the
 * order they were sent, exactly as when each had its own timer at the same instant.
 */
class Lane {
  private ends: PipeEnd[] = [];
  private packets: Uint8Array[] = [];
  private infos: (PacketInfo | undefined)[] = [];
  /** The arrays of the run being delivered, swapped with the ones above (no allocation per run). */
  private spareEnds: PipeEnd[] = [];
  private sparePackets: Uint8Array[] = [];
  private spareInfos: (PacketInfo | undefined)[] = [];
  private timer: Timer | undefined;
  readonly slab = new Slab();

  constructor(private readonly clock: Clock) {}

  enqueue(to: PipeEnd, packet: Uint8Array, info: PacketInfo | undefined): void {
    this.ends.push(to);
    this.packets.push(packet);
    this.infos.push(info);
    this.timer ??= this.clock.setTimer(this.clock.now(), this.flush);
  }

  /**
   * Deliver the packets queued so far, in FIFO order. Packets the handlers send meanwhile
   * wait for the next run, on a timer armed when the first of them is sent: as their own
   * timers would have, they fire after any timer armed before them at the same instant.
   */
  private readonly flush = (): void => {
    this.timer = undefined;
    const ends = this.ends;
    const packets = this.packets;
    const infos = this.infos;
    this.ends = this.spareEnds;
    this.packets = this.sparePackets;
    this.infos = this.spareInfos;
    // A run of packets to one end is that end's batch, as a NIC's NAPI poll: `more` tells
    // its receiver another follows at once (software GRO may hold them to join them).
    const last = packets.length - 1;
    for (let i = 0; i <= last; i++) {
      const end = ends[i] as PipeEnd;
      end.arrive(packets[i] as Uint8Array, infos[i], i < last && ends[i + 1] === end);
    }
    ends.length = 0;
    packets.length = 0;
    infos.length = 0;
    this.spareEnds = ends;
    this.sparePackets = packets;
    this.spareInfos = infos;
  };
}

const lanes = new WeakMap<Clock, Lane>();

function laneFor(clock: Clock): Lane {
  let lane = lanes.get(clock);
  if (lane === undefined) {
    lane = new Lane(clock);
    lanes.set(clock, lane);
  }
  return lane;
}

/**
 * One end of a perfect wire: no loss, no delay, copies of packets delivered in order from
 * a clock timer due now. Delivery never happens inside send(), so a handler that answers
 * at once cannot re-enter its own caller, and a VirtualClock decides when anything moves.
 *
 * With offloads (as a veth pair with checksum and TSO on): a packet whose checksum is
 * partial and a TCP super-segment up to `tsoMax` bytes cross whole, with their PacketInfo,
 * as Linux hands a GSO skb to the peer of a veth without cutting it.
 */
class PipeEnd implements Link {
  readonly counters = new Counters();
  peer: PipeEnd | undefined;
  private handler: PacketHandler | undefined;
  private closed = false;
  private readonly lane: Lane;
  // 'tx' and 'rx', counted per packet: held, taken on the first (see Counters.counter).
  private txCount: Counter | undefined;
  private rxCount: Counter | undefined;

  constructor(
    readonly name: string,
    readonly mtu: number,
    clock: Clock,
    readonly offloads: LinkOffloads | undefined,
  ) {
    this.lane = laneFor(clock);
  }

  send(packet: Uint8Array, info?: PacketInfo): void {
    if (this.closed) {
      this.counters.inc('drop.closed');
      return;
    }
    if (packet.length > this.mtu) {
      // A super-segment may exceed the MTU up to what the link said it would take.
      const tso = this.offloads?.tsoMax ?? 0;
      if (info?.gso === undefined || packet.length > tso) {
        this.counters.inc('drop.mtu');
        return;
      }
    }
    if (info !== undefined) {
      if (info.gso !== undefined) this.counters.inc('tx.gso');
      if (info.csum?.kind === 'partial') {
        if (!this.offloads?.checksum) {
          // Nobody would complete the checksum: the peer would drop it as corrupt anyway.
          this.counters.inc('drop.csum-offload');
          return;
        }
        this.counters.inc('tx.csum-partial');
      }
    }
    (this.txCount ??= this.counters.counter('tx')).value++;
    const peer = this.peer;
    if (peer === undefined) return;
    // A copy: the sender may reuse its buffer, the receiver may keep what it gets. A sender
    // whose buffers are write-once (TCP's packet slabs) never reuses them: the packet
    // itself is kept (a fifth of the copying a bulk transfer did, issue 13).
    const kept = isWriteOnce(packet.buffer) ? packet : this.lane.slab.copy(packet);
    this.lane.enqueue(peer, kept, info);
  }

  onPacket(handler: PacketHandler): void {
    this.handler = handler;
  }

  close(): void {
    this.closed = true;
  }

  /** @internal From the lane. */
  arrive(packet: Uint8Array, info: PacketInfo | undefined, more: boolean): void {
    if (this.closed) {
      this.counters.inc('drop.closed');
      return;
    }
    (this.rxCount ??= this.counters.counter('rx')).value++;
    if (info?.gso !== undefined) this.counters.inc('rx.gro');
    if (this.handler === undefined) this.counters.inc('drop.no-handler');
    else if (more) this.handler(packet, info, true);
    else this.handler(packet, info);
  }
}

export interface MemoryLinkOptions {
  clock: Clock;
  /** Largest packet carried; default 1500. */
  mtu?: number;
  /** Endpoint names are `${name}:a` and `${name}:b`; default 'mem'. */
  name?: string;
  /** Seed for the impairments of both directions; default 1. */
  seed?: number;
  /** Impairments for both directions, or [a->b, b->a]. */
  impairments?: Impairments | [Impairments, Impairments];
  /**
   * Offloads both ends offer (default none): `checksum` lets senders leave TCP/UDP
   * checksums partial, `tsoMax` (bytes of IP packet, > mtu) lets TCP send super-segments,
   * which arrive whole at the other end as a GRO packet would.
   */
  offloads?: { checksum?: boolean; tsoMax?: number };
  trace?: TraceBus;
}

/** A simulated wire: a perfect pipe composed with impair() on each end's send side. */
export class MemoryLink {
  static pair(options: MemoryLinkOptions): [ImpairedLink, ImpairedLink] {
    const mtu = options.mtu ?? 1500;
    if (!(Number.isInteger(mtu) && mtu >= 1))
      throw new RangeError(`MemoryLink: mtu must be an integer >= 1, got ${mtu}`);
    const name = options.name ?? 'mem';
    let offloads: LinkOffloads | undefined;
    if (options.offloads !== undefined) {
      const tsoMax = options.offloads.tsoMax ?? 0;
      if (!(Number.isInteger(tsoMax) && tsoMax >= 0 && tsoMax <= 0xffff))
        throw new RangeError(`MemoryLink: tsoMax must be an integer in [0, 65535], got ${tsoMax}`);
      offloads = { checksum: options.offloads.checksum === true, tsoMax };
    }
    const a = new PipeEnd(`${name}:a`, mtu, options.clock, offloads);
    const b = new PipeEnd(`${name}:b`, mtu, options.clock, offloads);
    a.peer = b;
    b.peer = a;
    const imp = options.impairments;
    const [ab, ba] = Array.isArray(imp) ? imp : [imp ?? {}, imp ?? {}];
    // Each direction gets its own stream so changing one side's settings leaves the
    // other side's random choices as they were.
    const seeds = new Prng(options.seed ?? 1);
    const extra = options.trace ? { trace: options.trace } : {};
    return [
      impair(a, { ...ab, seed: seeds.u32(), ...extra }, options.clock),
      impair(b, { ...ba, seed: seeds.u32(), ...extra }, options.clock),
    ];
  }
}
