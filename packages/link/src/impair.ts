import {
  type Clock,
  type Counters,
  Prng,
  silentTrace,
  type Timer,
  type TraceBus,
  updateChecksum,
} from '@stepwire/wire';
import type { Link, LinkOffloads, PacketHandler, PacketInfo } from './link.ts';

/**
 * What a path does to packets, in the spirit of Linux netem (which this machine's kernel
 * lacks, so the TUN link needs it in user space too). Probabilities are in [0, 1], times
 * in milliseconds. Every random choice comes from a seeded Prng, so a seed replays a run.
 */
export interface Impairments {
  /** Probability that a packet is lost. */
  loss?: number;
  /** Probability that a packet is sent twice (both copies go through the rest). */
  duplicate?: number;
  /** Probability that a packet is held back by `reorderDelay`, so later packets overtake it. */
  reorder?: number;
  /** Extra hold for a reordered packet; default 10 ms. */
  reorderDelay?: number;
  /** Fixed one-way delay added to every packet. */
  delay?: number;
  /**
   * Uniform extra delay in [0, jitter). Jitter alone keeps packets in order (a later packet
   * never arrives before an earlier one); use `reorder` to reorder. netem reorders with
   * jitter, which surprises people; here each effect is separate and countable.
   */
  jitter?: number;
  /** Serialisation rate in bits per second (0 or absent: unlimited). */
  rateBps?: number;
  /** Packets that may wait for the serialiser (the one in service included); default 1000, like netem's limit. Drop-tail beyond. */
  queueLimit?: number;
  /** Probability that a packet is corrupted by flipping `corruptBits` random bits. */
  corrupt?: number;
  /** Bits flipped in a corrupted packet; default 1. */
  corruptBits?: number;
  /**
   * Probability that an ECN-capable IP packet (ECT(0) or ECT(1)) is marked Congestion
   * Experienced and goes on (RFC 3168 §5: a router marks where it would otherwise drop).
   * Packets that are not ECN-capable pass untouched; combine with `loss` for drops.
   */
  ceMark?: number;
}

export interface ImpairOptions extends Impairments {
  /** Seed of the Prng behind every choice; default 1. */
  seed?: number;
  /** Impairments applied to packets arriving from the link, before the handler sees them. */
  receive?: Impairments;
  /** Where drop and impairment events go (layer 'link'); default: nowhere. */
  trace?: TraceBus;
  /** Host name for trace events; default the link's name. */
  host?: string;
}

const DEFAULT_QUEUE_LIMIT = 1000;
const DEFAULT_REORDER_DELAY = 10;

function checkProbability(name: string, p: number | undefined): void {
  if (p !== undefined && !(p >= 0 && p <= 1))
    throw new RangeError(`impair: ${name} must be in [0, 1], got ${p}`);
}

function checkNonNegative(name: string, v: number | undefined): void {
  if (v !== undefined && !(v >= 0 && Number.isFinite(v))) {
    throw new RangeError(`impair: ${name} must be a finite number >= 0, got ${v}`);
  }
}

function validate(i: Impairments): void {
  checkProbability('loss', i.loss);
  checkProbability('duplicate', i.duplicate);
  checkProbability('reorder', i.reorder);
  checkProbability('corrupt', i.corrupt);
  checkProbability('ceMark', i.ceMark);
  checkNonNegative('delay', i.delay);
  checkNonNegative('jitter', i.jitter);
  checkNonNegative('reorderDelay', i.reorderDelay);
  checkNonNegative('rateBps', i.rateBps);
  checkNonNegative('corruptBits', i.corruptBits);
  if (i.queueLimit !== undefined && !(Number.isInteger(i.queueLimit) && i.queueLimit >= 1)) {
    throw new RangeError(`impair: queueLimit must be an integer >= 1, got ${i.queueLimit}`);
  }
}

/** True when no option changes anything, so the wrapper can pass packets straight through. */
function isPerfect(i: Impairments): boolean {
  return !(i.loss || i.duplicate || i.reorder || i.delay || i.jitter || i.rateBps || i.corrupt || i.ceMark);
}

/**
 * One direction's impairment pipeline: loss, duplication, corruption, then timing
 * (serialisation at `rateBps` behind a drop-tail queue, propagation `delay` + `jitter`,
 * and reordering by holding a packet back). Survivors are handed to `forward` from a
 * clock timer, never from inside process(), unless no timing option is set.
 */
class Direction {
  private readonly timed: boolean;
  private readonly perfect: boolean;
  /** When the serialiser finishes what it has accepted so far. */
  private txFree = Number.NEGATIVE_INFINITY;
  /** Completion times of packets accepted by the serialiser and not yet finished (FIFO). */
  private readonly inService: number[] = [];
  /** Arrival time of the last in-order packet: jitter never lets a packet pass it. */
  private lastArrival = Number.NEGATIVE_INFINITY;
  private readonly timers = new Set<Timer>();

