import {
  seqAdd as wire_seqAdd,
  seqDiff as wire_seqDiff,
  seqGt as wire_seqGt,
  seqLt as wire_seqLt,
} from '@stepwire/wire';
import { appendCoalescing, type Tail } from './buffers.ts';
import type { SackBlock } from './options.ts';

// Bound once to locals: on the per-segment path each access to an imported binding can
// cost a getter call under some module loaders (esbuild/tsx, vite-node).
const seqAdd = wire_seqAdd;
const seqDiff = wire_seqDiff;
const seqGt = wire_seqGt;
const seqLt = wire_seqLt;

interface OooBlock {
  left: number;
  right: number;
  chunks: Uint8Array[];
  /** Slab that small appended pieces are copied into. */
  tail?: Tail | undefined;
  /** Recency stamp, for the SACK block order of RFC 2018 §4. */
  touched: number;
}

/**
 * Out-of-order data held by the receiver: contiguous runs of bytes above RCV.NXT, kept as
 * blocks, which are also the SACK blocks to report (RFC 2018 §4). The queue holds at most
 * `cap` bytes; a segment that would go past it is dropped whole and counted by the caller.
 */
export class OutOfOrderQueue {
  private blocks: OooBlock[] = [];
  private stamp = 0;
  bytes = 0;
  /** The last insert brought nothing new (every byte was held already): a D-SACK case. */
  lastWasDuplicate = false;

  /**
   * `cap` bounds the bytes held, `maxBlocks` the separate runs (each costs objects and
   * search time, so a peer spraying one-byte segments across the window is bounded too).
   */
  constructor(
    readonly cap: number,
    readonly maxBlocks = 512,
  ) {}

  get isEmpty(): boolean {
    return this.blocks.length === 0;
  }

  get blockCount(): number {
    return this.blocks.length;
  }

