import { chooseEphemeralPort, Prng, seqAdd } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkQueue } from '../src/buffers.ts';
import { Cubic } from '../src/congestion/cubic.ts';
import { NewReno } from '../src/congestion/newreno.ts';
import { initialWindow } from '../src/congestion/types.ts';
import { TcpConnection } from '../src/connection.ts';
import { IsnGenerator } from '../src/isn.ts';
import { RttEstimator } from '../src/rto.ts';
import { OutOfOrderQueue, Scoreboard } from '../src/sack.ts';
import { A, B } from './scenario.ts';

describe('ISN (RFC 6528)', () => {
  const key = new Uint8Array(16).fill(7);
  it('is a keyed function of the 4-tuple plus a 4 µs clock', () => {
    const g = new IsnGenerator(key);
    const x = g.isn(A, B, 0);
    expect(g.isn(A, B, 0)).toBe(x);
    expect(new IsnGenerator(key).isn(A, B, 0)).toBe(x);
    // 1 ms later: 250 ticks of 4 µs.
    expect(g.isn(A, B, 1)).toBe((x + 250) >>> 0);
    expect(g.isn(A, { ...B, port: 81 }, 0)).not.toBe(x);
    expect(new IsnGenerator(new Uint8Array(16).fill(8)).isn(A, B, 0)).not.toBe(x);
  });
  it('is used by a connection that is given no ISS, at open time', () => {
    const g = new IsnGenerator(key);
    const c = new TcpConnection({ local: A, remote: B, isn: g });
    const syn = c.open(2000).segments[0]!;
    expect(syn.seq).toBe(g.isn(A, B, 2000));
  });
});

describe('RTO estimator (RFC 6298)', () => {
  it('follows §2.2/§2.3 and clamps to the minimum', () => {
    const r = new RttEstimator({ min: 1000 });
    expect(r.rto).toBe(1000);
    r.sample(100);
    expect([r.srtt, r.rttvar, r.rto]).toEqual([100, 50, 1000]);
    const fast = new RttEstimator({ min: 200 });
    fast.sample(100);
    expect(fast.rto).toBe(300);
    fast.backoff();
    fast.backoff();
    expect(fast.rto).toBe(1200);
    fast.sample(100); // a new sample collapses the back-off
    expect(fast.rto).toBe((100 * 7) / 8 + 100 / 8 + 4 * ((50 * 3) / 4 + 0));
  });
  it('caps the back-off at the maximum', () => {
    const r = new RttEstimator({ max: 60_000 });
    for (let i = 0; i < 10; i++) r.backoff();
    expect(r.rto).toBe(60_000);
  });
});

describe('congestion control', () => {
  it('NewReno: slow start, congestion avoidance, loss, RTO (RFC 5681)', () => {
    const c = new NewReno(1000);
    expect(c.cwnd).toBe(initialWindow(1000)); // min(4*MSS, max(2*MSS, 4380)) = 4000
    expect(c.cwnd).toBe(4000);
    c.onAck(1000, 0, 100);
    expect(c.cwnd).toBe(5000);
    c.onCongestionEvent(0, 10_000);
    expect([c.ssthresh, c.cwnd]).toEqual([5000, 5000]);
    // Congestion avoidance: one MSS per cwnd of bytes acked.
    for (let i = 0; i < 5; i++) c.onAck(1000, 0, 100);
    expect(c.cwnd).toBe(6000);
    c.onRto(0, 6000);
    expect([c.ssthresh, c.cwnd]).toEqual([3000, 1000]);
  });

  it('CUBIC: multiplicative decrease by 0.7 and a concave-then-convex regrowth (RFC 9438)', () => {
    const c = new Cubic(1000);
    c.ssthresh = 0; // congestion avoidance from the start
    c.cwnd = 100_000;
    c.onCongestionEvent(0, 100_000);
    expect(c.ssthresh).toBe(70_000);
    expect(c.cwnd).toBe(70_000);
    // K = cbrt(W_max (1 - beta) / C) = cbrt(100 * 0.3 / 0.4) = cbrt(75) ≈ 4.217 s.
    const samples: number[] = [];
    let t = 0;
    for (let step = 0; step < 100; step++) {
      t += 100;
      // one RTT (100 ms) worth of ACKs
      const perRtt = Math.floor(c.cwnd / 1000);
      for (let i = 0; i < perRtt; i++) c.onAck(1000, t, 100);
      samples.push(c.cwnd);
    }
    const at = (sec: number) => samples[Math.round(sec * 10) - 1]!;
    // Near K the window is close to W_max = 100 segments, and it grows faster beyond.
    expect(at(4.2)).toBeGreaterThan(95_000);
    expect(at(4.2)).toBeLessThan(105_000);
    expect(at(2) - at(1)).toBeGreaterThan(at(4) - at(3)); // concave below K
    expect(at(8) - at(7)).toBeGreaterThan(at(6) - at(5)); // convex above K
  });
});

