/**
 * NewReno congestion control (RFC 9002 §7; pseudocode in Appendix B). Bytes and
 * milliseconds. The controller sees only what B.5-B.8 pass it: packets sent, acked and lost,
 * congestion events by send time, and persistent congestion.
 */

/** B.1: kInitialWindow = min(10 * max_datagram_size, max(14720, 2 * max_datagram_size)) (§7.2). */
export function initialWindow(maxDatagramSize: number): number {
  return Math.min(10 * maxDatagramSize, Math.max(14720, 2 * maxDatagramSize));
}
/** B.1: kMinimumWindow = 2 * max_datagram_size (§7.2). */
export function minimumWindow(maxDatagramSize: number): number {
  return 2 * maxDatagramSize;
}
/** B.1: kLossReductionFactor (§7.3.2). */
export const kLossReductionFactor = 0.5;
/** B.1: kPersistentCongestionThreshold (§7.6.1). */
export const kPersistentCongestionThreshold = 3;

/** What the controller needs to know about a packet (A.1.1's fields). */
export interface CcPacket {
  inFlight: boolean;
  sentBytes: number;
  timeSent: number;
}

/** The states of §7.3, derived from the variables rather than stored, as in Appendix B. */
export type CongestionState = 'slow start' | 'recovery' | 'congestion avoidance';

/**
 * RFC 9002 §7's rules, common to every controller here (Appendix B's variables and B.4–B.9):
 * the window, bytes in flight, one recovery period per congestion event, no growth while
 * underused or in recovery, persistent congestion. A controller supplies only how the window
 * grows in congestion avoidance and how far it is cut.
 */
export abstract class Rfc9002Controller {
  abstract readonly name: string;
  /** B.2: the sender's current maximum payload size (§14 of RFC 9000: at least 1200). */
  maxDatagramSize: number;
  bytesInFlight = 0;
  congestionWindow: number;
  /** B.2: undefined stands for the pseudocode's initial 0 (no recovery period yet). */
  congestionRecoveryStartTime: number | undefined = undefined;
  ssthresh = Number.POSITIVE_INFINITY;
  /** §7.8: the window does not grow while the sender is application- or flow-control limited. */
  appOrFlowControlLimited = false;
  /** Counted for traces and tests. */
  congestionEvents = 0;
  persistentCongestionEvents = 0;
  /** Set from a congestion event until a packet sent after it is acknowledged (§7.3.2). */
  private recovering = false;

  constructor(maxDatagramSize = 1200) {
    this.maxDatagramSize = maxDatagramSize;
    // §7.2 initial window (RFC 9438 §4.10 leaves CUBIC's start to the transport too).
    this.congestionWindow = initialWindow(maxDatagramSize);
  }

  /** The new window in congestion avoidance after `ackedBytes` were acknowledged. */
  protected abstract grow(ackedBytes: number, now: number, smoothedRtt: number | undefined): number;
  /** The new ssthresh at a congestion event; the window drops to it (or to the minimum). */
  protected abstract reduce(): number;
  /** The window went unused (§7.8), or collapsed after persistent congestion (§7.6.2). */
  protected restart(): void {}

  get state(): CongestionState {
    if (this.recovering) return 'recovery';
    return this.congestionWindow < this.ssthresh ? 'slow start' : 'congestion avoidance';
  }

  /** The bytes that may be sent now (§7: the sender MUST NOT exceed the window). */
  get sendAllowance(): number {
    return Math.max(0, this.congestionWindow - this.bytesInFlight);
  }

  /** B.4 OnPacketSentCC. */
  onPacketSent(sentBytes: number): void {
    this.bytesInFlight += sentBytes;
  }

  /** B.5 InCongestionRecovery: sent no later than the start of the recovery period. */
  inCongestionRecovery(sentTime: number): boolean {
    return this.congestionRecoveryStartTime !== undefined && sentTime <= this.congestionRecoveryStartTime;
  }

  /** B.5 OnPacketsAcked; `now` and the smoothed RTT matter to CUBIC only (its growth is a function of time). */
  onPacketsAcked(acked: readonly CcPacket[], now = 0, smoothedRtt?: number): void {
    for (const p of acked) {
      if (!p.inFlight) continue;
      this.bytesInFlight -= p.sentBytes;
      // §7.8: "When bytes in flight is smaller than the congestion window and sending is not
      // pacing limited, the congestion window is underutilized" and must not grow.
      if (this.appOrFlowControlLimited) {
        this.restart();
        continue;
      }
      // §7.3.2: the window does not grow in recovery. A packet sent after recovery started
      // being acknowledged ends the recovery period (§7.3.2).
      if (this.inCongestionRecovery(p.timeSent)) continue;
      this.recovering = false;
      // §7.3.1 slow start grows by the acknowledged bytes; congestion avoidance is the controller's.
      if (this.congestionWindow < this.ssthresh) this.congestionWindow += p.sentBytes;
      else this.congestionWindow = this.grow(p.sentBytes, now, smoothedRtt);
    }
  }

  /** B.6 OnCongestionEvent: one reduction per round trip (§7.3.2). */
  onCongestionEvent(sentTime: number, now: number): void {
    if (this.inCongestionRecovery(sentTime)) return;
    this.congestionEvents++;
    this.congestionRecoveryStartTime = now;
    this.recovering = true;
    this.ssthresh = this.reduce();
    this.congestionWindow = Math.max(this.ssthresh, minimumWindow(this.maxDatagramSize));
  }

  /**
   * B.8 OnPacketsLost, the congestion part: in-flight bytes leave, the latest send time of a
   * lost packet drives one congestion event, and persistent congestion collapses the window.
   */
  onPacketsLost(lost: readonly CcPacket[], persistentCongestion: boolean, now: number): void {
    let sentTimeOfLastLoss: number | undefined;
    for (const p of lost) {
      if (p.inFlight) this.bytesInFlight -= p.sentBytes;
      sentTimeOfLastLoss = Math.max(sentTimeOfLastLoss ?? p.timeSent, p.timeSent);
    }
    if (sentTimeOfLastLoss !== undefined) this.onCongestionEvent(sentTimeOfLastLoss, now);
    if (persistentCongestion) {
      // §7.6.2: "the sender's congestion window MUST be reduced to the minimum congestion
      // window (kMinimumWindow)"; B.8 also resets the recovery start time.
      this.persistentCongestionEvents++;
      this.congestionWindow = minimumWindow(this.maxDatagramSize);
      this.restart();
      this.congestionRecoveryStartTime = undefined;
      this.recovering = false;
    }
  }

  /** B.9 RemoveFromBytesInFlight: packets of a discarded space leave without a signal. */
  removeFromBytesInFlight(discarded: readonly CcPacket[]): void {
    for (const p of discarded) if (p.inFlight) this.bytesInFlight -= p.sentBytes;
  }
}

/** NewReno (RFC 9002 §7.3): halve on a congestion event, about one datagram per window in avoidance. */
export class NewReno extends Rfc9002Controller {
  readonly name = 'newreno';

  protected grow(ackedBytes: number): number {
    // §7.3.3 congestion avoidance: about one maximum datagram per window acknowledged.
    return this.congestionWindow + (this.maxDatagramSize * ackedBytes) / this.congestionWindow;
  }

  protected reduce(): number {
    return this.congestionWindow * kLossReductionFactor;
  }
}
