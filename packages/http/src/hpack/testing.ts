/** fast-check arbitraries for HPACK (RFC 7541), for our tests and for users' own. */
import fc from 'fast-check';
import type { HeaderField } from './table.ts';
import { STATIC_TABLE } from './table.ts';

/** A latin1 string: every char one octet, as HPACK carries them (RFC 7541 §5.2). */
export const arbitraryOctetString = (maxLength = 40): fc.Arbitrary<string> =>
  fc.uint8Array({ maxLength }).map((b) => String.fromCharCode(...b));

const tokenChars = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
const arbitraryName: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...STATIC_TABLE.map(([n]) => n)),
  fc.string({ unit: fc.constantFrom(...tokenChars.split('')), minLength: 1, maxLength: 16 }),
  arbitraryOctetString(12),
);
const arbitraryValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...STATIC_TABLE.map(([, v]) => v), 'gzip', 'text/html', '/index.html', '200'),
  fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x00-\xff]/g, '?')),
  arbitraryOctetString(60),
);

/** Header fields, some repeated and some marked sensitive, to exercise every representation. */
export const arbitraryHeaderField: fc.Arbitrary<HeaderField> = fc
  .tuple(arbitraryName, arbitraryValue, fc.integer({ min: 0, max: 9 }))
  .map(([name, value, r]) => (r === 0 ? { name, value, sensitive: true } : { name, value }));

export const arbitraryHeaderList = (maxLength = 12): fc.Arbitrary<HeaderField[]> =>
  fc.array(arbitraryHeaderField, { maxLength });

/**
 * A sequence of header blocks for one connection, with repeats drawn from a small pool so
 * the dynamic table is hit, and table size changes between blocks.
 */
export const arbitraryHeaderBlockSequence: fc.Arbitrary<{
  blocks: HeaderField[][];
  tableSizes: (number | undefined)[];
}> = fc.array(arbitraryHeaderField, { minLength: 1, maxLength: 10 }).chain((pool) =>
  fc.record({
    blocks: fc.array(fc.array(fc.oneof(fc.constantFrom(...pool), arbitraryHeaderField), { maxLength: 10 }), {
      minLength: 1,
      maxLength: 12,
    }),
    tableSizes: fc.array(fc.option(fc.integer({ min: 0, max: 4096 }), { nil: undefined }), {
      minLength: 12,
      maxLength: 12,
    }),
  }),
);