describe('ChunkQueue', () => {
  it('slices across chunks and drops from the front', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 700 }), fc.boolean()), { maxLength: 20 }),
        fc.array(fc.tuple(fc.nat(2000), fc.nat(600), fc.nat(400)), { maxLength: 20 }),
        (chunks, ops) => {
          const q = new ChunkQueue();
          let model: number[] = [];
          for (const [c, coalesce] of chunks) {
            q.push(c, coalesce);
            model.push(...c);
          }
          for (const [off, len, drop] of ops) {
            expect(q.length).toBe(model.length);
            if (off + len <= model.length)
              expect([...q.slice(off, len)]).toEqual(model.slice(off, off + len));
            q.drop(drop);
            model = model.slice(drop);
            // Pushing after a drop must extend the right bytes.
            const extra = new Uint8Array([off & 0xff, len & 0xff]);
            q.push(extra, true);
            model.push(...extra);
          }
          expect([...q.take(Number.POSITIVE_INFINITY)]).toEqual(model);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('OutOfOrderQueue', () => {
  it('agrees with a byte-map model, across the 2^32 wrap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 60 })), {
          maxLength: 30,
        }),
        (base, pieces) => {
          const q = new OutOfOrderQueue(100_000);
          const model = new Map<number, number>();
          for (const [off, len] of pieces) {
            const data = new Uint8Array(len).map((_, i) => (off + i) & 0xff);
            q.insert(seqAdd(base, off), data, base);
            for (let i = 0; i < len; i++) model.set(off + i, (off + i) & 0xff);
          }
          expect(q.bytes).toBe(model.size);
          // SACK blocks are exactly the contiguous runs of the model.
          const runs: string[] = [];
          const keys = [...model.keys()].sort((x, y) => x - y);
          for (let i = 0; i < keys.length; ) {
            let j = i;
            while (j + 1 < keys.length && keys[j + 1] === keys[j]! + 1) j++;
            runs.push(`${seqAdd(base, keys[i]!)}-${seqAdd(base, keys[j]! + 1)}`);
            i = j + 1;
          }
          const blocks = q.sackBlocks(1000).map((b) => `${b.left}-${b.right}`);
          expect(blocks.sort()).toEqual(runs.sort());
          // Filling [0, first) releases the first run, byte-exact.
          if (keys.length) {
            const first = keys[0]!;
            const runEnd = runs.length ? keys.findIndex((k, i) => i > 0 && k !== keys[i - 1]! + 1) : -1;
            const n = runEnd < 0 ? keys.length : runEnd;
            const got = q.takeInOrder(seqAdd(base, first));
            const flat = got ? got.flatMap((c) => [...c]) : [];
            expect(flat).toEqual(keys.slice(0, n).map((k) => k & 0xff));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('bounds the number of separate runs, and coalesces tiny segments into slabs', () => {
    const q = new OutOfOrderQueue(1 << 20, 8);
    let refused = 0;
    for (let k = 0; k < 20; k++) if (!q.insert(10 + 2 * k, new Uint8Array([k]), 0)) refused++;
    expect(q.blockCount).toBe(8);
    expect(refused).toBe(12);
    expect(q.bytes).toBe(8);
    // 1000 adjacent one-byte segments make one run of a few slabs, not 1000 objects.
    const r = new OutOfOrderQueue(1 << 20);
    for (let k = 0; k < 1000; k++) r.insert(100 + k, new Uint8Array([k & 0xff]), 0);
    const run = r.takeInOrder(100)!;
    expect(run.length).toBe(1);
    expect(run[0]!.length).toBe(1000);
    expect(run[0]![999]).toBe(999 & 0xff);
  });

  it('refuses what would exceed the cap', () => {
    const q = new OutOfOrderQueue(100);
    expect(q.insert(10, new Uint8Array(60), 0)).toBe(true);
    expect(q.insert(100, new Uint8Array(60), 0)).toBe(false);
    expect(q.insert(40, new Uint8Array(60), 0)).toBe(true); // 30 new bytes only
    expect(q.bytes).toBe(90);
  });
});

describe('Scoreboard (RFC 6675)', () => {
  it('merges blocks, ignores those outside (SND.UNA, SND.MAX], and finds holes and losses', () => {
    const s = new Scoreboard();
    expect(s.update([{ left: 200, right: 300 }], 100, 1000)).toBe(true);
    expect(s.update([{ left: 200, right: 300 }], 100, 1000)).toBe(false);
    expect(s.update([{ left: 50, right: 90 }], 100, 1000)).toBe(false); // below SND.UNA (D-SACK)
    expect(s.update([{ left: 900, right: 1100 }], 100, 1000)).toBe(false); // beyond SND.MAX
    s.update([{ left: 400, right: 500 }], 100, 1000);
    s.update([{ left: 300, right: 350 }], 100, 1000);
    expect(s.ranges()).toEqual([
      { left: 200, right: 350 },
      { left: 400, right: 500 },
    ]);
    expect(s.sacked).toBe(250);
    expect(s.nextHole(100, 500)).toEqual({ start: 100, end: 200 });
    expect(s.nextHole(200, 500)).toEqual({ start: 350, end: 400 });
    // IsLost with DupThresh 3 and SMSS 50 needs more than 100 bytes SACKed above: the
    // hole 350-400 has exactly 100 above it (not lost), the hole below 200 has 250.
    expect(s.lostBoundary(3, 50)).toBe(200);
    // With SMSS 40, 100 > 80 bytes above the hole 350-400 already make it lost.
    expect(s.lostBoundary(3, 40)).toBe(400);
    s.advance(380);
    expect(s.ranges()).toEqual([{ left: 400, right: 500 }]);
    expect(s.sacked).toBe(100);
  });
});

describe('ephemeral ports (RFC 6056 §3.3.1, Algorithm 1)', () => {
  it('starts at a seeded random port, walks up and wraps, and says when all are taken', () => {
    const pick = (seed: number, free: (p: number) => boolean) =>
      chooseEphemeralPort(new Prng(seed), 49152, 65535, free);
    const first = pick(7, () => true)!;
    expect(first).toBe(pick(7, () => true)); // the same seed, the same port
    expect(first).toBeGreaterThanOrEqual(49152);
    expect(first).toBeLessThanOrEqual(65535);
    // A start at the top of the range: the walk wraps to the bottom, skipping what is taken.
    const top = { int: (_lo: number, hi: number) => hi } as unknown as Prng;
    const taken = new Set([65535, 49152, 49153]);
    expect(chooseEphemeralPort(top, 49152, 65535, (p) => !taken.has(p))).toBe(49154);
    expect(pick(1, () => false)).toBeUndefined();
  });
});
