import { describe, expect, it } from 'vitest';
import { ackFromB, bytes, client, deliver, established, kinds, lines, server, warmedUp } from './scenario.ts';

// These follow the retransmission timer alone: without RACK-TLP, whose probe timeout
// (about 2 RTT, RFC 8985 §7.2) would come first (see the RACK tests at the end).
const RTO_ONLY = { rack: false };

describe('retransmission timer (RFC 6298)', () => {
  it('retransmits the first unacknowledged segment with exponential back-off, then ETIMEDOUT', () => {
    const { a } = established({ maxRetries: 4, ...RTO_ONLY });
    expect(lines(a.send(bytes(100), 0))).toEqual(['PSH,ACK seq=1001 ack=5001 win=65535 len=100']);
    const at: number[] = [];
    let out = a.onTimeout(0);
    for (let i = 0; i < 5; i++) {
      const t = a.nextTimeout()!;
      at.push(t);
      out = a.onTimeout(t);
      if (i < 4) expect(lines(out)).toEqual(['PSH,ACK seq=1001 ack=5001 win=65535 len=100']);
    }
    // No RTT sample yet: RTO 1 s (§2.1), doubled on each expiry (§5.5).
    expect(at).toEqual([1000, 3000, 7000, 15000, 31000]);
    expect(kinds(out)).toEqual(['error:ETIMEDOUT', 'closed']);
    expect(a.stats.retransmits).toBe(4);
  });

  it('floors the RTO at minRto: 1 s by default (RFC 6298 §2.4), 200 ms when asked (as Linux)', () => {
    for (const [minRto, rto] of [
      [undefined, 1000],
      [200, 200],
    ] as const) {
      const a = client(minRto === undefined ? RTO_ONLY : { minRto, ...RTO_ONLY });
      const b = server();
      b.listen(0);
      const synAck = deliver(b, a.open(0), 5);
      deliver(b, deliver(a, synAck, 10), 15);
      // The handshake's sample R = 10 gives SRTT + 4*RTTVAR = 30 ms, below the floor.
      expect([a.stats.srtt, a.stats.rto]).toEqual([10, rto]);
      a.send(bytes(100), 100);
      expect(a.nextTimeout()).toBe(100 + rto);
      expect(lines(a.onTimeout(100 + rto))).toEqual(['PSH,ACK seq=1001 ack=5001 win=65535 len=100']);
    }
    // minRto wins over rto.min when both are given.
    const c = client({ minRto: 300, rto: { min: 50 } });
    c.open(0);
    expect(c.stats.rto).toBe(1000);
    c.receive({ ...ackFromB(1001), flags: 0x12, seq: 5000 }, 1);
    expect(c.stats.rto).toBe(300);
  });

  it('gives up after the user timeout even with retries left (RFC 9293 §3.10.8)', () => {
    const { a } = established({ userTimeout: 5000, maxRetries: 100, ...RTO_ONLY });
    a.send(bytes(100), 0);
    let out = a.onTimeout(a.nextTimeout()!); // t = 1000
    out = a.onTimeout(a.nextTimeout()!); // t = 3000
    expect(kinds(out)).toEqual([]);
    out = a.onTimeout(a.nextTimeout()!); // t = 7000 > 5000
    expect(kinds(out)).toEqual(['error:ETIMEDOUT', 'closed']);
  });

  it('measures RTT from a timed segment and applies Karn: no sample from a retransmitted one', () => {
    const a = client({ rto: { min: 200 }, ...RTO_ONLY });
    const b = server();
    b.listen(0);
    const synAck = deliver(b, a.open(0), 50);
    deliver(b, deliver(a, synAck, 100), 150);
    // The handshake is the first sample, R = 100: SRTT = R, RTTVAR = R/2 (§2.2),
    // RTO = SRTT + 4*RTTVAR = 300.
    expect([a.stats.srtt, a.stats.rttvar, a.stats.rto]).toEqual([100, 50, 300]);
    a.send(bytes(100), 1000);
    a.receive(ackFromB(1101), 1300);
    // R = 300 (§2.3): RTTVAR = 3/4*50 + 1/4*|100-300| = 87.5; SRTT = 7/8*100 + 1/8*300 = 125.
    expect([a.stats.srtt, a.stats.rttvar, a.stats.rto]).toEqual([125, 87.5, 475]);
    a.send(bytes(100), 2000);
    expect(a.nextTimeout()).toBe(2475);
    a.onTimeout(2475); // the segment goes again and the RTO doubles (§5.5)
    expect(a.stats.rto).toBe(950);
    a.receive(ackFromB(1201), 2600);
    // Karn (§3): the ACK of a retransmitted segment is no sample; the backed-off RTO stays.
    expect([a.stats.srtt, a.stats.rttvar, a.stats.rto]).toEqual([125, 87.5, 950]);
    a.send(bytes(100), 3000);
    a.receive(ackFromB(1301), 3100);
    // R = 100: RTTVAR = 3/4*87.5 + 1/4*25 = 71.875; SRTT = 7/8*125 + 1/8*100 = 121.875.
    expect([a.stats.srtt, a.stats.rttvar, a.stats.rto]).toEqual([121.875, 71.875, 409.375]);
  });

  it('measures RTT from echoed timestamps (RFC 7323 §4), delayed ACK included', () => {
    const a = client({ timestamps: true, rto: { min: 200 } });
    const b = server({ timestamps: true });
    b.listen(0);
    const synAck = deliver(b, a.open(0), 20);
    deliver(b, deliver(a, synAck, 40), 60);
    // The SYN-ACK echoes the SYN's TSval: R = 40.
    expect([a.stats.srtt, a.stats.rttvar]).toEqual([40, 20]);
    const data = a.send(bytes(100), 100);
    expect(deliver(b, data, 130).segments).toEqual([]); // B delays its ACK
    const ack = b.onTimeout(b.nextTimeout()!);
    expect(ack.segments[0]!.options.timestamps!.echo).toBe(data.segments[0]!.options.timestamps!.value);
    deliver(a, ack, 190);
    // R = 190 - 100 = 90: RTTVAR = 3/4*20 + 1/4*50 = 27.5; SRTT = 7/8*40 + 1/8*90 = 46.25.
    expect([a.stats.srtt, a.stats.rttvar]).toEqual([46.25, 27.5]);
  });

  it('after an RTO the loss window is one segment and slow start resumes (RFC 5681 §3.1)', () => {
    // Without F-RTO, whose probe would replace the go-back-N (frto-no-new-data.test.ts).
    const { a } = established({ ...RTO_ONLY, frto: false });
    const sent = a.send(bytes(4380), 0);
    expect(sent.segments.length).toBe(3);
    const rto = a.onTimeout(a.nextTimeout()!);
    expect(lines(rto)).toEqual(['ACK seq=1001 ack=5001 win=65535 len=1460']);
    expect(a.stats.cwnd).toBe(1460);
    expect(a.stats.ssthresh).toBe(2920);
    // The ACK of the retransmission lets two more go (cwnd 2920).
    expect(lines(a.receive(ackFromB(2461), 1100))).toEqual([
      'ACK seq=2461 ack=5001 win=65535 len=1460',
      'PSH,ACK seq=3921 ack=5001 win=65535 len=1460',
    ]);
  });
});

