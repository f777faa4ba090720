import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { finishChecksum, fromHex, internetChecksum, sum16, updateChecksum } from '../src/index.ts';

/** The plain definition of RFC 1071: a peer implementation to check the optimised one. */
function referenceChecksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i]! << 8) | (data[i + 1] ?? 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

describe('Internet checksum (RFC 1071)', () => {
  it('matches the worked example of RFC 1071 §3', () => {
    // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum (folded) to ddf2, checksum is its complement.
    const data = fromHex('0001f203f4f5f6f7');
    expect(finishChecksum(sum16(data))).toBe(~0xddf2 & 0xffff);
  });

  it('verifies a real IPv4 header to zero', () => {
    // A header captured from Linux (checksum b861 in place): summing with it gives 0.
    const hdr = fromHex('45000073000040004011b861c0a80001c0a800c7');
    expect(internetChecksum(hdr)).toBe(0);
  });

  test.prop([fc.uint8Array({ maxLength: 3000 })])('agrees with the reference definition', (data) => {
    expect(internetChecksum(data)).toBe(referenceChecksum(data));
  });

  test.prop([fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 })])(
    'is associative over even-length chunks (RFC 1071 §2(B))',
    (a, b) => {
      const even = a.length % 2 === 0 ? a : a.subarray(1);
      const joined = new Uint8Array([...even, ...b]);
      expect(internetChecksum(even, b)).toBe(internetChecksum(joined));
    },
  );

  test.prop([
    fc.uint8Array({ minLength: 2, maxLength: 64 }).filter((x) => x.length % 2 === 0),
    fc.nat(),
    fc.nat({ max: 0xffff }),
  ])('incremental update equals recomputation (RFC 1624 eqn. 3)', (data, at, word) => {
    const i = (at % (data.length / 2)) * 2;
    const before = internetChecksum(data);
    const old = (data[i]! << 8) | data[i + 1]!;
    const changed = data.slice();
    changed[i] = word >> 8;
    changed[i + 1] = word & 0xff;
    const after = internetChecksum(changed);
    const inc = updateChecksum(before, old, word);
    // RFC 1624 §3: +0 and -0 (0x0000 / 0xffff) are the same one's-complement value.
    expect(inc === after || (inc ^ after) === 0xffff).toBe(true);
  });
});
