import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ackFrameRanges, decodeFrame, encodeFrame } from '../src/frames/frame.ts';
import { AckTracker } from '../src/recovery/ack-tracker.ts';
import { initialWindow, minimumWindow, NewReno } from '../src/recovery/congestion.ts';
import { type PacketNumberSpace, Recovery, type SentPacket } from '../src/recovery/loss.ts';
import { kInitialRtt, RttEstimator } from '../src/recovery/rtt.ts';
import { arbitraryAckFrame } from '../src/testing.ts';

const MSS = 1200;

function pkt(
  packetNumber: number,
  timeSent: number,
  opts: Partial<SentPacket<string>> = {},
): SentPacket<string> {
  return {
    packetNumber,
    timeSent,
    ackEliciting: true,
    inFlight: true,
    sentBytes: MSS,
    frames: `p${packetNumber}`,
    ...opts,
  };
}
function ack(smallest: number, largest: number, ackDelay = 0) {
  return { ranges: [{ smallest, largest }], ackDelay };
}
/** A server-side recovery (peer address validation is implicit), handshake confirmed. */
function confirmed(maxAckDelay = 25): Recovery<string> {
  const r = new Recovery<string>({ isServer: true, maxAckDelay });
  r.handshakeConfirmed = true;
  return r;
}
function send(r: Recovery<string>, space: PacketNumberSpace, pns: number[], at: number) {
  for (const pn of pns) r.onPacketSent(space, pkt(pn, at), at);
}

describe('RTT estimation (RFC 9002 §5)', () => {
  it('§5.3: before a sample, smoothed_rtt is kInitialRtt and rttvar half of it', () => {
    const e = new RttEstimator();
    expect([e.smoothedRtt, e.rttvar, kInitialRtt]).toEqual([333, 166.5, 333]);
  });
  it('§5.3: the first sample sets smoothed_rtt, rttvar = sample/2 and min_rtt', () => {
    const e = new RttEstimator();
    e.update(100, 40, 1000, true, 25);
    expect([e.smoothedRtt, e.rttvar, e.minRtt, e.firstRttSample]).toEqual([100, 50, 100, 1000]);
  });
  it('§5.3: later samples subtract the ack delay (capped at max_ack_delay once confirmed) and smooth 7/8, 3/4', () => {
    const e = new RttEstimator();
    e.update(100, 0, 0, true, 25);
    e.update(150, 20, 1, true, 25);
    expect(e.rttvar).toBeCloseTo(0.75 * 50 + 0.25 * 30);
    expect(e.smoothedRtt).toBeCloseTo(0.875 * 100 + 0.125 * 130);
    const f = new RttEstimator();
    f.update(100, 0, 0, true, 25);
    f.update(200, 100, 1, true, 25); // capped at 25
    expect(f.smoothedRtt).toBeCloseTo(0.875 * 100 + 0.125 * 175);
    const g = new RttEstimator();
    g.update(100, 0, 0, false, 25);
    g.update(200, 100, 1, false, 25); // not capped before confirmation
    expect(g.smoothedRtt).toBeCloseTo(0.875 * 100 + 0.125 * 100);
  });
  it('§5.3: the ack delay is not subtracted when that would go below min_rtt; §5.2: min_rtt ignores ack delay', () => {
    const e = new RttEstimator();
    e.update(100, 0, 0, true, 25);
    e.update(105, 20, 1, true, 25);
    expect(e.smoothedRtt).toBeCloseTo(0.875 * 100 + 0.125 * 105);
    e.update(90, 20, 2, true, 25);
    expect(e.minRtt).toBe(90);
  });
  it('§5.1: only a newly acknowledged largest, ack-eliciting packet gives a sample', () => {
    const r = confirmed();
    send(r, 'ApplicationData', [0, 1], 0);
    expect(r.onAckReceived('ApplicationData', ack(0, 0), 50).rttSampled).toBe(true);
    // A repeated ACK for 0 acknowledges nothing new.
    expect(r.onAckReceived('ApplicationData', ack(0, 0), 80).rttSampled).toBe(false);
    r.onPacketSent('ApplicationData', pkt(2, 100, { ackEliciting: false }), 100);
    expect(r.onAckReceived('ApplicationData', ack(2, 2), 150).rttSampled).toBe(false);
  });
});

