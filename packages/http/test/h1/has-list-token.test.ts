import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, test } from 'vitest';
import { type Field, hasListToken, listTokens } from '../../src/h1/codec.ts';

// hasListToken answers the keep-alive and upgrade questions (RFC 9110 §7.6.1, RFC 9112 §9.3)
// without building the list; it must agree with listTokens(...).includes(token) always.
const name = fc.constantFrom('Connection', 'connection', 'CONNECTION', 'Upgrade', 'Expect', 'X-Conn');
const element = fc.constantFrom(
  'close',
  'Close',
  ' CLOSE ',
  'keep-alive',
  'Keep-Alive',
  'upgrade',
  'closed',
  '',
  ' ',
);
const value = fc.oneof(
  fc.array(element, { maxLength: 4 }).map((es) => es.join(',')),
  fc.stringMatching(/^[ a-zA-Z0-9,\t-]{0,24}$/),
);
const token = fc.constantFrom('close', 'keep-alive', 'upgrade', '100-continue');

describe('hasListToken', () => {
  fcTest.prop([fc.array(fc.tuple(name, value) as fc.Arbitrary<Field>, { maxLength: 6 }), token])(
    'equals listTokens(fields, name).includes(token)',
    (fields, t) => {
      for (const n of ['connection', 'upgrade', 'expect'])
        expect(hasListToken(fields, n, t)).toBe(listTokens(fields, n).includes(t));
    },
  );

  test('finds a token in any element, any case, and not a token that only starts like it', () => {
    expect(hasListToken([['Connection', 'Keep-Alive, Upgrade']], 'connection', 'upgrade')).toBe(true);
    expect(hasListToken([['connection', ' CLOSE ']], 'connection', 'close')).toBe(true);
    expect(hasListToken([['Connection', 'closed']], 'connection', 'close')).toBe(false);
    expect(hasListToken([['X-Connection', 'close']], 'connection', 'close')).toBe(false);
    expect(hasListToken([], 'connection', 'close')).toBe(false);
  });
});
