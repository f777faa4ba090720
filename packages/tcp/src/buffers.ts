import { BufferPool } from '@stepwire/wire';

/**
 * Buffers for the socket's copies of large writes, given back when the send queue drops the
 * last acknowledged byte of one. A bulk sender writing 1 MiB at a time otherwise allocates
 * a fresh megabyte per write — external memory V8 answers with a mark-compact every few
 * tens of megabytes, and fresh pages the kernel faults in one by one (issue 13: half the
 * sender's GC over TUN). Only writes of at least WRITE_POOL_MIN bytes use it, so a queue of
 * small writes never pins megabytes; the pool keeps at most four (4 MiB per process).
 */
export const writeChunks = new BufferPool(1 << 20, 4);
export const WRITE_POOL_MIN = 1 << 19;

/**
 * The same for writes of 32–64 KiB (a stream's default chunk, what a pipe() or a bulk
 * writer hands over): the send queue (256 KiB by default) holds a handful, and a buffer
 * that comes back is written again while still in the CPU's cache, where a fresh one is
 * cold memory for the copy (issue 13). At most half of a buffer is unused, and the pool
 * keeps at most eight (512 KiB per process).
 */
export const writeChunks64k = new BufferPool(1 << 16, 8);
export const WRITE_POOL_64K_MIN = 1 << 15;

/** A copy of `chunk` for the send queue: from a pool when its size has one (see above). */
export function writeCopy(chunk: Uint8Array): Uint8Array {
  const n = chunk.length;
  const buffer =
    n >= WRITE_POOL_MIN && n <= writeChunks.size
      ? writeChunks.take()
      : n >= WRITE_POOL_64K_MIN && n <= writeChunks64k.size
        ? writeChunks64k.take()
        : // Unzeroed memory (the copy fills it all), not a zeroed array filled a second time.
          Buffer.allocUnsafeSlow(n).buffer;
  const copy = new Uint8Array(buffer, 0, n);
  copy.set(chunk);
  return copy;
}

/**
 * Byte queues kept as lists of chunks: appending never copies, and reading a range that
 * lies inside one chunk returns a view. The send queue keeps every unacknowledged byte;
 * the receive queue keeps in-order bytes the application has not read yet.
 */
export class ChunkQueue {
  private chunks: Uint8Array[] = [];
  /** Absolute position (bytes ever dropped) of the start of each chunk. */
  private starts: number[] = [];
  private head = 0;
  /** Absolute position of the first byte still held. */
  private base = 0;
  /** Bytes held. */
  length = 0;
  private cursor = 0;

  private tail: Tail | undefined;

  /**
   * Append bytes (kept by reference). With `coalesce`, a piece under SMALL_CHUNK bytes is
   * copied into a shared slab instead, so that a flood of tiny segments costs bytes rather
   * than one object per segment (Linux "collapses" its queues for the same reason).
   */
  push(b: Uint8Array, coalesce = false): void {
    if (b.length === 0) return;
    if (coalesce && b.length < SMALL_CHUNK) {
      const last = this.chunks.length - 1;
      const t = this.tail;
      if (t && last >= this.head && this.chunks[last] === t.view && t.used + b.length <= t.buf.length) {
        t.buf.set(b, t.used);
        t.used += b.length;
        t.view = t.buf.subarray(t.start, t.used);
        this.chunks[last] = t.view;
        this.length += b.length;
        return;
      }
      // The first slab after the queue drained is small and each next one doubles: an idle
      // keep-alive connection that got one small request then holds 1 KiB, not 8 (issue 15).
      const size = t && this.length > 0 ? Math.min(SLAB, t.buf.length * 2) : MIN_SLAB;
      const buf = new Uint8Array(size);
      buf.set(b);
      this.tail = { buf, start: 0, used: b.length, view: buf.subarray(0, b.length) };
      b = this.tail.view;
    }
    this.chunks.push(b);
    this.starts.push(this.base + this.length);
    this.length += b.length;
  }

