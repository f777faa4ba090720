import type { EcnCounts } from '../frames/frame.ts';
import type { PacketNumberSpace } from './loss.ts';

/**
 * ECN validation on a path (RFC 9000 §13.4.2, the example of Appendix A.4): mark the first
 * packets ECT(0), check what the peer's ACK frames report, and keep marking only if the
 * path and the peer carry and count the marks. CE counts that pass the checks are the
 * congestion signal of RFC 9002 §7.1 (B.7 ProcessECN, in loss.ts).
 *
 * States (Appendix A.4): `testing` marks packets; `unknown` waits for the verdict on them
 * without marking more; `capable` marks every packet; `failed` marks none and ignores the
 * counts. `off` is a connection that does not use ECN (its driver cannot set the IP ECN
 * field, as node:dgram cannot): nothing is marked or validated.
 */
export type EcnState = 'off' | 'testing' | 'unknown' | 'capable' | 'failed';
export type EcnInput = 'testing-done' | 'validated' | 'invalid' | 'all-marked-lost' | 'new-path';

interface EcnRow {
  from: readonly EcnState[];
  input: EcnInput;
  to: EcnState;
  rfc: string;
}

/** The legal transitions, one row each. */
export const ECN_TRANSITIONS: readonly EcnRow[] = [
  { from: ['testing'], input: 'testing-done', to: 'unknown', rfc: 'RFC 9000 §13.4.2, A.4' },
  { from: ['testing', 'unknown'], input: 'validated', to: 'capable', rfc: 'RFC 9000 §13.4.2.1, A.4' },
  {
    from: ['testing', 'unknown', 'capable'],
    input: 'invalid',
    to: 'failed',
    rfc: 'RFC 9000 §13.4.2.1 ("MUST disable ECN")',
  },
  { from: ['testing', 'unknown'], input: 'all-marked-lost', to: 'failed', rfc: 'RFC 9000 §13.4.2' },
  {
    from: ['testing', 'unknown', 'capable', 'failed'],
    input: 'new-path',
    to: 'testing',
    rfc: 'RFC 9000 §13.4.2 (validation per path)',
  },
];

function ecnTransition(from: EcnState, input: EcnInput): EcnRow | undefined {
  return ECN_TRANSITIONS.find((r) => r.input === input && r.from.includes(from));
}

/** Appendix A.4: "mark ... only the first ten outgoing packets on a path, or for a period of three PTOs". */
export const ECN_TESTING_PACKETS = 10;
export const ECN_TESTING_PTOS = 3;

interface EcnSpace {
  /** Packets sent ECT(0) in this space (§13.4.2.1: a count above it fails validation). */
  sentEct0: number;
  /** The counts of the last ACK frame that passed validation. */
  last: EcnCounts;
}

export interface EcnAckCheck {
  /** The ACK frame raised the largest acknowledged (§13.4.2.1: reordered ACKs never fail validation). */
  newLargest: boolean;
  /** Newly acknowledged packets that were sent ECT(0). */
  newlyAckedMarked: number;
  counts: EcnCounts | undefined;
}

export class EcnValidator {
  state: EcnState;
  /** Called on each state change, for the trace. */
  onTransition: ((from: EcnState, to: EcnState, rfc: string) => void) | undefined = undefined;
  private testingMarked = 0;
  private testingStart: number | undefined = undefined;
  /** Marked packets sent on this path and their fate, for the all-lost rule. */
  private markedOutstanding = 0;
  private markedAcked = 0;
  private spaces: Record<PacketNumberSpace, EcnSpace> = EcnValidator.freshSpaces();

  constructor(enabled: boolean) {
    this.state = enabled ? 'testing' : 'off';
  }

  private static freshSpaces(): Record<PacketNumberSpace, EcnSpace> {
    const s = (): EcnSpace => ({ sentEct0: 0, last: { ect0: 0, ect1: 0, ecnCe: 0 } });
    return { Initial: s(), Handshake: s(), ApplicationData: s() };
  }

