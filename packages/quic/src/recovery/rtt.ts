/**
 * RTT estimation (RFC 9002 §5; pseudocode in Appendix A.7). Times are milliseconds.
 */

/** §6.2.2 / A.2: the RTT assumed before any sample. */
export const kInitialRtt = 333;
/** A.2: timer granularity. */
export const kGranularity = 1;

export class RttEstimator {
  /** §5.2: the most recent sample. */
  latestRtt = 0;
  /** §5.3: starts at kInitialRtt, so the first PTO is computed from it (§6.2.2). */
  smoothedRtt = kInitialRtt;
  rttvar = kInitialRtt / 2;
  /** §5.2: the minimum over the connection (0 until the first sample). */
  minRtt = 0;
  /** When the first sample was taken; undefined until then (A.3 `first_rtt_sample`). */
  firstRttSample: number | undefined = undefined;

  get hasSample(): boolean {
    return this.firstRttSample !== undefined;
  }

  /**
   * A.7 UpdateRtt, with §5.3's adjustments: the peer's reported ack delay is capped at
   * max_ack_delay once the handshake is confirmed, and is subtracted only when that does
   * not take the sample below min_rtt.
   */
  update(
    latestRtt: number,
    ackDelay: number,
    now: number,
    handshakeConfirmed: boolean,
    maxAckDelay: number,
  ): void {
    this.latestRtt = latestRtt;
    if (this.firstRttSample === undefined) {
      // §5.3: the first sample initialises the estimator.
      this.minRtt = latestRtt;
      this.smoothedRtt = latestRtt;
      this.rttvar = latestRtt / 2;
      this.firstRttSample = now;
      return;
    }
    // §5.2: min_rtt ignores ack delay.
    this.minRtt = Math.min(this.minRtt, latestRtt);
    if (handshakeConfirmed) ackDelay = Math.min(ackDelay, maxAckDelay);
    let adjustedRtt = latestRtt;
    if (latestRtt >= this.minRtt + ackDelay) adjustedRtt = latestRtt - ackDelay;
    this.rttvar = (3 / 4) * this.rttvar + (1 / 4) * Math.abs(this.smoothedRtt - adjustedRtt);
    this.smoothedRtt = (7 / 8) * this.smoothedRtt + (1 / 8) * adjustedRtt;
  }

  /** §6.2.1: PTO = smoothed_rtt + max(4*rttvar, kGranularity) (+ max_ack_delay for 1-RTT, added by the caller). */
  ptoBase(): number {
    return this.smoothedRtt + Math.max(4 * this.rttvar, kGranularity);
  }
}