describe('fast retransmit and NewReno (RFC 5681 §3.2, RFC 6582) without SACK', () => {
  it('three duplicate ACKs retransmit; a partial ACK retransmits the next hole; a full ACK ends recovery', () => {
    const { a } = established({ sack: false }, { sack: false });
    // Open cwnd first: 10 segments acked in slow start.
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) {
      a.receive(ackFromB(ack), 10);
    }
    expect(a.stats.sndUna).toBe(15601);
    const burst = a.send(bytes(8 * 1460), 20).segments;
    expect(burst.length).toBe(8);
    // Segments 1 and 3 of the burst are lost; segments 2, 4.. produce duplicate ACKs.
    const una = 15601;
    const d1 = a.receive(ackFromB(una), 30);
    const d2 = a.receive(ackFromB(una), 30);
    expect(d1.segments.concat(d2.segments)).toEqual([]);
    const d3 = a.receive(ackFromB(una), 30);
    expect(lines(d3)).toEqual(['ACK seq=15601 ack=5001 win=65535 len=1460']);
    expect(a.stats.inRecovery).toBe(true);
    const flight = 8 * 1460;
    expect(a.stats.ssthresh).toBe(flight / 2);
    expect(a.stats.cwnd).toBe(flight / 2 + 3 * 1460);
    // Partial ACK up to the second hole: retransmit it at once (RFC 6582 §3.2 step 4).
    const partial = a.receive(ackFromB(una + 2 * 1460), 40);
    expect(lines(partial)[0]).toBe('ACK seq=18521 ack=5001 win=65535 len=1460');
    expect(a.stats.inRecovery).toBe(true);
    // Full ACK: recovery ends, cwnd = min(ssthresh, FlightSize + SMSS).
    a.receive(ackFromB(una + 8 * 1460), 50);
    expect(a.stats.inRecovery).toBe(false);
    expect(a.stats.fastRetransmits).toBe(1);
  });
});

