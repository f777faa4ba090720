import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TcpConnection, TcpState } from '../src/connection.ts';
import { RST, type TcpSegment } from '../src/segment.ts';
import { arbitraryTcpOptions } from '../src/testing.ts';
import { bytes, client, deliver, established, server } from './scenario.ts';

/** A connection of A's side in each of the eleven states (B is its honest peer). */
const builders: Record<TcpState, () => TcpConnection> = {
  CLOSED: () => client(),
  LISTEN: () => {
    const b = server();
    b.listen(0);
    return b;
  },
  'SYN-SENT': () => {
    const a = client();
    a.open(0);
    return a;
  },
  'SYN-RECEIVED': () => {
    const b = server();
    b.listen(0);
    deliver(b, client().open(0), 0);
    return b;
  },
  ESTABLISHED: () => {
    const { a, b } = established({ timestamps: true, maxOutOfOrder: 20_000 }, { timestamps: true });
    deliver(a, b.send(bytes(3000), 0), 0);
    a.send(bytes(5000), 0);
    return a;
  },
  'FIN-WAIT-1': () => {
    const { a } = established();
    a.close(0);
    return a;
  },
  'FIN-WAIT-2': () => {
    const { a, b } = established();
    deliver(a, deliver(b, a.close(0), 0), 0);
    return a;
  },
  'CLOSE-WAIT': () => {
    const { a, b } = established();
    deliver(a, b.close(0), 0);
    return a;
  },
  CLOSING: () => {
    const { a, b } = established();
    a.close(0);
    deliver(a, b.close(0), 0);
    return a;
  },
  'LAST-ACK': () => {
    const { a, b } = established();
    deliver(a, b.close(0), 0);
    a.close(0);
    return a;
  },
  'TIME-WAIT': () => {
    const { a, b } = established();
    deliver(a, deliver(b, a.close(0), 0), 0);
    deliver(a, b.close(0), 0);
    return a;
  },
};

/** Segments biased toward the interesting numbers: in and around both windows. */
const hostileSegment = (c: TcpConnection): fc.Arbitrary<TcpSegment> => {
  const st = c.stats;
  const near = (x: number) =>
    fc.oneof(
      fc.integer({ min: -70_000, max: 70_000 }).map((d) => (x + d) >>> 0),
      fc.constantFrom(x, (x + 1) >>> 0, (x - 1) >>> 0),
      fc.integer({ min: 0, max: 0xffffffff }),
    );
  return fc.record({
    srcPort: fc.oneof(fc.constant(c.remote.port), fc.integer({ min: 0, max: 0xffff })),
    dstPort: fc.constant(c.local.port),
    seq: near(st.rcvNxt),
    ack: near(st.sndUna),
    flags: fc.integer({ min: 0, max: 0xfff }),
    window: fc.integer({ min: 0, max: 0xffff }),
    urgentPointer: fc.integer({ min: 0, max: 0xffff }),
    options: arbitraryTcpOptions,
    payload: fc.uint8Array({ maxLength: 300 }),
  });
};

describe('hostile segments', () => {
  for (const state of Object.keys(builders) as TcpState[]) {
    it(`never throw and keep memory bounded in ${state}`, () => {
      expect(builders[state]().state).toBe(state);
      // The builders are deterministic: segments are drawn around a reference copy's
      // numbers and fed to a fresh copy, so a shrunk counterexample replays exactly.
      const ref = builders[state]();
      fc.assert(
        fc.property(fc.array(hostileSegment(ref), { minLength: 1, maxLength: 60 }), (segs) => {
          const c = builders[state]();
          let now = 1;
          for (const seg of segs) {
            const before = c.state;
            const rcvNxt = c.stats.rcvNxt;
            c.receive(seg, now);
            now += 7;
            const t = c.nextTimeout();
            if (t !== undefined) expect(Number.isFinite(t)).toBe(true);
            if (before === 'ESTABLISHED' && c.state !== 'ESTABLISHED') {
              // RFC 5961 §3.2: only a RST at exactly RCV.NXT resets; a FIN needs the
              // right sequence number and an acceptable ACK (a peer's own close).
              if (c.state === 'CLOSED') {
                expect(seg.flags & RST).toBeTruthy();
                expect(seg.seq).toBe(rcvNxt);
              } else {
                expect(c.state).toBe('CLOSE-WAIT');
              }
            }
            const s = c.stats;
            expect(s.outOfOrderBytes).toBeLessThanOrEqual(256 * 1024);
            expect(s.sackRanges.length).toBeLessThanOrEqual(64);
            expect(s.readable).toBeLessThanOrEqual(256 * 1024 + (1 << 14));
          }
          // Timers keep working after the barrage.
          const t = c.nextTimeout();
          if (t !== undefined) c.onTimeout(t);
        }),
        { numRuns: 150 },
      );
    });
  }
});
