import { type CongestionControl, initialWindow } from './types.ts';

const C = 0.4; // RFC 9438 §5
const BETA = 0.7; // RFC 9438 §4.6 β_cubic
const ALPHA = (3 * (1 - BETA)) / (1 + BETA); // RFC 9438 §4.3 α_cubic

/**
 * CUBIC (RFC 9438). Window arithmetic is done in segments (floating point) as the RFC
 * writes it; `cwnd` is exposed in bytes.
 */
export class Cubic implements CongestionControl {
  readonly name = 'cubic';
  cwnd: number;
  ssthresh = 0x7fffffff;
  private wMax = 0;
  private wLastMax = 0;
  private k = 0;
  private epochStart: number | undefined;
  private wEst = 0;
  private cwndEpoch = 0;

  constructor(private mss: number) {
    this.cwnd = initialWindow(mss);
  }

  setMss(mss: number): void {
    this.mss = mss;
    this.cwnd = initialWindow(mss);
  }

  private wCubic(tSec: number): number {
    // RFC 9438 §4.2 eq. 1
    const d = tSec - this.k;
    return C * d * d * d + this.wMax;
  }

  onAck(acked: number, now: number, srtt: number | undefined): void {
    if (this.cwnd < this.ssthresh) {
      // RFC 9438 §4.10: slow start as RFC 5681 (with RFC 3465 L = 2*SMSS).
      this.cwnd += Math.min(acked, 2 * this.mss);
      return;
    }
    const seg = this.cwnd / this.mss;
    if (this.epochStart === undefined) {
      this.epochStart = now;
      this.cwndEpoch = seg;
      this.wEst = seg;
      if (this.wMax < seg) this.wMax = seg;
      // RFC 9438 §4.2 eq. 2
      this.k = Math.cbrt((this.wMax - this.cwndEpoch) / C);
    }
    const t = (now - this.epochStart) / 1000;
    const rtt = (srtt ?? 100) / 1000;
    // RFC 9438 §4.3: the Reno-friendly estimate, α_cubic until W_max is passed, then 1.
    const alpha = this.wEst >= this.wMax ? 1 : ALPHA;
    this.wEst += (alpha * acked) / this.cwnd;
    if (this.wCubic(t) < this.wEst) {
      this.cwnd = Math.max(this.cwnd, this.wEst * this.mss);
      return;
    }
    // RFC 9438 §4.4/§4.5: move toward W_cubic(t+RTT), clamped to [cwnd, 1.5 cwnd].
    let target = this.wCubic(t + rtt);
    if (target < seg) target = seg;
    if (target > 1.5 * seg) target = 1.5 * seg;
    this.cwnd += ((target - seg) / seg) * acked;
  }

  private reduce(): void {
    const seg = this.cwnd / this.mss;
    // RFC 9438 §4.7 fast convergence
    if (seg < this.wLastMax) this.wMax = (seg * (1 + BETA)) / 2;
    else this.wMax = seg;
    this.wLastMax = seg;
    this.epochStart = undefined;
    // RFC 9438 §4.6: ssthresh = cwnd * β_cubic, at least 2 segments.
    this.ssthresh = Math.max(Math.floor(this.cwnd * BETA), 2 * this.mss);
  }

  onCongestionEvent(_now: number, _flightSize: number): void {
    this.reduce();
    this.cwnd = this.ssthresh;
  }

  onRecoveryExit(_now: number, _flightSize: number): void {
    this.cwnd = this.ssthresh;
  }

  onRto(_now: number, _flightSize: number): void {
    // RFC 9438 §4.8
    this.reduce();
    this.cwnd = this.mss;
  }
}

export const cubic = (mss: number): CongestionControl => new Cubic(mss);
