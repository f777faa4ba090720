import type { Link } from '@stepwire/link';
import { Counters, type VirtualClock } from '@stepwire/wire';

/** A tiny two-ended raw-IP wire: each packet arrives `delay` ms later, unless `filter` says no. */
export class PipeEnd implements Link {
  readonly counters = new Counters();
  handler: ((p: Uint8Array) => void) | undefined;
  peer!: PipeEnd;
  sent: Uint8Array[] = [];
  /** Every packet offered to send(), with the time, for a capture. */
  tap: ((t: number, p: Uint8Array) => void) | undefined;
  filter: (p: Uint8Array) => boolean = () => true;
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
    this.sent.push(packet);
    this.tap?.(this.clock.now(), packet);
    this.counters.inc('tx');
    if (!this.filter(packet)) {
      this.counters.inc('drop.filter');
      return;
    }
    const copy = packet.slice();
    this.clock.setTimer(this.clock.now() + this.delay, () => this.peer.handler?.(copy));
  }
  onPacket(handler: (packet: Uint8Array) => void): void {
    this.handler = handler;
  }
  close(): void {
    this.handler = undefined;
  }
}

export function pipe(clock: VirtualClock, mtu = 1500, delay = 5, names = ['a0', 'b0']): [PipeEnd, PipeEnd] {
  const a = new PipeEnd(names[0]!, mtu, clock, delay);
  const b = new PipeEnd(names[1]!, mtu, clock, delay);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
