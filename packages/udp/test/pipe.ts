import { Counters, type VirtualClock } from '@stepwire/wire';

/**
 * One end of a point-to-point wire for tests: packets sent on one end arrive at the other
 * `delay` ms later on the shared VirtualClock, in order, copied (the sender may reuse its
 * buffer). Packets above the MTU are dropped and counted, as a Link promises. Shaped like
 * @stepwire/link's Link interface, which a Host accepts.
 */
export class PipeEnd {
  readonly counters = new Counters();
  peer: PipeEnd | undefined;
  private handler: ((packet: Uint8Array) => void) | undefined;
  /** Every packet sent on this end, for assertions. */
  readonly sent: Uint8Array[] = [];

  constructor(
    readonly name: string,
    readonly mtu: number,
    private readonly clock: VirtualClock,
    private readonly delay: number,
  ) {}

  send(packet: Uint8Array): void {
    if (packet.length > this.mtu) {
      this.counters.inc('drop.mtu');
      return;
    }
    this.counters.inc('tx');
    const copy = packet.slice();
    this.sent.push(copy);
    const peer = this.peer;
    this.clock.setTimer(this.clock.now() + this.delay, () => peer?.arrive(copy));
  }

  private arrive(packet: Uint8Array): void {
    this.counters.inc('rx');
    this.handler?.(packet);
  }

  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
  }

  close(): void {
    this.handler = undefined;
  }
}

export function pipe(clock: VirtualClock, mtu = 1500, delay = 1): [PipeEnd, PipeEnd] {
  const a = new PipeEnd('a0', mtu, clock, delay);
  const b = new PipeEnd('b0', mtu, clock, delay);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