  private go(input: EcnInput): void {
    const row = ecnTransition(this.state, input);
    if (!row) return;
    const from = this.state;
    this.state = row.to;
    this.onTransition?.(from, row.to, row.rfc);
  }

  /** Whether the next datagram is sent ECT(0); `pto` is the current PTO period (ms). */
  shouldMark(now: number, pto: number): boolean {
    if (this.state === 'capable') return true;
    if (this.state !== 'testing') return false;
    if (
      this.testingMarked >= ECN_TESTING_PACKETS ||
      (this.testingStart !== undefined && now - this.testingStart >= ECN_TESTING_PTOS * pto)
    ) {
      this.go('testing-done');
      return false;
    }
    return true;
  }

  /** A datagram went out ECT(0). */
  onDatagramMarked(now: number): void {
    if (this.state !== 'testing') return;
    this.testingStart ??= now;
    this.testingMarked++;
  }

  /** A packet went out ECT(0) in `space`. */
  onPacketMarked(space: PacketNumberSpace): void {
    this.spaces[space].sentEct0++;
    this.markedOutstanding++;
  }

  /**
   * RFC 9000 §13.4.2.1: validates the ECN counts of an ACK frame. Returns the counts to use
   * as a congestion signal (RFC 9002 §7.1), or undefined when they are not to be trusted.
   */
  onAck(space: PacketNumberSpace, ack: EcnAckCheck): EcnCounts | undefined {
    if (this.state === 'off' || this.state === 'failed') return undefined;
    this.markedAcked += ack.newlyAckedMarked;
    this.markedOutstanding -= ack.newlyAckedMarked;
    const s = this.spaces[space];
    const c = ack.counts;
    if (!c) {
      // "If an ACK frame newly acknowledges a packet that the endpoint sent with either the
      // ECT(0) or ECT(1) codepoint set, ECN validation fails if the corresponding ECN counts
      // are not present in the ACK frame."
      if (ack.newlyAckedMarked > 0 && ack.newLargest) this.go('invalid');
      return undefined;
    }
    // "ECN validation can fail if the received total count for either ECT(0) or ECT(1)
    // exceeds the total number of packets sent with each corresponding ECN codepoint" (we
    // never send ECT(1)); and counts never go down.
    const bogus =
      c.ect0 > s.sentEct0 ||
      c.ect1 > 0 ||
      c.ect0 < s.last.ect0 ||
      c.ecnCe < s.last.ecnCe ||
      // "ECN validation also fails if the sum of the increase in ECT(0) and ECN-CE counts is
      // less than the number of newly acknowledged packets that were originally sent with an
      // ECT(0) marking."
      (ack.newLargest && c.ect0 - s.last.ect0 + (c.ecnCe - s.last.ecnCe) < ack.newlyAckedMarked);
    if (bogus) {
      // "An endpoint MUST NOT fail ECN validation as a result of processing an ACK frame that
      // does not increase the largest acknowledged packet number."
      if (ack.newLargest) this.go('invalid');
      return undefined;
    }
    s.last = { ...c };
    // Only an ACK that raises the largest acknowledged validates: a reordered one was not checked in full.
    if (ack.newlyAckedMarked > 0 && ack.newLargest && (this.state === 'testing' || this.state === 'unknown'))
      this.go('validated');
    return c;
  }

  /** Marked packets declared lost: when every one is lost and none acknowledged, validation fails (§13.4.2). */
  onMarkedLost(n: number): void {
    if (n === 0) return;
    this.markedOutstanding -= n;
    if (this.markedOutstanding <= 0 && this.markedAcked === 0 && this.state === 'unknown')
      this.go('all-marked-lost');
  }

  /** RFC 9000 §13.4.2: a new path is validated again from the start. */
  onNewPath(): void {
    if (this.state === 'off') return;
    this.testingMarked = 0;
    this.testingStart = undefined;
    this.markedOutstanding = 0;
    this.markedAcked = 0;
    this.go('new-path');
  }
}
