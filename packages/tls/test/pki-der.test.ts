import { fc, test } from '@fast-check/vitest';
import { fromHex, ParseError, toHex } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import {
  DerReader,
  decodeAsn1,
  decodeInteger,
  decodeOid,
  der,
  encodeAsn1,
  MAX_DEPTH,
} from '../src/pki/der.ts';
import {
  arbitraryAsn1Node,
  arbitraryDirectoryString,
  arbitraryGeneralizedDate,
  arbitraryOid,
  arbitraryUtcDate,
} from '../src/pki/testing.ts';

function parseErrorOf(f: () => unknown): ParseError {
  try {
    f();
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('expected a ParseError');
}

describe('DER examples (X.690 §8, RFC 5280)', () => {
  it('encodes INTEGERs minimally in two’s complement', () => {
    expect(toHex(der.integer(0))).toBe('020100');
    expect(toHex(der.integer(127))).toBe('02017f');
    expect(toHex(der.integer(128))).toBe('02020080');
    expect(toHex(der.integer(256))).toBe('02020100');
    expect(toHex(der.integer(-128))).toBe('020180');
    expect(toHex(der.integer(-129))).toBe('0202ff7f');
    expect(decodeInteger(fromHex('0202ff7f'))).toBe(-129n);
  });

  it('encodes OIDs: X.690 §8.19.5 example and real ones', () => {
    // X.690 §8.19.5: {2 999 3} is 06 03 88 37 03.
    expect(toHex(der.oid('2.999.3'))).toBe('0603883703');
    expect(decodeOid(fromHex('0603883703'))).toBe('2.999.3');
    // sha256WithRSAEncryption
    expect(toHex(der.oid('1.2.840.113549.1.1.11'))).toBe('06092a864886f70d01010b');
    expect(decodeOid(fromHex('06032b6570'))).toBe('1.3.101.112');
  });

  it('long lengths and high tag numbers', () => {
    const long = der.octetString(new Uint8Array(300));
    expect(toHex(long.subarray(0, 4))).toBe('0482012c');
    const high = encodeAsn1({
      cls: 'context',
      constructed: false,
      tagNumber: 201,
      contents: new Uint8Array(0),
    });
    expect(toHex(high)).toBe('9f814900');
    expect(decodeAsn1(high)).toEqual({
      cls: 'context',
      constructed: false,
      tagNumber: 201,
      contents: new Uint8Array(),
    });
  });

  it('times follow RFC 5280 §4.1.2.5', () => {
    const r = (hex: string) => new DerReader(fromHex(hex)).time('t');
    // UTCTime 491231235959Z is 2049; 500101000000Z is 1950.
    expect(r(`170d${toHex(new TextEncoder().encode('491231235959Z'))}`).toISOString()).toBe(
      '2049-12-31T23:59:59.000Z',
    );
    expect(r(`170d${toHex(new TextEncoder().encode('500101000000Z'))}`).toISOString()).toBe(
      '1950-01-01T00:00:00.000Z',
    );
    expect(r(`180f${toHex(new TextEncoder().encode('20500101000000Z'))}`).toISOString()).toBe(
      '2050-01-01T00:00:00.000Z',
    );
    expect(toHex(der.time(new Date('2050-01-01T00:00:00Z'))).slice(0, 4)).toBe('180f');
    expect(toHex(der.time(new Date('2049-12-31T23:59:59Z'))).slice(0, 4)).toBe('170d');
    // Rejected: no seconds, no Z, fractions, offsets, impossible dates.
    for (const bad of [
      '4912312359Z',
      '491231235959',
      '20500101000000.5Z',
      '491231235959+0100',
      '490230000000Z',
    ]) {
      const tag = bad.length >= 15 ? '18' : '17';
      const hex = `${tag}${bad.length.toString(16).padStart(2, '0')}${toHex(new TextEncoder().encode(bad))}`;
      expect(parseErrorOf(() => r(hex)).layer).toBe('asn1');
    }
  });

  it('rejects what DER forbids, naming the field and offset', () => {
    const cases: [string, string][] = [
      ['3080020100 0000', 'indefinite'],
      ['04810100', 'non-minimal length'],
      ['0202007f', 'non-minimal INTEGER'],
      ['010101', 'BOOLEAN'],
      ['0302070f', 'unused bits'],
      ['06028001', 'non-minimal OID'],
      ['1f0500', 'high-tag form'],
      ['0405010203', 'exceeds'],
      ['0500 00', 'trailing'],
    ];
    for (const [hex, why] of cases) {
      const e = parseErrorOf(() => {
        const r = new DerReader(fromHex(hex));
        const t = r.peekTag();
        if (t?.number === 2) r.integer('x');
        else if (t?.number === 1) r.boolean('x');
        else if (t?.number === 3) r.bitString('x');
        else if (t?.number === 6) r.oid('x');
        else decodeAsn1(fromHex(hex));
      });
      expect(e.layer).toBe('asn1');
      expect(e.message.toLowerCase()).toContain(why.toLowerCase());
    }
  });

  it('caps nesting depth', () => {
    let x = der.null();
    for (let i = 0; i < MAX_DEPTH + 5; i++) x = der.sequence(x);
    expect(parseErrorOf(() => decodeAsn1(x)).reason).toContain('nesting');
    let ok = der.null();
    for (let i = 0; i < MAX_DEPTH - 1; i++) ok = der.sequence(ok);
    expect(encodeAsn1(decodeAsn1(ok))).toEqual(ok);
  });

  it('explicit and implicit context tags', () => {
    const bytes = der.sequence(
      der.explicit(0, der.integer(2)),
      der.implicit(2, Uint8Array.of(1, 2)),
      der.integer(5),
    );
    const r = new DerReader(bytes).sequence('s');
    expect(r.optionalExplicit(1, 'a')).toBeUndefined();
    expect(r.optionalExplicit(0, 'v')!.integer('v')).toBe(2n);
    expect(r.optionalImplicit(1, 'b', false)).toBeUndefined();
    expect([...r.optionalImplicit(2, 'c', false)!.contents]).toEqual([1, 2]);
    expect(r.integer('n')).toBe(5n);
    r.end('s');
  });

  it('SET OF is written in DER order', () => {
    expect(toHex(der.setOf(der.integer(2), der.integer(1)))).toBe('3106020101020102');
  });
});

describe('DER properties', () => {
  test.prop([arbitraryAsn1Node], { numRuns: 400 })('tree round-trip: decode(encode(x)) = x', (node) => {
    const bytes = encodeAsn1(node);
    expect(decodeAsn1(bytes)).toEqual(node);
    expect(encodeAsn1(decodeAsn1(bytes))).toEqual(bytes);
  });

  test.prop([fc.bigInt({ min: -(1n << 2100n), max: 1n << 2100n })])('INTEGER round-trip', (v) => {
    expect(decodeInteger(der.integer(v))).toBe(v);
  });

  test.prop([fc.uint8Array({ maxLength: 64 })])('unsigned INTEGER magnitudes round-trip', (m) => {
    const r = new DerReader(der.unsignedInteger(m));
    const got = r.unsignedIntegerBytes('m');
    let i = 0;
    while (i < m.length - 1 && m[i] === 0) i++;
    expect(got).toEqual(m.length === 0 ? Uint8Array.of(0) : m.slice(i));
  });

  test.prop([arbitraryOid])('OID round-trip', (oid) => {
    expect(decodeOid(der.oid(oid))).toBe(oid);
  });

  test.prop([arbitraryDirectoryString])('string round-trip', (s) => {
    expect(new DerReader(der.string(s.type, s.value)).string('s')).toEqual(s);
  });

  test.prop([fc.oneof(arbitraryUtcDate, arbitraryGeneralizedDate)])('time round-trip', (d) => {
    expect(new DerReader(der.time(d)).time('t').getTime()).toBe(d.getTime());
    expect(new DerReader(der.generalizedTime(d)).time('t').getTime()).toBe(d.getTime());
  });

  test.prop([arbitraryBytes(300)], { numRuns: 2000 })(
    'arbitrary bytes: decodeAsn1 returns or throws ParseError',
    (b) => decodesOrParseError(decodeAsn1, b),
  );

  test.prop([arbitraryAsn1Node, fc.nat(), fc.integer({ min: 0, max: 255 })], { numRuns: 500 })(
    'mutated encodings: decodeAsn1 and typed readers return or throw ParseError',
    (node, at, value) => {
      const bytes = encodeAsn1(node).slice();
      if (bytes.length > 0) bytes[at % bytes.length] = value;
      decodesOrParseError(decodeAsn1, bytes);
      const typed = (b: Uint8Array) => {
        const r = new DerReader(b);
        for (let i = 0; i < 4 && !r.atEnd; i++) {
          const t = r.peekTag()!;
          if (t.constructed) r.sequence('s');
          else if (t.number === 2) r.integer('i');
          else if (t.number === 6) r.oid('o');
          else if (t.number === 3) r.bitString('b');
          else if (t.number === 23 || t.number === 24) r.time('t');
          else if (t.number === 1) r.boolean('b');
          else r.string('s');
        }
      };
      return decodesOrParseError(typed, bytes);
    },
  );
});
