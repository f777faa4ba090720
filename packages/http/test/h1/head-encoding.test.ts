import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  encodeResponseHead,
  encodeResponseHeadText,
  type ResponseHead,
  responseHeadSize,
  writeResponseHead,
} from '../../src/h1/codec.ts';
import { arbitraryField, arbitraryResponseHead } from '../../src/h1/testing.ts';

const v11 = { major: 1, minor: 1 };
const latin1 = (b: Uint8Array) => Buffer.from(b).toString('latin1');

describe('response head encoding (status-line cache)', () => {
  it('a cached status line is reused only for the same reason; others are checked and written', () => {
    const a = encodeResponseHead({ version: v11, status: 200, reason: 'OK', fields: [] });
    const b = encodeResponseHead({ version: v11, status: 200, reason: 'Fine', fields: [['X', '1']] });
    const c = encodeResponseHead({ version: v11, status: 200, reason: 'OK', fields: [] });
    expect(latin1(a)).toBe('HTTP/1.1 200 OK\r\n\r\n');
    expect(latin1(b)).toBe('HTTP/1.1 200 Fine\r\nX: 1\r\n\r\n');
    expect(latin1(c)).toBe('HTTP/1.1 200 OK\r\n\r\n');
    expect(
      latin1(encodeResponseHead({ version: { major: 1, minor: 0 }, status: 200, reason: 'OK', fields: [] })),
    ).toBe('HTTP/1.0 200 OK\r\n\r\n');
  });

  it('a bad reason or status is refused even after a good line for that status was cached', () => {
    encodeResponseHead({ version: v11, status: 404, reason: 'Not Found', fields: [] });
    expect(() => encodeResponseHead({ version: v11, status: 404, reason: 'x\r\ny', fields: [] })).toThrow(
      TypeError,
    );
    expect(() => encodeResponseHead({ version: v11, status: 1000, reason: 'OK', fields: [] })).toThrow(
      TypeError,
    );
    expect(() =>
      encodeResponseHead({ version: v11, status: 404, reason: 'Not Found', fields: [['a b', 'c']] }),
    ).toThrow(TypeError);
  });

  it('the text form is the byte form, one char per byte (obs-text included)', () => {
    const h = { version: v11, status: 200, reason: 'OK', fields: [['X-Y', 'caf\xe9']] as [string, string][] };
    expect(Buffer.from(encodeResponseHeadText(h), 'latin1').equals(Buffer.from(encodeResponseHead(h)))).toBe(
      true,
    );
  });

  // The server writes heads in place (writeResponseHead into a buffer of responseHeadSize):
  // the same bytes as the text form, at any offset, and the size exact.
  fcTest.prop([
    arbitraryResponseHead,
    fc.nat(16),
    fc.array(
      fc.oneof(
        arbitraryField,
        // long values take latin1Write rather than the char-by-char copy
        fc
          .tuple(arbitraryField, fc.integer({ min: 60, max: 300 }))
          .map(([[n, v], k]): [string, string] => [n, `${'\xe9x'.repeat(k)}${v}`]),
      ),
      { maxLength: 4 },
    ),
  ])(
    'writeResponseHead writes encodeResponseHead bytes, in exactly responseHeadSize',
    (head, offset, more) => {
      const h: ResponseHead = {
        ...head,
        status: Math.max(200, head.status),
        fields: [...head.fields, ...more],
      };
      const expected = Buffer.from(encodeResponseHead(h));
      const size = responseHeadSize(h);
      expect(size).toBe(expected.length);
      const b = Buffer.alloc(offset + size + 3, 0xaa);
      expect(writeResponseHead(h, b, offset)).toBe(offset + size);
      expect(b.subarray(offset, offset + size).equals(expected)).toBe(true);
      // nothing written outside its room
      expect(b.subarray(0, offset).every((x) => x === 0xaa)).toBe(true);
      expect(b.subarray(offset + size).every((x) => x === 0xaa)).toBe(true);
    },
  );

  it('responseHeadSize refuses what encodeResponseHead refuses', () => {
    const bad: ResponseHead = { version: v11, status: 200, reason: 'OK', fields: [['a b', 'c']] };
    expect(() => responseHeadSize(bad)).toThrow(TypeError);
    expect(() => responseHeadSize({ ...bad, fields: [['a', 'x\ry']] })).toThrow(TypeError);
    expect(() => responseHeadSize({ ...bad, fields: [['a', 'caf\u0100']] })).toThrow(TypeError);
  });
});
