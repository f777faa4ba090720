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
   * More out-of-order pieces than `maxSegments` while they average under
   * MIN_AVERAGE_PIECE bytes (a peer dribbling tiny frames with gaps to make us keep many
   * small allocations), or more than HARD_SEGMENT_FACTOR × `maxSegments` pieces of any size.
   * Full-size STREAM frames after a burst loss on a fast path legitimately leave thousands
   * of pieces waiting for one retransmission: flow control already bounds their bytes. Not
   * an RFC error code: the connection decides (a stack usually closes with
   * PROTOCOL_VIOLATION or INTERNAL_ERROR).
   */
  | 'TOO_FRAGMENTED';

/** Pieces that average at least this many bytes count against the hard limit only. */
export const MIN_AVERAGE_PIECE = 512;
/** However large the pieces, at most this many times `maxSegments` of them. */
export const HARD_SEGMENT_FACTOR = 16;

/**
 * The bytes [from, to) of a frame's data to hold: a view when they are at least half of the
 * buffer behind them (a packet's decrypted payload, which then stays alive with them), else
 * a copy, so that pieces that are small parts of large packets never keep more than twice
 * their own size alive (a hostile peer's tiny frames in big packets).
 */
function keepable(data: Uint8Array, from: number, to: number): Uint8Array {
  return 2 * (to - from) >= data.buffer.byteLength ? data.subarray(from, to) : data.slice(from, to);
}

export class ReceiveBuffer {
  /** Bytes delivered to the reader so far: the next in-order offset. */
  private readOffset = 0;
  /** Highest offset + 1 of any data received (for flow control, §4.5 "largest offset"). */
  highestOffset = 0;
  /**
   * Out-of-order segments sorted by start offset, never overlapping each other: two
   * parallel arrays, so a lookup is a binary search rather than a walk over every piece.
   */
  private readonly starts: number[] = [];
  private readonly pieces: Uint8Array[] = [];
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
  /** Out-of-order pieces held (for stats and tests). */
  get segmentCount(): number {
    return this.starts.length;
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
    if (start >= end) return undefined;
    // The first held piece that ends after `start` (pieces do not overlap, so their ends are sorted too).
    let i = this.firstEndingAfter(start);
    while (start < end) {
      const heldStart = this.starts[i];
      const held = this.pieces[i];
      if (heldStart !== undefined && held !== undefined && heldStart <= start) {
        // `start` lies inside piece i: skip what it already holds.
        start = heldStart + held.length;
        i++;
        continue;
      }
      const stop = heldStart === undefined ? end : Math.min(end, heldStart);
      const n = this.starts.length;
      if (n >= this.maxSegments * HARD_SEGMENT_FACTOR) return 'TOO_FRAGMENTED';
      if (n >= this.maxSegments && this.buffered + (stop - start) < (n + 1) * MIN_AVERAGE_PIECE)
        return 'TOO_FRAGMENTED';
      const piece = keepable(data, start - offset, stop - offset);
      this.starts.splice(i, 0, start);
      this.pieces.splice(i, 0, piece);
      this.buffered += piece.length;
      i++;
      start = stop;
    }
    return undefined;
  }

  /** Index of the first piece whose end is beyond `at` (starts.length if none). */
  private firstEndingAfter(at: number): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.starts[mid] as number;
      const p = this.pieces[mid] as Uint8Array;
      if (s + p.length <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Takes the bytes now contiguous from the read offset (possibly none). */
  read(): Uint8Array {
    let k = 0;
    let total = 0;
    while (k < this.starts.length && this.starts[k] === this.readOffset + total) {
      total += (this.pieces[k] as Uint8Array).length;
      k++;
    }
    if (k === 0) return new Uint8Array(0);
    const parts = this.pieces.splice(0, k);
    this.starts.splice(0, k);
    this.buffered -= total;
    this.readOffset += total;
    if (parts.length === 1) return parts[0] as Uint8Array;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}
