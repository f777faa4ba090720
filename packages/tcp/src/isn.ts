import { createHmac, randomBytes } from 'node:crypto';

/**
 * Initial sequence numbers per RFC 6528 §3: ISN = M + F(localip, localport, remoteip,
 * remoteport, secretkey), M a clock ticking every 4 microseconds and F a keyed
 * pseudo-random function. F here is HMAC-SHA-256 truncated to 32 bits (RFC 6528 names
 * MD5 as an example and asks for a stronger function where one is available).
 */
export class IsnGenerator {
  private readonly secret: Uint8Array;

  /** A fixed secret makes ISNs repeatable in tests; by default 16 random bytes. */
  constructor(secret?: Uint8Array) {
    this.secret = secret ?? new Uint8Array(randomBytes(16));
  }

  isn(local: { addr: string; port: number }, remote: { addr: string; port: number }, now: number): number {
    const h = createHmac('sha256', this.secret)
      .update(`${local.addr}|${local.port}|${remote.addr}|${remote.port}`)
      .digest();
    const f = h.readUInt32BE(0);
    // RFC 6528 §3: M is a 4 µs timer; `now` is in milliseconds.
    const m = Math.floor(now * 250) >>> 0;
    return (f + m) >>> 0;
  }
}

let defaultGenerator: IsnGenerator | undefined;
/** A process-wide generator with a random secret. */
export function defaultIsn(
  local: { addr: string; port: number },
  remote: { addr: string; port: number },
  now: number,
): number {
  defaultGenerator ??= new IsnGenerator();
  return defaultGenerator.isn(local, remote, now);
}
