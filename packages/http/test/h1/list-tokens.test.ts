import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { type Field, listTokens } from '../../src/h1/codec.ts';

/** RFC 9110 §5.6.1 lists, the plain way: every value split on commas, trimmed, lower-cased. */
function reference(fields: readonly Field[], lower: string): string[] {
  return fields
    .filter(([n]) => n.toLowerCase() === lower)
    .flatMap(([, v]) => v.split(','))
    .map((e) => e.trim().toLowerCase())
    .filter((t) => t.length > 0);
}

const name = fc.constantFrom('Connection', 'connection', 'CONNECTION', 'Upgrade', 'Expect', 'X-Conn');
const value = fc.stringMatching(/^[ a-zA-Z0-9,\t-]{0,24}$/);

describe('listTokens', () => {
  fcTest.prop([fc.array(fc.tuple(name, value) as fc.Arbitrary<Field>, { maxLength: 6 })])(
    'equals splitting every value of the field on commas (the one-element fast path included)',
    (fields) => {
      expect(listTokens(fields, 'connection')).toEqual(reference(fields, 'connection'));
      expect(listTokens(fields, 'upgrade')).toEqual(reference(fields, 'upgrade'));
    },
  );
});
