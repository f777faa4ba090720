import { describe, expect, it } from 'vitest';
import { ACK, RST, SYN, type TcpSegment } from '../src/segment.ts';
import { Pair } from './harness.ts';
import { bytes, deliver, established, kinds, lines } from './scenario.ts';

// RFC 5961 on an ESTABLISHED pair: A (ISS 1000) and B (ISS 5000), window 65535.
function fromB(over: Partial<TcpSegment>): TcpSegment {
  return {
    srcPort: 80,
    dstPort: 40000,
    seq: 5001,
    ack: 1001,
    flags: ACK,
    window: 65535,
    urgentPointer: 0,
    options: {},
    payload: new Uint8Array(0),
    ...over,
  };
}

describe('RFC 5961 blind in-window attacks', () => {
  it('a RST with exactly RCV.NXT resets the connection (§3.2)', () => {
    const { a } = established();
    const out = a.receive(fromB({ flags: RST, seq: 5001, ack: 0 }), 10);
    expect(kinds(out)).toEqual(['error:ECONNRESET', 'closed']);
    expect(out.segments).toEqual([]);
  });

  it('a RST inside the window but not at RCV.NXT draws a challenge ACK and changes nothing (§3.2)', () => {
    const { a } = established();
    const out = a.receive(fromB({ flags: RST, seq: 6000, ack: 0 }), 10);
    expect(lines(out)).toEqual(['ACK seq=1001 ack=5001 win=65535']);
    expect(kinds(out)).toEqual([]);
    expect(a.state).toBe('ESTABLISHED');
    expect(a.stats.challengeAcks).toBe(1);
  });

  it('a RST outside the window is dropped silently (§3.2)', () => {
    const { a } = established();
    const out = a.receive(fromB({ flags: RST, seq: 5001 + 70000, ack: 0 }), 10);
    expect(out.segments).toEqual([]);
    expect(a.state).toBe('ESTABLISHED');
  });

  it('a SYN in a synchronized state draws a challenge ACK whatever its sequence number (§4.2)', () => {
    const { a } = established();
    for (const seq of [5001, 5500, 123456789]) {
      const out = a.receive(fromB({ flags: SYN, seq, ack: 0 }), 10);
      expect(lines(out)).toEqual(['ACK seq=1001 ack=5001 win=65535']);
    }
    expect(a.state).toBe('ESTABLISHED');
  });

  it('data whose ACK is older than SND.UNA - MAX.SND.WND is dropped with an ACK (§5.2)', () => {
    const { a, b } = established();
    // Move SND.UNA forward so that an old ACK value is well defined.
    deliver(b, a.send(bytes(1000), 0), 1);
    deliver(a, b.onTimeout(b.nextTimeout()!), 50); // B's delayed ACK
    expect(a.stats.sndUna).toBe(2001);
    const ack = (1001 + 1000 - 65535 - 10) >>> 0; // just beyond the acceptable range
    const out = a.receive(fromB({ seq: 5001, ack, payload: bytes(10, 0x66) }), 3);
    expect(lines(out)).toEqual(['ACK seq=2001 ack=5001 win=65535']);
    expect(a.readable).toBe(0);
    // An ACK for data never sent is dropped the same way (RFC 9293 §3.10.7.4).
    const future = a.receive(fromB({ seq: 5001, ack: 9999, payload: bytes(10) }), 4);
    expect(lines(future)).toEqual(['ACK seq=2001 ack=5001 win=65535']);
    expect(a.readable).toBe(0);
    // A right ACK delivers the same data.
    const good = a.receive(fromB({ seq: 5001, ack: 2001, payload: bytes(10, 0x66) }), 5);
    expect(kinds(good)).toEqual(['data-readable']);
  });

  it('challenge ACKs are rate-limited per second (§7)', () => {
    const { a } = established({ challengeAckLimit: 3 });
    let sent = 0;
    for (let i = 0; i < 10; i++)
      sent += a.receive(fromB({ flags: RST, seq: 6000 + i, ack: 0 }), 100).segments.length;
    expect(sent).toBe(3);
    expect(a.receive(fromB({ flags: RST, seq: 7000, ack: 0 }), 1100).segments.length).toBe(1);
  });
});

