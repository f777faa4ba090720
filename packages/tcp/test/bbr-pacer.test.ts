/**
 * The pacer (congestion/pacer.ts) and the delivery-rate estimator (congestion/delivery-rate.ts)
 * on their own, against a hand-driven sender in virtual time.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { DeliveryRateEstimator } from '../src/congestion/delivery-rate.ts';
import { Pacer } from '../src/congestion/pacer.ts';
import { type SenderView, senderView } from './support/sender-view.ts';

const MSS = 1000;

const view = () => senderView(MSS);
type View = SenderView;

/** One transmit loop at v.now: as many segments as the pacer allows (at most `limit`); returns how many went. */
function transmit(p: Pacer, v: View, limit = 1000, force = false): number {
  p.begin(v);
  let n = 0;
  let forced = force;
  while (n < limit && p.allows(v, forced)) {
    v.counters.bytesOut += MSS;
    v.snd.nxt += MSS;
    v.snd.max = v.snd.nxt;
    n++;
    forced = false;
  }
  p.end(v);
  return n;
}

describe('Pacer', () => {
  it('sends one quantum at once, then one segment per MSS/rate, waking at its deadline', () => {
    const p = new Pacer();
    p.rate = 100; // bytes per ms: one 1000-byte segment every 10 ms
    p.quantum = 2 * MSS;
    const v = view();
    v.now = 1000;
    // From idle: the bucket holds one quantum, so two segments and the third (charged against it).
    expect(transmit(p, v)).toBe(3);
    expect(p.deadline).toBe(1010);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      v.now = p.deadline ?? Number.NaN;
      const n = transmit(p, v);
      for (let k = 0; k < n; k++) times.push(v.now);
    }
    expect(times.length).toBe(20);
    for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBe(10);
    expect(p.counters.heldBack).toBe(21);
  });

  it('a wake-up that comes late sends what was due since its deadline, at most MAX_CATCH_UP (5 ms) of it', () => {
    const p = new Pacer();
    p.rate = 1000; // one segment per ms
    p.quantum = 2 * MSS;
    const v = view();
    transmit(p, v);
    const due = p.deadline ?? Number.NaN;
    // 3 ms late: the three segments due meanwhile go now, and one more starts the next slot.
    v.now = due + 3;
    expect(transmit(p, v)).toBe(4);
    // 50 ms late (a stalled event loop): no more than 5 ms of catch-up.
    v.now = (p.deadline ?? Number.NaN) + 50;
    expect(transmit(p, v)).toBe(6);
  });

  it('an RTO or persist override is never held back, but is charged', () => {
    const p = new Pacer();
    p.rate = 100;
    p.quantum = MSS;
    const v = view();
    transmit(p, v);
    expect(transmit(p, v, 1)).toBe(0);
    const due = p.deadline ?? Number.NaN;
    expect(transmit(p, v, 1, true)).toBe(1);
    // The forced segment pushed the next send one segment's time (10 ms) later.
    expect(transmit(p, v, 1)).toBe(0);
    expect(p.deadline).toBe(due + 10);
  });

  it('a rate of 0 paces nothing and arms no deadline', () => {
    const p = new Pacer();
    const v = view();
    expect(transmit(p, v, 50)).toBe(50);
    expect(p.deadline).toBeUndefined();
  });

  test.prop([
    fc.array(
      fc.record({ gap: fc.double({ min: 0, max: 30, noNaN: true }), limit: fc.integer({ min: 0, max: 40 }) }),
      { minLength: 1, maxLength: 200 },
    ),
    fc.integer({ min: 10, max: 5000 }),
    fc.integer({ min: 1, max: 8 }),
  ])(
    'never sends more than rate x time + one quantum + one segment in any interval, on time or not',
    (steps, rate, quanta) => {
      const p = new Pacer();
      p.rate = rate / 10; // bytes per ms
      p.quantum = quanta * MSS;
      const v = view();
      const sent: { t: number; n: number }[] = [];
      for (const s of steps) {
        // Either the pacer's own wake-up (on time), or whenever an ACK happens to arrive.
        v.now = s.gap === 0 && p.deadline !== undefined ? p.deadline : v.now + s.gap;
        const n = transmit(p, v, s.limit);
        if (n > 0) sent.push({ t: v.now, n });
      }
      // Every window [t_i, t_j]: what left must fit the rate, the bucket and the one segment
      // that may overdraw it (late wake-ups catch up only on what was due, so never beyond).
      for (let i = 0; i < sent.length; i++) {
        let bytes = 0;
        for (let j = i; j < sent.length; j++) {
          bytes += (sent[j]?.n ?? 0) * MSS;
          const span = (sent[j]?.t ?? 0) - (sent[i]?.t ?? 0);
          expect(bytes).toBeLessThanOrEqual(p.rate * span + p.quantum + MSS + p.rate * 5 + 1e-6);
        }
      }
    },
  );
});

describe('DeliveryRateEstimator (draft-cheng-iccrg-delivery-rate-estimation)', () => {
  it('measures a steady flow at its rate, and a batch of ACKs by the send interval', () => {
    const r = new DeliveryRateEstimator();
    // One segment a ms (1000 B/ms), each ACKed 20 ms after it left; from 250 ms to 260 ms the
    // ACKs are held and then come as one (ACK compression).
    const rates: { t: number; rate: number | undefined }[] = [];
    let acked = 0;
    let held = 0;
    for (let t = 0; t < 300; t++) {
      if (t >= 20) {
        held += MSS;
        if (t < 250 || t >= 260) {
          acked += held;
          const s = r.onAck(held, t, acked, acked, undefined);
          rates.push({ t, rate: s?.deliveryRate });
          if (t > 25) expect(s?.rtt).toBe(20);
          held = 0;
        }
      }
      r.onSend(t * MSS, t, t * MSS - acked);
    }
    const steady = rates.filter((x) => x.t > 60 && x.t < 250);
    for (const x of steady) expect(x.rate).toBeCloseTo(1000, 0);
    // The batch: ten segments in one ACK do not read as ten times the rate (the send
    // interval bounds it), and the flow goes on at its rate after.
    const batch = rates.find((x) => x.t === 260);
    expect(batch?.rate ?? 0).toBeLessThanOrEqual(1000 * 1.1);
    for (const x of rates.filter((y) => y.t > 290)) expect(x.rate).toBeCloseTo(1000, 0);
  });

  it('takes no RTT from a range that was retransmitted (Karn), and marks app-limited samples', () => {
    const r = new DeliveryRateEstimator();
    r.onSend(0, 0, 0);
    r.markAppLimited(MSS);
    r.onSend(MSS, 1, MSS);
    const s1 = r.onAck(MSS, 30, MSS, MSS, 2 * MSS);
    expect(s1?.rtt).toBeUndefined();
    expect(s1?.isAppLimited).toBe(false);
    const s2 = r.onAck(MSS, 31, 2 * MSS, 2 * MSS, undefined);
    expect(s2?.rtt).toBe(30);
    expect(s2?.isAppLimited).toBe(true);
  });

  it('keeps a bounded log however long nothing is acknowledged', () => {
    const r = new DeliveryRateEstimator();
    for (let i = 0; i < 10_000; i++) r.onSend(i * MSS, i, i * MSS);
    expect((r as unknown as { start: number[] }).start.length).toBeLessThanOrEqual(4096);
  });
});