describe('loss detection (RFC 9002 §6.1)', () => {
  it('§6.1.1: a packet is lost when kPacketThreshold (3) later packets are acknowledged', () => {
    const r = confirmed();
    send(r, 'ApplicationData', [0, 1, 2, 3, 4], 0);
    const a = r.onAckReceived('ApplicationData', ack(3, 3), 10);
    expect(a.lost.map((p) => p.packetNumber)).toEqual([0]);
    const b = r.onAckReceived('ApplicationData', ack(4, 4), 11);
    expect(b.lost.map((p) => p.packetNumber)).toEqual([1]);
    expect(r.unacked('ApplicationData').map((p) => p.packetNumber)).toEqual([2]);
  });
  it('§6.1.2: by time threshold, 9/8 of max(smoothed_rtt, latest_rtt) after sending, via the loss timer', () => {
    const r = confirmed();
    send(r, 'ApplicationData', [0], 0);
    send(r, 'ApplicationData', [1], 10);
    const a = r.onAckReceived('ApplicationData', ack(1, 1), 110); // sample 100
    expect(a.lost).toEqual([]);
    // loss_delay = 9/8 * 100 = 112.5, so packet 0 (sent at 0) is lost at 112.5.
    expect(r.lossDetectionTimer).toBeCloseTo(112.5);
    const t = r.onLossDetectionTimeout(112.5);
    expect(t).toMatchObject({ kind: 'lost', space: 'ApplicationData' });
    expect(t.kind === 'lost' && t.lost.map((p) => p.frames)).toEqual(['p0']);
  });
  it('RFC 9000 §13.1: an ACK for a packet never sent is refused', () => {
    const r = confirmed();
    send(r, 'ApplicationData', [0], 0);
    expect(r.onAckReceived('ApplicationData', ack(0, 5), 10).error).toBe('acknowledged unsent packet');
  });
});

describe('probe timeout (RFC 9002 §6.2)', () => {
  it('§6.2.1: PTO = smoothed_rtt + max(4*rttvar, 1) + max_ack_delay for 1-RTT, doubling per PTO', () => {
    const r = confirmed(25);
    send(r, 'ApplicationData', [0], 0);
    r.onAckReceived('ApplicationData', ack(0, 0), 100); // srtt 100, rttvar 50
    send(r, 'ApplicationData', [1], 200);
    expect(r.lossDetectionTimer).toBe(200 + 100 + 200 + 25);
    const t = r.onLossDetectionTimeout(525);
    expect(t).toEqual({ kind: 'pto', space: 'ApplicationData', packets: 2 });
    expect(r.ptoCount).toBe(1);
    expect(r.lossDetectionTimer).toBe(200 + 2 * (300 + 25));
  });
  it('§6.2.1: Initial and Handshake PTOs leave out max_ack_delay; the earliest space wins', () => {
    const r = new Recovery<string>({ isServer: true, maxAckDelay: 25 });
    send(r, 'Initial', [0], 0);
    expect(r.lossDetectionTimer).toBe(333 + 4 * 166.5);
    send(r, 'Handshake', [0], 10);
    expect(r.getPtoTimeAndSpace(10)).toEqual({ time: 333 + 666, space: 'Initial' });
  });
  it('§6.2.1: Application Data is not probed before the handshake is confirmed', () => {
    const r = new Recovery<string>({ isServer: true });
    send(r, 'ApplicationData', [0], 0);
    expect(r.lossDetectionTimer).toBeUndefined();
    r.handshakeConfirmed = true;
    r.setLossDetectionTimer(0);
    expect(r.lossDetectionTimer).toBe(999 + 25);
  });
  it('§6.2.2.1: a client with nothing in flight arms an anti-deadlock PTO until the server validated it', () => {
    const r = new Recovery<string>({ isServer: false });
    send(r, 'Initial', [0], 0);
    r.onAckReceived('Initial', ack(0, 0), 100);
    // Nothing in flight, but the server may be blocked by the amplification limit.
    expect(r.lossDetectionTimer).toBe(100 + 100 + 200);
    expect(r.onLossDetectionTimeout(400)).toEqual({ kind: 'anti-deadlock', space: 'Initial' });
    r.hasHandshakeKeys = true;
    expect(r.onLossDetectionTimeout(1200)).toEqual({ kind: 'anti-deadlock', space: 'Handshake' });
    // A.7: pto_count is not reset by ACKs while the client is unsure the server validated it.
    send(r, 'Handshake', [0], 1300);
    r.onAckReceived('Handshake', ack(0, 0), 1350);
    expect(r.receivedHandshakeAck).toBe(true);
    expect(r.ptoCount).toBe(0);
    expect(r.lossDetectionTimer).toBeUndefined();
  });
  it('§6.2.2.1: a server at the anti-amplification limit arms no timer', () => {
    const r = new Recovery<string>({ isServer: true });
    r.atAntiAmplificationLimit = true;
    send(r, 'Initial', [0], 0);
    expect(r.lossDetectionTimer).toBeUndefined();
  });
  it('§6.4 / A.11: discarding a space removes its bytes in flight and resets pto_count', () => {
    const r = new Recovery<string>({ isServer: true });
    send(r, 'Initial', [0, 1], 0);
    r.onLossDetectionTimeout(r.lossDetectionTimer ?? 0);
    expect([r.bytesInFlight, r.ptoCount]).toEqual([2 * MSS, 1]);
    r.onPacketNumberSpaceDiscarded('Initial', 1000);
    expect([r.bytesInFlight, r.ptoCount, r.lossDetectionTimer]).toEqual([0, 0, undefined]);
    expect(() => r.onPacketSent('Initial', pkt(2, 1001), 1001)).toThrow(/discarded/);
  });
});