  constructor(
    private readonly cfg: Impairments,
    private readonly rng: Prng,
    private readonly clock: Clock,
    private readonly counters: Counters,
    private readonly forward: (packet: Uint8Array, info?: PacketInfo) => void,
    private readonly trace: TraceBus,
    private readonly host: string,
    private readonly label: 'send' | 'receive',
  ) {
    this.perfect = isPerfect(cfg);
    this.timed = !!(cfg.delay || cfg.jitter || cfg.rateBps || cfg.reorder);
  }

  process(packet: Uint8Array, info?: PacketInfo): void {
    if (this.perfect) {
      this.forward(packet, info);
      return;
    }
    const cfg = this.cfg;
    if (this.rng.chance(cfg.loss ?? 0)) {
      this.drop('drop.loss', packet);
      return;
    }
    let p = packet;
    if (cfg.ceMark && this.rng.chance(cfg.ceMark)) {
      const marked = markCe(p);
      if (marked !== undefined) {
        this.counters.inc('ce-marked');
        this.note('CE marked', p);
        p = marked;
      }
    }
    const copies = [p];
    if (this.rng.chance(cfg.duplicate ?? 0)) {
      this.counters.inc('duplicate');
      this.note('duplicate', packet);
      // A copy, not the same buffer twice: the link below may give a written buffer back
      // for reuse (wire's superSegments) before the duplicate goes.
      copies.push(p.slice());
    }
    for (let c of copies) {
      if (this.rng.chance(cfg.corrupt ?? 0)) c = this.corrupt(c);
      this.schedule(c, info);
    }
  }

  private corrupt(packet: Uint8Array): Uint8Array {
    if (packet.length === 0) return packet;
    // Never flip bits in the caller's buffer: it may be kept for retransmission.
    const out = packet.slice();
    const bits = Math.max(1, Math.floor(this.cfg.corruptBits ?? 1));
    const flipped: number[] = [];
    for (let i = 0; i < bits; i++) {
      const bit = this.rng.int(0, out.length * 8 - 1);
      out[bit >> 3]! ^= 0x80 >> (bit & 7);
      flipped.push(bit);
    }
    this.counters.inc('corrupt');
    this.note(`corrupt bit(s) ${flipped.join(',')}`, packet);
    return out;
  }

  private schedule(packet: Uint8Array, info: PacketInfo | undefined): void {
    const cfg = this.cfg;
    if (!this.timed) {
      this.forward(packet, info);
      return;
    }
    const now = this.clock.now();
    let departure = now;
    if (cfg.rateBps) {
      const inService = this.inService;
      while (inService.length > 0 && inService[0]! <= now) inService.shift();
      if (inService.length >= (cfg.queueLimit ?? DEFAULT_QUEUE_LIMIT)) {
        this.drop('drop.queue', packet);
        return;
      }
      // Serialisation: the last bit leaves length*8/rate seconds after the serialiser frees up.
      departure = Math.max(now, this.txFree) + (packet.length * 8 * 1000) / cfg.rateBps;
      this.txFree = departure;
      inService.push(departure);
    }
    let arrival = departure + (cfg.delay ?? 0);
    if (cfg.jitter) arrival += this.rng.float() * cfg.jitter;
    if (this.rng.chance(cfg.reorder ?? 0)) {
      // Held back off the FIFO: later packets keep lastArrival and overtake this one.
      arrival = Math.max(arrival, this.lastArrival) + (cfg.reorderDelay ?? DEFAULT_REORDER_DELAY);
      this.counters.inc('reorder');
      this.note('reorder', packet);
    } else {
      arrival = Math.max(arrival, this.lastArrival);
      this.lastArrival = arrival;
    }
    const timer = this.clock.setTimer(arrival, () => {
      this.timers.delete(timer);
      this.forward(packet, info);
    });
    this.timers.add(timer);
  }

  /** Packets still waiting in timers. */
  get pending(): number {
    return this.timers.size;
  }

  cancelAll(): void {
    for (const t of this.timers) t.cancel();
    if (this.timers.size > 0) this.counters.inc('drop.closed', this.timers.size);
    this.timers.clear();
  }

  private drop(reason: string, packet: Uint8Array): void {
    this.counters.inc(reason);
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.clock.now(),
        host: this.host,
        layer: 'link',
        dir: 'drop',
        summary: `${reason} (${this.label}) len=${packet.length}`,
        reason,
        fields: { direction: this.label, length: packet.length },
      });
    }
  }

  private note(what: string, packet: Uint8Array): void {
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.clock.now(),
        host: this.host,
        layer: 'link',
        dir: 'local',
        summary: `${what} (${this.label}) len=${packet.length}`,
        fields: { direction: this.label, length: packet.length },
      });
    }
  }
}

/**
 * A copy of an ECN-capable IP packet with its ECN field set to CE (RFC 3168 §5: 11), or
 * undefined when the packet is not ECN-capable (Not-ECT, or not IPv4/IPv6). IPv4's ECN
 * bits are the low two of the TOS byte, so the header checksum is updated (RFC 1624);
 * IPv6's are bits 2-3 of the second byte (the Traffic Class straddles bytes 0 and 1).
 */
