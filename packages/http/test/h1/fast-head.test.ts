import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import {
  decodeRequestHead,
  decodeRequestHeadStrictly,
  encodeRequestHead,
  type HttpParseError,
} from '../../src/h1/codec.ts';
import { arbitraryRequestHead } from '../../src/h1/testing.ts';

/**
 * decodeRequestHead tries a one-pass scan of the head first (codec.ts, fastRequestHead) and
 * falls back to the byte-by-byte decoder. The scan must never accept what the strict
 * decoder refuses, nor read a head differently: checked on valid heads with one octet
 * replaced, inserted or removed, the octets chosen where the grammar's edges are.
 */
const outcome = (fn: () => unknown): unknown => {
  try {
    return { ok: fn() };
  } catch (e) {
    return { err: (e as HttpParseError).kind };
  }
};

const EDGE = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x2f, 0x3a, 0x30, 0x31, 0x39, 0x41, 0x61, 0x7e, 0x7f, 0x80, 0xff];
const octet = fc.oneof(fc.constantFrom(...EDGE), fc.integer({ min: 0, max: 255 }));

describe('the fast request-head scan', () => {
  fcTest.prop([
    arbitraryRequestHead,
    fc.array(fc.tuple(fc.constantFrom('replace', 'insert', 'remove'), fc.nat(), octet), {
      minLength: 1,
      maxLength: 3,
    }),
  ])('agrees with the strict decoder on mutated heads', (head, edits) => {
    let b = Buffer.from(encodeRequestHead(head));
    for (const [op, at, o] of edits) {
      const i = at % b.length;
      if (op === 'replace') b[i] = o;
      else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([o]), b.subarray(i)]);
      else b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    }
    expect(outcome(() => decodeRequestHead(b))).toEqual(outcome(() => decodeRequestHeadStrictly(b)));
  });

  fcTest.prop([arbitraryRequestHead])('reads every valid head as the strict decoder does', (head) => {
    const b = Buffer.from(encodeRequestHead(head));
    expect(decodeRequestHead(b)).toEqual(decodeRequestHeadStrictly(b));
  });
});
