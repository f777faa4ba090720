import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, test } from 'vitest';
import { sameName, TCHAR } from '../../src/h1/codec.ts';

// sameName replaces n.toLowerCase() === lower in the framing and keep-alive decisions; for
// field names (tokens, RFC 9110 §5.6.2) it must give the same answer.
const tchars = Array.from({ length: 256 }, (_, c) => c)
  .filter((c) => TCHAR[c] === 1)
  .map((c) => String.fromCharCode(c));
const token = fc.array(fc.constantFrom(...tchars), { minLength: 1, maxLength: 18 }).map((a) => a.join(''));
const lowerTarget = fc.constantFrom(
  'host',
  'expect',
  'upgrade',
  'connection',
  'content-length',
  'transfer-encoding',
);
// a target with some letters flipped to upper case, or one byte changed: near misses too
const nearTarget = fc
  .tuple(
    lowerTarget,
    fc.array(fc.boolean(), { minLength: 17, maxLength: 17 }),
    fc.nat(16),
    fc.constantFrom(...tchars),
    fc.boolean(),
  )
  .map(([t, flips, at, ch, change]) => {
    let s = [...t].map((c, i) => (flips[i] ? c.toUpperCase() : c)).join('');
    if (change && at < s.length) s = s.slice(0, at) + ch + s.slice(at + 1);
    return s;
  });

describe('sameName', () => {
  fcTest.prop([fc.oneof(token, nearTarget), lowerTarget])(
    'equals toLowerCase() === name for tokens',
    (n, lower) => {
      expect(sameName(n, lower)).toBe(n.toLowerCase() === lower);
    },
  );

  test('letters match either case; other bytes only themselves', () => {
    expect(sameName('Content-Length', 'content-length')).toBe(true);
    expect(sameName('CONTENT-LENGTH', 'content-length')).toBe(true);
    // '-' | 0x20 is '-', and '\r' | 0x20 is '-' too: not a match
    expect(sameName('content\rlength', 'content-length')).toBe(false);
    expect(sameName('hosts', 'host')).toBe(false);
  });
});
