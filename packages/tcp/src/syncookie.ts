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
 * A cookie is accepted for two periods (64-128 s), like Linux.
 *
 * 32 bits have no room for the options the SYN offered (RFC 4987 §3.6 notes what is lost).
 * When the SYN carried timestamps, Linux keeps the rest in the low bits of the TSval of
 * its SYN-ACK, which the client echoes in every segment (RFC 7323 §4.3): so does this, in
 * the same layout (tcp_syncookies, cookie_init_timestamp):
 *
 *     bits 3..0    the client's window shift (RFC 7323 §2.3), 0xf for none
 *     bit  4       SACK permitted (RFC 2018 §2)
 *     bit  5       ECN (not used here: always 0)
 *
 * Without timestamps only the MSS survives, and the SYN-ACK offers nothing else.
 */

/** MSS values a cookie can encode (bits 26..24). Covers IPv4 and IPv6 paths of common MTUs. */
export const SYNCOOKIE_MSS_TABLE: readonly number[] = [536, 1024, 1220, 1300, 1400, 1440, 1460, 8960];

/** Length of a cookie period in milliseconds. */
export const SYNCOOKIE_PERIOD = 64_000;

/** Low TSval bits that carry the options (Linux TSBITS). */
const TS_BITS = 6;
const TS_MASK = (1 << TS_BITS) - 1;
const TS_NO_WSCALE = 0xf;
const TS_SACK = 0x10;
/** ECN agreed (RFC 3168 §6.1.1), in the bit Linux uses (TS_OPT_ECN). */
const TS_ECN = 0x20;

/** What a cookie's timestamp remembers of the client's SYN. */
export interface SynCookieOptions {
  /** The client's window shift, when it offered window scaling. */
  windowScale?: number;
  sackPermitted: boolean;
  /** The SYN asked for ECN and our SYN-ACK agreed. */
  ecn?: boolean;
}

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

  /**
   * The TSval for a cookie SYN-ACK: `tsNow` (what the connection's clock would say) with
   * the options in its low bits, moved back one step if that put it in the future, as
   * Linux does, so the timestamps the rebuilt connection sends next never go backwards.
   */
  static timestamp(tsNow: number, o: SynCookieOptions): number {
    const bits =
      (o.windowScale === undefined ? TS_NO_WSCALE : Math.min(14, o.windowScale)) |
      (o.sackPermitted ? TS_SACK : 0) |
      (o.ecn ? TS_ECN : 0);
    let ts = ((tsNow & ~TS_MASK) | bits) >>> 0;
    if (((ts - tsNow) | 0) > 0) ts = (ts - (TS_MASK + 1)) >>> 0;
    return ts;
  }

  /** The options in the TSecr of the client's ACK (the echo of our cookie TSval). */
  static optionsFrom(tsEcr: number): SynCookieOptions {
    const ws = tsEcr & 0xf;
    return {
      ...(ws === TS_NO_WSCALE ? {} : { windowScale: ws }),
      sackPermitted: (tsEcr & TS_SACK) !== 0,
      ...((tsEcr & TS_ECN) !== 0 ? { ecn: true } : {}),
    };
  }
}
