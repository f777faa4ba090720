import { fc, test as fcTest } from '@fast-check/vitest';
import { ParseError } from '@stepwire/wire';
import { describe, expect } from 'vitest';
import { decodeSegment, encodeSegment, TCP, TCP_HEADER_LENGTH } from '../src/segment.ts';
import { arbitraryPseudoHeader, arbitraryTcpSegment } from '../src/testing.ts';

/**
 * The fixed header's errors name a field of the TCP layout at that field's offset
 * (ParseError's rule in packages/wire/src/errors.ts): a header cut short names the field
 * the input ended in; a bad Data Offset or checksum names that field.
 */
function errorOf(f: () => unknown): ParseError {
  try {
    f();
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('no ParseError');
}

const fields = Object.entries(TCP) as [keyof typeof TCP, number][];

describe('TCP header error offsets', () => {
  fcTest.prop([
    arbitraryTcpSegment(8),
    arbitraryPseudoHeader,
    fc.integer({ min: 0, max: TCP_HEADER_LENGTH - 1 }),
  ])('a header cut short names the layout field it ends in, at its offset', (seg, pseudo, keep) => {
    const e = errorOf(() => decodeSegment(encodeSegment(seg, pseudo).subarray(0, keep), pseudo));
    // The last field starting at or before the cut.
    const [name, at] = fields.filter(([, off]) => off <= keep).at(-1) as [string, number];
    expect(e.layer).toBe('tcp');
    expect(e.field).toBe(name);
    expect(e.offset).toBe(at);
    expect(e.offset).toBeLessThanOrEqual(keep);
  });

  fcTest.prop([arbitraryTcpSegment(8), arbitraryPseudoHeader, fc.integer({ min: 0, max: 4 })])(
    'a Data Offset below 5 words is the dataOffset field',
    (seg, pseudo, words) => {
      const b = encodeSegment(seg, pseudo);
      b[TCP.dataOffset] = (words << 4) | ((b[TCP.dataOffset] as number) & 0x0f);
      const e = errorOf(() => decodeSegment(b, pseudo));
      expect([e.field, e.offset]).toEqual(['dataOffset', TCP.dataOffset]);
    },
  );

  fcTest.prop([arbitraryTcpSegment(8), arbitraryPseudoHeader, fc.integer({ min: 1, max: 0xffff })])(
    'a checksum that does not verify is the checksum field',
    (seg, pseudo, delta) => {
      const b = encodeSegment(seg, pseudo);
      const was = ((b[TCP.checksum] as number) << 8) | (b[TCP.checksum + 1] as number);
      const ck = was ^ delta;
      // The other zero of one's complement (0x0000 <-> 0xffff) still verifies: not a bad sum.
      fc.pre(!((was === 0 && ck === 0xffff) || (was === 0xffff && ck === 0)));
      b[TCP.checksum] = ck >> 8;
      b[TCP.checksum + 1] = ck & 0xff;
      const e = errorOf(() => decodeSegment(b, pseudo));
      expect([e.field, e.offset]).toEqual(['checksum', TCP.checksum]);
    },
  );
});
