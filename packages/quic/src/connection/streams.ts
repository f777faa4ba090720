import { ReceiveCredit, SendCredit } from '../streams/flow-control.ts';
import { ReceiveBuffer } from '../streams/receive-buffer.ts';
import {
  type RecvStreamInput,
  type RecvStreamState,
  recvStreamTransition,
  type SendStreamInput,
  type SendStreamState,
  sendStreamTransition,
} from './state.ts';

/**
 * The two halves of a stream (RFC 9000 §2, §3): what we send, kept until the peer
 * acknowledges it so lost ranges can be sent again (§13.3), and what we receive,
 * reassembled in order (§2.2) within the flow-control credit we gave (§4).
 */

/** Half-open byte ranges [start, end), sorted, disjoint and merged when they touch. */
export class RangeSet {
  readonly ranges: [number, number][] = [];

  add(start: number, end: number): void {
    if (end <= start) return;
    const rs = this.ranges;
    let i = 0;
    while (i < rs.length && rs[i]![1] < start) i++;
    let s = start;
    let e = end;
    let j = i;
    while (j < rs.length && rs[j]![0] <= e) {
      s = Math.min(s, rs[j]![0]);
      e = Math.max(e, rs[j]![1]);
      j++;
    }
    rs.splice(i, j - i, [s, e]);
  }

  /** Removes [start, end) from the set. */
  remove(start: number, end: number): void {
    const out: [number, number][] = [];
    for (const [s, e] of this.ranges) {
      if (e <= start || s >= end) out.push([s, e]);
      else {
        if (s < start) out.push([s, start]);
        if (e > end) out.push([end, e]);
      }
    }
    this.ranges.splice(0, this.ranges.length, ...out);
  }

  /** The end of the range starting at 0 (0 when none does). */
  contiguousFrom(base: number): number {
    const first = this.ranges[0];
    return first && first[0] <= base ? Math.max(base, first[1]) : base;
  }

  covers(start: number, end: number): boolean {
    return this.ranges.some(([s, e]) => s <= start && end <= e);
  }

  /** The first sub-range of [start, end) not in the set, or undefined. */
  firstGap(start: number, end: number): [number, number] | undefined {
    let at = start;
    for (const [s, e] of this.ranges) {
      if (e <= at) continue;
      if (s >= end) break;
      if (s > at) return [at, Math.min(s, end)];
      at = Math.max(at, e);
      if (at >= end) return undefined;
    }
    return at < end ? [at, end] : undefined;
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }
}

export interface StreamChunk {
  offset: number;
  data: Uint8Array;
  fin: boolean;
}

export class SendStream {
  state: SendStreamState = 'Ready';
  readonly credit: SendCredit;
  /** Written data not yet acknowledged, in offset order (released from the front as acked). */
  private chunks: { offset: number; data: Uint8Array }[] = [];
  /** Bytes the application has written: the end of the stream so far. */
  written = 0;
  /** The next offset never sent. */
  sendOffset = 0;
  finWritten = false;
  finSent = false;
  private finAcked = false;
  private finLost = false;
  /** Ranges declared lost and not yet sent again (RFC 9000 §13.3: "Application data sent in STREAM frames is retransmitted in new STREAM frames"). */
  private readonly lost = new RangeSet();
  private readonly acked = new RangeSet();
  /** Set by resetStream or a peer's STOP_SENDING: the RESET_STREAM still to send. */
  resetCode: number | undefined = undefined;
  resetPending = false;
  /** The limit at which STREAM_DATA_BLOCKED was last sent. */
  blockedFramePending = false;

  constructor(
    readonly id: number,
    maxStreamData: number,
  ) {
    this.credit = new SendCredit(maxStreamData);
  }

  private to(input: SendStreamInput): void {
    const next = sendStreamTransition(this.state, input);
    if (next === undefined)
      throw new Error(`stream ${this.id}: no send transition ${this.state} --${input}-->`);
    this.state = next;
  }

  write(data: Uint8Array, fin: boolean): void {
    // After a reset (ours, or the answer to the peer's STOP_SENDING, which the application
    // may not have read yet) the bytes have nowhere to go: dropped, as RFC 9000 §3.5 lets
    // the sender abandon the stream.
    if (this.resetCode !== undefined) return;
    if (this.finWritten) throw new Error(`stream ${this.id}: write after FIN`);
    if (data.length > 0) {
      this.chunks.push({ offset: this.written, data });
      this.written += data.length;
    }
    if (fin) this.finWritten = true;
  }

  get isReset(): boolean {
    return this.resetCode !== undefined;
  }

  /** Bytes written but never sent (what flow control gates). */
  get unsent(): number {
    return this.written - this.sendOffset;
  }

  /** Whether a STREAM frame could be built now, given `connectionCredit` new bytes allowed. */
  wantsToSend(connectionCredit: number): boolean {
    if (this.resetCode !== undefined) return false;
    if (!this.lost.isEmpty || this.finLost) return true;
    if (this.unsent > 0 && Math.min(this.credit.available, connectionCredit) > 0) return true;
    return this.finWritten && !this.finSent && this.sendOffset === this.written;
  }

