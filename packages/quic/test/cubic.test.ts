import { fc, test as fcTest } from '@fast-check/vitest';
import { CUBIC_BETA, cubicK } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { type CcPacket, minimumWindow, NewReno } from '../src/recovery/congestion.ts';
import { QuicCubic } from '../src/recovery/cubic.ts';
import { Recovery } from '../src/recovery/loss.ts';

const MDS = 1200;
const pkt = (timeSent: number, sentBytes = MDS, inFlight = true): CcPacket => ({
  timeSent,
  sentBytes,
  inFlight,
});

/** Send and acknowledge a full window each RTT from `start` to `until`; returns the time reached. */
function rounds(cc: QuicCubic | NewReno, start: number, rtt: number, until: number): number {
  let now = start;
  while (now < until) {
    const n = Math.max(1, Math.floor(cc.congestionWindow / MDS));
    const sent: CcPacket[] = [];
    for (let i = 0; i < n; i++) {
      cc.onPacketSent(MDS);
      sent.push(pkt(now));
    }
    now += rtt;
    for (const p of sent) cc.onPacketsAcked([p], now, rtt);
  }
  return now;
}

describe('QUIC CUBIC (RFC 9438 under RFC 9002 §7)', () => {
  it('starts at the RFC 9002 initial window and slow-starts by the bytes acknowledged (§7.2, §7.3.1)', () => {
    const cc = new QuicCubic(MDS);
    expect(cc.congestionWindow).toBe(12000);
    expect(cc.state).toBe('slow start');
    cc.onPacketSent(MDS);
    cc.onPacketsAcked([pkt(0)], 10, 10);
    expect(cc.congestionWindow).toBe(12000 + MDS);
    expect(cc.bytesInFlight).toBe(0);
  });

  it('a loss reduces the window by β_cubic = 0.7, not NewReno 0.5 (RFC 9438 §4.6)', () => {
    const cc = new QuicCubic(MDS);
    cc.congestionWindow = 100 * MDS;
    cc.onPacketSent(MDS);
    cc.onPacketsLost([pkt(5)], false, 20);
    expect(cc.congestionWindow).toBe(Math.floor(100 * MDS * CUBIC_BETA));
    expect(cc.ssthresh).toBe(84000);
    expect(cc.state).toBe('recovery');
    expect(cc.cubic.wMax).toBe(100);
    expect(cc.bytesInFlight).toBe(0);
  });

  it('one reduction per recovery period, keyed by the lost packet’s send time (RFC 9002 §7.3.2)', () => {
    const cc = new QuicCubic(MDS);
    cc.congestionWindow = 100 * MDS;
    cc.onPacketsLost([pkt(5)], false, 20);
    const after = cc.congestionWindow;
    // Sent before the recovery period began (t = 20): no second reduction.
    cc.onPacketsLost([pkt(15)], false, 25);
    cc.onCongestionEvent(20, 26);
    expect(cc.congestionWindow).toBe(after);
    expect(cc.congestionEvents).toBe(1);
    // Acknowledgements of packets sent before the recovery period do not grow the window.
    cc.onPacketsAcked([pkt(10)], 30, 10);
    expect(cc.congestionWindow).toBe(after);
    expect(cc.state).toBe('recovery');
    // A packet sent after it, acknowledged, ends recovery; a loss of one sent later reduces again.
    cc.onPacketSent(MDS);
    cc.onPacketsAcked([pkt(21)], 40, 10);
    expect(cc.state).toBe('congestion avoidance');
    expect(cc.congestionWindow).toBeGreaterThanOrEqual(after);
    cc.onPacketsLost([pkt(41)], false, 50);
    expect(cc.congestionEvents).toBe(2);
    expect(cc.congestionWindow).toBeLessThan(after);
  });

  it('persistent congestion collapses the window to kMinimumWindow and ends the epoch (RFC 9002 §7.6.2)', () => {
    const cc = new QuicCubic(MDS);
    cc.congestionWindow = 50 * MDS;
    cc.ssthresh = 40 * MDS;
    cc.onPacketsAcked([], 0, 100);
    cc.cubic.congestionAvoidance(cc.congestionWindow, MDS, 0, 100);
    expect(cc.cubic.epochStart).toBe(0);
    cc.onPacketsLost([pkt(1), pkt(200)], true, 1000);
    expect(cc.congestionWindow).toBe(minimumWindow(MDS));
    expect(cc.persistentCongestionEvents).toBe(1);
    expect(cc.cubic.epochStart).toBeUndefined();
    expect(cc.congestionRecoveryStartTime).toBeUndefined();
    expect(cc.state).toBe('slow start');
  });

  it('never reduces below kMinimumWindow (RFC 9002 §7.2)', () => {
    const cc = new QuicCubic(MDS);
    cc.congestionWindow = minimumWindow(MDS);
    cc.onPacketsLost([pkt(0)], false, 1);
    expect(cc.congestionWindow).toBe(minimumWindow(MDS));
  });

  it('no growth while application-limited, and the time spent so does not count on the curve (RFC 9002 §7.8, RFC 9438 §5.8)', () => {
    const cc = new QuicCubic(MDS);
    cc.congestionWindow = 100 * MDS;
    cc.onPacketsLost([pkt(0)], false, 0);
    const start = cc.congestionWindow;
    rounds(cc, 1, 100, 1000);
    const grown = cc.congestionWindow;
    expect(grown).toBeGreaterThan(start);
    cc.appOrFlowControlLimited = true;
    cc.onPacketSent(MDS);
    cc.onPacketsAcked([pkt(5000)], 60_000, 100);
    expect(cc.congestionWindow).toBe(grown);
    expect(cc.cubic.epochStart).toBeUndefined();
    // Used again a minute later: the new epoch starts there, so the window does not leap to
    // W_cubic(60 s) but moves at most half a datagram per datagram acknowledged (§4.4's clamp).
    cc.appOrFlowControlLimited = false;
    cc.onPacketSent(MDS);
    cc.onPacketsAcked([pkt(60_000)], 60_100, 100);
    expect(cc.cubic.epochStart).toBe(60_100);
    expect(cc.congestionWindow - grown).toBeLessThanOrEqual(MDS / 2);
  });

  it('after a loss at 100 datagrams the window is back near W_max about K seconds later, ahead of NewReno (RFC 9438 §4.2)', () => {
    const cubic = new QuicCubic(MDS);
    const reno = new NewReno(MDS);
    for (const cc of [cubic, reno]) {
      cc.congestionWindow = 100 * MDS;
      cc.onPacketsLost([pkt(0)], false, 0);
    }
    // K = ∛((100 − 70)/0.4) ≈ 4.22 s (RFC 9438 §4.2 eq. 2).
    const k = cubicK(100, 70);
    // A 200 ms RTT keeps the Reno-friendly estimate W_est (≈ 70 + 0.53 per RTT, §4.3) below
    // the curve, so the window is W_cubic's.
    rounds(cubic, 1, 200, 1 + k * 1000);
    rounds(reno, 1, 200, 1 + k * 1000);
    expect(Math.abs(cubic.congestionWindow / MDS - 100)).toBeLessThan(3);
    // NewReno started at 50 and adds about one datagram per RTT: ≈ 50 + 21.
    expect(reno.congestionWindow / MDS).toBeLessThan(80);
    expect(cubic.state).toBe('congestion avoidance');
  });

  fcTest.prop([
    fc.array(
      fc.oneof(
        fc.record({ k: fc.constant('send' as const), n: fc.integer({ min: 1, max: 20 }) }),
        fc.record({ k: fc.constant('ack' as const), n: fc.integer({ min: 1, max: 20 }), dt: fc.nat(200) }),
        fc.record({ k: fc.constant('lose' as const), n: fc.integer({ min: 1, max: 5 }), pc: fc.boolean() }),
        fc.record({ k: fc.constant('limited' as const), on: fc.boolean() }),
      ),
      { maxLength: 300 },
    ),
  ])('bytes in flight balance, the window stays finite and at least kMinimumWindow', (ops) => {
    const cc = new QuicCubic(MDS);
    const outstanding: CcPacket[] = [];
    let now = 0;
    for (const op of ops) {
      if (op.k === 'send') {
        for (let i = 0; i < op.n; i++) {
          cc.onPacketSent(MDS);
          outstanding.push(pkt(now));
        }
      } else if (op.k === 'ack') {
        now += op.dt;
        cc.onPacketsAcked(outstanding.splice(0, op.n), now, 50);
      } else if (op.k === 'lose') {
        now += 1;
        cc.onPacketsLost(outstanding.splice(0, op.n), op.pc, now);
      } else cc.appOrFlowControlLimited = op.on;
      expect(cc.bytesInFlight).toBe(outstanding.length * MDS);
      expect(Number.isFinite(cc.congestionWindow)).toBe(true);
      expect(cc.congestionWindow).toBeGreaterThanOrEqual(minimumWindow(MDS));
    }
  });

  it('loss detection drives it: Recovery({ congestion: "cubic" }) reduces by β_cubic on a packet-threshold loss (RFC 9002 §6.1.1)', () => {
    const r = new Recovery<string>({ isServer: true, congestion: 'cubic' });
    const reno = new Recovery<string>({ isServer: true });
    expect(r.cc).toBeInstanceOf(QuicCubic);
    expect(reno.cc).toBeInstanceOf(NewReno);
    r.handshakeConfirmed = true;
    for (let pn = 0; pn < 5; pn++) {
      r.onPacketSent(
        'ApplicationData',
        {
          packetNumber: pn,
          timeSent: 0,
          ackEliciting: true,
          inFlight: true,
          sentBytes: MDS,
          frames: `p${pn}`,
        },
        0,
      );
    }
    // 1..4 acknowledged, 0 is three packets behind the largest: lost; the window was 12000.
    const out = r.onAckReceived(
      'ApplicationData',
      { ranges: [{ smallest: 1, largest: 4 }], ackDelay: 0 },
      50,
    );
    expect(out.lost.map((p) => p.packetNumber)).toEqual([0]);
    expect(r.cc.congestionWindow).toBe(Math.floor(12000 * CUBIC_BETA));
    expect(r.cc.bytesInFlight).toBe(0);
  });
});
