import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { type AckFrame, ackFrameRanges, decodeFrame, encodeFrame } from '../src/frames/frame.ts';
import { AckTracker } from '../src/recovery/ack-tracker.ts';
import { minimumWindow } from '../src/recovery/congestion.ts';
import { Recovery } from '../src/recovery/loss.ts';

/**
 * Recovery and ACK generation together, over a simulated path with loss on both
 * directions and a virtual clock: a sender (Recovery, NewReno) delivers numbered data units
 * to a receiver (AckTracker) whose ACK frames travel through the frame codec. Whatever the
 * loss pattern, every unit arrives, every packet is settled (acknowledged or lost) at most
 * once, bytes in flight always equal the unsettled in-flight packets, the window never
 * falls below kMinimumWindow, and a timer is armed whenever ack-eliciting data is in flight.
 */

const MSS = 1200;
const ONE_WAY = 20;

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

function simulate(
  units: number,
  dataLoss: boolean[],
  ackLoss: boolean[],
): { delivered: number; time: number } {
  const events: Event[] = [];
  let seq = 0;
  let now = 0;
  const schedule = (at: number, run: () => void) => {
    events.push({ at, seq: seq++, run });
    events.sort((a, b) => a.at - b.at || a.seq - b.seq);
  };
  const recovery = new Recovery<number | 'ping'>({ isServer: true, maxAckDelay: 25 });
  recovery.handshakeConfirmed = true;
  const tracker = new AckTracker({ space: 'ApplicationData', maxAckDelay: 25 });
  const pending: number[] = Array.from({ length: units }, (_, i) => i);
  const received = new Set<number>();
  const settled = new Set<number>();
  let nextPn = 0;
  let sentData = 0;
  let sentAcks = 0;

  const transmit = (unit: number | 'ping') => {
    const pn = nextPn++;
    recovery.onPacketSent(
      'ApplicationData',
      { packetNumber: pn, ackEliciting: true, inFlight: true, sentBytes: MSS, timeSent: now, frames: unit },
      now,
    );
    if (dataLoss[sentData++ % dataLoss.length]) return;
    schedule(now + ONE_WAY, () => receive(pn, unit));
  };
  const sendNewData = () => {
    while (pending.length > 0 && recovery.cc.sendAllowance >= MSS) transmit(pending.shift()!);
  };
  const sendAck = () => {
    const frame = tracker.buildAck(now);
    if (!frame) return;
    tracker.onAckSent();
    const wire = encodeFrame(frame);
    if (ackLoss[sentAcks++ % ackLoss.length]) return;
    schedule(now + ONE_WAY, () => onAck(decodeFrame(wire) as AckFrame));
  };
  let ackTimerAt: number | undefined;
  const receive = (pn: number, unit: number | 'ping') => {
    if (tracker.isDuplicate(pn)) return;
    tracker.onPacketReceived(pn, true, now);
    if (unit !== 'ping') received.add(unit);
    if (tracker.ackDue(now)) sendAck();
    else {
      const t = tracker.nextTimeout();
      if (t !== undefined && t !== ackTimerAt) {
        ackTimerAt = t;
        schedule(t, () => {
          if (tracker.ackDue(now)) sendAck();
        });
      }
    }
  };
  const settle = (pns: number[]) => {
    for (const pn of pns) {
      expect(settled.has(pn)).toBe(false);
      settled.add(pn);
    }
  };
  const onAck = (frame: AckFrame) => {
    const out = recovery.onAckReceived(
      'ApplicationData',
      { ranges: ackFrameRanges(frame), ackDelay: (frame.ackDelay * 8) / 1000 },
      now,
    );
    expect(out.error).toBeUndefined();
    settle(out.newlyAcked.map((p) => p.packetNumber));
    settle(out.lost.map((p) => p.packetNumber));
    for (const p of out.lost) if (p.frames !== 'ping' && !received.has(p.frames)) pending.unshift(p.frames);
    sendNewData();
    armTimer();
  };
  let timerAt: number | undefined;
  const armTimer = () => {
    const t = recovery.lossDetectionTimer;
    if (t === undefined || t === timerAt) return;
    timerAt = t;
    schedule(t, () => {
      if (recovery.lossDetectionTimer === undefined || now < recovery.lossDetectionTimer) return;
      timerAt = undefined;
      const action = recovery.onLossDetectionTimeout(now);
      if (action.kind === 'lost') {
        settle(action.lost.map((p) => p.packetNumber));
        for (const p of action.lost)
          if (p.frames !== 'ping' && !received.has(p.frames)) pending.unshift(p.frames);
        sendNewData();
      } else if (action.kind === 'pto') {
        // §6.2.4: probes carry data not yet known delivered, else a PING; they ignore the window (§7.5).
        for (let i = 0; i < action.packets; i++) {
          const unacked = recovery
            .unacked('ApplicationData')
            .find((p) => p.frames !== 'ping' && !received.has(p.frames as number));
          transmit(pending.shift() ?? (unacked ? (unacked.frames as number) : 'ping'));
        }
      }
      armTimer();
    });
  };

  sendNewData();
  armTimer();
  for (let steps = 0; events.length > 0 && steps < 200_000; steps++) {
    const e = events.shift()!;
    now = Math.max(now, e.at);
    e.run();
    // Invariants after every event.
    const inFlight = recovery
      .unacked('ApplicationData')
      .reduce((s, p) => s + (p.inFlight ? p.sentBytes : 0), 0);
    expect(recovery.bytesInFlight).toBe(inFlight);
    expect(recovery.cc.congestionWindow).toBeGreaterThanOrEqual(minimumWindow(MSS));
    if (recovery.unacked('ApplicationData').some((p) => p.ackEliciting))
      expect(recovery.lossDetectionTimer).toBeDefined();
    if (received.size === units && recovery.unacked('ApplicationData').length === 0) break;
    if (now > 600_000) break;
  }
  return { delivered: received.size, time: now };
}

describe('recovery over a lossy path (RFC 9002 with RFC 9000 §13.2 ACKs)', () => {
  fcTest.prop(
    [
      fc.integer({ min: 1, max: 120 }),
      fc
        .array(fc.boolean(), { minLength: 1, maxLength: 40 })
        .filter((a) => a.filter(Boolean).length * 3 <= a.length),
      fc
        .array(fc.boolean(), { minLength: 1, maxLength: 40 })
        .filter((a) => a.filter(Boolean).length * 3 <= a.length),
    ],
    { numRuns: 60 },
  )('every unit is delivered and the bookkeeping invariants hold', (units, dataLoss, ackLoss) => {
    const { delivered } = simulate(units, dataLoss, ackLoss);
    expect(delivered).toBe(units);
  });
});
