import { bytesEqual } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { HARD_SEGMENT_FACTOR, MIN_AVERAGE_PIECE, ReceiveBuffer } from '../src/streams/receive-buffer.ts';

/**
 * The stream receive buffer under a fast path's burst loss: one lost packet at the head of
 * a window leaves thousands of full-size pieces waiting for its retransmission. Before,
 * the 1025th piece closed the connection (TOO_FRAGMENTED) and each insert walked every
 * piece; a flood of tiny pieces must still be refused.
 */
describe('receive buffer: burst loss on a fast path', () => {
  const FRAME = 1150;

  it('holds 4000 full-size pieces behind one gap and delivers them all once it is filled', () => {
    const b = new ReceiveBuffer(8 * 1024 * 1024, 1024);
    const data = new Uint8Array(4001 * FRAME).map((_, i) => i % 251);
    // Piece 0 is lost; pieces 1..4000 arrive in order behind it.
    for (let k = 1; k <= 4000; k++) {
      expect(b.receive(k * FRAME, data.subarray(k * FRAME, (k + 1) * FRAME))).toBeUndefined();
    }
    expect(b.segmentCount).toBe(4000);
    expect(b.read()).toHaveLength(0);
    expect(b.receive(0, data.subarray(0, FRAME))).toBeUndefined();
    const got = b.read();
    // bytesEqual: vitest's deep equality over 4.6 MB takes a minute.
    expect(got.length).toBe(data.length);
    expect(bytesEqual(got, data)).toBe(true);
    expect(b.segmentCount).toBe(0);
    expect(b.bufferedBytes).toBe(0);
  });

  it('still refuses a peer dribbling one-byte pieces with gaps past maxSegments', () => {
    const b = new ReceiveBuffer(1_000_000, 64);
    let err: string | undefined;
    let k = 1;
    for (; k < 10_000 && err === undefined; k++) err = b.receive(2 * k, Uint8Array.of(k & 0xff));
    expect(err).toBe('TOO_FRAGMENTED');
    // Refused at the 65th piece: 64 pieces of one byte average far below MIN_AVERAGE_PIECE.
    expect(k - 1).toBe(65);
    expect(b.segmentCount).toBe(64);
    expect(MIN_AVERAGE_PIECE).toBeGreaterThan(1);
  });

  it('caps pieces of any size at HARD_SEGMENT_FACTOR × maxSegments', () => {
    const b = new ReceiveBuffer(100_000_000, 4);
    let err: string | undefined;
    let k = 1;
    for (; k < 1000 && err === undefined; k++) err = b.receive(k * 2 * FRAME, new Uint8Array(FRAME));
    expect(err).toBe('TOO_FRAGMENTED');
    expect(b.segmentCount).toBe(4 * HARD_SEGMENT_FACTOR);
  });

  it('a retransmission overlapping several held pieces fills only the gaps between them', () => {
    const b = new ReceiveBuffer(1000);
    b.receive(10, Uint8Array.of(10, 11));
    b.receive(20, Uint8Array.of(20));
    const all = new Uint8Array(30).map((_, i) => i);
    expect(b.receive(5, all.subarray(5, 30))).toBeUndefined();
    // 10-11 and 20 were held already: 5..9, 12..19, 21..29 are new.
    expect(b.segmentCount).toBe(5);
    expect(b.bufferedBytes).toBe(25);
    b.receive(0, all.subarray(0, 5));
    expect(b.read()).toEqual(all);
  });
});
