import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { CUBIC_ALPHA, CUBIC_BETA, CUBIC_C, CubicWindow, cubicK, wCubic } from '../src/index.ts';

const MSS = 1000;

/** Acknowledge `windows` round trips of `rtt` ms, one segment per ACK spread over each RTT. */
function run(w: CubicWindow, cwnd: number, start: number, rtt: number, until: number): number {
  let now = start;
  while (now < until) {
    const segments = Math.max(1, Math.floor(cwnd / MSS));
    for (let i = 0; i < segments; i++) {
      cwnd = w.congestionAvoidance(cwnd, MSS, now + (i * rtt) / segments, rtt);
    }
    now += rtt;
  }
  return cwnd;
}

describe('CUBIC constants and formulas (RFC 9438)', () => {
  it('α_cubic = 3(1 − β)/(1 + β) = 0.9/1.7 with β = 0.7 (§4.3, §4.6) and C = 0.4 (§5)', () => {
    expect(CUBIC_BETA).toBe(0.7);
    expect(CUBIC_C).toBe(0.4);
    expect(CUBIC_ALPHA).toBeCloseTo(0.9 / 1.7, 12);
    expect(CUBIC_ALPHA).toBeCloseTo(0.529411764705882, 12);
  });

  it('K = ∛((W_max − cwnd_epoch)/C) (§4.2 eq. 2): W_max 100, cwnd_epoch 70 gives ∛75 ≈ 4.2172 s', () => {
    // Computed from eq. 2 by hand: (100 − 70) / 0.4 = 75, ∛75 = 4.21716...
    expect(cubicK(100, 70)).toBeCloseTo(4.2171633, 6);
    // With no reduction (cwnd_epoch = W_max) the curve starts at its plateau: K = 0.
    expect(cubicK(100, 100)).toBe(0);
  });

  it('W_cubic (§4.2 eq. 1) passes through cwnd_epoch at t = 0 and W_max at t = K, symmetric around K', () => {
    const k = cubicK(100, 70);
    expect(wCubic(0, k, 100)).toBeCloseTo(70, 9);
    expect(wCubic(k, k, 100)).toBeCloseTo(100, 12);
    // Concave before K, convex after: W_max − W(K − d) = W(K + d) − W_max = C d³.
    expect(100 - wCubic(k - 2, k, 100)).toBeCloseTo(0.4 * 8, 9);
    expect(wCubic(k + 2, k, 100) - 100).toBeCloseTo(0.4 * 8, 9);
    // t = 10 s: 0.4 (10 − 4.21716)³ + 100 = 0.4 × 193.385 + 100 ≈ 177.354 segments.
    expect(wCubic(10, k, 100)).toBeCloseTo(177.354, 2);
  });
});