describe('restart window (RFC 5681 §4.1)', () => {
  it('falls back to the initial window after an idle period longer than the RTO', () => {
    const { a } = established();
    a.send(bytes(20 * 1460), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 20 * 1460; ack += 1460) a.receive(ackFromB(ack), 10);
    expect(a.stats.cwnd).toBeGreaterThan(20 * 1460);
    // Sent again within the RTO: the window stands.
    expect(a.send(bytes(10 * 1460), 500).segments.length).toBe(10);
    for (let ack = 1001 + 21 * 1460; ack <= 1001 + 30 * 1460; ack += 1460) a.receive(ackFromB(ack), 510);
    // Idle for 5 s (> RTO of 1 s): restart with 3 segments.
    expect(a.send(bytes(10 * 1460), 5510).segments.length).toBe(3);
  });
});

describe('limited transmit (RFC 3042)', () => {
  it('sends one new segment for each of the first two duplicate ACKs', () => {
    const { a } = established({ sack: false }, { sack: false });
    const first = a.send(bytes(10 * 1460), 0);
    expect(first.segments.length).toBe(3); // the initial window
    // Segment 1 is lost; segments 2 and 3 produce duplicate ACKs.
    expect(lines(a.receive(ackFromB(1001), 10))).toEqual(['ACK seq=5381 ack=5001 win=65535 len=1460']);
    expect(lines(a.receive(ackFromB(1001), 10))).toEqual(['ACK seq=6841 ack=5001 win=65535 len=1460']);
    // The third duplicate ACK is fast retransmit, not more new data.
    expect(lines(a.receive(ackFromB(1001), 10))).toEqual(['ACK seq=1001 ack=5001 win=65535 len=1460']);
  });
});

describe('SACK loss recovery (RFC 6675)', () => {
  it('retransmits exactly the holes the scoreboard shows', () => {
    // RFC 6675's counting rules alone: RACK would find segment 4 lost by time as soon as
    // segment 5, sent with it, was SACKed (see the RACK tests below).
    const { a } = established({ rack: false });
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) a.receive(ackFromB(ack), 10);
    const una = 15601;
    const burst = a.send(bytes(10 * 1460), 20).segments;
    expect(burst.length).toBe(10);
    const seg = (i: number) => una + i * 1460;
    // Segments 0 and 4 lost; the receiver SACKs 1-3 and 5-9 as they arrive.
    const sacks = [
      [[seg(1), seg(2)]],
      [[seg(1), seg(3)]],
      [[seg(1), seg(4)]],
      [
        [seg(5), seg(6)],
        [seg(1), seg(4)],
      ],
    ];
    const out: string[] = [];
    for (const blocks of sacks) {
      const r = a.receive(
        ackFromB(una, { options: { sack: blocks.map(([left, right]) => ({ left: left!, right: right! })) } }),
        30,
      );
      out.push(...lines(r));
    }
    // The third SACK (3 segments SACKed above the hole) marks segment 0 lost: it goes at
    // once (RFC 6675 §5 step 4) and cwnd = ssthresh = FlightSize/2 = 5 segments. With the
    // fourth, pipe is 6 segments (segments 1-9 less 4 SACKed, plus the retransmission).
    expect(out).toEqual([`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`]);
    expect(a.stats.ssthresh).toBe(5 * 1460);
    expect(a.stats.inRecovery).toBe(true);
    expect(a.stats.sackRanges).toEqual([
      { left: seg(1), right: seg(4) },
      { left: seg(5), right: seg(6) },
    ]);
    // Segments 5-7 SACKed: now 3 segments above segment 4 are SACKed, so it is lost
    // (IsLost), and pipe (segments 8, 9 and the retransmitted 0) leaves room for it.
    const more = a.receive(
      ackFromB(una, {
        options: {
          sack: [
            { left: seg(5), right: seg(8) },
            { left: seg(1), right: seg(4) },
          ],
        },
      }),
      31,
    );
    // With nothing new to send, the tail (segments 8-9, above every SACK) gets its one
    // rescue retransmission too (RFC 6675 §4 rule 4): segment 9, the highest outstanding.
    expect(lines(more)).toEqual([
      `ACK seq=${seg(4)} ack=5001 win=65535 len=1460`,
      `ACK seq=${seg(9)} ack=5001 win=65535 len=1460`,
    ]);
    // The cumulative ACK for all of it ends recovery.
    a.receive(ackFromB(seg(10)), 40);
    expect(a.stats.inRecovery).toBe(false);
    expect(a.stats.sackRanges).toEqual([]);
  });
});

