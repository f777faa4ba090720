import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ReceiveCredit, SendCredit } from '../src/streams/flow-control.ts';
import { ReceiveBuffer } from '../src/streams/receive-buffer.ts';
import {
  canReceive,
  canSend,
  streamDirection,
  streamIdOf,
  streamIndex,
  streamInitiator,
} from '../src/streams/stream-id.ts';

describe('stream IDs (RFC 9000 §2.1)', () => {
  it('Table 1: the two low bits', () => {
    expect([0, 1, 2, 3].map((id) => [streamInitiator(id), streamDirection(id)])).toEqual([
      ['client', 'bidi'],
      ['server', 'bidi'],
      ['client', 'uni'],
      ['server', 'uni'],
    ]);
    expect(streamIdOf('server', 'uni', 2)).toBe(11);
    expect(streamIndex(11)).toBe(2);
    expect([
      canSend(2, 'client'),
      canSend(2, 'server'),
      canReceive(2, 'server'),
      canReceive(3, 'server'),
    ]).toEqual([true, false, true, false]);
  });
});

describe('receive buffer (RFC 9000 §2.2, §4.5)', () => {
  it('reassembles out of order, overlapping and duplicated data', () => {
    const b = new ReceiveBuffer(100);
    expect(b.receive(5, Uint8Array.of(5, 6, 7))).toBeUndefined();
    expect(b.read()).toHaveLength(0);
    b.receive(0, Uint8Array.of(0, 1, 2, 3, 4, 5));
    b.receive(6, Uint8Array.of(6, 7, 8), true);
    expect([...b.read()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(b.finished).toBe(true);
    expect(b.bufferedBytes).toBe(0);
  });
  it('§4.1: data beyond the limit is a FLOW_CONTROL_ERROR, stored nowhere', () => {
    const b = new ReceiveBuffer(10);
    expect(b.receive(8, new Uint8Array(3))).toBe('FLOW_CONTROL_ERROR');
    expect(b.bufferedBytes).toBe(0);
    b.raiseLimit(20);
    expect(b.receive(8, new Uint8Array(3))).toBeUndefined();
  });
  it('bounds the number of out-of-order pieces a peer can make us hold', () => {
    const b = new ReceiveBuffer(10_000, 8);
    for (let i = 1; i <= 8; i++) expect(b.receive(2 * i, Uint8Array.of(i))).toBeUndefined();
    expect(b.receive(100, Uint8Array.of(1))).toBe('TOO_FRAGMENTED');
  });
  it('§4.5: a final size may not change, nor may data pass it, nor may it fall below data seen', () => {
    const b = new ReceiveBuffer(100);
    b.receive(0, new Uint8Array(10), true);
    expect(b.receive(0, new Uint8Array(11))).toBe('FINAL_SIZE_ERROR');
    expect(b.receive(0, new Uint8Array(9), true)).toBe('FINAL_SIZE_ERROR');
    expect(b.receive(5, new Uint8Array(5), true)).toBeUndefined();
    const c = new ReceiveBuffer(100);
    c.receive(0, new Uint8Array(20));
    expect(c.receive(0, new Uint8Array(10), true)).toBe('FINAL_SIZE_ERROR');
  });
  fcTest.prop([
    fc.uint8Array({ minLength: 0, maxLength: 300 }),
    fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 40 }),
    fc.array(fc.nat(), { maxLength: 40 }),
  ])(
    'any segmentation, order and duplication delivers the bytes exactly once, in order',
    (data, cuts, order) => {
      // Segments from random (start, length) pairs, plus a covering set so every byte is sent.
      const segs: [number, number][] = cuts.map(([a, l]) => {
        const s = data.length === 0 ? 0 : a % data.length;
        return [s, Math.min(data.length - s, l % 50)];
      });
      for (let s = 0; s < data.length; s += 37) segs.push([s, Math.min(37, data.length - s)]);
      segs.push([data.length, 0]);
      const shuffled = segs
        .map((seg, i) => ({ seg, k: order[i % Math.max(1, order.length)] ?? i }))
        .sort((x, y) => x.k - y.k);
      const b = new ReceiveBuffer(data.length);
      const got: number[] = [];
      for (const { seg } of shuffled) {
        const [s, l] = seg;
        expect(
          b.receive(
            s,
            data.subarray(s, s + l),
            s + l === data.length && l >= 0 && seg === segs[segs.length - 1],
          ),
        ).toBeUndefined();
        got.push(...b.read());
        expect(b.bufferedBytes).toBeLessThanOrEqual(data.length);
      }
      expect(got).toEqual([...data]);
      expect(b.finished).toBe(true);
    },
  );
});

describe('flow control credit (RFC 9000 §4.1, §4.2)', () => {
  it('announces a larger limit once half the window is consumed', () => {
    const c = new ReceiveCredit(1000);
    expect(c.onConsumed(400)).toBeUndefined();
    expect(c.onConsumed(100)).toBe(1500);
    expect(c.onConsumed(10)).toBeUndefined();
  });
  it('reports blocked once per limit; limits only grow', () => {
    const s = new SendCredit(100);
    s.onSent(100);
    expect(s.blocked()).toBe(100);
    expect(s.blocked()).toBeUndefined();
    s.onMaxData(50);
    expect(s.maxData).toBe(100);
    s.onMaxData(150);
    expect(s.available).toBe(50);
    expect(() => s.onSent(51)).toThrow(RangeError);
  });
});
