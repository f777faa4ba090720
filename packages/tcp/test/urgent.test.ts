/**
 * Urgent data (RFC 9293 §3.8.5 and §3.10.7.4 sixth step, with RFC 6093's pointer: the
 * octet after the urgent data), delivered inline as RFC 6093 §6 recommends.
 */
import { describe, expect, it } from 'vitest';
import { type TcpSegment, URG } from '../src/segment.ts';
import { tcpSim } from './net.ts';
import { bytes, deliver, established } from './scenario.ts';

const text = (s: string) => new TextEncoder().encode(s);

describe('urgent data, sending (RFC 9293 §3.8.5)', () => {
  it('URG and a pointer just past the urgent bytes on every segment until they are acknowledged', () => {
    const { a, b } = established({ noDelay: true });
    const plain = a.send(text('hello'), 0);
    expect(plain.segments[0]!.flags & URG).toBe(0);
    const urgent = a.send(text('!'), 0, true);
    const seg = urgent.segments[0]!;
    expect(seg.flags & URG).toBe(URG);
    // The urgent pointer is an offset from the segment's sequence number to the octet
    // after the urgent data (MUST-30): one byte of urgent data, so 1.
    expect(seg.urgentPointer).toBe(1);
    // A segment after the urgent data carries no URG: SND.UP is behind it.
    const after = a.send(text('world'), 0);
    expect(after.segments[0]!.flags & URG).toBe(0);
    // Acknowledged: urgent mode ends, and a retransmission-free ACK carries no URG.
    deliver(a, deliver(b, [...plain.segments, seg, ...after.segments], 1), 2);
    expect(a.send(text('x'), 3).segments[0]!.flags & URG).toBe(0);
  });

  it('segments before the urgent byte carry the pointer ahead of them, capped at 0xFFFF', () => {
    const { a } = established({ noDelay: true, receiveBuffer: 1 << 20 }, { receiveBuffer: 1 << 20 });
    // cwnd lets a few segments go at once; all of them lie before SND.UP.
    const out = a.send(bytes(100_000), 0, true);
    const end = (a.sndUna + 100_000) >>> 0;
    expect(out.segments.length).toBeGreaterThan(1);
    for (const s of out.segments) {
      expect(s.flags & URG).toBe(URG);
      expect(s.urgentPointer).toBe(Math.min(0xffff, (end - s.seq) >>> 0));
    }
  });

  it('Nagle does not hold urgent data back (as Linux)', () => {
    const { a } = established();
    expect(a.send(text('a'), 0).segments.length).toBe(1); // idle: goes
    expect(a.send(text('b'), 0).segments.length).toBe(0); // Nagle holds it
    expect(a.send(text('!'), 0, true).segments.length).toBe(1); // urgent: goes with 'b'
  });
});

describe('urgent data, receiving (RFC 9293 §3.10.7.4 sixth step)', () => {
  it('the user hears once per advance; the bytes stay inline; urgentOffset counts down to the mark', () => {
    const { a, b } = established({ noDelay: true });
    const hello = a.send(text('hello'), 0).segments;
    const bang = a.send(text('!'), 0, true).segments;
    const r1 = deliver(b, hello, 1);
    expect(r1.events.some((e) => e.type === 'urgent')).toBe(false);
    const r2 = deliver(b, bang, 1);
    expect(r2.events.filter((e) => e.type === 'urgent')).toEqual([{ type: 'urgent', offset: 6 }]);
    expect(b.stats.urgentReceived).toBe(1);
    expect(b.urgentOffset).toBe(6);
    // The same pointer again (a retransmission, a window update) is no news.
    const again: TcpSegment = { ...bang[0]!, payload: new Uint8Array(0) };
    expect(b.receive(again, 2).events.some((e) => e.type === 'urgent')).toBe(false);
    const first = b.read(3, 4);
    expect(new TextDecoder().decode(first.data)).toBe('hell');
    expect(b.urgentOffset).toBe(2);
    const rest = b.read(3);
    expect(new TextDecoder().decode(rest.data)).toBe('o!');
    expect(b.urgentOffset).toBeUndefined();
  });

  it('a pointer ahead of the data that has arrived is announced with its offset; a stale or zero one is ignored', () => {
    const { a, b } = established({ noDelay: true });
    const seg = a.send(text('abc'), 0).segments[0]!;
    // Urgent data 100 bytes on, not sent yet (a sender with more queued than one segment).
    const r = b.receive({ ...seg, flags: seg.flags | URG, urgentPointer: 103 }, 1);
    expect(r.events.filter((e) => e.type === 'urgent')).toEqual([{ type: 'urgent', offset: 103 }]);
    b.read(2, 2);
    expect(b.urgentOffset).toBe(101);
    // Pointer 0 (RFC 6093: no urgent data in this segment) and a pointer behind RCV.UP: nothing.
    const next = a.send(text('d'), 3).segments[0]!;
    const r0 = b.receive({ ...next, flags: next.flags | URG, urgentPointer: 0 }, 4);
    expect(r0.events.some((e) => e.type === 'urgent')).toBe(false);
    expect(b.urgentOffset).toBe(101); // counted from the next read, which has not moved
    expect(b.read(5).data.length).toBe(2);
    expect(b.urgentOffset).toBe(99);
  });
});

describe('urgent data through sockets', () => {
  it("writeUrgent (even before the handshake completes) reaches the peer inline with an 'urgent' event at the mark", async () => {
    const { a, b, run } = tcpSim();
    const marks: number[] = [];
    let firstMark: () => void = () => {};
    const first = new Promise<void>((r) => {
      firstMark = r;
    });
    const got = new Promise<string>((resolve) => {
      const srv = b.createServer((sock) => {
        const parts: Buffer[] = [];
        sock.on('urgent', (mark: number) => {
          marks.push(mark);
          firstMark();
        });
        sock.on('data', (d: Buffer) => parts.push(d));
        sock.on('end', () => {
          srv.close();
          resolve(Buffer.concat(parts).toString());
        });
      });
      srv.listen(80);
    });
    const sock = a.connect({ host: '198.18.0.2', port: 80 });
    sock.write('ab');
    sock.writeUrgent('!'); // still connecting: queued, and urgent when it goes
    sock.write('cd');
    await run(first);
    sock.write('efg');
    sock.writeUrgent('?');
    sock.end('h');
    expect(await run(got)).toBe('ab!cdefg?h');
    // Stream offsets just past each urgent byte: '!' is byte 2, '?' byte 8.
    expect(marks).toEqual([3, 9]);
  });
});