describe('rescue retransmission (RFC 6675 §4 rule 4)', () => {
  it('repairs a loss at the tail of the window without waiting for the RTO', () => {
    const { a } = established();
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) a.receive(ackFromB(ack), 10);
    const una = 15601;
    const seg = (i: number) => una + i * 1460;
    expect(a.send(bytes(10 * 1460), 20).segments.length).toBe(10);
    // Segments 0 and 9 are lost; 1-8 arrive and are SACKed.
    let out: string[] = [];
    for (let k = 2; k <= 9; k++) {
      out = out.concat(
        lines(a.receive(ackFromB(una, { options: { sack: [{ left: seg(1), right: seg(k) }] } }), 30)),
      );
    }
    // Segment 0 goes by fast retransmit. Segment 9 is above every SACK block, so rules
    // (1)-(3) never pick it; with no new data to send, rule (4) resends it once, as soon
    // as the window has room, instead of leaving it to the RTO.
    expect(out).toEqual([
      `ACK seq=${seg(0)} ack=5001 win=65535 len=1460`,
      `ACK seq=${seg(9)} ack=5001 win=65535 len=1460`,
    ]);
    // Once per recovery: the partial ACK for segments 0-8 brings no second rescue.
    expect(a.receive(ackFromB(seg(9)), 40).segments).toEqual([]);
    a.receive(ackFromB(seg(10)), 50);
    expect(a.stats.inRecovery).toBe(false);
    expect(a.stats.timeouts).toBe(0);
  });
});

describe('lost retransmissions (RFC 8985 §6, by SACK order)', () => {
  it('sends a hole again when data sent after its retransmission is SACKed first', () => {
    const { a } = established();
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) a.receive(ackFromB(ack), 10);
    const una = 15601;
    const seg = (i: number) => una + i * 1460;
    a.send(bytes(10 * 1460), 20);
    a.send(bytes(20 * 1460), 21); // more data queued behind the window
    // Segment 0 is lost, and so is its fast retransmission. Everything else arrives.
    const sent: string[] = [];
    for (let k = 2; k <= 16; k++) {
      const out = a.receive(ackFromB(una, { options: { sack: [{ left: seg(1), right: seg(k) }] } }), 30 + k);
      sent.push(...lines(out).map((l) => l.split(' ')[1]!));
    }
    const zero = `seq=${seg(0)}`;
    // Sent twice: the fast retransmit, then again once a segment sent after it (the first
    // one new in recovery) was SACKed while segment 0 still was not.
    expect(sent.filter((x) => x === zero)).toHaveLength(2);
    const firstNewInRecovery = sent.indexOf(zero) + 1;
    expect(sent.lastIndexOf(zero)).toBeGreaterThan(firstNewInRecovery);
    expect(a.stats.timeouts).toBe(0);
  });
});