export function markCe(packet: Uint8Array): Uint8Array | undefined {
  const version = (packet[0] ?? 0) >> 4;
  if (version === 4 && packet.length >= 20) {
    const tos = packet[1]!;
    if ((tos & 3) === 0) return undefined;
    const out = packet.slice();
    out[1] = tos | 3;
    const word = (out[0]! << 8) | tos;
    const hc = updateChecksum((out[10]! << 8) | out[11]!, word, (out[0]! << 8) | out[1]!);
    out[10] = hc >> 8;
    out[11] = hc & 0xff;
    return out;
  }
  if (version === 6 && packet.length >= 40) {
    const ecn = (packet[1]! >> 4) & 3;
    if (ecn === 0) return undefined;
    const out = packet.slice();
    out[1] = packet[1]! | 0x30;
    return out;
  }
  return undefined;
}

/** A Link seen through impairments; the underlying link does the real sending. */
export class ImpairedLink implements Link {
  readonly name: string;
  readonly counters: Counters;
  private handler: PacketHandler | undefined;
  private closed = false;
  private readonly tx: Direction;
  private readonly rx: Direction;
  /**
   * No impairment in a direction: packets go straight through, without the Direction's
   * calls per packet (a MemoryLink is always wrapped, impaired or not: issue 13 found the
   * wrapper 2% of an unimpaired bulk transfer).
   */
  private readonly txPerfect: boolean;
  private readonly rxPerfect: boolean;

  constructor(
    readonly inner: Link,
    options: ImpairOptions,
    clock: Clock,
  ) {
    validate(options);
    if (options.receive) validate(options.receive);
    this.txPerfect = isPerfect(options);
    this.rxPerfect = isPerfect(options.receive ?? {});
    this.name = inner.name;
    // One set of counters per endpoint: the inner link counts tx/rx at the medium, this
    // wrapper adds its drop reasons next to them.
    this.counters = inner.counters;
    const root = new Prng(options.seed ?? 1);
    const trace = options.trace ?? silentTrace;
    const host = options.host ?? inner.name;
    this.tx = new Direction(
      options,
      root.fork(),
      clock,
      this.counters,
      (p, info) => this.inner.send(p, info),
      trace,
      host,
      'send',
    );
    this.rx = new Direction(
      options.receive ?? {},
      root.fork(),
      clock,
      this.counters,
      (p, info) => this.deliver(p, info),
      trace,
      host,
      'receive',
    );
    inner.onPacket((p, info, more) => {
      if (this.closed) return;
      // A perfect direction passes the link's batch hint through; an impaired one delays,
      // drops and reorders packets, so its deliveries are no batch.
      if (this.rxPerfect) this.deliver(p, info, more);
      else this.rx.process(p, info);
    });
  }

  get mtu(): number {
    return this.inner.mtu;
  }

  /** The inner link's offloads: impairments act on super-segments and partial checksums whole. */
  get offloads(): LinkOffloads | undefined {
    return this.inner.offloads;
  }

  /** Packets held in delay/rate/reorder timers (both directions). */
  get pending(): number {
    return this.tx.pending + this.rx.pending;
  }

  send(packet: Uint8Array, info?: PacketInfo): void {
    if (this.closed) {
      this.counters.inc('drop.closed');
      return;
    }
    // Checked here as well as in the inner link so an oversize packet takes no queue slot
    // (a super-segment within the inner link's tsoMax excepted).
    if (
      packet.length > this.inner.mtu &&
      (info?.gso === undefined || packet.length > (this.inner.offloads?.tsoMax ?? 0))
    ) {
      this.counters.inc('drop.mtu');
      return;
    }
    if (this.txPerfect) this.inner.send(packet, info);
    else this.tx.process(packet, info);
  }

  onPacket(handler: PacketHandler): void {
    this.handler = handler;
    // With nothing to do on receive, the handler takes the inner link's packets itself: no
    // hop through this wrapper per packet (a MemoryLink is always wrapped). The inner link
    // closes with this one and counts what arrives without a handler under the same
    // counters, so nothing seen from outside changes.
    if (this.rxPerfect) this.inner.onPacket(handler);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tx.cancelAll();
    this.rx.cancelAll();
    // Whatever the inner link still hands over is ignored, as it was when every packet
    // went through this wrapper (see onPacket).
    if (this.rxPerfect) this.inner.onPacket(ignore);
    this.inner.close();
  }

  private deliver(packet: Uint8Array, info?: PacketInfo, more?: boolean): void {
    if (this.closed) return;
    if (this.handler === undefined) this.counters.inc('drop.no-handler');
    else if (more === true) this.handler(packet, info, true);
    else this.handler(packet, info);
  }
}

function ignore(): void {}

/**
 * Wrap any Link (memory or TUN) with seeded impairments on send and, optionally, on
 * receive. The same seed and the same input give the same output, packet for packet.
 */
export function impair(link: Link, options: ImpairOptions, clock: Clock): ImpairedLink {
  return new ImpairedLink(link, options, clock);
}
