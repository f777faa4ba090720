/**
 * BBR's state machine and pacer (congestion/bbr.ts, congestion/pacer.ts, after
 * draft-cardwell-iccrg-bbr-congestion-control-00) on the simulated network, in virtual
 * time: Startup ends after three rounds without 25% more bandwidth, Drain hands over to
 * ProbeBW's eight-phase gain cycle, ProbeRTT holds four segments for 200 ms and a round
 * after ten seconds without a new minimum RTT, and the pacer spaces segments at the
 * pacing rate.
 */
import type { Impairments, Link, PacketInfo } from '@stepwire/link';
import type { Clock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { BBR_GAIN_CYCLE, BBR_HIGH_GAIN, BBR_TRANSITIONS, Bbr, type BbrState } from '../src/congestion/bbr.ts';
import { bulkTransfer } from './support/bulk-path.ts';
import { ThroughLink } from './support/through-link.ts';

/** A link that notes when each packet leaves, and can add delay to everything after a given time. */
class ProbeLink extends ThroughLink {
  readonly sent: { t: number; bytes: number }[] = [];
  constructor(
    inner: Link,
    private readonly clock: Clock,
    private readonly extraDelay?: { from: number; ms: number },
  ) {
    super(inner);
  }
  override send(packet: Uint8Array, info?: PacketInfo): void {
    const now = this.clock.now();
    this.sent.push({ t: now, bytes: packet.length });
    const x = this.extraDelay;
    if (x && now >= x.from) this.clock.setTimer(now + x.ms, () => this.inner.send(packet, info));
    else this.inner.send(packet, info);
  }
}

/** One observation per ACK: what BBR's model and controls were after it. */
interface Obs {
  t: number;
  state: BbrState;
  round: number;
  bw: number;
  filled: boolean;
  cwnd: number;
  rate: number;
  gain: number;
  cycle: number;
}

class ObservedBbr extends Bbr {
  readonly obs: Obs[] = [];
  override onDelivered(bytes: number, now: number, rtt: number | undefined, srtt: number | undefined): void {
    super.onDelivered(bytes, now, rtt, srtt);
    this.obs.push({
      t: now,
      state: this.state,
      round: this.roundCount,
      bw: this.bandwidth,
      filled: this.filledPipe,
      cwnd: this.cwnd,
      rate: this.pacingRate,
      gain: this.pacingGain,
      cycle: this.cycleIndex,
    });
  }
}

interface Run {
  bbr: ObservedBbr;
  got: number;
  /** Data packets A put on its link (before the bottleneck). */
  sent: { t: number; bytes: number }[];
  end: number;
}

/**
 * A sends to B through a `rateBps` bottleneck with `delay` ms each way, for `until` ms of
 * virtual time or `size` bytes; `ackDelayStep` adds delay to B's ACKs from a given time.
 */
async function run(opts: {
  rateBps: number;
  delay: number;
  size: number;
  until: number;
  path?: Impairments;
  ackDelayStep?: { from: number; ms: number };
}): Promise<Run> {
  let tap: ProbeLink | undefined;
  let bbr: ObservedBbr | undefined;
  const r = await bulkTransfer({
    congestion: (mss) => {
      bbr = new ObservedBbr(mss);
      return bbr;
    },
    size: opts.size,
    forward: { rateBps: opts.rateBps, delay: opts.delay, queueLimit: 400, ...opts.path, seed: 7 },
    reverse: { delay: opts.delay, seed: 8 },
    wrap: {
      a: (link, clock) => (tap = new ProbeLink(link, clock)),
      b: (link, clock) => new ProbeLink(link, clock, opts.ackDelayStep),
    },
    isnSecrets: [2, 1],
    receiveBuffer: 8 << 20,
    maxSteps: 2_000_000,
    until: opts.until,
  });
  if (!bbr || !tap) throw new Error('no connection was made');
  return { bbr, got: r.got, sent: tap.sent.filter((p) => p.bytes > 100), end: r.end };
}

const MBIT = 1e6;
/** Bytes per ms at `bps`. */
const perMs = (bps: number) => bps / 8000;

describe('BBR state machine (draft-cardwell-iccrg-bbr-congestion-control-00 §4.3)', () => {
  it('every transition taken is a row of the table', () => {
    // Startup -> Drain -> ProbeBW <-> ProbeRTT, and ProbeRTT -> Startup before the pipe is full.
    const edges = new Set(BBR_TRANSITIONS.map((r) => `${r.from}>${r.to}`));
    expect(edges).toEqual(
      new Set([
        'Startup>Drain',
        'Drain>ProbeBW',
        'Startup>ProbeRTT',
        'Drain>ProbeRTT',
        'ProbeBW>ProbeRTT',
        'ProbeRTT>ProbeBW',
        'ProbeRTT>Startup',
      ]),
    );
    for (const r of BBR_TRANSITIONS)
      expect(r.rfc).toMatch(/^draft-cardwell-iccrg-bbr-congestion-control-00 §4\.3/);
  });

  it('Startup ends after three rounds without 25% more bandwidth; Drain then ProbeBW', async () => {
    const rate = 20 * MBIT;
    const r = await run({ rateBps: rate, delay: 10, size: 3_000_000, until: 5_000 });
    const { bbr } = r;
    expect(bbr.history.slice(0, 2).map((h) => `${h.from}>${h.to}`)).toEqual([
      'Startup>Drain',
      'Drain>ProbeBW',
    ]);
    // The bandwidth at each round start in Startup, and the rounds since it last grew 25%.
    const exitAt = bbr.history[0]?.t ?? Number.NaN;
    let fullBw = 0;
    let flat = 0;
    let filledRound: number | undefined;
    let lastRound = -1;
    for (const o of bbr.obs) {
      if (o.t > exitAt) break;
      if (o.round === lastRound) continue;
      lastRound = o.round;
      // The sample that starts this round was taken with the estimate before this ACK's: the
      // observation lags by one ACK, so compare with the estimate once the round has begun.
      if (o.bw >= fullBw * 1.25) {
        fullBw = o.bw;
        flat = 0;
      } else if (++flat === 3) {
        filledRound = o.round;
        break;
      }
    }
    const firstFilled = bbr.obs.find((o) => o.filled);
    expect(filledRound).toBeDefined();
    expect(firstFilled?.round).toBe(filledRound);
    // By then the estimate is the bottleneck's rate (20 Mbit/s), within 10%.
    expect(firstFilled?.bw ?? 0).toBeGreaterThan(0.9 * perMs(rate));
    expect(firstFilled?.bw ?? 0).toBeLessThan(1.1 * perMs(rate));
    // Startup paced at 2/ln2 of the estimate; Drain at its inverse; ProbeBW cycles the eight gains.
    expect(bbr.obs.some((o) => o.state === 'Startup' && Math.abs(o.gain - BBR_HIGH_GAIN) < 1e-9)).toBe(true);
    expect(bbr.obs.some((o) => o.state === 'Drain' && Math.abs(o.gain - 1 / BBR_HIGH_GAIN) < 1e-9)).toBe(
      true,
    );
    const cycles = new Set(bbr.obs.filter((o) => o.state === 'ProbeBW').map((o) => o.cycle));
    expect([...cycles].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const o of bbr.obs) if (o.state === 'ProbeBW') expect(o.gain).toBe(BBR_GAIN_CYCLE[o.cycle]);
    // In ProbeBW cwnd is two BDPs plus three quanta: 2 x 2500 B/ms x ~20 ms + 3 x 2 MSS, well
    // under the bottleneck's 400-packet queue; nothing timed out.
    const steady = bbr.obs.filter((o) => o.state === 'ProbeBW');
    expect(Math.max(...steady.map((o) => o.cwnd))).toBeLessThan(140_000);
    expect(r.got).toBe(3_000_000);
  });

  it('ProbeRTT: ten seconds without a new minimum RTT bring cwnd to four segments for 200 ms, then back', async () => {
    // The ACK path grows 6 ms longer after 2 s: the 20 ms minimum RTT is never seen again, so
    // after ten seconds BBR must look for it (§4.3.5), and then adopts the new, longer one.
    const r = await run({
      rateBps: 4 * MBIT,
      delay: 10,
      size: 20_000_000,
      until: 13_500,
      ackDelayStep: { from: 2_000, ms: 6 },
    });
    const { bbr } = r;
    const enter = bbr.history.find((h) => h.to === 'ProbeRTT');
    const leave = bbr.history.find((h) => h.from === 'ProbeRTT');
    expect(enter?.from).toBe('ProbeBW');
    expect(leave?.to).toBe('ProbeBW');
    if (!enter || !leave) return;
    // Entered ten seconds after the last minimum was set (before the 2 s step), not sooner.
    expect(enter.t).toBeGreaterThan(10_000);
    expect(enter.t).toBeLessThan(12_100);
    // Held at least 200 ms (plus the time to drain to four segments), at most a few RTTs more.
    expect(leave.t - enter.t).toBeGreaterThanOrEqual(200);
    expect(leave.t - enter.t).toBeLessThan(400);
    const during = bbr.obs.filter((o) => o.t > enter.t && o.t < leave.t);
    expect(during.length).toBeGreaterThan(0);
    for (const o of during) expect(o.cwnd).toBeLessThanOrEqual(4 * 1460);
    // The new minimum is the longer path's: 20 ms + 6 ms, plus 3 ms to serialise a segment
    // at 4 Mbit/s and what little queue four segments leave.
    expect(bbr.rtProp).toBeGreaterThanOrEqual(29);
    expect(bbr.rtProp).toBeLessThan(35);
    // And afterwards cwnd is back above four segments.
    const after = bbr.obs.filter((o) => o.t > leave.t + 100);
    expect(Math.max(...after.map((o) => o.cwnd))).toBeGreaterThan(10 * 1460);
  });

  it('the pacer spaces segments at the pacing rate, measured in virtual time', async () => {
    const rate = 10 * MBIT;
    const r = await run({ rateBps: rate, delay: 10, size: 2_000_000, until: 10_000 });
    const { bbr, sent } = r;
    // A stretch of ProbeBW at gain 1, where the pacing rate is steady.
    const cruise = bbr.obs.filter((o) => o.state === 'ProbeBW' && o.gain === 1);
    expect(cruise.length).toBeGreaterThan(50);
    // Find the longest run of consecutive cruise observations with one pacing rate.
    let best: Obs[] = [];
    let cur: Obs[] = [];
    for (const o of bbr.obs) {
      if (o.state === 'ProbeBW' && o.gain === 1 && (cur.length === 0 || cur[0]?.rate === o.rate)) cur.push(o);
      else {
        if (cur.length > best.length) best = cur;
        cur = o.state === 'ProbeBW' && o.gain === 1 ? [o] : [];
      }
    }
    if (cur.length > best.length) best = cur;
    const from = best[0]?.t ?? 0;
    const to = best[best.length - 1]?.t ?? 0;
    const paceRate = best[0]?.rate ?? 0; // bytes of payload per ms
    expect(to - from).toBeGreaterThan(40);
    const window = sent.filter((p) => p.t > from && p.t <= to);
    expect(window.length).toBeGreaterThan(20);
    // Gaps between consecutive segments: one payload's worth of time at the pacing rate
    // (IP and TCP headers are not paced: 52 of the 1512 bytes on the wire).
    const gaps: number[] = [];
    for (let i = 1; i < window.length; i++) gaps.push((window[i]?.t ?? 0) - (window[i - 1]?.t ?? 0));
    gaps.sort((x, y) => x - y);
    const median = gaps[gaps.length >> 1] ?? 0;
    const payload = (window[0]?.bytes ?? 0) - 52;
    expect(median).toBeCloseTo(payload / paceRate, 3);
    // No burst: no two segments leave at the same instant in the cruise phase.
    expect(gaps[0]).toBeGreaterThan(0);
    // And the pacing rate is the estimate of the 10 Mbit/s bottleneck (payload share), within 10%.
    expect(paceRate).toBeGreaterThan(0.85 * perMs(rate));
    expect(paceRate).toBeLessThan(1.1 * perMs(rate));
  });
});