  /**
   * Add bytes starting at `seq` (which is above rcvNxt). Overlaps with what is held are
   * trimmed so each byte is stored once. Returns false when dropped for the cap.
   */
  insert(seq: number, data: Uint8Array, rcvNxt: number): boolean {
    const r0 = seqDiff(seq, rcvNxt);
    const r1 = r0 + data.length;
    const rel = (s: number) => seqDiff(s, rcvNxt);
    const bs = this.blocks;
    // Blocks that touch [r0, r1] form a run i..j (they are sorted and disjoint); i is the
    // first block whose right edge reaches r0 (binary search; appends hit the last block).
    let i = bs.length;
    if (i > 0 && rel(bs[i - 1]!.right) >= r0) {
      let lo = 0;
      let hi = bs.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (rel(bs[mid]!.right) >= r0) hi = mid;
        else lo = mid + 1;
      }
      i = lo;
    }
    let j = i;
    let covered = 0;
    while (j < bs.length && rel(bs[j]!.left) <= r1) {
      const b = bs[j]!;
      covered += Math.max(0, Math.min(r1, rel(b.right)) - Math.max(r0, rel(b.left)));
      j++;
    }
    const added = data.length - covered;
    this.lastWasDuplicate = added === 0;
    if (added === 0) {
      if (j > i) bs[i]!.touched = ++this.stamp;
      return true;
    }
    if (this.bytes + added > this.cap) return false;
    this.bytes += added;
    if (j === i) {
      if (bs.length >= this.maxBlocks) {
        this.bytes -= added;
        return false;
      }
      const chunks: Uint8Array[] = [];
      const tail = appendCoalescing(chunks, undefined, data);
      bs.splice(i, 0, { left: seq, right: seqAdd(seq, data.length), chunks, tail, touched: ++this.stamp });
      return true;
    }
    // The common case: the segment extends the run just below it.
    const first = bs[i]!;
    if (j === i + 1 && rel(first.right) === r0) {
      first.tail = appendCoalescing(first.chunks, first.tail, data);
      first.right = seqAdd(seq, data.length);
      first.touched = ++this.stamp;
      return true;
    }
    const merged: Uint8Array[] = [];
    let cursor = r0;
    const piece = (a: number, b: number) => {
      if (b > a) merged.push(data.subarray(a - r0, b - r0));
    };
    let left = r0;
    if (rel(first.left) < r0) {
      left = rel(first.left);
      cursor = left;
    }
    for (let k = i; k < j; k++) {
      const b = bs[k]!;
      piece(Math.max(cursor, r0), rel(b.left));
      for (const c of b.chunks) merged.push(c);
      cursor = rel(b.right);
    }
    piece(Math.max(cursor, r0), r1);
    const right = Math.max(cursor, r1);
    bs.splice(i, j - i, {
      left: seqAdd(rcvNxt, left),
      right: seqAdd(rcvNxt, right),
      chunks: merged,
      touched: ++this.stamp,
    });
    return true;
  }

  /**
   * Take the run that starts at or below rcvNxt, trimmed to start exactly at rcvNxt, or
   * undefined when the first run still leaves a hole.
   */
  takeInOrder(rcvNxt: number): Uint8Array[] | undefined {
    const b = this.blocks[0];
    if (!b || seqGt(b.left, rcvNxt)) return undefined;
    this.blocks.shift();
    let skip = seqDiff(rcvNxt, b.left);
    const out: Uint8Array[] = [];
    for (const c of b.chunks) {
      if (skip >= c.length) {
        skip -= c.length;
        this.bytes -= c.length;
        continue;
      }
      out.push(skip ? c.subarray(skip) : c);
      this.bytes -= c.length;
      skip = 0;
    }
    return out;
  }

  /** Drop runs entirely below rcvNxt (e.g. after rcvNxt moved past them). */
  prune(rcvNxt: number): void {
    while (this.blocks.length && !seqGt(this.blocks[0]!.right, rcvNxt)) {
      const b = this.blocks.shift()!;
      for (const c of b.chunks) this.bytes -= c.length;
    }
  }

  /** Up to `max` SACK blocks, the most recently changed first (RFC 2018 §4). */
  sackBlocks(max: number): SackBlock[] {
    const sorted =
      this.blocks.length > 1 ? [...this.blocks].sort((a, b) => b.touched - a.touched) : this.blocks;
    const out: SackBlock[] = [];
    for (const b of sorted) {
      if (out.length >= max) break;
      out.push({ left: b.left, right: b.right });
    }
    return out;
  }

  clear(): void {
    this.blocks = [];
    this.bytes = 0;
  }
}

/**
 * The sender's SACK scoreboard (RFC 6675 §3): which sequence ranges above SND.UNA the peer
 * has reported holding. Ranges are sorted and disjoint; their count is capped because the
 * peer controls them.
 */
export class Scoreboard {
  /** Flattened [left0, right0, left1, right1, ...]. */
  private r: number[] = [];
  sacked = 0;

  constructor(private readonly maxRanges = 64) {}

  get isEmpty(): boolean {
    return this.r.length === 0;
  }

  clear(): void {
    this.r.length = 0;
    this.sacked = 0;
  }

  /** Highest sequence number SACKed plus one, or undefined. */
  get highest(): number | undefined {
    return this.r.length ? this.r[this.r.length - 1] : undefined;
  }

  /**
   * Merge reported blocks, ignoring those not strictly inside (sndUna, sndMax] (RFC 2018 §3
   * and D-SACK blocks below SND.UNA, RFC 2883). Returns true when something new was learnt.
   */
  update(blocks: SackBlock[], sndUna: number, sndMax: number): boolean {
    let changed = false;
    for (const b of blocks) {
      if (!seqLt(b.left, b.right) || !seqLt(sndUna, b.right) || seqGt(b.right, sndMax)) continue;
      const left = seqLt(b.left, sndUna) ? sndUna : b.left;
      if (this.add(left, b.right, sndUna)) changed = true;
    }
    return changed;
  }

