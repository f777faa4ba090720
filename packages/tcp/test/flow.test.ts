import { describe, expect, it } from 'vitest';
import { bytes, client, deliver, established, lines, server } from './scenario.ts';

describe('window scale (RFC 7323 §2)', () => {
  it('negotiates the shift in the SYNs, leaves the SYN windows unscaled and scales afterwards', () => {
    const a = client({ receiveBuffer: 1 << 20 });
    const b = server({ receiveBuffer: 1 << 20 });
    b.listen(0);
    const syn = a.open(0);
    expect(lines(syn)).toEqual(['SYN seq=1000 win=65535 mss=1460 ws=5 sack']);
    const synAck = deliver(b, syn, 1);
    expect(lines(synAck)).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 ws=5 sack']);
    const ack = deliver(a, synAck, 2);
    // 2^20 bytes >> 5 = 32768 in the field.
    expect(lines(ack)).toEqual(['ACK seq=1001 ack=5001 win=32768']);
    deliver(b, ack, 3);
    expect(b.stats.sndWnd).toBe(1 << 20);
    expect(a.stats.sndWnd).toBe(65535); // the SYN-ACK's window is never scaled
  });

  it('does not scale when the peer does not offer it', () => {
    const a = client({ receiveBuffer: 1 << 20, windowScale: false });
    const b = server({ receiveBuffer: 1 << 20 });
    b.listen(0);
    const synAck = deliver(b, a.open(0), 1);
    expect(lines(synAck)).toEqual(['SYN,ACK seq=5000 ack=1001 win=65535 mss=1460 sack']);
    deliver(b, deliver(a, synAck, 2), 3);
    expect(lines(b.send(bytes(1), 4))).toEqual(['PSH,ACK seq=5001 ack=1001 win=65535 len=1']);
  });
});

describe('flow control (RFC 9293 §3.8.6)', () => {
  it('a paused reader closes the window; the sender probes with back-off; reading reopens it', () => {
    const { a, b } = established({ noDelay: true }, { receiveBuffer: 4000 });
    expect(a.stats.sndWnd).toBe(4000);
    const first = a.send(bytes(4000), 0);
    expect(lines(first)).toEqual([
      'ACK seq=1001 ack=5001 win=65535 len=1460',
      'ACK seq=2461 ack=5001 win=65535 len=1460',
      'PSH,ACK seq=3921 ack=5001 win=65535 len=1080',
    ]);
    // B does not read: each ACK advertises what is left of its 4000-byte buffer.
    const ack1 = deliver(b, first, 1);
    expect(lines(ack1)).toEqual(['ACK seq=5001 ack=3921 win=1080']);
    const zero = b.onTimeout(b.nextTimeout()!); // delayed ACK for the third segment
    expect(lines(zero)).toEqual(['ACK seq=5001 ack=5001 win=0']);
    deliver(a, ack1, 2);
    deliver(a, zero, 42);
    // More data, a zero window and nothing in flight: the persist timer probes
    // (RFC 9293 §3.8.6.1), with intervals doubling from the RTO (1 s, no sample yet).
    expect(a.send(bytes(2000), 50).segments).toEqual([]);
    const probeTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = a.nextTimeout()!;
      probeTimes.push(t);
      const probe = a.onTimeout(t);
      expect(lines(probe)).toEqual(['ACK seq=5000 ack=5001 win=65535']);
      const answer = deliver(b, probe, t + 1);
      expect(lines(answer)).toEqual(['ACK seq=5001 ack=5001 win=0']);
      deliver(a, answer, t + 2);
    }
    expect(probeTimes).toEqual([1050, 3050, 7050]);
    expect(a.stats.zeroWindowProbes).toBe(3);
    // Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): reading 100 bytes is not worth an update.
    expect(lines(b.read(8000, 100))).toEqual([]);
    // Reading the rest reopens the window with an update.
    const upd = b.read(8001);
    expect(upd.data.length).toBe(3900);
    expect(lines(upd)).toEqual(['ACK seq=5001 ack=5001 win=4000']);
    expect(lines(deliver(a, upd, 8002))).toEqual([
      'ACK seq=5001 ack=5001 win=65535 len=1460',
      'PSH,ACK seq=6461 ack=5001 win=65535 len=540',
    ]);
  });

  it('a zero window still takes the ACK of a data segment at RCV.NXT, not its text (§3.10.7.4)', () => {
    const { a, b } = established({ receiveBuffer: 1000, noDelay: true }, { noDelay: true });
    // Fill A's window, and have B's data in flight to A.
    deliver(a, b.send(bytes(1000), 0), 1);
    const zero = a.onTimeout(a.nextTimeout()!);
    expect(lines(zero)).toEqual(['ACK seq=1001 ack=6001 win=0']);
    deliver(b, zero, 42);
    deliver(b, a.send(bytes(100), 43), 44);
    // B's probe-like segment with one byte at A's RCV.NXT, acknowledging A's 100 bytes.
    const seg = {
      ...zero.segments[0]!,
      srcPort: 80,
      dstPort: 40000,
      seq: 6001,
      ack: 1101,
      window: 65535,
      payload: bytes(1),
    };
    const out = a.receive(seg, 50);
    expect(a.stats.sndUna).toBe(1101);
    expect(a.readable).toBe(1000);
    expect(lines(out)).toEqual(['ACK seq=1101 ack=6001 win=0']);
  });

  it('sender SWS avoidance: no sliver segment into the tail of a small window', () => {
    const { a, b } = established({ noDelay: true }, { receiveBuffer: 4000 });
    const first = a.send(bytes(4000), 0);
    deliver(a, deliver(b, first, 1), 2);
    deliver(a, b.onTimeout(b.nextTimeout()!), 42); // window 0 now
    expect(a.send(bytes(3000), 43).segments).toEqual([]);
    // B reads 1500 bytes: above min(BUFF/2, MSS) = 1460, so it advertises 1500.
    const upd = b.read(50, 1500);
    expect(lines(upd)).toEqual(['ACK seq=5001 ack=5001 win=1500']);
    // A sends one full-sized segment and then holds the rest: 40 bytes of window left is
    // below both an MSS and half the largest window seen (RFC 9293 §3.8.6.2.1).
    expect(lines(deliver(a, upd, 51))).toEqual(['ACK seq=5001 ack=5001 win=65535 len=1460']);
  });
});