describe('CubicWindow', () => {
  it('a congestion event sets ssthresh to β_cubic × cwnd and W_max to cwnd (§4.6)', () => {
    const w = new CubicWindow(MSS);
    expect(w.onCongestionEvent(100 * MSS, 2 * MSS)).toBe(70 * MSS);
    expect(w.wMax).toBe(100);
    expect(w.wLastMax).toBe(100);
    expect(w.epochStart).toBeUndefined();
  });

  it('never reduces below the minimum window the protocol gives', () => {
    const w = new CubicWindow(MSS);
    expect(w.onCongestionEvent(2 * MSS, 2 * MSS)).toBe(2 * MSS);
    expect(w.onCongestionEvent(2 * MSS, 2400)).toBe(2400);
  });

  it('fast convergence lowers W_max to cwnd (1 + β)/2 when the window shrank since the last event (§4.7)', () => {
    const w = new CubicWindow(MSS);
    w.onCongestionEvent(100 * MSS, 2 * MSS);
    // A second event at 80 segments, below W_last_max = 100: W_max = 80 × 1.7 / 2 = 68.
    expect(w.onCongestionEvent(80 * MSS, 2 * MSS)).toBe(56 * MSS);
    expect(w.wMax).toBeCloseTo(68, 12);
    expect(w.wLastMax).toBe(80);
    // A third at 90, above W_last_max = 80: no fast convergence, W_max = 90.
    w.onCongestionEvent(90 * MSS, 2 * MSS);
    expect(w.wMax).toBe(90);
  });

  it('the first ACK of an epoch records t_epoch, cwnd_epoch and K (§4.2)', () => {
    const w = new CubicWindow(MSS);
    const ssthresh = w.onCongestionEvent(100 * MSS, 2 * MSS);
    w.congestionAvoidance(ssthresh, MSS, 5000, 100);
    expect(w.epochStart).toBe(5000);
    expect(w.cwndEpoch).toBe(70);
    expect(w.k).toBeCloseTo(4.2171633, 6);
  });

  it('after a reduction from 100 segments, the window is back near W_max about K seconds later (§4.4)', () => {
    const w = new CubicWindow(MSS);
    const cwnd = w.onCongestionEvent(100 * MSS, 2 * MSS);
    const rtt = 100;
    // Concave region: halfway to K the window is between cwnd_epoch and W_max and follows
    // W_cubic(t + RTT) to within a segment or two.
    const half = run(w, cwnd, 0, rtt, 2000);
    expect(half / MSS).toBeGreaterThan(70);
    expect(half / MSS).toBeLessThan(100);
    expect(Math.abs(half / MSS - wCubic(2.0, w.k, 100))).toBeLessThan(2);
    // At t = K (4.22 s) the plateau: within a couple of segments of W_max.
    const atK = run(w, half, 2000, rtt, 4200);
    expect(Math.abs(atK / MSS - 100)).toBeLessThan(2);
    // Convex region (§4.5): at t = 8 s, W_cubic(8) = 0.4 (8 − 4.217)³ + 100 ≈ 121.7 segments.
    const convex = run(w, atK, 4200, rtt, 8000);
    expect(Math.abs(convex / MSS - wCubic(8, w.k, 100))).toBeLessThan(3);
  });

  it('in the Reno-friendly region the window follows W_est, growing α_cubic segments per window (§4.3)', () => {
    // A small W_max and a long RTT: W_cubic grows more slowly than Reno would.
    const w = new CubicWindow(MSS);
    let cwnd = w.onCongestionEvent(10 * MSS, 2 * MSS); // 7 segments, K = ∛7.5 ≈ 1.96 s
    cwnd = w.congestionAvoidance(cwnd, MSS, 0, 2000);
    const before = w.wEst;
    // One window's worth of ACKs at t = 0 (W_cubic(0) = 7 < W_est).
    for (let i = 0; i < 7; i++) cwnd = w.congestionAvoidance(cwnd, MSS, 0, 2000);
    expect(w.wEst - before).toBeGreaterThan(0.9 * CUBIC_ALPHA * (7 / 8));
    expect(w.wEst - before).toBeLessThan(CUBIC_ALPHA);
    expect(cwnd).toBeCloseTo(w.wEst * MSS, 9);
  });

  it('the target is clamped to 1.5 cwnd: one ACK of `acked` bytes grows the window by at most acked/2 (§4.4)', () => {
    const w = new CubicWindow(MSS);
    w.onCongestionEvent(100 * MSS, 2 * MSS);
    // Long after K the curve is far above the window.
    w.congestionAvoidance(10 * MSS, MSS, 0, 100);
    const next = w.congestionAvoidance(10 * MSS, MSS, 60_000, 100);
    expect(next).toBeCloseTo(10 * MSS + MSS / 2, 9);
  });

  it('restartEpoch starts a new epoch from the current window against the same W_max (§5.8)', () => {
    const w = new CubicWindow(MSS);
    const cwnd = w.onCongestionEvent(100 * MSS, 2 * MSS);
    w.congestionAvoidance(cwnd, MSS, 0, 100);
    w.restartEpoch();
    w.congestionAvoidance(90 * MSS, MSS, 30_000, 100);
    expect(w.epochStart).toBe(30_000);
    expect(w.cwndEpoch).toBe(90);
    expect(w.k).toBeCloseTo(cubicK(100, 90), 12);
  });

  test.prop([
    fc.integer({ min: 536, max: 9000 }),
    fc.array(
      fc.oneof(
        fc.record({
          kind: fc.constant('ack' as const),
          acked: fc.integer({ min: 1, max: 65535 }),
          dt: fc.nat(2000),
        }),
        fc.record({ kind: fc.constant('loss' as const) }),
        fc.record({ kind: fc.constant('restart' as const) }),
      ),
      { maxLength: 200 },
    ),
    fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined }),
  ])(
    'the window never shrinks on an ACK, stays finite, and a reduction keeps the floor',
    (mss, events, srtt) => {
      const w = new CubicWindow(mss);
      let cwnd = 10 * mss;
      let now = 0;
      for (const e of events) {
        if (e.kind === 'ack') {
          now += e.dt;
          const next = w.congestionAvoidance(cwnd, e.acked, now, srtt);
          expect(Number.isFinite(next)).toBe(true);
          expect(next).toBeGreaterThanOrEqual(cwnd);
          cwnd = next;
        } else if (e.kind === 'loss') {
          const reduced = w.onCongestionEvent(cwnd, 2 * mss);
          expect(reduced).toBeGreaterThanOrEqual(2 * mss);
          expect(reduced).toBeLessThanOrEqual(Math.max(cwnd, 2 * mss));
          expect(Number.isInteger(reduced)).toBe(true);
          cwnd = reduced;
        } else w.restartEpoch();
      }
    },
  );
});