describe('NewReno (RFC 9002 §7, Appendix B)', () => {
  it('§7.2: the initial window is min(10*mds, max(14720, 2*mds)), the minimum 2*mds', () => {
    expect(initialWindow(1200)).toBe(12000);
    expect(initialWindow(1500)).toBe(14720);
    expect(initialWindow(9000)).toBe(18000);
    expect(minimumWindow(1200)).toBe(2400);
  });
  it('§7.3.1: slow start grows by the acknowledged bytes', () => {
    const r = confirmed();
    send(r, 'ApplicationData', [0, 1], 0);
    r.onAckReceived('ApplicationData', { ranges: [{ smallest: 0, largest: 1 }], ackDelay: 0 }, 50);
    expect(r.cc.congestionWindow).toBe(12000 + 2 * MSS);
    expect(r.cc.state).toBe('slow start');
  });
  it('§7.3.2: a loss halves the window once per recovery period; earlier packets do not reduce it again', () => {
    const r = confirmed();
    send(r, 'ApplicationData', [0, 1, 2, 3, 4, 5, 6], 0);
    r.onAckReceived('ApplicationData', ack(3, 3), 50); // 0 lost
    expect(r.cc.congestionWindow).toBe(6000);
    expect(r.cc.state).toBe('recovery');
    r.onAckReceived('ApplicationData', ack(4, 4), 51); // 1 lost, sent before recovery started
    expect(r.cc.congestionWindow).toBe(6000);
    expect(r.cc.congestionEvents).toBe(1);
    // An ACK for a packet sent during recovery ends it (§7.3.2), and the window grows in congestion avoidance.
    send(r, 'ApplicationData', [7], 60);
    r.onAckReceived('ApplicationData', ack(7, 7), 110);
    expect(r.cc.state).toBe('congestion avoidance');
    expect(r.cc.congestionWindow).toBeCloseTo(6000 + (1200 * 1200) / 6000);
  });
  it('§7.8: no growth while application or flow-control limited', () => {
    const cc = new NewReno(1200);
    cc.onPacketSent(1200);
    cc.appOrFlowControlLimited = true;
    cc.onPacketsAcked([{ inFlight: true, sentBytes: 1200, timeSent: 0 }]);
    expect([cc.congestionWindow, cc.bytesInFlight]).toEqual([12000, 0]);
  });
  it('§7.1 / B.7: an increased ECN-CE count is a congestion event', () => {
    const r = confirmed();
    send(r, 'ApplicationData', [0, 1], 0);
    r.onAckReceived(
      'ApplicationData',
      { ranges: [{ smallest: 0, largest: 0 }], ackDelay: 0, ecnCounts: { ect0: 1, ect1: 0, ecnCe: 1 } },
      40,
    );
    expect(r.cc.congestionEvents).toBe(1);
    expect(r.cc.congestionWindow).toBe(6000);
    // The same count again is not a new signal.
    r.onAckReceived(
      'ApplicationData',
      { ranges: [{ smallest: 0, largest: 1 }], ackDelay: 0, ecnCounts: { ect0: 2, ect1: 0, ecnCe: 1 } },
      41,
    );
    expect(r.cc.congestionEvents).toBe(1);
  });
  it('§7.6: losing every packet over more than the persistent congestion duration collapses the window', () => {
    const r = confirmed(0);
    send(r, 'ApplicationData', [0], 0);
    r.onAckReceived('ApplicationData', ack(0, 0), 10); // srtt 10, rttvar 5: duration = (10 + 20 + 0) * 3 = 90
    // 1..9 sent every 50 ms, all lost; 10..12 acked (a 10 ms sample keeps the duration near 75 ms).
    for (let pn = 1; pn <= 12; pn++) send(r, 'ApplicationData', [pn], 50 * pn);
    const a = r.onAckReceived(
      'ApplicationData',
      { ranges: [{ smallest: 10, largest: 12 }], ackDelay: 0 },
      610,
    );
    expect(a.lost.map((p) => p.packetNumber)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(a.persistentCongestion).toBe(true);
    expect(r.cc.persistentCongestionEvents).toBe(1);
    // B.8 then B.5: the window falls to kMinimumWindow, then the three acknowledged packets
    // (sent after the recovery start was reset) grow it in slow start.
    expect(r.cc.ssthresh).toBe((12000 + MSS) / 2);
    expect(r.cc.congestionWindow).toBe(minimumWindow(1200) + 3 * MSS);
  });
  it('§7.6.2: an acknowledged packet between the losses, or losses before the first RTT sample, do not count', () => {
    const r = confirmed(0);
    send(r, 'ApplicationData', [0], 0);
    r.onAckReceived('ApplicationData', ack(0, 0), 10);
    for (let pn = 1; pn <= 12; pn++) send(r, 'ApplicationData', [pn], 50 * pn);
    // Acknowledging 3, 5 and 7 leaves runs of lost packets no longer than 50 ms (< 75 ms).
    const ranges = [12, 7, 5, 3].map((n) => ({ smallest: n === 12 ? 10 : n, largest: n }));
    const a = r.onAckReceived('ApplicationData', { ranges, ackDelay: 0 }, 610);
    expect(a.lost.map((p) => p.packetNumber)).toEqual([1, 2, 4, 6, 8, 9]);
    expect(a.persistentCongestion).toBe(false);
    const b = confirmed(0);
    for (let pn = 0; pn <= 12; pn++) send(b, 'ApplicationData', [pn], 50 * pn);
    // The first ACK gives the first sample; the lost packets were all sent before it.
    expect(
      b.onAckReceived('ApplicationData', { ranges: [{ smallest: 10, largest: 12 }], ackDelay: 0 }, 610)
        .persistentCongestion,
    ).toBe(false);
  });
});

describe('ACK generation (RFC 9000 §13.2)', () => {
  it('§13.2.1: Initial and Handshake packets are acknowledged immediately', () => {
    const t = new AckTracker({ space: 'Initial' });
    t.onPacketReceived(0, true, 5);
    expect(t.ackDue(5)).toBe(true);
    expect(t.buildAck(10)).toMatchObject({ largestAcknowledged: 0, ackDelay: 0, firstAckRange: 0 });
  });
  it('§13.2.1, §13.2.2: one ack-eliciting 1-RTT packet waits max_ack_delay, the second triggers an ACK', () => {
    const t = new AckTracker({ space: 'ApplicationData', maxAckDelay: 25 });
    t.onPacketReceived(0, true, 100);
    expect([t.ackDue(100), t.nextTimeout()]).toEqual([false, 125]);
    expect(t.ackDue(125)).toBe(true);
    t.onPacketReceived(1, true, 110);
    expect(t.ackDue(110)).toBe(true);
  });
  it('§13.2.1: non-ack-eliciting packets never trigger an ACK on their own, but are reported', () => {
    const t = new AckTracker({ space: 'ApplicationData' });
    t.onPacketReceived(0, false, 0);
    t.onPacketReceived(1, false, 1);
    expect([t.ackDue(1000), t.nextTimeout()]).toEqual([false, undefined]);
    expect(t.hasNews).toBe(true);
    expect(t.buildAck(1000)?.firstAckRange).toBe(1);
  });
  it('§13.2.1: a reordered packet or one after a gap is acknowledged at once; so is ECN-CE', () => {
    const t = new AckTracker({ space: 'ApplicationData', ackElicitingThreshold: 10 });
    t.onPacketReceived(0, true, 0);
    expect(t.ackDue(0)).toBe(false);
    t.onPacketReceived(2, true, 1); // gap: 1 missing
    expect(t.ackDue(1)).toBe(true);
    t.onAckSent();
    t.onPacketReceived(1, true, 2); // below the largest
    expect(t.ackDue(2)).toBe(true);
    t.onAckSent();
    t.onPacketReceived(3, true, 3);
    expect(t.ackDue(3)).toBe(false);
    t.onPacketReceived(4, true, 4, 'ce');
    expect(t.ackDue(4)).toBe(true);
    expect(t.buildAck(4)?.ecnCounts).toEqual({ ect0: 0, ect1: 0, ecnCe: 1 });
  });
  it('§13.2.5, §19.3: Ack Delay counts from the largest packet’s arrival in 2^exponent µs units', () => {
    const t = new AckTracker({ space: 'ApplicationData', ackDelayExponent: 3 });
    t.onPacketReceived(7, true, 100);
    expect(t.buildAck(110)?.ackDelay).toBe(1250);
  });
  it('§13.2.3: duplicates are recognised; §13.2.4: an ACK of our ACK prunes old ranges', () => {
    const t = new AckTracker({ space: 'ApplicationData' });
    for (const pn of [0, 1, 2, 5, 6, 9]) t.onPacketReceived(pn, true, 0);
    expect(t.onPacketReceived(5, true, 1)).toBe('duplicate');
    expect(t.isDuplicate(3)).toBe(false);
    t.onAckOfAck(5);
    expect(t.receivedRanges()).toEqual([
      { smallest: 9, largest: 9 },
      { smallest: 6, largest: 6 },
    ]);
    expect(t.isDuplicate(3)).toBe(true);
  });
  it('keeps at most maxRanges ranges, dropping the oldest', () => {
    const t = new AckTracker({ space: 'ApplicationData', maxRanges: 3 });
    for (const pn of [0, 2, 4, 6, 8]) t.onPacketReceived(pn, true, 0);
    expect(t.receivedRanges().map((r) => r.largest)).toEqual([8, 6, 4]);
    expect(t.isDuplicate(1)).toBe(true);
  });
  fcTest.prop([
    fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 200 }),
    fc.integer({ min: 0, max: 20 }),
  ])(
    'the ranges always encode through the ACK frame codec and cover exactly the received set',
    (pns, exponent) => {
      const t = new AckTracker({ space: 'ApplicationData', maxRanges: 1000, ackDelayExponent: exponent });
      pns.forEach((pn, i) => {
        t.onPacketReceived(pn, i % 3 !== 0, i);
      });
      const frame = t.buildAck(pns.length + 5);
      expect(frame).toBeDefined();
      const decoded = decodeFrame(encodeFrame(frame!));
      expect(decoded.type).toBe('ACK');
      const covered = new Set<number>();
      for (const r of ackFrameRanges(decoded as typeof frame & object)) {
        for (let pn = r.smallest; pn <= r.largest; pn++) covered.add(pn);
      }
      expect([...covered].sort((a, b) => a - b)).toEqual([...pns].sort((a, b) => a - b));
    },
  );
});

