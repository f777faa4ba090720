/**
 * ECN and urgent data under arbitrary marking and arbitrary control bits: two connections
 * that agreed on ECN exchange a stream while the path marks random packets CE (any ECN
 * codepoint, in fact) and a meddler sets random URG/ECE/CWR bits and urgent pointers on the
 * segments. Whatever happens, nothing throws, the stream arrives intact and in order (urgent
 * bytes stay inline), cwnd never falls below one segment, and no urgent offset points
 * behind the reader.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CWR, ECE, type TcpSegment, URG } from '../src/segment.ts';
import { established } from './scenario.ts';

const BITS = [URG, ECE, CWR, URG | ECE, ECE | CWR, URG | ECE | CWR, 0];

describe('ECN and urgent data under arbitrary marks and control bits', () => {
  it('the stream is intact, cwnd stays at least one segment, urgent offsets stay ahead of the reader', () => {
    // What the runs exercised, so the property cannot pass by never marking anything.
    let reductions = 0;
    let urgentSeen = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 9 }), fc.nat(0xffff)), {
          minLength: 50,
          maxLength: 200,
        }),
        fc.integer({ min: 300, max: 4000 }),
        (noise, chunk) => {
          const { a, b } = established({ ecn: true, noDelay: true }, { delayedAck: 0 });
          const total = 40_000;
          const sent = new Uint8Array(total);
          for (let i = 0; i < total; i++) sent[i] = (i * 7 + 3) & 0xff;
          const got: Uint8Array[] = [];
          let k = 0;
          const meddle = (seg: TcpSegment): [TcpSegment, number] => {
            const [ecn, bits, up] = noise[k++ % noise.length]!;
            const extra = bits < BITS.length ? BITS[bits]! : 0;
            const flags = seg.flags | extra;
            return [{ ...seg, flags, urgentPointer: flags & URG ? up : seg.urgentPointer }, ecn];
          };
          let now = 0;
          let off = 0;
          let queue: { to: 'a' | 'b'; seg: TcpSegment }[] = [];
          const push = (to: 'a' | 'b', segs: TcpSegment[]) => {
            for (const seg of segs) queue.push({ to, seg });
          };
          for (let round = 0; round < 5000 && (off < total || queue.length > 0); round++) {
            now += 1;
            if (off < total && a.sendQueued < 20_000) {
              const n = Math.min(chunk, total - off);
              push('b', a.send(sent.subarray(off, off + n), now, (round & 7) === 0).segments);
              off += n;
            }
            const batch = queue;
            queue = [];
            for (const { to, seg } of batch) {
              const [s, ecn] = meddle(seg);
              const out = to === 'b' ? b.receive(s, now, ecn) : a.receive(s, now, ecn);
              push(to === 'b' ? 'a' : 'b', out.segments);
            }
            const r = b.read(now);
            if (r.data.length) got.push(r.data.slice());
            push('a', r.segments);
            const u = b.urgentOffset;
            if (u !== undefined) expect(u).toBeGreaterThan(0);
            expect(a.stats.cwnd).toBeGreaterThanOrEqual(a.mss);
            if (queue.length === 0) {
              const t = a.nextTimeout();
              if (t !== undefined) {
                now = Math.max(now, t);
                push('b', a.onTimeout(now).segments);
              }
            }
          }
          const all = new Uint8Array(got.reduce((n, g) => n + g.length, 0));
          let p = 0;
          for (const g of got) {
            all.set(g, p);
            p += g.length;
          }
          reductions += a.stats.ecnReductions;
          urgentSeen += b.stats.urgentReceived;
          expect(all.length).toBe(total);
          expect(Buffer.from(all).equals(Buffer.from(sent))).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
    expect(reductions).toBeGreaterThan(0);
    expect(urgentSeen).toBeGreaterThan(0);
  });
});