describe('proportional rate reduction (RFC 6937)', () => {
  it('sends about one segment for every two delivered while pipe is above ssthresh', () => {
    // RACK off: the ACKs here come at once (RTT 0), so RACK's time rule would start the
    // recovery at the first SACK, with another FlightSize; this counts RFC 6675's way.
    const { a } = established({ rack: false });
    a.send(bytes(20 * 1460), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 20 * 1460; ack += 1460) a.receive(ackFromB(ack), 10);
    const una = 1001 + 20 * 1460;
    const seg = (i: number) => una + i * 1460;
    expect(a.send(bytes(20 * 1460), 20).segments.length).toBe(20); // cwnd grew in slow start
    a.send(bytes(20 * 1460), 21); // 3 more fit in cwnd (23 segments); the rest waits
    // Segment 0 is lost; segments 1, 2, ... arrive and are SACKed one by one.
    const counts: number[] = [];
    for (let k = 1; k <= 12; k++) {
      const out = a.receive(
        ackFromB(una, { options: { sack: [{ left: seg(1), right: seg(k + 1) }] } }),
        30 + k,
      );
      counts.push(out.segments.length);
    }
    // The first two SACKs each let one new segment go (limited transmit, RFC 3042), the
    // third starts recovery with the fast retransmit. FlightSize was 25 segments (23 of
    // cwnd + 2), so ssthresh = 12.5 and PRR sends one segment per two delivered: after
    // the retransmission it owes nothing until 4 segments are delivered, then every 2nd.
    expect(a.stats.ssthresh).toBe(12.5 * 1460);
    expect(counts).toEqual([1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1]);
  });
});

describe('spurious retransmissions undone (RFC 3708 by D-SACK, RFC 4015 response)', () => {
  // A sender with 10 segments in flight after slow start (ssthresh still unbounded). RACK
  // off: here the reordering is met by DupThresh; with RACK it is met by RACK's window.
  function inFlight() {
    const { a } = established({ rack: false });
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) a.receive(ackFromB(ack), 10);
    const una = 15601;
    const seg = (i: number) => una + i * 1460;
    expect(a.send(bytes(10 * 1460), 20).segments.length).toBe(10);
    return { a, una, seg, sack: (...b: [number, number][]) => b.map(([left, right]) => ({ left, right })) };
  }

  it('a fast retransmit of a segment that was only reordered: cwnd and ssthresh come back, DupThresh rises', () => {
    const { a, seg, sack } = inFlight();
    const before = { cwnd: a.stats.cwnd, ssthresh: a.stats.ssthresh };
    // Segment 0 is late: 1-3 arrive first and are SACKed, so it is deemed lost and resent.
    const out: string[] = [];
    for (let k = 2; k <= 4; k++)
      out.push(...lines(a.receive(ackFromB(seg(0), { options: { sack: sack([seg(1), seg(k)]) } }), 30)));
    expect(out).toEqual([`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`]);
    expect(a.stats.inRecovery).toBe(true);
    expect(a.stats.cwnd).toBeLessThan(before.cwnd);
    // Then the original arrives, with the rest: the cumulative ACK ends recovery ...
    a.receive(ackFromB(seg(10)), 31);
    expect(a.stats.inRecovery).toBe(false);
    expect(a.stats.ssthresh).toBe(5 * 1460);
    // ... and the retransmission reaches the receiver as a duplicate: it reports it in a
    // D-SACK block below the cumulative ACK (RFC 2883 §4). The only retransmission of the
    // episode was not needed: undo.
    a.receive(ackFromB(seg(10), { options: { sack: sack([seg(0), seg(1)]) } }), 32);
    expect(a.stats).toMatchObject({ dsacksReceived: 1, spuriousRecoveries: 1, ...before });
    // The reordering seen (segment 0 passed by 4 segments) is now waited for: DupThresh 5.
    expect(a.stats.dupThresh).toBe(5);
    // The same reordering again: 3 and then 4 SACKed segments above a late one are no loss now.
    const una2 = seg(10);
    const s2 = (i: number) => una2 + i * 1460;
    a.send(bytes(10 * 1460), 40);
    const again: string[] = [];
    for (let k = 2; k <= 5; k++)
      again.push(...lines(a.receive(ackFromB(s2(0), { options: { sack: sack([s2(1), s2(k)]) } }), 50)));
    expect(again.filter((l) => l.includes(`seq=${s2(0)} `))).toEqual([]);
    expect(a.stats.inRecovery).toBe(false);
  });

  it('a real loss is not undone: the retransmission is the copy that arrives, no D-SACK', () => {
    const { a, seg, sack } = inFlight();
    for (let k = 2; k <= 4; k++)
      a.receive(ackFromB(seg(0), { options: { sack: sack([seg(1), seg(k)]) } }), 30);
    a.receive(ackFromB(seg(10)), 31);
    expect(a.stats).toMatchObject({ spuriousRecoveries: 0, ssthresh: 5 * 1460, dupThresh: 3 });
    // A D-SACK for some other, older duplicate proves nothing about this episode.
    a.receive(ackFromB(seg(10), { options: { sack: sack([1001, 2461]) } }), 32);
    expect(a.stats).toMatchObject({ dsacksReceived: 1, spuriousRecoveries: 0, ssthresh: 5 * 1460 });
  });

  it('a spurious RTO (the ACKs were only late): every resent segment comes back D-SACKed, the window returns', () => {
    const { a, seg, sack } = inFlight();
    const before = { cwnd: a.stats.cwnd, ssthresh: a.stats.ssthresh };
    // Nothing heard for an RTO: go-back-N from SND.UNA, one segment (loss window).
    const rto = a.onTimeout(a.nextTimeout()!);
    expect(lines(rto)).toEqual([`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`]);
    expect(a.stats.cwnd).toBe(1460);
    // The late ACK for everything, then the D-SACK of the resent segment.
    a.receive(ackFromB(seg(10)), 1100);
    expect(a.stats.spuriousRecoveries).toBe(0);
    a.receive(ackFromB(seg(10), { options: { sack: sack([seg(0), seg(1)]) } }), 1101);
    expect(a.stats).toMatchObject({ spuriousRecoveries: 1, dupThresh: 3, ...before });
  });
});

