import { ParseError } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  formatIpv4,
  formatIpv6,
  ipv4BroadcastOf,
  parseIp,
  parseIpv4,
  parseIpv6,
  parsePrefix,
  prefixContains,
  tryParseIp,
} from '../src/address.ts';

describe('IPv4 text', () => {
  it('parses and formats dotted quads', () => {
    expect([...parseIpv4('198.18.0.1')]).toEqual([198, 18, 0, 1]);
    expect(formatIpv4(new Uint8Array([255, 255, 255, 255]))).toBe('255.255.255.255');
    expect(formatIpv4(new Uint8Array([0, 0, 0, 0]))).toBe('0.0.0.0');
  });
  it.each(['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.', ' 1.2.3.4', '1.2.3.a', ''])(
    'rejects %j with ParseError',
    (t) => {
      expect(() => parseIpv4(t)).toThrow(ParseError);
    },
  );
  it('round-trips every address', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
        expect(parseIpv4(formatIpv4(b))).toEqual(b);
      }),
      { numRuns: 500 },
    );
  });
});

describe('IPv6 text (RFC 4291 §2.2, RFC 5952)', () => {
  // Examples from RFC 5952 §4 and RFC 4291 §2.2.
  it.each([
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8::0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // §4.2.2: no single-group '::'
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // §4.2.3: the longest run
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // §4.2.3: first of equal runs
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['FF01:0:0:0:0:0:0:101', 'ff01::101'],
    ['::13.1.68.3', '::d01:4403'],
    ['::ffff:129.144.52.38', '::ffff:8190:3426'],
    ['fd00:5757:0000:0000:0000:0000:0000:0001', 'fd00:5757::1'],
  ])('%s -> %s', (input, canonical) => {
    expect(canonicalIp(input)).toBe(canonical);
  });
  it.each([
    ':',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '12345::',
    'g::1',
    '1::2:3:4:5:6:7:8',
    'fe80::1%eth0',
    '::1.2.3',
  ])('rejects %j with ParseError', (t) => {
    expect(() => parseIpv6(t)).toThrow(ParseError);
  });
  it('round-trips every address, and canonical text is a fixed point', () => {
    const groups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
      minLength: 8,
      maxLength: 8,
    });
    fc.assert(
      fc.property(groups, (ws) => {
        const b = new Uint8Array(16);
        ws.forEach((w, i) => {
          b[2 * i] = w >> 8;
          b[2 * i + 1] = w & 0xff;
        });
        const text = formatIpv6(b);
        expect(parseIpv6(text)).toEqual(b);
        expect(canonicalIp(text)).toBe(text);
        expect(text).toBe(text.toLowerCase());
        expect(text.split('::').length).toBeLessThanOrEqual(2);
      }),
      { numRuns: 1000 },
    );
  });
  it('never throws anything but ParseError on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:./%x'.split('')) }), (t) => {
        tryParseIp(t);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('prefixes', () => {
  it('parses, clears host bits and matches', () => {
    const p = parsePrefix('198.18.0.1/15');
    expect(p.text).toBe('198.18.0.0/15');
    expect(p.address).toBe('198.18.0.1');
    expect(prefixContains(p, parseIp('198.19.255.255'))).toBe(true);
    expect(prefixContains(p, parseIp('198.20.0.0'))).toBe(false);
    expect(prefixContains(p, parseIp('fd00::1'))).toBe(false);
    const q = parsePrefix('FD00:5757::1/64');
    expect(q.text).toBe('fd00:5757::/64');
    expect(prefixContains(q, parseIp('fd00:5757::ffff:1'))).toBe(true);
    expect(prefixContains(q, parseIp('fd00:5758::1'))).toBe(false);
    expect(parsePrefix('0.0.0.0/0').length).toBe(0);
    expect(prefixContains(parsePrefix('::/0'), parseIp('fd00::1'))).toBe(true);
    expect(parsePrefix('10.0.0.1').length).toBe(32);
    expect(ipv4BroadcastOf(parsePrefix('198.18.0.1/24'))).toBe('198.18.0.255');
  });
  it.each(['1.2.3.4/33', '::/129', '1.2.3.4/', '1.2.3.4/08', 'x/1'])('rejects %j', (t) => {
    expect(() => parsePrefix(t)).toThrow(ParseError);
  });
  it('matches exactly the addresses sharing the first len bits', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 128 }),
        (a, b, len) => {
          const p = parsePrefix(`${formatIpv6(a)}/${len}`);
          let same = true;
          for (let bit = 0; bit < len; bit++) {
            const m = 0x80 >> (bit & 7);
            if ((a[bit >> 3]! & m) !== (b[bit >> 3]! & m)) same = false;
          }
          expect(prefixContains(p, b)).toBe(same);
          expect(prefixContains(p, a)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
