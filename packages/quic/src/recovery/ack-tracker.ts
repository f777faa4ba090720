import { type AckFrame, ackFrameFromRanges, type EcnCounts, type PacketRange } from '../frames/frame.ts';
import type { PacketNumberSpace } from './loss.ts';

/**
 * The receiver's side of acknowledgements (RFC 9000 §13.2): which packet numbers arrived
 * (as ranges), when an ACK is due, and the ACK frame itself with its Ack Delay. One
 * tracker per packet number space. Sans-I/O: `nextTimeout()` is when a delayed ACK must go.
 * No ACK_FREQUENCY extension: the thresholds are RFC 9000's.
 */

export type EcnCodepoint = 'not-ect' | 'ect0' | 'ect1' | 'ce';

export interface AckTrackerOptions {
  space: PacketNumberSpace;
  /** Our max_ack_delay in ms (RFC 9000 §18.2, 25 by default); Initial and Handshake use 0 (§13.2.1). */
  maxAckDelay?: number;
  /** Our ack_delay_exponent (RFC 9000 §18.2, 3 by default). */
  ackDelayExponent?: number;
  /** RFC 9000 §13.2.2: ack after this many ack-eliciting packets (2, "at least two"). */
  ackElicitingThreshold?: number;
  /** The ranges kept (§13.2.4 limits them); the oldest range goes first. */
  maxRanges?: number;
}

export type ReceiveVerdict = 'new' | 'duplicate';

export class AckTracker {
  readonly space: PacketNumberSpace;
  readonly maxAckDelay: number;
  readonly ackDelayExponent: number;
  readonly ackElicitingThreshold: number;
  readonly maxRanges: number;
  /** Received packet numbers, largest range first, disjoint and non-adjacent. */
  private ranges: PacketRange[] = [];
  /** Packet numbers at or below this are no longer tracked and are treated as duplicates (§13.2.3). */
  private floor = -1;
  private largestReceivedTime = 0;
  private largestAckEliciting = -1;
  private ackElicitingSinceAck = 0;
  /** A new packet arrived since the last ACK (§13.2.1: non-eliciting ones ride along, never trigger). */
  private unackedNews = false;
  private immediate = false;
  private deadline: number | undefined = undefined;
  private readonly ecn: EcnCounts = { ect0: 0, ect1: 0, ecnCe: 0 };
  private ecnSeen = false;
  /** Counted for traces and stats. */
  duplicates = 0;

  constructor(opts: AckTrackerOptions) {
    this.space = opts.space;
    // §13.2.1: "An endpoint MUST acknowledge all ack-eliciting Initial and Handshake packets immediately".
    this.maxAckDelay = opts.space === 'ApplicationData' ? (opts.maxAckDelay ?? 25) : 0;
    this.ackDelayExponent = opts.ackDelayExponent ?? 3;
    this.ackElicitingThreshold = opts.ackElicitingThreshold ?? 2;
    this.maxRanges = opts.maxRanges ?? 32;
  }

  /** The received set as ranges, largest first (a copy). */
  receivedRanges(): PacketRange[] {
    return this.ranges.map((r) => ({ ...r }));
  }

  get largestReceived(): number | undefined {
    return this.ranges[0]?.largest;
  }

  isDuplicate(pn: number): boolean {
    if (pn <= this.floor) return true;
    return this.ranges.some((r) => pn >= r.smallest && pn <= r.largest);
  }

  /**
   * Records a packet that was authenticated and processed. The caller checks isDuplicate
   * first (RFC 9000 §13.2.3 and RFC 9001 §5.5: a duplicate is discarded before processing).
   */
  onPacketReceived(
    pn: number,
    ackEliciting: boolean,
    now: number,
    ecn: EcnCodepoint = 'not-ect',
  ): ReceiveVerdict {
    if (this.isDuplicate(pn)) {
      this.duplicates++;
      return 'duplicate';
    }
    const previousLargest = this.largestReceived;
    this.insert(pn);
    if (previousLargest === undefined || pn > previousLargest) this.largestReceivedTime = now;
    if (ecn !== 'not-ect') {
      this.ecnSeen = true;
      if (ecn === 'ect0') this.ecn.ect0++;
      else if (ecn === 'ect1') this.ecn.ect1++;
      else this.ecn.ecnCe++;
    }
    this.unackedNews = true;
    if (!ackEliciting) return 'new';
    this.ackElicitingSinceAck++;
    // §13.2.1: out-of-order arrival (below a received ack-eliciting packet, or above it with
    // a gap) is acknowledged at once to help the sender's loss detection; so is CE.
    const outOfOrder =
      pn < this.largestAckEliciting ||
      (this.largestAckEliciting >= 0 && this.missingBetween(this.largestAckEliciting, pn));
    this.largestAckEliciting = Math.max(this.largestAckEliciting, pn);
    if (
      outOfOrder ||
      ecn === 'ce' ||
      this.maxAckDelay === 0 ||
      this.ackElicitingSinceAck >= this.ackElicitingThreshold
    ) {
      this.immediate = true;
    } else if (this.deadline === undefined) {
      // §13.2.1: otherwise no later than max_ack_delay after the first unacknowledged ack-eliciting packet.
      this.deadline = now + this.maxAckDelay;
    }
    return 'new';
  }