  /** Drop n bytes from the front. */
  drop(n: number): void {
    if (n <= 0) return;
    if (n > this.length) n = this.length;
    this.base += n;
    this.length -= n;
    // Drained: let the tail slab go with the views the reader took of it.
    if (this.length === 0) this.tail = undefined;
    while (this.head < this.chunks.length) {
      const end = this.starts[this.head]! + this.chunks[this.head]!.length;
      if (end > this.base) break;
      // A pooled write copy (socket.ts) is done once its last byte is acknowledged: nothing
      // else keeps a view of it (segments are encoded, copied, as they are sent).
      // Sizes first: a receive queue's chunks are views of packets (slabs of other sizes),
      // one per segment, and need no pool's WeakSet lookup.
      const buffer = this.chunks[this.head]!.buffer;
      const size = buffer.byteLength;
      if (size === writeChunks64k.size) writeChunks64k.give(buffer);
      else if (size === writeChunks.size) writeChunks.give(buffer);
      this.chunks[this.head] = EMPTY;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.starts = this.starts.slice(this.head);
      this.cursor = Math.max(0, this.cursor - this.head);
      this.head = 0;
    }
    if (this.cursor < this.head) this.cursor = this.head;
  }

  private find(abs: number): number {
    let i = this.cursor;
    if (i < this.head || i >= this.chunks.length || this.starts[i]! > abs) i = this.head;
    while (i < this.chunks.length && this.starts[i]! + this.chunks[i]!.length <= abs) i++;
    this.cursor = i;
    return i;
  }

  /** Bytes [off, off+len) counted from the front; a view when they lie in one chunk. */
  slice(off: number, len: number): Uint8Array {
    if (off < 0 || len < 0 || off + len > this.length) throw new RangeError('ChunkQueue.slice out of range');
    if (len === 0) return EMPTY;
    const abs = this.base + off;
    let i = this.find(abs);
    const c = this.chunks[i]!;
    const inner = abs - this.starts[i]!;
    // A new view rather than subarray, which looks up the species constructor each time:
    // this is every segment's payload on the send path.
    if (inner + len <= c.length) return new Uint8Array(c.buffer, c.byteOffset + inner, len);
    // A large read in unzeroed memory (the loop below writes every byte of it).
    const out =
      len >= 4096 ? new Uint8Array(Buffer.allocUnsafeSlow(len).buffer, 0, len) : new Uint8Array(len);
    let at = 0;
    let from = inner;
    while (at < len) {
      const chunk = this.chunks[i] as Uint8Array;
      const n = Math.min(len - at, chunk.length - from);
      // A whole chunk (most of a long read: one per received segment) is copied as it
      // is, without a view made of it first.
      if (from === 0 && n === chunk.length) out.set(chunk, at);
      else out.set(chunk.subarray(from, from + n), at);
      at += n;
      from = 0;
      i++;
    }
    return out;
  }

  /** Remove and return up to max bytes from the front (a view when one chunk suffices). */
  take(max: number): Uint8Array {
    const n = Math.min(max, this.length);
    const out = this.slice(0, n);
    this.drop(n);
    return out;
  }

  clear(): void {
    this.drop(this.length);
  }
}

const EMPTY = new Uint8Array(0);

/** Pieces shorter than this are copied together (see push). */
export const SMALL_CHUNK = 512;
const SLAB = 8192;
const MIN_SLAB = 1024;

/** A slab that small pieces are copied into; `view` is its chunk in the list. */
export interface Tail {
  buf: Uint8Array;
  start: number;
  used: number;
  view: Uint8Array;
}

/**
 * Append to a plain chunk list, copying small pieces into the list's tail slab (the same
 * policy as ChunkQueue.push with coalescing). Returns the tail to keep for the next call.
 */
export function appendCoalescing(
  chunks: Uint8Array[],
  tail: Tail | undefined,
  b: Uint8Array,
): Tail | undefined {
  if (b.length >= SMALL_CHUNK) {
    chunks.push(b);
    return tail;
  }
  const last = chunks.length - 1;
  if (tail && last >= 0 && chunks[last] === tail.view && tail.used + b.length <= tail.buf.length) {
    tail.buf.set(b, tail.used);
    tail.used += b.length;
    tail.view = tail.buf.subarray(tail.start, tail.used);
    chunks[last] = tail.view;
    return tail;
  }
  const buf = new Uint8Array(SLAB);
  buf.set(b);
  const t = { buf, start: 0, used: b.length, view: buf.subarray(0, b.length) };
  chunks.push(t.view);
  return t;
}
