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

  push(b: Uint8Array): void {
    if (b.length === 0) return;
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
    while (this.head < this.chunks.length) {
      const end = this.starts[this.head]! + this.chunks[this.head]!.length;
      if (end > this.base) break;
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
    if (inner + len <= c.length) return c.subarray(inner, inner + len);
    const out = new Uint8Array(len);
    let at = 0;
    let from = inner;
    while (at < len) {
      const chunk = this.chunks[i]!;
      const n = Math.min(len - at, chunk.length - from);
      out.set(chunk.subarray(from, from + n), at);
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
