/**
 * The token bucket that limits the ICMP errors a host sends (RFC 1812 §4.3.2.8 for
 * ICMPv4, RFC 4443 §2.4(f) for ICMPv6, which names a token bucket as the way): `rate`
 * tokens per second up to `burst`, one per error. Refilled from `now` on each ask, so it
 * needs no timer.
 */
export class IcmpTokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Take one token if there is one at `now`; false means the error must not be sent. */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.ratePerSecond) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens available at `now` (without taking one). */
  available(now: number): number {
    return Math.min(this.burst, this.tokens + ((now - this.at) * this.ratePerSecond) / 1000);
  }
}