  private add(left: number, right: number, base: number): boolean {
    const r = this.r;
    const rel = (s: number) => seqDiff(s, base);
    const a = rel(left);
    const b = rel(right);
    let i = 0;
    while (i < r.length && rel(r[i + 1]!) < a) i += 2;
    let j = i;
    let nl = a;
    let nr = b;
    let covered = 0;
    while (j < r.length && rel(r[j]!) <= b) {
      const l = rel(r[j]!);
      const rr = rel(r[j + 1]!);
      covered += Math.max(0, Math.min(b, rr) - Math.max(a, l));
      if (l < nl) nl = l;
      if (rr > nr) nr = rr;
      j += 2;
    }
    const added = b - a - covered;
    if (added <= 0) return false;
    if (j === i && r.length >= this.maxRanges * 2) return false;
    let old = 0;
    for (let k = i; k < j; k += 2) old += seqDiff(r[k + 1]!, r[k]!);
    r.splice(i, j - i, seqAdd(base, nl), seqAdd(base, nr));
    this.sacked += nr - nl - old;
    return true;
  }

  /** Forget everything below the new SND.UNA. */
  advance(sndUna: number): void {
    const r = this.r;
    let k = 0;
    while (k < r.length && !seqGt(r[k + 1]!, sndUna)) {
      this.sacked -= seqDiff(r[k + 1]!, r[k]!);
      k += 2;
    }
    if (k) r.splice(0, k);
    if (r.length && seqLt(r[0]!, sndUna)) {
      this.sacked -= seqDiff(sndUna, r[0]!);
      r[0] = sndUna;
    }
  }

  isSacked(seq: number): boolean {
    const r = this.r;
    for (let k = 0; k < r.length; k += 2) {
      if (seqLt(seq, r[k]!)) return false;
      if (seqLt(seq, r[k + 1]!)) return true;
    }
    return false;
  }

  /** SACKed bytes inside [a, b). */
  sackedBetween(a: number, b: number): number {
    const r = this.r;
    let n = 0;
    for (let k = 0; k < r.length; k += 2) {
      const l = seqLt(r[k]!, a) ? a : r[k]!;
      const rr = seqGt(r[k + 1]!, b) ? b : r[k + 1]!;
      const d = seqDiff(rr, l);
      if (d > 0) n += d;
    }
    return n;
  }

  /**
   * RFC 6675 §4 IsLost, as a boundary: every un-SACKed octet below the returned sequence
   * number has DupThresh discontiguous SACKed ranges, or more than (DupThresh-1)*SMSS
   * SACKed bytes, above it. Undefined when no octet qualifies.
   */
  lostBoundary(dupThresh: number, mss: number): number | undefined {
    const r = this.r;
    let count = 0;
    let bytes = 0;
    for (let k = r.length - 2; k >= 0; k -= 2) {
      count++;
      bytes += seqDiff(r[k + 1]!, r[k]!);
      if (count >= dupThresh || bytes > (dupThresh - 1) * mss) return r[k];
    }
    return undefined;
  }

  /** The first un-SACKed range at or after `from`, ending at the next SACKed range (or `limit`). */
  nextHole(from: number, limit: number): { start: number; end: number } | undefined {
    const r = this.r;
    let start = from;
    for (let k = 0; k < r.length; k += 2) {
      if (!seqGt(r[k + 1]!, start)) continue;
      if (seqGt(r[k]!, start))
        return seqLt(start, limit) ? { start, end: seqLt(r[k]!, limit) ? r[k]! : limit } : undefined;
      start = r[k + 1]!;
    }
    return seqLt(start, limit) ? { start, end: limit } : undefined;
  }

  /** The ranges, for stats and tests. */
  ranges(): SackBlock[] {
    const out: SackBlock[] = [];
    for (let k = 0; k < this.r.length; k += 2) out.push({ left: this.r[k]!, right: this.r[k + 1]! });
    return out;
  }
}
