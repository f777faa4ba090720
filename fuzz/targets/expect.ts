/**
 * The rule every target applies: the code under test may throw only the errors its contract
 * names (ParseError for a decoder, by default); anything else escapes and is a finding.
 */
import { ParseError } from '../../packages/wire/src/errors.ts';

export function only(run: () => unknown, ...allowed: (abstract new (...a: never[]) => Error)[]): void {
  try {
    run();
  } catch (e) {
    if (e instanceof ParseError) return;
    for (const c of allowed) if (e instanceof c) return;
    throw e;
  }
}

/** Splits fuzz bytes into chunks, each prefixed by a 1- or 2-byte big-endian length. */
export function chunks(data: Uint8Array, wide = true): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < data.length) {
    let n: number;
    if (wide) {
      n = ((data[at] ?? 0) << 8) | (data[at + 1] ?? 0);
      at += 2;
    } else {
      n = data[at] ?? 0;
      at += 1;
    }
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

/**
 * For codecs whose encoding is canonical: bytes that decode must encode back to exactly the
 * same bytes, or decode dropped or invented something. A ParseError from decode is fine.
 */
export function reencodes<T>(
  name: string,
  bytes: Uint8Array,
  decode: (b: Uint8Array) => T,
  encode: (v: T) => Uint8Array,
): void {
  let value: T;
  try {
    value = decode(bytes);
  } catch (e) {
    if (e instanceof ParseError) return;
    throw e;
  }
  const again = encode(value);
  if (again.length !== bytes.length || again.some((x, i) => x !== bytes[i])) {
    throw new Error(
      `${name}: ${bytes.length} octets decode to a value that encodes to ${again.length} different octets`,
    );
  }
}
