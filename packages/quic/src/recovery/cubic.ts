/**
 * CUBIC for QUIC: RFC 9438's window arithmetic (the shared `CubicWindow` of @stepwire/wire,
 * which TCP's CUBIC uses too) under RFC 9002 §7's rules, with the same shape as NewReno in
 * congestion.ts so the loss detector (loss.ts) drives either. Bytes and milliseconds.
 */
import { CubicWindow } from '@stepwire/wire';
import { type CcPacket, type CongestionState, initialWindow, minimumWindow } from './congestion.ts';

/**
 * What loss detection (loss.ts) and the connection ask of a congestion controller: the
 * calls of RFC 9002 Appendix B (B.4–B.9) and the variables of B.2. NewReno and CUBIC both
 * have this shape; `now` and the smoothed RTT reach `onPacketsAcked` because CUBIC's growth
 * is a function of time (RFC 9438 §4.2), NewReno ignores them.
 */
export interface CongestionController {
  readonly name?: string;
  maxDatagramSize: number;
  bytesInFlight: number;
  congestionWindow: number;
  ssthresh: number;
  congestionRecoveryStartTime: number | undefined;
  appOrFlowControlLimited: boolean;
  congestionEvents: number;
  persistentCongestionEvents: number;
  readonly state: CongestionState;
  readonly sendAllowance: number;
  onPacketSent(sentBytes: number): void;
  inCongestionRecovery(sentTime: number): boolean;
  onPacketsAcked(acked: readonly CcPacket[], now: number, smoothedRtt: number | undefined): void;
  onCongestionEvent(sentTime: number, now: number): void;
  onPacketsLost(lost: readonly CcPacket[], persistentCongestion: boolean, now: number): void;
  removeFromBytesInFlight(discarded: readonly CcPacket[]): void;
}

export class QuicCubic implements CongestionController {
  readonly name = 'cubic';
  /** B.2 max_datagram_size: CUBIC's segment (RFC 9438 §4.1 counts windows in it). */
  maxDatagramSize: number;
  bytesInFlight = 0;
  congestionWindow: number;
  /** B.2 congestion_recovery_start_time; undefined for "no recovery period yet". */
  congestionRecoveryStartTime: number | undefined = undefined;
  ssthresh = Number.POSITIVE_INFINITY;
  /** §7.8: no growth while application- or flow-control limited. */
  appOrFlowControlLimited = false;
  congestionEvents = 0;
  persistentCongestionEvents = 0;
  /** The RFC 9438 state (W_max, K, t_epoch, W_est ...), shared with TCP's CUBIC. */
  readonly cubic: CubicWindow;
  private recovering = false;

  constructor(maxDatagramSize = 1200) {
    this.maxDatagramSize = maxDatagramSize;
    // RFC 9002 §7.2 initial window; RFC 9438 §4.10 leaves the start to the transport.
    this.congestionWindow = initialWindow(maxDatagramSize);
    this.cubic = new CubicWindow(maxDatagramSize);
  }

  get state(): CongestionState {
    if (this.recovering) return 'recovery';
    return this.congestionWindow < this.ssthresh ? 'slow start' : 'congestion avoidance';
  }

  /** §7: the sender MUST NOT exceed the window. */
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

  /** B.5 OnPacketsAcked, with CUBIC's growth in congestion avoidance. */
  onPacketsAcked(acked: readonly CcPacket[], now: number, smoothedRtt: number | undefined): void {
    for (const p of acked) {
      if (!p.inFlight) continue;
      this.bytesInFlight -= p.sentBytes;
      if (this.appOrFlowControlLimited) {
        // RFC 9002 §7.8: an underused window must not grow. RFC 9438 §5.8: CUBIC's growth is
        // a function of time, so time spent not using the window must not count either: the
        // next epoch starts when the window is used again (Linux does the same on idle).
        this.cubic.restartEpoch();
        continue;
      }
      // RFC 9002 §7.3.2: no growth in recovery; a packet sent after recovery started being
      // acknowledged ends the recovery period.
      if (this.inCongestionRecovery(p.timeSent)) continue;
      this.recovering = false;
      if (this.congestionWindow < this.ssthresh) {
        // RFC 9002 §7.3.1 (RFC 9438 §4.10): slow start grows by the bytes acknowledged.
        this.congestionWindow += p.sentBytes;
      } else {
        // RFC 9438 §4.2–§4.5: congestion avoidance along W_cubic, or W_est when Reno would be faster.
        this.congestionWindow = this.cubic.congestionAvoidance(
          this.congestionWindow,
          p.sentBytes,
          now,
          smoothedRtt,
        );
      }
    }
  }

  /** B.6 OnCongestionEvent: one reduction per recovery period (RFC 9002 §7.3.2), by β_cubic (RFC 9438 §4.6). */
  onCongestionEvent(sentTime: number, now: number): void {
    if (this.inCongestionRecovery(sentTime)) return;
    this.congestionEvents++;
    this.congestionRecoveryStartTime = now;
    this.recovering = true;
    // RFC 9438 §4.6/§4.7: W_max (with fast convergence), ssthresh = cwnd × β_cubic; the
    // floor is QUIC's kMinimumWindow (RFC 9002 §7.2).
    this.ssthresh = this.cubic.onCongestionEvent(this.congestionWindow, minimumWindow(this.maxDatagramSize));
    this.congestionWindow = this.ssthresh;
  }

  /** B.8 OnPacketsLost, the congestion part. */
  onPacketsLost(lost: readonly CcPacket[], persistentCongestion: boolean, now: number): void {
    let sentTimeOfLastLoss: number | undefined;
    for (const p of lost) {
      if (p.inFlight) this.bytesInFlight -= p.sentBytes;
      sentTimeOfLastLoss = Math.max(sentTimeOfLastLoss ?? p.timeSent, p.timeSent);
    }
    if (sentTimeOfLastLoss !== undefined) this.onCongestionEvent(sentTimeOfLastLoss, now);
    if (persistentCongestion) {
      // RFC 9002 §7.6.2: the window collapses to kMinimumWindow (RFC 9438 §4.8 does the same
      // after a timeout: reduce, then restart from a small window in slow start). The epoch
      // ends whether or not this loss opened a new recovery period.
      this.persistentCongestionEvents++;
      this.congestionWindow = minimumWindow(this.maxDatagramSize);
      this.cubic.restartEpoch();
      this.congestionRecoveryStartTime = undefined;
      this.recovering = false;
    }
  }

  /** B.9 RemoveFromBytesInFlight. */
  removeFromBytesInFlight(discarded: readonly CcPacket[]): void {
    for (const p of discarded) if (p.inFlight) this.bytesInFlight -= p.sentBytes;
  }
}