  /** Whether some packet number strictly between a and b (a < b) has not been received. */
  private missingBetween(a: number, b: number): boolean {
    if (b <= a + 1) return false;
    const r = this.ranges.find((x) => b >= x.smallest && b <= x.largest);
    return r === undefined || r.smallest > a + 1;
  }

  private insert(pn: number): void {
    const rs = this.ranges;
    let i = 0;
    while (i < rs.length && rs[i]!.smallest > pn + 1) i++;
    const r = rs[i];
    if (r === undefined || r.largest < pn - 1) {
      // A new range, between rs[i-1] and rs[i].
      rs.splice(i, 0, { smallest: pn, largest: pn });
    } else {
      // Adjacent to or inside r: extend it, then merge with the range below if they touch.
      r.smallest = Math.min(r.smallest, pn);
      r.largest = Math.max(r.largest, pn);
      const below = rs[i + 1];
      if (below && below.largest + 1 >= r.smallest) {
        r.smallest = Math.min(r.smallest, below.smallest);
        rs.splice(i + 1, 1);
      }
    }
    // §13.2.4 bounds the ranges: the oldest goes, and its packets are no longer accepted.
    while (rs.length > this.maxRanges) {
      const dropped = rs.pop()!;
      this.floor = Math.max(this.floor, dropped.largest);
    }
  }

  /** Whether an ACK should be sent now (immediately due, or the delayed-ACK deadline passed). */
  ackDue(now: number): boolean {
    return this.immediate || (this.deadline !== undefined && now >= this.deadline);
  }

  /** When a delayed ACK falls due; undefined if none is pending. */
  nextTimeout(): number | undefined {
    if (this.immediate) return undefined;
    return this.deadline;
  }

  /** Whether there is anything an ACK could newly report (to piggyback on other frames). */
  get hasNews(): boolean {
    return this.unackedNews;
  }

  /**
   * The ACK frame for the current state. Ack Delay is the time since the largest packet
   * arrived, in units of 2^ack_delay_exponent µs (RFC 9000 §13.2.5, §19.3). Initial and
   * Handshake ACKs carry 0: those packets are acknowledged at once (§13.2.1), and the
   * receiver of such an ACK may ignore its delay anyway (RFC 9002 §5.3).
   */
  buildAck(now: number): AckFrame | undefined {
    if (this.ranges.length === 0) return undefined;
    const delayMs = this.space === 'ApplicationData' ? Math.max(0, now - this.largestReceivedTime) : 0;
    const ackDelay = Math.floor((delayMs * 1000) / 2 ** this.ackDelayExponent);
    return ackFrameFromRanges(this.ranges, ackDelay, this.ecnSeen ? { ...this.ecn } : undefined);
  }

  /** The ACK built by buildAck was sent: the delayed-ACK state starts over. */
  onAckSent(): void {
    this.ackElicitingSinceAck = 0;
    this.unackedNews = false;
    this.immediate = false;
    this.deadline = undefined;
  }

  /**
   * RFC 9000 §13.2.4: once a packet carrying our ACK is acknowledged, packets at or below
   * that ACK's Largest Acknowledged need not be acknowledged again.
   */
  onAckOfAck(largestAcknowledgedInOurAck: number): void {
    this.ranges = this.ranges.filter((r) => r.largest > largestAcknowledgedInOurAck);
    const last = this.ranges[this.ranges.length - 1];
    if (last && last.smallest <= largestAcknowledgedInOurAck) last.smallest = largestAcknowledgedInOurAck + 1;
    this.floor = Math.max(this.floor, largestAcknowledgedInOurAck);
  }
}
