/**
 * The model-based controller (congestion/bbr.ts, BBR v1 with pacing) against
 * NewReno on a simulated path: a 20 Mbit/s bottleneck with 10 ms each way, with and without
 * 2% random loss. Loss is not congestion to BBR, so it keeps the bottleneck busy where
 * NewReno's halving per loss (RFC 5681) starves it; on a clean path both fill it.
 */
import type { Impairments } from '@stepwire/link';
import { describe, expect, it } from 'vitest';
import { Bbr } from '../src/congestion/bbr.ts';
import { bulkTransfer } from './support/bulk-path.ts';
import { senderView } from './support/sender-view.ts';

const RATE = 20_000_000;

function transfer(congestion: 'bbr' | 'newreno', path: Impairments, size: number, seed = 5) {
  return bulkTransfer({
    congestion,
    size,
    forward: { rateBps: RATE, delay: 10, queueLimit: 200, ...path, seed },
    reverse: { delay: 10, seed: seed + 1 },
    maxSteps: 500_000,
  });
}

/**
 * A hand-driven sender: 1000-byte segments through a 1000 B/ms bottleneck with a 10 ms
 * round trip, each ACK fed to the controller as the connection would; with `ackBatchMs` the
 * ACKs reach it in bursts, at the next multiple of that many ms (a driver that hands ACKs over
 * in batches, as the TUN reader thread does).
 */
function driveModel(ackBatchMs = 0) {
  const mss = 1000;
  const c = new Bbr(mss);
  const view = senderView(mss);
  const acks: number[] = []; // ACK arrival times, one per segment, in order
  let lastArrival = 0;
  for (let t = 0; t < 3000; t += 0.25) {
    view.now = t;
    while (acks.length && (acks[0] ?? 0) <= t) {
      acks.shift();
      view.snd.una += mss;
      c.onDelivered(mss, t, undefined, undefined);
    }
    c.pacer.begin(view);
    while (c.pacer.allows(view, false) && view.snd.nxt - view.snd.una + mss <= c.cwnd) {
      // Serialised at 1 ms per segment, then 10 ms there and back.
      lastArrival = Math.max(t, lastArrival) + 1;
      const arrival = lastArrival + 10;
      acks.push(ackBatchMs > 0 ? Math.ceil(arrival / ackBatchMs) * ackBatchMs : arrival);
      view.snd.nxt += mss;
      view.snd.max = view.snd.nxt;
      view.counters.bytesOut += mss;
    }
    c.pacer.end(view);
  }
  return { c, view, mss };
}

describe('BBR-style congestion control', () => {
  it('with 2% random loss it keeps the bottleneck far busier than NewReno', async () => {
    const size = 2_000_000;
    const lossy = { loss: 0.02 };
    const bbr = await transfer('bbr', lossy, size);
    const reno = await transfer('newreno', lossy, size);
    expect(bbr.got).toBe(size);
    expect(reno.got).toBe(size);
    console.log(
      `bbr ${(bbr.bps / 1e6).toFixed(1)} Mbit/s vs newreno ${(reno.bps / 1e6).toFixed(1)} Mbit/s on a 20 Mbit/s, 20 ms RTT path with 2% loss`,
    );
    expect(bbr.bps).toBeGreaterThan(0.6 * RATE);
    expect(bbr.bps).toBeGreaterThan(2 * reno.bps);
  });

  it('on a clean path it fills the bottleneck without overrunning its queue', async () => {
    const size = 3_000_000;
    const r = await transfer('bbr', {}, size);
    expect(r.got).toBe(size);
    expect(r.bps).toBeGreaterThan(0.85 * RATE);
    // Startup overshoots once (as BBR's does); the model then holds about two BDPs
    // (2 x 20 Mbit/s x 20 ms = 100 kB), well inside the 200-packet queue.
    expect(r.conn.stats.timeouts).toBe(0);
    expect(r.conn.stats.cwnd).toBeLessThan(250_000);
  });

  it('the model: cwnd is 2 x bandwidth x min RTT plus three quanta in ProbeBW; a loss keeps the window', () => {
    const { c, view, mss } = driveModel();
    expect(c.state).toBe('ProbeBW');
    expect(c.bandwidth).toBeCloseTo(1000, -1);
    expect(c.rtProp).toBeGreaterThanOrEqual(11);
    expect(c.rtProp).toBeLessThan(13);
    // 2 x 1000 B/ms x RTprop + 3 x send quantum (2 segments below 24 Mbit/s, §4.2.2), plus
    // ACK aggregation (Linux's extra_acked): one ACK's segment, the least any ACK exceeds
    // the model's prediction for no time elapsed.
    expect(c.cwnd).toBe(Math.floor(2 * c.bandwidth * c.rtProp) + 3 * 2 * mss + mss);
    const before = c.cwnd;
    c.onCongestionEvent(view.now, before);
    expect(c.ssthresh).toBeGreaterThanOrEqual(before);
    c.onRecoveryExit(view.now, before);
    expect(c.cwnd).toBe(before);
    c.onRto(view.now, before);
    expect(c.cwnd).toBe(mss);
  });

  it('ACKs that arrive in bursts add the burst to cwnd (ACK aggregation, as Linux tcp_bbr.c)', () => {
    const smooth = driveModel().c;
    const bursty = driveModel(8).c;
    expect(bursty.state).toBe('ProbeBW');
    expect(bursty.bandwidth).toBeCloseTo(1000, -1);
    const model = (c: Bbr) => Math.floor(2 * c.bandwidth * c.rtProp) + 3 * 2 * 1000;
    expect(smooth.cwnd - model(smooth)).toBe(1000);
    // Eight segments' ACKs at once: about 8 kB beyond the model's window, so the sender is
    // not left idle between bursts.
    expect(bursty.cwnd - model(bursty)).toBeGreaterThanOrEqual(7000);
    expect(bursty.cwnd - model(bursty)).toBeLessThanOrEqual(16_000);
  });
});
