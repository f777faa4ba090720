/**
 * CUBIC's window arithmetic (RFC 9438), shared by TCP (packages/tcp) and QUIC
 * (packages/quic). It owns no clock and no notion of a packet: the caller passes the
 * window in bytes, the bytes just acknowledged and `now` in milliseconds, and applies the
 * results under its own protocol's rules (TCP's recovery per RFC 6675/5681, QUIC's
 * recovery periods per RFC 9002 §7.3.2).
 *
 * The RFC writes its formulas in segments (§4.1: "the unit of all window sizes ... is
 * segments"); the arithmetic here follows it literally, converting from and to bytes with
 * `segmentSize` (TCP's SMSS, QUIC's max_datagram_size), so a reader can check each line
 * against the RFC's equations.
 */

/** RFC 9438 §5: C = 0.4 (segments / s³). */
export const CUBIC_C = 0.4;
/** RFC 9438 §4.6: β_cubic = 0.7, the multiplicative decrease factor. */
export const CUBIC_BETA = 0.7;
/** RFC 9438 §4.3: α_cubic = 3 (1 − β_cubic) / (1 + β_cubic), so the Reno-friendly region matches Reno's rate. */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);
/** The RTT assumed before the caller has a smoothed RTT (ms); only §4.4's W_cubic(t + RTT) reads it. */
export const CUBIC_DEFAULT_RTT = 100;

/** RFC 9438 §4.2 eq. 2: K = ∛((W_max − cwnd_epoch) / C), in seconds; windows in segments. */
export function cubicK(wMax: number, cwndEpoch: number): number {
  return Math.cbrt((wMax - cwndEpoch) / CUBIC_C);
}

/** RFC 9438 §4.2 eq. 1: W_cubic(t) = C (t − K)³ + W_max, t and K in seconds, windows in segments. */
export function wCubic(t: number, k: number, wMax: number): number {
  const d = t - k;
  return CUBIC_C * d * d * d + wMax;
}

/**
 * The state RFC 9438 §4.1 lists (W_max, W_last_max, K, t_epoch, cwnd_epoch, W_est) and the
 * three moments that change it: an ACK in congestion avoidance, a congestion event, and a
 * restart of the epoch.
 */
export class CubicWindow {
  /** §4.1 W_max: the window, in segments, just before the last reduction. */
  wMax = 0;
  /** §4.7 W_last_max: W_max before the last reduction, for fast convergence. */
  wLastMax = 0;
  /** §4.2 K, seconds. */
  k = 0;
  /** §4.1 t_epoch, ms: the start of the current congestion-avoidance stage; undefined until it starts. */
  epochStart: number | undefined = undefined;
  /** §4.1 cwnd_epoch, segments. */
  cwndEpoch = 0;
  /** §4.3 W_est, segments: the Reno-friendly estimate. */
  wEst = 0;

  constructor(public segmentSize: number) {}

  /**
   * Congestion avoidance (RFC 9438 §4.2–§4.5) for `acked` bytes acknowledged at `now` (ms),
   * with the window `cwnd` in bytes and the smoothed RTT in ms. Returns the new window in
   * bytes. Slow start is the caller's: each protocol has its own (RFC 9438 §4.10).
   */
  congestionAvoidance(cwnd: number, acked: number, now: number, srtt: number | undefined): number {
    const seg = cwnd / this.segmentSize;
    if (this.epochStart === undefined) {
      // §4.2: a new epoch begins at the first ACK of congestion avoidance.
      this.epochStart = now;
      this.cwndEpoch = seg;
      this.wEst = seg;
      // Past W_max (slow start overshot it, or no reduction yet): the curve starts here, K = 0.
      if (this.wMax < seg) this.wMax = seg;
      this.k = cubicK(this.wMax, this.cwndEpoch);
    }
    const t = (now - this.epochStart) / 1000;
    const rtt = (srtt ?? CUBIC_DEFAULT_RTT) / 1000;
    // §4.3: the Reno-friendly estimate grows by α_cubic per window acknowledged until it
    // passes W_max, then by 1 (Reno's own rate).
    const alpha = this.wEst >= this.wMax ? 1 : CUBIC_ALPHA;
    this.wEst += (alpha * acked) / cwnd;
    if (wCubic(t, this.k, this.wMax) < this.wEst) {
      // §4.3: in the Reno-friendly region the window follows W_est.
      return Math.max(cwnd, this.wEst * this.segmentSize);
    }
    // §4.4 (concave) and §4.5 (convex): move toward target = W_cubic(t + RTT) by
    // (target − cwnd) / cwnd per segment acknowledged, the target clamped to [cwnd, 1.5 cwnd].
    let target = wCubic(t + rtt, this.k, this.wMax);
    if (target < seg) target = seg;
    if (target > 1.5 * seg) target = 1.5 * seg;
    return cwnd + ((target - seg) / seg) * acked;
  }

  /**
   * A congestion event (RFC 9438 §4.6, §4.7) with the window `cwnd` in bytes: W_max is
   * recorded (lowered by fast convergence when the window shrank since the last event), the
   * epoch ends, and the reduced window — ssthresh = cwnd × β_cubic, never below
   * `minimumWindow` bytes — is returned. The caller decides what cwnd becomes (TCP: ssthresh,
   * or one segment after an RTO, §4.8; QUIC: ssthresh, or the minimum window after
   * persistent congestion).
   */
  onCongestionEvent(cwnd: number, minimumWindow: number): number {
    const seg = cwnd / this.segmentSize;
    // §4.7 fast convergence: a window below the previous W_max means a new flow is taking a
    // share; release bandwidth by aiming lower, W_max = cwnd (1 + β_cubic) / 2.
    if (seg < this.wLastMax) this.wMax = (seg * (1 + CUBIC_BETA)) / 2;
    else this.wMax = seg;
    this.wLastMax = seg;
    this.epochStart = undefined;
    // §4.6: ssthresh = cwnd × β_cubic (whole bytes), and never below the floor the protocol sets.
    return Math.max(Math.floor(cwnd * CUBIC_BETA), minimumWindow);
  }

  /**
   * End the epoch without a reduction, so the next ACK in congestion avoidance starts a new
   * one from the window then in force (K recomputed against the same W_max). For a sender
   * that was application-limited (§5.8): time spent not using the window must not count
   * as time on the curve.
   */
  restartEpoch(): void {
    this.epochStart = undefined;
  }
}
