/**
 * CUBIC for QUIC: RFC 9438's window arithmetic (the shared `CubicWindow` of @stepwire/wire,
 * which TCP's CUBIC uses too) under RFC 9002 §7's rules, with the same shape as NewReno in
 * congestion.ts so the loss detector (loss.ts) drives either. Bytes and milliseconds.
 */
import { CubicWindow } from '@stepwire/wire';
import { type CcPacket, type CongestionState, minimumWindow, Rfc9002Controller } from './congestion.ts';

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

export class QuicCubic extends Rfc9002Controller implements CongestionController {
  readonly name = 'cubic';
  /** The RFC 9438 state (W_max, K, t_epoch, W_est ...), shared with TCP's CUBIC. */
  readonly cubic: CubicWindow;

  constructor(maxDatagramSize = 1200) {
    super(maxDatagramSize);
    this.cubic = new CubicWindow(maxDatagramSize);
  }

  /** RFC 9438 §4.2–§4.5: congestion avoidance along W_cubic, or W_est when Reno would be faster. */
  protected grow(ackedBytes: number, now: number, smoothedRtt: number | undefined): number {
    return this.cubic.congestionAvoidance(this.congestionWindow, ackedBytes, now, smoothedRtt);
  }

  /**
   * RFC 9438 §4.6/§4.7: W_max (with fast convergence), ssthresh = cwnd × β_cubic; the floor is
   * QUIC's kMinimumWindow (RFC 9002 §7.2).
   */
  protected reduce(): number {
    return this.cubic.onCongestionEvent(this.congestionWindow, minimumWindow(this.maxDatagramSize));
  }

  /**
   * RFC 9438 §5.8: CUBIC's growth is a function of time, so time spent not using the window
   * must not count: the next epoch starts when the window is used again (Linux does the same on
   * idle). §4.8 likewise restarts after the collapse of persistent congestion.
   */
  protected override restart(): void {
    this.cubic.restartEpoch();
  }
}
