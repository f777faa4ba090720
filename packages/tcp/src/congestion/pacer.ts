import type { SenderView } from './types.ts';

/** The most a late wake-up catches up on at once, in ms. */
const MAX_CATCH_UP = 5;

/**
 * A pacer: spreads what the congestion window allows over time at `rate` bytes per ms
 * (draft-cardwell-iccrg-bbr-congestion-control-00 §4.2.1, pacing_rate), in bursts of at
 * most `quantum` bytes (§4.2.2, send_quantum) — the token bucket of Linux's fq qdisc or
 * its internal TCP pacing, with the bucket as deep as one quantum.
 *
 * The send path (connection/send.ts transmit) brackets each of its loops with begin() and
 * end() and asks allows() before each segment; when the pacer holds data back, `deadline`
 * says when to run the send path again, and the connection's timers (timers.ts, through
 * the driver's TimerGroup) wake it then. A rate of 0 paces nothing.
 *
 * Time is the connection's `now`, so on the virtual clock the spacing is exact and
 * deterministic; on a real clock a late wake-up sends what was due since its deadline (up
 * to MAX_CATCH_UP), as a pacer driven by millisecond timers must to keep its rate.
 */
export class Pacer {
  /** The pacing rate in bytes per ms; 0 paces nothing. */
  rate = 0;
  /** The largest burst that may leave at one instant, in bytes. */
  quantum = 0;
  /** When the send path must run again (a segment was held back), or undefined. */
  deadline: number | undefined = undefined;
  /** Transmit loops cut short by the pacer, and bytes sent under pacing (for tests and stats). */
  readonly counters = { heldBack: 0, pacedBytes: 0 };
  /** The sender, once the send path has consulted the pacer (what a pacing controller reads). */
  view: SenderView | undefined = undefined;
  /** Called at the end of every transmit loop (a controller logs what went out). */
  onTransmitted: ((view: SenderView, maxBefore: number) => void) | undefined = undefined;

  /** When the next byte may leave: the bucket's debt, in ms. */
  private nextSendAt = Number.NEGATIVE_INFINITY;
  private bytesAtBegin = 0;
  private maxBefore = 0;
  private blocked = false;

  /** A transmit loop begins. */
  begin(view: SenderView): void {
    this.view = view;
    this.bytesAtBegin = view.counters.bytesOut;
    this.maxBefore = view.snd.max;
    this.blocked = false;
    const due = this.deadline;
    this.deadline = undefined;
    if (this.rate > 0) {
      // The bucket holds at most one quantum: idle time earns no more than that burst.
      let floor = view.now - this.quantum / this.rate;
      // But a wake-up that comes late (a millisecond timer, a busy event loop) still owes
      // what was due since its deadline, up to MAX_CATCH_UP: else every late timer would
      // lower the rate actually sent below the pacing rate, the delivery rate BBR measures
      // would follow it down, and the pacing rate after it. On the virtual clock timers
      // are never late and this changes nothing.
      if (due !== undefined && due < floor) floor = Math.max(due, view.now - MAX_CATCH_UP);
      if (this.nextSendAt < floor) this.nextSendAt = floor;
    }
  }

  /** May another segment go now? `force` (an RTO or persist override) is never held. */
  allows(view: SenderView, force: boolean): boolean {
    if (this.rate <= 0 || force) return true;
    const at = this.nextSendAt + (view.counters.bytesOut - this.bytesAtBegin) / this.rate;
    if (at <= view.now) return true;
    this.blocked = true;
    return false;
  }

  /** The loop ended: charge what it sent, and arm the deadline if something was held back. */
  end(view: SenderView): void {
    const sent = view.counters.bytesOut - this.bytesAtBegin;
    if (this.rate > 0) {
      this.nextSendAt += sent / this.rate;
      this.counters.pacedBytes += sent;
    }
    if (this.blocked) {
      this.counters.heldBack++;
      this.deadline = this.nextSendAt;
    }
    this.onTransmitted?.(view, this.maxBefore);
  }
}