describe("Nagle's algorithm (RFC 9293 §3.7.4) and delayed ACKs (RFC 9293 §3.8.6.3)", () => {
  it('holds a small segment while data is unacknowledged, and sends it when the ACK comes', () => {
    const { a, b } = established();
    const first = a.send(bytes(10), 0);
    expect(lines(first)).toEqual(['PSH,ACK seq=1001 ack=5001 win=65535 len=10']);
    expect(a.send(bytes(10), 1).segments).toEqual([]);
    expect(a.send(bytes(10), 2).segments).toEqual([]);
    // B ACKs one segment only after the delayed-ACK timeout (40 ms here).
    expect(deliver(b, first, 3).segments).toEqual([]);
    expect(b.nextTimeout()).toBe(43);
    const ack = b.onTimeout(43);
    // B has not read the 10 bytes: they still take room in its window.
    expect(lines(ack)).toEqual(['ACK seq=5001 ack=1011 win=65525']);
    // The ACK releases both held writes as one segment.
    expect(lines(deliver(a, ack, 44))).toEqual(['PSH,ACK seq=1011 ack=5001 win=65535 len=20']);
  });

  it('noDelay sends every write at once', () => {
    const { a } = established({ noDelay: true });
    expect(lines(a.send(bytes(10), 0))).toEqual(['PSH,ACK seq=1001 ack=5001 win=65535 len=10']);
    expect(lines(a.send(bytes(10), 1))).toEqual(['PSH,ACK seq=1011 ack=5001 win=65535 len=10']);
  });

  it('ACKs at once every second segment, and at once for out-of-order data with SACK blocks', () => {
    const { a, b } = established();
    const four = a.send(bytes(4 * 1460), 0).segments;
    expect(four.length).toBe(3); // the initial window (RFC 5681 §3.1: 4380 bytes)
    expect(lines(b.receive(four[0]!, 1))).toEqual([]);
    expect(lines(b.receive(four[1]!, 1))).toEqual(['ACK seq=5001 ack=3921 win=62615']);
    // Segment 3 is lost; segment 4 arrives out of order (RFC 5681 §4.2: ACK at once).
    const more = deliver(
      a,
      [
        {
          ...four[0]!,
          srcPort: 80,
          dstPort: 40000,
          seq: 5001,
          ack: 3921,
          flags: 0x10,
          payload: new Uint8Array(0),
          window: 65535,
        },
      ],
      2,
    );
    const fourth = more.segments.find((s) => s.seq === 1001 + 3 * 1460)!;
    const sack = lines(b.receive(fourth, 3));
    expect(sack).toEqual(['ACK seq=5001 ack=3921 win=62615 sack=5381-6841']);
    // The missing segment fills the hole: ACK at once, for everything.
    expect(lines(b.receive(four[2]!, 4))).toEqual(['ACK seq=5001 ack=6841 win=59695']);
    expect(b.readable).toBe(4 * 1460);
  });

  it('reports a duplicate segment in a D-SACK block first (RFC 2883)', () => {
    const { a, b } = established();
    const segs = a.send(bytes(3 * 1460), 0).segments;
    b.receive(segs[0]!, 1);
    expect(lines(b.receive(segs[2]!, 1))).toEqual(['ACK seq=5001 ack=2461 win=64075 sack=3921-5381']);
    // The first segment again (a spurious retransmission): below RCV.NXT.
    expect(lines(b.receive(segs[0]!, 2))).toEqual([
      'ACK seq=5001 ack=2461 win=64075 sack=1001-2461,3921-5381',
    ]);
    // The out-of-order one again: a duplicate of held data.
    expect(lines(b.receive(segs[2]!, 3))).toEqual([
      'ACK seq=5001 ack=2461 win=64075 sack=3921-5381,3921-5381',
    ]);
    // And the D-SACK is reported once.
    expect(lines(b.receive(segs[1]!, 4))).toEqual(['ACK seq=5001 ack=5381 win=61155']);
  });
});
