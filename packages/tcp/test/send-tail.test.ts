/**
 * The end of a transfer: Nagle's algorithm (RFC 9293 §3.7.4) holds a short segment while
 * data is unacknowledged, but not the last bytes when the FIN follows them, as Linux's
 * tcp_nagle_test does: nothing can come to fill the segment, and held back the tail (and
 * any loss just before it, which only a later segment's SACK would reveal to RACK) waits
 * for an ACK or a timer.
 */
import { describe, expect, it } from 'vitest';
import { FIN } from '../src/segment.ts';
import { bytes, established } from './scenario.ts';

describe('Nagle and the FIN', () => {
  it('a short last segment goes at once with the FIN, while data is in flight', () => {
    const { a } = established();
    const full = a.send(bytes(1460 * 2), 0);
    expect(full.segments.length).toBe(2); // in flight, unacknowledged
    const short = a.send(bytes(100), 0);
    expect(short.segments.length).toBe(0); // Nagle holds it: more may be written
    const close = a.close(0);
    expect(close.segments.length).toBe(1);
    const seg = close.segments[0]!;
    expect(seg.payload.length).toBe(100);
    expect(seg.flags & FIN).toBe(FIN);
  });
});
