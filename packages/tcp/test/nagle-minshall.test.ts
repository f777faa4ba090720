/**
 * Nagle's algorithm (RFC 9293 §3.7.4) in Minshall's variant, as Linux runs it: a short
 * segment waits only while an earlier short segment is unacknowledged. Full-sized segments
 * in flight do not hold back the tail of the same write.
 */
import { describe, expect, it } from 'vitest';
import { bytes, deliver, established } from './scenario.ts';

describe('Nagle, Minshall variant', () => {
  it('one write of two MSS and a tail leaves whole, with nothing acknowledged yet', () => {
    const { a } = established({ congestion: 'newreno' }, {});
    const mss = a.stats.mss;
    const out = a.send(bytes(2 * mss + 100), 0);
    expect(out.segments.map((s) => s.payload.length)).toEqual([mss, mss, 100]);
  });

  it('a second short write waits while the first short segment is unacknowledged, and goes with its ACK', () => {
    const { a, b } = established({ congestion: 'newreno' }, { delayedAck: 0 });
    const first = a.send(bytes(100), 0);
    expect(first.segments.map((s) => s.payload.length)).toEqual([100]);
    // Held: a short segment (the first one) is still in flight.
    expect(a.send(bytes(50), 1).segments).toEqual([]);
    const acks = deliver(b, first.segments, 2);
    const after = deliver(a, acks, 3);
    expect(after.segments.map((s) => s.payload.length)).toEqual([50]);
  });

  it('with noDelay the second short write goes at once', () => {
    const { a } = established({ congestion: 'newreno', noDelay: true }, {});
    expect(a.send(bytes(100), 0).segments).toHaveLength(1);
    expect(a.send(bytes(50), 1).segments).toHaveLength(1);
  });
});
