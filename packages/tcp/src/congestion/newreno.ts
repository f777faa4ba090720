import { type CongestionControl, initialWindow } from './types.ts';

/**
 * RFC 5681 slow start and congestion avoidance with the window arithmetic of NewReno
 * (RFC 6582). The fast-recovery bookkeeping (recover, partial ACKs) lives in the
 * connection, which owns the sequence space; this object owns only cwnd and ssthresh.
 */
export class NewReno implements CongestionControl {
  readonly name: string = 'newreno';
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** Bytes acked since the last cwnd increase in congestion avoidance (RFC 5681 §3.1, byte counting). */
  protected bytesAcked = 0;

  constructor(protected mss: number) {
    this.cwnd = initialWindow(mss);
  }

  setMss(mss: number): void {
    this.mss = mss;
    this.cwnd = initialWindow(mss);
  }

  onAck(acked: number, _now: number, _srtt: number | undefined): void {
    if (this.cwnd < this.ssthresh) {
      // RFC 5681 §3.1 eq. 2, with RFC 3465's L = 2*SMSS limit on one ACK's increase.
      this.cwnd += Math.min(acked, 2 * this.mss);
      return;
    }
    // RFC 5681 §3.1 eq. 3 in byte-counting form (RFC 3465 §2.1).
    this.bytesAcked += acked;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  onCongestionEvent(_now: number, flightSize: number): void {
    // RFC 5681 §3.2 step 2 (eq. 4); cwnd = ssthresh for the SACK-based recovery of
    // RFC 6675 §5; the NewReno path in the connection adds the 3*SMSS inflation itself.
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.mss);
    this.cwnd = this.ssthresh;
    this.bytesAcked = 0;
  }

  onRecoveryExit(_now: number, flightSize: number): void {
    // RFC 6582 §3.2 step 3, option (1): min(ssthresh, max(FlightSize, SMSS) + SMSS).
    this.cwnd = Math.min(this.ssthresh, Math.max(flightSize, this.mss) + this.mss);
  }

  onRto(_now: number, flightSize: number): void {
    // RFC 5681 §3.1 eq. 4 and the loss window of one segment.
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.mss);
    this.cwnd = this.mss;
    this.bytesAcked = 0;
  }
}

export const newReno = (mss: number): CongestionControl => new NewReno(mss);
