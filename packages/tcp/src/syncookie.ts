import { createHmac, randomBytes } from 'node:crypto';
import type { TcpEndpoint } from './connection/index.ts';

/**
 * SYN cookies (RFC 4987 §3.6): when the SYN queue is full, a listener answers a SYN without
 * keeping any state and encodes what it needs to rebuild the connection in the ISS of its
 * SYN-ACK. The client's ACK returns ISS+1; a valid cookie proves the client saw our
 * SYN-ACK (so its address is not spoofed) and restores the connection.
 *
 * The 32 bits, as in Bernstein's design that RFC 4987 describes:
 *
 *     bits 31..27  t: a counter of 64-second periods, mod 32
 *     bits 26..24  m: index into MSS_TABLE of the largest entry <= the client's MSS
 *     bits 23..0   s: a keyed hash (HMAC-SHA-256, truncated) of the 4-tuple, the client's
 *                  ISN and t
 *
 * A cookie is accepted for two periods (64-128 s), like Linux. What a cookie cannot carry
 * is lost (RFC 4987 §3.6 notes it): the connection has no window scaling, SACK or
 * timestamps, so the SYN-ACK does not offer them either.
 */

/** MSS values a cookie can encode (bits 26..24). Covers IPv4 and IPv6 paths of common MTUs. */
export const SYNCOOKIE_MSS_TABLE: readonly number[] = [536, 1024, 1220, 1300, 1400, 1440, 1460, 8960];

/** Length of a cookie period in milliseconds. */
export const SYNCOOKIE_PERIOD = 64_000;

export class SynCookies {
  private readonly secret: Uint8Array;

  /** A fixed secret makes cookies repeatable in tests; by default 32 random bytes. */
  constructor(secret?: Uint8Array) {
    this.secret = secret ?? new Uint8Array(randomBytes(32));
  }

  /** The period counter t for time `now` (ms). */
  static counter(now: number): number {
    return Math.floor(now / SYNCOOKIE_PERIOD) & 31;
  }

  /** Index of the largest table entry not above `mss` (0 when even 536 is too much). */
  static mssIndex(mss: number): number {
    let i = 0;
    for (let k = 0; k < SYNCOOKIE_MSS_TABLE.length; k++) if (SYNCOOKIE_MSS_TABLE[k]! <= mss) i = k;
    return i;
  }

  private hash(local: TcpEndpoint, remote: TcpEndpoint, clientIsn: number, t: number): number {
    const h = createHmac('sha256', this.secret)
      .update(`${local.addr}|${local.port}|${remote.addr}|${remote.port}|${clientIsn >>> 0}|${t}`)
      .digest();
    return ((h[0]! << 16) | (h[1]! << 8) | h[2]!) >>> 0;
  }

  /** The ISS for a SYN from `remote` with sequence number `clientIsn` and MSS option `mss`. */
  encode(local: TcpEndpoint, remote: TcpEndpoint, clientIsn: number, mss: number, now: number): number {
    const t = SynCookies.counter(now);
    const m = SynCookies.mssIndex(mss);
    return ((t << 27) | (m << 24) | this.hash(local, remote, clientIsn, t)) >>> 0;
  }

  /**
   * Check the cookie returned in an ACK (`ack - 1`) for the segment's `seq - 1` as the
   * client's ISN. Returns the MSS the cookie encodes, or undefined when it is not ours,
   * forged, or older than two periods.
   */
  validate(
    local: TcpEndpoint,
    remote: TcpEndpoint,
    clientIsn: number,
    cookie: number,
    now: number,
  ): number | undefined {
    const t = cookie >>> 27;
    const age = (SynCookies.counter(now) - t) & 31;
    if (age > 1) return undefined;
    const s = cookie & 0xffffff;
    if (this.hash(local, remote, clientIsn, t) !== s) return undefined;
    return SYNCOOKIE_MSS_TABLE[(cookie >>> 24) & 7];
  }
}
