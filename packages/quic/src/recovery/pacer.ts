/**
 * Pacing (RFC 9002 §7.7): "a sender SHOULD pace sending of all in-flight packets based on
 * input from the congestion controller", at rate = N × congestion_window / smoothed_rtt
 * with N = 1.25 so that a window still fills within one RTT despite timer granularity,
 * allowing "bursts of at most ... initial congestion window" after idle. Here a token bucket
 * holds up to `burstDatagrams` datagrams' worth of bytes (plus the part of one more datagram
 * that a burst leaves behind, see `ceiling`) and refills at that rate; the connection asks it
 * for the earliest time the next datagram may leave. Bytes and ms; no clock.
 */

/** RFC 9002 §7.7: N, the pacing gain over cwnd / smoothed_rtt. */
export const kPacingGain = 1.25;
/** The burst allowance in datagrams (RFC 9002 §7.7 bounds bursts by the initial window, 10 datagrams). */
export const kBurstDatagrams = 10;

export class Pacer {
  /** Bytes that may leave at once. */
  private tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  private lastRefill: number | undefined = undefined;

  constructor(
    public maxDatagramSize = 1200,
    readonly burstDatagrams = kBurstDatagrams,
  ) {
    this.tokens = this.capacity;
  }

  get capacity(): number {
    return this.burstDatagrams * this.maxDatagramSize;
  }

  /**
   * The most the bucket holds: one byte short of one datagram more than the burst. A burst
   * spends tokens a whole datagram at a time (`nextSendTime` asks for a full datagram), so
   * fewer than `burstDatagrams + 1` datagrams' worth still releases at most `burstDatagrams`
   * at once (RFC 9002 §7.7: bursts no larger than the initial window). Capping at exactly the
   * burst instead threw away the fraction of a datagram a burst leaves behind whenever the
   * refill until the next whole-millisecond wake-up topped the bucket over: at 9.4 datagrams
   * per ms the sender went 9, 9, 10 and lost 264 bytes every third ms, pacing persistently
   * below N × cwnd / smoothed_rtt (the regression case in pacer.test.ts, seed -849244940).
   */
  get ceiling(): number {
    return this.capacity + this.maxDatagramSize - 1;
  }

  /** Bytes per millisecond: N × cwnd / smoothed_rtt (RFC 9002 §7.7); infinite with no RTT to pace by. */
  static rate(congestionWindow: number, smoothedRtt: number): number {
    if (!(smoothedRtt > 0)) return Number.POSITIVE_INFINITY;
    return (kPacingGain * congestionWindow) / smoothedRtt;
  }

  private refill(now: number, rate: number): void {
    if (this.lastRefill !== undefined && now > this.lastRefill) {
      this.tokens = Math.min(this.ceiling, this.tokens + (now - this.lastRefill) * rate);
    }
    if (this.lastRefill === undefined || now > this.lastRefill) this.lastRefill = now;
  }

  /**
   * The earliest time a datagram of `size` bytes may be sent: `now` when the bucket holds
   * enough, else the whole millisecond at which it will (rounded up, so that when the
   * connection is woken then the bytes are there and the wake-up is not wasted).
   */
  nextSendTime(now: number, size: number, congestionWindow: number, smoothedRtt: number): number {
    const rate = Pacer.rate(congestionWindow, smoothedRtt);
    if (rate === Number.POSITIVE_INFINITY) return now;
    this.refill(now, rate);
    const need = Math.min(size, this.capacity) - this.tokens;
    // A rounding error of a millionth of a byte is not worth a wake-up.
    if (need <= 1e-6) return now;
    return Math.max(now, Math.ceil((this.lastRefill ?? now) + need / rate));
  }

  /** A datagram of `size` bytes left at `now`: its bytes come out of the bucket (which may go negative for a probe). */
  onPacketSent(now: number, size: number, congestionWindow: number, smoothedRtt: number): void {
    const rate = Pacer.rate(congestionWindow, smoothedRtt);
    if (rate === Number.POSITIVE_INFINITY) {
      this.tokens = this.capacity;
      this.lastRefill = now;
      return;
    }
    this.refill(now, rate);
    this.tokens -= size;
  }
}
