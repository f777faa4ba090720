/**
 * Flow control credit (RFC 9000 §4.1, §4.2) for one stream or the whole connection.
 *
 * Receive side: the peer may send up to `maxData`; as the application consumes data we
 * raise the limit, announcing it (MAX_DATA / MAX_STREAM_DATA) once at least half the
 * window has been used, so updates are neither constant nor late (§4.2).
 *
 * Send side: we may send up to the peer's limit; when blocked we say so once per limit
 * (DATA_BLOCKED / STREAM_DATA_BLOCKED, §4.1).
 */
export class ReceiveCredit {
  /** The limit the peer currently knows. */
  maxData: number;
  /** Bytes the application has consumed. */
  consumed = 0;

  constructor(public readonly window: number) {
    this.maxData = window;
  }

  /** Call when the application takes `n` bytes; returns the new limit to announce, if one is due. */
  onConsumed(n: number): number | undefined {
    this.consumed += n;
    const next = this.consumed + this.window;
    if (next - this.maxData >= this.window / 2) {
      this.maxData = next;
      return next;
    }
    return undefined;
  }
}

export class SendCredit {
  /** Bytes sent so far (the next offset). */
  sent = 0;
  /** The limit at which we last reported being blocked. */
  private blockedAt: number | undefined = undefined;

  constructor(public maxData: number) {}

  /** §4.1: MAX_DATA / MAX_STREAM_DATA only ever raise the limit; a smaller value is ignored. */
  onMaxData(limit: number): void {
    this.maxData = Math.max(this.maxData, limit);
  }

  get available(): number {
    return Math.max(0, this.maxData - this.sent);
  }

  onSent(n: number): void {
    if (n > this.available) throw new RangeError(`sending ${n} bytes exceeds the peer's limit`);
    this.sent += n;
  }

  /** The limit to report in a *_BLOCKED frame, once per limit, when nothing can be sent. */
  blocked(): number | undefined {
    if (this.available > 0 || this.blockedAt === this.maxData) return undefined;
    this.blockedAt = this.maxData;
    return this.maxData;
  }
}