describe('RACK (RFC 8985): loss found by time', () => {
  const warm = (opts = {}) => warmedUp(2, opts);
  const sack = (left: number, right: number) => ({ options: { sack: [{ left, right }] } });

  it('one SACKed segment is enough: the earlier one is lost once RTT + reo_wnd passed (§6.2, §6.3)', () => {
    const { a, seg } = warm();
    // Segment 0 is lost, segment 1 SACKed: one duplicate ACK, far from DupThresh.
    expect(lines(a.receive(ackFromB(seg(0), sack(seg(1), seg(2))), 110))).toEqual([]);
    // reo_wnd = min(min_RTT/4, SRTT) (no reordering seen yet): due at 100 + 10 + 2.5.
    expect(a.nextTimeout()).toBe(112.5);
    expect(lines(a.onTimeout(112.5))).toEqual([`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`]);
    expect(a.stats.inRecovery).toBe(true);
    expect(a.stats.timeouts).toBe(0);
  });

  it('without RACK the same loss waits for the RTO', () => {
    const { a, seg } = warm({ rack: false });
    a.receive(ackFromB(seg(0), sack(seg(1), seg(2))), 110);
    expect(a.nextTimeout()).toBe(1100); // RFC 6298 §2.4: the RTO is at least 1 s
  });

  it('reordering within reo_wnd costs nothing: the late segment is ACKed before the timer', () => {
    const { a, seg } = warm();
    a.receive(ackFromB(seg(0), sack(seg(1), seg(2))), 110);
    expect(lines(a.receive(ackFromB(seg(2)), 111))).toEqual([]);
    expect(a.nextTimeout()).toBeUndefined();
    expect(a.stats).toMatchObject({ retransmits: 0, inRecovery: false });
  });

  it('TLP: a lost tail draws a probe after about 2 SRTT; its SACK lets RACK find the rest (§7)', () => {
    const { a, seg } = warm();
    // Both segments lost: no ACK at all. The probe timeout comes long before the RTO.
    const pto = a.nextTimeout()!;
    expect(pto).toBeLessThan(150);
    const probe = a.onTimeout(pto);
    // No new data to send: the last segment goes again (§7.3).
    expect(lines(probe)).toEqual([`ACK seq=${seg(1)} ack=5001 win=65535 len=1460`]);
    // Its ACK SACKs it: segment 0, sent before, is lost by RACK's rule, and resent at once.
    const out = a.receive(ackFromB(seg(0), sack(seg(1), seg(2))), pto + 10);
    expect(lines(out)).toEqual([`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`]);
    expect(a.stats).toMatchObject({ tailLossProbes: 1, timeouts: 0, inRecovery: true });
  });

  it('TLP: when the probe itself repaired the loss, the window is reduced once (§7.4)', () => {
    const { a, seg } = warm();
    a.receive(ackFromB(seg(1)), 110); // segment 1, the tail, is lost
    const before = a.stats.cwnd;
    const pto = a.nextTimeout()!;
    expect(pto).toBeGreaterThan(310); // one segment in flight: 2*SRTT + WCDelAckT (200 ms)
    expect(lines(a.onTimeout(pto))).toEqual([`ACK seq=${seg(1)} ack=5001 win=65535 len=1460`]);
    a.receive(ackFromB(seg(2)), pto + 10);
    expect(a.stats).toMatchObject({ tailLossProbes: 1, tlpRepairs: 1, timeouts: 0 });
    expect(a.stats.cwnd).toBeLessThan(before);
  });
});