describe('PAWS (RFC 7323 §5)', () => {
  it('drops a segment whose TSval is older than TS.Recent and ACKs', () => {
    const { a, b } = established({ timestamps: true }, { timestamps: true }, 100);
    const d1 = b.send(bytes(10, 1), 200);
    const ts = d1.segments[0]!.options.timestamps!;
    deliver(a, d1, 201);
    expect(a.readable).toBe(10);
    // The same bytes again with an older TSval and the next sequence number: not taken.
    const old = {
      ...d1.segments[0]!,
      seq: 5011,
      options: { timestamps: { value: ts.value - 50, echo: ts.echo } },
    };
    const out = a.receive(old, 202);
    expect(out.segments.length).toBe(1);
    expect(out.segments[0]!.flags).toBe(ACK);
    expect(a.readable).toBe(10);
    expect(a.stats.pawsDropped).toBe(1);
    // Without a timestamp at all, once negotiated: dropped (RFC 7323 §3.2).
    const bare = { ...d1.segments[0]!, seq: 5011, options: {} };
    a.receive(bare, 203);
    expect(a.readable).toBe(10);
  });
});

describe('PAWS and reordered ACKs (Linux tcp_disordered_ack)', () => {
  it('lets a pure duplicate ACK with a slightly older TSval through; data or a far older TSval is still dropped', () => {
    const { a, b } = established({ timestamps: true }, { timestamps: true }, 100);
    const d1 = b.send(bytes(10, 1), 200);
    const seg = d1.segments[0]!;
    const ts = seg.options.timestamps!;
    deliver(a, d1, 201);
    // B's duplicate ACK sent before d1 but arriving after it: no data, at RCV.NXT, ACK = SND.UNA.
    const dup = {
      ...seg,
      seq: (seg.seq + 10) >>> 0,
      payload: new Uint8Array(0),
      options: { timestamps: { value: ts.value - 5, echo: ts.echo } },
    };
    const out = a.receive(dup, 202);
    expect(a.stats.pawsDisorderedAcks).toBe(1);
    expect(a.stats.pawsDropped).toBe(0);
    expect(out.segments).toEqual([]);
    // Older than one RTO: an old duplicate, dropped and answered.
    const ancient = { ...dup, options: { timestamps: { value: ts.value - 100_000, echo: ts.echo } } };
    expect(a.receive(ancient, 203).segments.map((x) => x.flags)).toEqual([ACK]);
    expect(a.stats.pawsDropped).toBe(1);
    // Data with the slightly older TSval is not an ACK that lost a race: dropped.
    a.receive({ ...dup, payload: bytes(5, 2) }, 204);
    expect(a.stats.pawsDropped).toBe(2);
    expect(a.readable).toBe(10);
  });
});

describe('ACK storms (RFC 5961 §7)', () => {
  it('two ends desynchronized by a forged segment do not answer each other without end', () => {
    const p = new Pair({ timestamps: false }, { timestamps: false }, 1, { delay: 0.01 });
    p.open();
    p.run(10);
    // A forged segment: in A's window at exactly RCV.NXT, with an acceptable ACK, carrying
    // 100 bytes B never sent. A takes them; now A acknowledges more than B has sent.
    const a = p.conns.a;
    p.handle(
      'a',
      a.receive(fromB({ seq: a.stats.rcvNxt, ack: a.stats.sndUna, payload: bytes(100) }), p.clock.now()),
    );
    // B's next segment looks old to A, and A's ACK acknowledges data B never sent: each
    // end answers the other. Without the throttle this loops at the speed of the link.
    p.send('b', bytes(10));
    const before = p.delivered;
    p.run(5000);
    const exchanged = p.delivered - before;
    expect(exchanged).toBeGreaterThan(5); // the ends do keep disagreeing...
    expect(exchanged).toBeLessThan(100); // ...at a trickle (500 ms apart), not a storm
    expect(a.stats.oowAcksSuppressed + p.conns.b.stats.oowAcksSuppressed).toBeGreaterThan(0);
  });
});
