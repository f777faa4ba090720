/**
 * RFC 8985 §7.2-7.3: no tail loss probe is armed while segments are SACKed (RACK's
 * reordering timer finds a hole below SACKed data without one), and a probe never resends
 * a segment already SACKed: without new data it resends the highest segment not SACKed.
 */
import { describe, expect, it } from 'vitest';
import type { ControlBlock } from '../src/connection/control-block.ts';
import type { TcpConnection } from '../src/connection.ts';
import { ackFromB, lines, sack, warmedUp } from './scenario.ts';

function tcbOf(c: TcpConnection): ControlBlock {
  return (c as unknown as { tcb: ControlBlock }).tcb;
}

// Slow start with every ACK 10 ms after its segments, then four segments, all the data.
function warm() {
  const { a, seg } = warmedUp(4);
  return { a, seg, tcb: tcbOf(a) };
}

describe('TLP with SACKed data (RFC 8985 §7.2, §7.3)', () => {
  it('arms a probe with nothing SACKed, none once a segment is SACKed', () => {
    const { a, seg, tcb } = warm();
    expect(tcb.timers.tlp).toBe(100 + 2 * a.stats.srtt!);
    // Segments 0-2 missing, 3 SACKed: one duplicate ACK, RACK's timer takes it from here.
    expect(lines(a.receive(ackFromB(seg(0), sack([seg(3), seg(4)])), 110))).toEqual([]);
    expect(tcb.timers.tlp).toBeUndefined();
    expect(tcb.timers.rack).toBeDefined();
    // RACK's verdict, no probe: the hole is resent, the SACKed tail never.
    const out = a.onTimeout(a.nextTimeout()!);
    expect(lines(out)[0]).toBe(`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`);
    expect(out.segments.every((s) => s.seq !== seg(3))).toBe(true);
    expect(a.stats.tailLossProbes).toBe(0);
  });

  it('a probe due when the top of the flight is SACKed resends the highest segment not SACKed', () => {
    for (const [sacked, probe] of [
      [[[3, 4]], 2],
      [[[2, 4]], 1],
      [
        [
          [1, 2],
          [3, 4],
        ],
        2,
      ],
    ] as const) {
      const { a, seg, tcb } = warm();
      a.receive(ackFromB(seg(0), sack(...sacked.map(([l, r]) => [seg(l), seg(r)] as [number, number]))), 110);
      // The probe timer as it was armed before that SACK came (a SACK between the arming
      // and the timer), RACK's timer not yet due.
      tcb.timers.rack = undefined;
      tcb.timers.tlp = 111;
      expect(lines(a.onTimeout(111))).toEqual([`ACK seq=${seg(probe)} ack=5001 win=65535 len=1460`]);
      expect(a.stats.tailLossProbes).toBe(1);
    }
  });

  it('everything SACKed but the segment at SND.UNA: that one is the probe', () => {
    const { a, seg, tcb } = warm();
    a.receive(ackFromB(seg(1), sack([seg(2), seg(4)])), 110);
    tcb.timers.rack = undefined;
    tcb.timers.tlp = 111;
    // The highest unSACKed segment is segment 1, at SND.UNA: that is the probe.
    expect(lines(a.onTimeout(111))).toEqual([`ACK seq=${seg(1)} ack=5001 win=65535 len=1460`]);
  });
});