  /**
   * The next STREAM frame's contents, at most `maxLength` bytes: lost data first, then new
   * data within the stream's and the connection's credit. `newBytes` is what the caller
   * charges to the connection's flow-control credit.
   */
  nextChunk(maxLength: number, connectionCredit: number): (StreamChunk & { newBytes: number }) | undefined {
    if (this.resetCode !== undefined || maxLength <= 0) return undefined;
    for (;;) {
      const r = this.lost.ranges[0];
      if (!r) break;
      const gap = this.acked.firstGap(r[0], r[1]);
      if (!gap) {
        this.lost.remove(r[0], r[1]);
        continue;
      }
      const end = Math.min(gap[1], gap[0] + maxLength);
      this.lost.remove(r[0], end);
      const fin = this.finSent && end === this.written && this.finWritten;
      if (fin) this.finLost = false;
      return { offset: gap[0], data: this.bytes(gap[0], end), fin, newBytes: 0 };
    }
    const allowed = Math.min(maxLength, this.credit.available, connectionCredit, this.unsent);
    if (allowed > 0) {
      const offset = this.sendOffset;
      const end = offset + allowed;
      this.credit.onSent(allowed);
      this.sendOffset = end;
      const fin = this.finWritten && end === this.written;
      this.noteSent(fin);
      return { offset, data: this.bytes(offset, end), fin, newBytes: allowed };
    }
    if ((this.finWritten && !this.finSent && this.sendOffset === this.written) || this.finLost) {
      this.finLost = false;
      this.noteSent(true);
      return { offset: this.written, data: new Uint8Array(0), fin: true, newBytes: 0 };
    }
    return undefined;
  }

  private noteSent(fin: boolean): void {
    if (this.state === 'Ready' && !fin) this.to('send');
    if (fin && !this.finSent) {
      this.finSent = true;
      this.to('send-fin');
    }
  }

  private bytes(start: number, end: number): Uint8Array {
    // Binary search for the chunk holding `start`.
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.chunks[mid]!.offset <= start) lo = mid;
      else hi = mid - 1;
    }
    const first = this.chunks[lo];
    if (first && first.offset <= start && end <= first.offset + first.data.length)
      return first.data.subarray(start - first.offset, end - first.offset);
    const out = new Uint8Array(end - start);
    for (let i = lo; i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      if (c.offset >= end) break;
      const s = Math.max(start, c.offset);
      const e = Math.min(end, c.offset + c.data.length);
      if (e > s) out.set(c.data.subarray(s - c.offset, e - c.offset), s - start);
    }
    return out;
  }

  onAcked(offset: number, length: number, fin: boolean): void {
    this.acked.add(offset, offset + length);
    if (fin) this.finAcked = true;
    // Release chunks wholly below the contiguous acknowledged prefix.
    const done = this.acked.contiguousFrom(0);
    while (this.chunks.length > 0) {
      const c = this.chunks[0]!;
      if (c.offset + c.data.length > done) break;
      this.chunks.shift();
    }
    if (this.state === 'Data Sent' && this.finAcked && done >= this.written) this.to('all-acked');
  }

  onLost(offset: number, length: number, fin: boolean): void {
    if (this.resetCode !== undefined || this.state === 'Data Recvd') return;
    const gap = this.acked.firstGap(offset, offset + length);
    if (gap) this.lost.add(offset, offset + length);
    if (fin && !this.finAcked) this.finLost = true;
  }

  /** RESET_STREAM (§3.1): stop (re)sending; the final size is what was sent. */
  reset(code: number): boolean {
    if (this.resetCode !== undefined || this.state === 'Data Recvd') return false;
    this.to('reset');
    this.resetCode = code;
    this.resetPending = true;
    this.chunks = [];
    this.lost.remove(0, Number.MAX_SAFE_INTEGER);
    this.finLost = false;
    return true;
  }

  onResetAcked(): void {
    if (this.state === 'Reset Sent') this.to('reset-acked');
  }

  /** Whether this half is finished (all data or the reset acknowledged). */
  get done(): boolean {
    return this.state === 'Data Recvd' || this.state === 'Reset Recvd';
  }
}

export class RecvStream {
  state: RecvStreamState = 'Recv';
  readonly buffer: ReceiveBuffer;
  readonly credit: ReceiveCredit;
  /** We sent STOP_SENDING: data is dropped from then on (RFC 9000 §3.5). */
  stopCode: number | undefined = undefined;
  stopPending = false;
  /** A MAX_STREAM_DATA to send. */
  maxDataPending = false;

  constructor(
    readonly id: number,
    window: number,
  ) {
    this.buffer = new ReceiveBuffer(window, 1024);
    this.credit = new ReceiveCredit(window);
  }

  to(input: RecvStreamInput): void {
    const next = recvStreamTransition(this.state, input);
    if (next === undefined)
      throw new Error(`stream ${this.id}: no receive transition ${this.state} --${input}-->`);
    this.state = next;
  }

  get done(): boolean {
    return this.state === 'Data Read' || this.state === 'Reset Read';
  }
}