describe('hostile ACK frames (RFC 9000 §13.1)', () => {
  fcTest.prop([
    fc.array(arbitraryAckFrame, { minLength: 1, maxLength: 5 }),
    fc.integer({ min: 1, max: 60 }),
    fc.boolean(),
  ])(
    'any well-formed ACK is absorbed or refused as acknowledging unsent packets; bookkeeping stays consistent',
    (acks, sent, confirmedHs) => {
      const r = new Recovery<string>({ isServer: false });
      r.handshakeConfirmed = confirmedHs;
      for (let pn = 0; pn < sent; pn++) r.onPacketSent('ApplicationData', pkt(pn, pn), pn);
      let now = sent;
      for (const frame of acks) {
        // Shift the frame into the sent range half the time, so both outcomes are exercised.
        const ranges = ackFrameRanges(frame).map((x) => ({
          smallest: x.smallest % (2 * sent),
          largest: x.largest % (2 * sent),
        }));
        const valid = ranges.filter((x) => x.smallest <= x.largest).sort((a, b) => b.largest - a.largest);
        now += 10;
        const out = r.onAckReceived(
          'ApplicationData',
          { ranges: valid, ackDelay: frame.ackDelay / 125, ecnCounts: frame.ecnCounts },
          now,
        );
        if (valid.length > 0 && valid[0]!.largest >= sent)
          expect(out.error).toBe('acknowledged unsent packet');
        const inFlight = r.unacked('ApplicationData').reduce((s, p) => s + p.sentBytes, 0);
        expect(r.bytesInFlight).toBe(inFlight);
        expect(r.cc.congestionWindow).toBeGreaterThanOrEqual(minimumWindow(MSS));
        expect(Number.isFinite(r.rtt.smoothedRtt) && r.rtt.smoothedRtt >= 0).toBe(true);
      }
    },
  );
});
