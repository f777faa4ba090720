import fc from 'fast-check';
import { ParseError } from './errors.ts';

/** Arbitrary byte strings, biased toward short ones where parsers have most edge cases. */
export const arbitraryBytes = (maxLength = 256): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: 0, maxLength });

/**
 * The arbitrary-bytes law of every codec: decode returns a value or throws ParseError,
 * never anything else. Returns true so it can sit inside fc.property.
 */
export function decodesOrParseError<T>(decode: (b: Uint8Array) => T, bytes: Uint8Array): boolean {
  parseErrorOf(decode, bytes);
  return true;
}

/**
 * The ParseError `decode` throws for `bytes`, or undefined when it decodes; anything else
 * it throws is rethrown. For the error-offset properties (ParseError's doc comment).
 */
export function parseErrorOf<T>(decode: (b: Uint8Array) => T, bytes: Uint8Array): ParseError | undefined {
  try {
    decode(bytes);
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  return undefined;
}
