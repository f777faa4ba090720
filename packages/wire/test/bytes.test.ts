import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, concatBytes, fromHex, ParseError, toHex } from '../src/index.ts';

describe('ByteReader', () => {
  it('reads big-endian integers and names the field that runs off the end', () => {
    const r = new ByteReader(fromHex('01 0203 040506 0708090a 0b0c0d0e0f101112'), 'test');
    expect(r.u8('a')).toBe(1);
    expect(r.u16('b')).toBe(0x0203);
    expect(r.u24('c')).toBe(0x040506);
    expect(r.u32('d')).toBe(0x0708090a);
    expect(r.u64('e')).toBe(0x0b0c0d0e0f101112n);
    expect(r.atEnd).toBe(true);
    let err: unknown;
    try {
      r.u8('past');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParseError);
    expect(err).toMatchObject({ layer: 'test', field: 'past', offset: 18 });
  });

  it('sub-readers report offsets in the outer buffer', () => {
    const r = new ByteReader(new Uint8Array(10), 'x');
    r.skip(4, 'pad');
    const s = r.sub(3, 'inner');
    s.u16('a');
    expect(() => s.u16('b')).toThrow(expect.objectContaining({ offset: 6, field: 'b' }));
    expect(() => r.sub(4, 'too-long')).toThrow(ParseError);
  });

  it('end() rejects trailing bytes', () => {
    const r = new ByteReader(new Uint8Array(2), 'x');
    r.u8('a');
    expect(() => r.end('msg')).toThrow(/trailing/);
  });

  test.prop([fc.array(fc.tuple(fc.constantFrom(1, 2, 3, 4), fc.nat()))])(
    'writer and reader agree',
    (items) => {
      const w = new ByteWriter(1);
      const masked = items.map(([size, v]) => [size, size === 4 ? v >>> 0 : v % 2 ** (8 * size)] as const);
      for (const [size, v] of masked) {
        if (size === 1) w.u8(v);
        else if (size === 2) w.u16(v);
        else if (size === 3) w.u24(v);
        else w.u32(v);
      }
      const r = new ByteReader(w.finish(), 't');
      for (const [size, v] of masked) {
        const got = size === 1 ? r.u8('f') : size === 2 ? r.u16('f') : size === 3 ? r.u24('f') : r.u32('f');
        expect(got).toBe(v);
      }
      expect(r.atEnd).toBe(true);
    },
  );

  test.prop([fc.uint8Array(), fc.nat({ max: 300 })])('bytesView never reads outside the buffer', (buf, n) => {
    const r = new ByteReader(buf, 't');
    if (n <= buf.length) expect(r.bytesView(n, 'f')).toEqual(buf.subarray(0, n));
    else expect(() => r.bytesView(n, 'f')).toThrow(ParseError);
  });
});

describe('hex and concat', () => {
  test.prop([fc.uint8Array(), fc.uint8Array()])('toHex/fromHex and concatBytes', (a, b) => {
    expect(fromHex(toHex(a))).toEqual(a);
    expect(toHex(concatBytes(a, b))).toBe(toHex(a) + toHex(b));
  });
});