describe('TLP and a closed window', () => {
  it('sends no probe past a zero window: the persist timer owns it (RFC 9293 §3.8.6.1)', () => {
    const { a, seg } = warmedUp(4);
    const una = seg(0);
    // Half acknowledged, and the window shuts with the other half still out.
    a.receive(ackFromB(una + 2 * 1460, { window: 0 }), 110);
    // No tail probe: the next deadline is the RTO for what is in flight.
    expect(a.nextTimeout()).toBe(110 + a.stats.rto);
    const out = a.onTimeout(a.nextTimeout()!);
    expect(out.segments.every((x) => x.seq + x.payload.length <= una + 4 * 1460)).toBe(true);
    expect(a.stats.tailLossProbes).toBe(0);
  });
});

describe('F-RTO (RFC 5682 §3, with SACK): spurious retransmission timeouts', () => {
  // A window in flight and more data queued; RACK-TLP off so the RTO is what fires.
  function stalled() {
    const { a } = established(RTO_ONLY);
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) a.receive(ackFromB(ack), 10);
    const una = 15601;
    const seg = (i: number) => una + i * 1460;
    const n = a.send(bytes(20 * 1460), 20).segments.length; // cwnd's worth; the rest waits
    expect(n).toBeLessThan(20);
    const before = { cwnd: a.stats.cwnd, ssthresh: a.stats.ssthresh };
    // The RTO resends only the first segment: no go-back-N yet.
    expect(lines(a.onTimeout(a.nextTimeout()!))).toEqual([`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`]);
    expect(a.stats.sndNxt).toBe(seg(n));
    return { a, seg, n, before };
  }

  it('late ACKs: two new segments, then an ACK of never-retransmitted data: spurious, the window returns', () => {
    const { a, seg, n, before } = stalled();
    // The first ACK advances SND.UNA: two new segments instead of retransmissions (step 2b).
    expect(lines(a.receive(ackFromB(seg(2)), 1100))).toEqual([
      `ACK seq=${seg(n)} ack=5001 win=65535 len=1460`,
      `ACK seq=${seg(n + 1)} ack=5001 win=65535 len=1460`,
    ]);
    // The second acknowledges segments that went only once: the originals arrived (3b).
    a.receive(ackFromB(seg(5)), 1101);
    expect(a.stats).toMatchObject({ spuriousRecoveries: 1, retransmits: 1, ...before });
  });

  it('a real timeout: the ACK after the new segments is a duplicate, so go-back-N resends the window', () => {
    const { a, seg, n } = stalled();
    a.receive(ackFromB(seg(1)), 1100); // the retransmission of segment 0 arrived
    const dup = a.receive(
      ackFromB(seg(1), { options: { sack: [{ left: seg(n), right: seg(n + 1) }] } }),
      1101,
    );
    // Conventional recovery (step 3a): segment 1 onward again, as cwnd allows.
    expect(lines(dup)[0]).toBe(`ACK seq=${seg(1)} ack=5001 win=65535 len=1460`);
    expect(a.stats.spuriousRecoveries).toBe(0);
    expect(a.stats.cwnd).toBeLessThan(5 * 1460);
  });
});
