import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { seqAdd, seqDiff, seqGt, seqInWindow, seqLt } from '../src/index.ts';

describe('serial arithmetic (RFC 1982, 32 bits)', () => {
  it('wraps around 2^32', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqLt(0xfffffff0, 5)).toBe(true);
    expect(seqGt(5, 0xfffffff0)).toBe(true);
    expect(seqDiff(5, 0xfffffff0)).toBe(21);
    expect(seqInWindow(2, 0xfffffffe, 10)).toBe(true);
  });
  test.prop([fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 2 ** 31 - 1 })])(
    'a < a + n for 0 < n < 2^31',
    (a, n) => {
      expect(seqLt(a, seqAdd(a, n))).toBe(true);
      expect(seqGt(seqAdd(a, n), a)).toBe(true);
      expect(seqDiff(seqAdd(a, n), a)).toBe(n);
    },
  );
});
