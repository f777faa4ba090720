/**
 * The retransmission timer's estimator (RFC 6298). Times in milliseconds.
 */
export interface RtoOptions {
  /** RTO before any sample (RFC 6298 §2.1: 1 s). */
  initial?: number;
  /** Lower bound (RFC 6298 §2.4: 1 s; Linux uses 200 ms, allowed here as an option). */
  min?: number;
  /** Upper bound (RFC 6298 §2.5: at least 60 s). */
  max?: number;
  /** Clock granularity G (RFC 6298 §2). */
  granularity?: number;
}

const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;

export class RttEstimator {
  srtt: number | undefined;
  rttvar: number | undefined;
  /** The last measurement taken. */
  latest: number | undefined;
  /** The RTO without back-off, as the last sample set it. */
  baseRto: number;
  /** The RTO in force: baseRto doubled once per back-off, capped at max. */
  rto: number;
  readonly min: number;
  readonly max: number;
  private readonly g: number;

  constructor(o: RtoOptions = {}) {
    this.min = o.min ?? 1000;
    this.max = o.max ?? 60_000;
    this.g = o.granularity ?? 1;
    this.baseRto = this.clamp(o.initial ?? 1000);
    this.rto = this.baseRto;
  }

  private clamp(v: number): number {
    return Math.min(this.max, Math.max(this.min, v));
  }

  /** Take one RTT measurement R (RFC 6298 §2.2, §2.3); also collapses any back-off. */
  sample(r: number): void {
    if (r < 0) return;
    this.latest = r;
    if (this.srtt === undefined || this.rttvar === undefined) {
      // RFC 6298 §2.2
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      // RFC 6298 §2.3: RTTVAR first, with the old SRTT.
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - r);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * r;
    }
    this.baseRto = this.clamp(this.srtt + Math.max(this.g, K * this.rttvar));
    this.rto = this.baseRto;
  }

  /** RFC 6298 §5.5: back the timer off on expiry. */
  backoff(): void {
    this.rto = Math.min(this.max, this.rto * 2);
  }

  /** RFC 6298 §5.7: after a SYN timed out with no sample, start data at 3 s. */
  resetAfterSynTimeout(): void {
    if (this.srtt === undefined) this.rto = this.baseRto = this.clamp(3000);
  }
}
