/**
 * Reassembly of an ordered byte stream from frames that arrive in any order, duplicated or
 * overlapping: STREAM data (RFC 9000 §2.2, §4.5) and CRYPTO data (§7.5, §19.6).
 *
 * Every byte a peer can make us hold is bounded: data beyond `limit` (the flow-control
 * credit we gave, or the CRYPTO buffer size) is refused before it is stored, and so is a
 * final size that contradicts what was already seen.
 */

export type ReceiveError =
  /** §4.1: data beyond the advertised limit. CRYPTO data maps it to CRYPTO_BUFFER_EXCEEDED (§7.5). */
  | 'FLOW_CONTROL_ERROR'
  /** §4.5: a final size that changes, or data beyond the final size. */
  | 'FINAL_SIZE_ERROR'
  /**
   * More out-of-order pieces than `maxSegments`: a peer dribbling one-byte frames with gaps
   * would otherwise make each insert walk a huge list. Not an RFC error code: the connection
   * decides (a stack usually closes with PROTOCOL_VIOLATION or INTERNAL_ERROR).
   */
  | 'TOO_FRAGMENTED';

export class ReceiveBuffer {
  /** Bytes delivered to the reader so far: the next in-order offset. */
  private readOffset = 0;
  /** Highest offset + 1 of any data received (for flow control, §4.5 "largest offset"). */
  highestOffset = 0;
  /** Out-of-order segments, keyed by start offset, never overlapping each other. */
  private readonly segments = new Map<number, Uint8Array>();
  private buffered = 0;
  finalSize: number | undefined = undefined;

  /** @param limit the largest offset (exclusive) the peer may send up to; raise it with `raiseLimit`. */
  constructor(
    public limit: number,
    readonly maxSegments = 1024,
  ) {}

  raiseLimit(limit: number): void {
    this.limit = Math.max(this.limit, limit);
  }

  /** Bytes held that the reader has not taken (in order or not). */
  get bufferedBytes(): number {
    return this.buffered;
  }
  get bytesRead(): number {
    return this.readOffset;
  }
  /** All data up to the final size has been read. */
  get finished(): boolean {
    return this.finalSize !== undefined && this.readOffset === this.finalSize;
  }

  /** Records a frame's data; returns an error name instead of storing anything that breaks a rule. */
  receive(offset: number, data: Uint8Array, fin = false): ReceiveError | undefined {
    const end = offset + data.length;
    if (end > this.limit) return 'FLOW_CONTROL_ERROR';
    // §4.5: "Once a final size for a stream is known, it cannot change"; no data beyond it.
    if (this.finalSize !== undefined && (end > this.finalSize || (fin && end !== this.finalSize)))
      return 'FINAL_SIZE_ERROR';
    if (fin && end < this.highestOffset) return 'FINAL_SIZE_ERROR';
    if (fin) this.finalSize = end;
    this.highestOffset = Math.max(this.highestOffset, end);
    // Keep only the bytes not yet read and not already held.
    let start = Math.max(offset, this.readOffset);
    while (start < end) {
      const held = this.segmentCovering(start);
      if (held) {
        start = held.offset + held.data.length;
        continue;
      }
      const nextStart = this.nextSegmentAfter(start);
      const stop = Math.min(end, nextStart ?? end);
      if (this.segments.size >= this.maxSegments) return 'TOO_FRAGMENTED';
      const piece = data.slice(start - offset, stop - offset);
      this.segments.set(start, piece);
      this.buffered += piece.length;
      start = stop;
    }
    return undefined;
  }

  private segmentCovering(at: number): { offset: number; data: Uint8Array } | undefined {
    for (const [o, d] of this.segments) if (o <= at && at < o + d.length) return { offset: o, data: d };
    return undefined;
  }
  private nextSegmentAfter(at: number): number | undefined {
    let best: number | undefined;
    for (const o of this.segments.keys()) if (o > at && (best === undefined || o < best)) best = o;
    return best;
  }

  /** Takes the bytes now contiguous from the read offset (possibly none). */
  read(): Uint8Array {
    const parts: Uint8Array[] = [];
    for (;;) {
      const d = this.segments.get(this.readOffset);
      if (!d) break;
      this.segments.delete(this.readOffset);
      this.buffered -= d.length;
      this.readOffset += d.length;
      parts.push(d);
    }
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}
