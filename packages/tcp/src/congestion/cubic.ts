import { CubicWindow } from '@stepwire/wire';
import { type CongestionControl, initialWindow } from './types.ts';

/**
 * CUBIC for TCP (RFC 9438) behind TCP's CongestionControl seam. The window arithmetic
 * (W_cubic, K, the Reno-friendly estimate, β_cubic, fast convergence) is the shared
 * `CubicWindow` of @stepwire/wire, which QUIC's CUBIC uses too; this adapter adds what is
 * TCP's own: slow start per RFC 5681 with RFC 3465's L = 2·SMSS (RFC 9438 §4.10), the
 * window after fast recovery, and the loss window after an RTO (RFC 9438 §4.8).
 */
export class Cubic implements CongestionControl {
  readonly name = 'cubic';
  cwnd: number;
  ssthresh = 0x7fffffff;
  private readonly window: CubicWindow;

  constructor(private mss: number) {
    this.cwnd = initialWindow(mss);
    this.window = new CubicWindow(mss);
  }

  setMss(mss: number): void {
    this.mss = mss;
    this.window.segmentSize = mss;
    this.cwnd = initialWindow(mss);
  }

  onAck(acked: number, now: number, srtt: number | undefined): void {
    if (this.cwnd < this.ssthresh) {
      // RFC 9438 §4.10: slow start as RFC 5681 (with RFC 3465 L = 2*SMSS).
      this.cwnd += Math.min(acked, 2 * this.mss);
      return;
    }
    this.cwnd = this.window.congestionAvoidance(this.cwnd, acked, now, srtt);
  }

  /** RFC 9438 §4.6: ssthresh = cwnd × β_cubic, at least 2 segments (RFC 5681 §3.1 eq. 4). */
  private reduce(): void {
    this.ssthresh = this.window.onCongestionEvent(this.cwnd, 2 * this.mss);
  }

  onCongestionEvent(_now: number, _flightSize: number): void {
    this.reduce();
    this.cwnd = this.ssthresh;
  }

  onRecoveryExit(_now: number, _flightSize: number): void {
    this.cwnd = this.ssthresh;
  }

  onRto(_now: number, _flightSize: number): void {
    // RFC 9438 §4.8: the reduction, then the loss window of one segment.
    this.reduce();
    this.cwnd = this.mss;
  }
}

export const cubic = (mss: number): CongestionControl => new Cubic(mss);
