import { allocBytes, type Clock, Counters, Prng, type TraceBus } from '@stepwire/wire';
import { type ImpairedLink, type Impairments, impair } from './impair.ts';
import type { Link } from './link.ts';

/**
 * One end of a perfect wire: no loss, no delay, copies of packets delivered in order from
 * a clock timer due now. Delivery never happens inside send(), so a handler that answers
 * at once cannot re-enter its own caller, and a VirtualClock decides when anything moves.
 */
class PipeEnd implements Link {
  readonly counters = new Counters();
  peer: PipeEnd | undefined;
  private handler: ((packet: Uint8Array) => void) | undefined;
  private closed = false;

  constructor(
    readonly name: string,
    readonly mtu: number,
    private readonly clock: Clock,
  ) {}

  send(packet: Uint8Array): void {
    if (this.closed) {
      this.counters.inc('drop.closed');
      return;
    }
    if (packet.length > this.mtu) {
      this.counters.inc('drop.mtu');
      return;
    }
    this.counters.inc('tx');
    // A copy: the sender may reuse its buffer, the receiver may keep what it gets.
    const copy = allocBytes(packet.length);
    copy.set(packet);
    const peer = this.peer;
    this.clock.setTimer(this.clock.now(), () => peer?.arrive(copy));
  }

  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
  }

  close(): void {
    this.closed = true;
  }

  private arrive(packet: Uint8Array): void {
    if (this.closed) {
      this.counters.inc('drop.closed');
      return;
    }
    this.counters.inc('rx');
    if (this.handler) this.handler(packet);
    else this.counters.inc('drop.no-handler');
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
  trace?: TraceBus;
}

/** A simulated wire: a perfect pipe composed with impair() on each end's send side. */
export class MemoryLink {
  static pair(options: MemoryLinkOptions): [ImpairedLink, ImpairedLink] {
    const mtu = options.mtu ?? 1500;
    if (!(Number.isInteger(mtu) && mtu >= 1))
      throw new RangeError(`MemoryLink: mtu must be an integer >= 1, got ${mtu}`);
    const name = options.name ?? 'mem';
    const a = new PipeEnd(`${name}:a`, mtu, options.clock);
    const b = new PipeEnd(`${name}:b`, mtu, options.clock);
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
