import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import {
  ByteReader,
  concatBytes,
  joinBytes,
  ParseError,
  readU16,
  readU32,
  truncated,
  writeU16,
  writeU32,
} from '../src/index.ts';
import { parseErrorOf } from '../src/testing.ts';

// The offset rule of ParseError (src/errors.ts) and the field access codecs use with
// their named offsets.

/** A contiguous layout of `sizes.length` fields named f0, f1, ... in wire order. */
function layoutOf(sizes: number[]): [Record<string, number>, number] {
  const layout: Record<string, number> = {};
  let at = 0;
  sizes.forEach((n, i) => {
    layout[`f${i}`] = at;
    at += n;
  });
  return [layout, at];
}

describe('truncated()', () => {
  test.prop([fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 }), fc.nat()])(
    "names the field the input ends in, at that field's offset",
    (sizes, cut) => {
      const [layout, need] = layoutOf(sizes);
      const length = cut % need;
      const e = truncated('t', layout, length, need);
      const i = Number(e.field.slice(1));
      expect(e.offset).toBe(layout[e.field]);
      // The field starts at or before the end of the input and is not whole there.
      expect(e.offset).toBeLessThanOrEqual(length);
      expect(length).toBeLessThan(e.offset + (sizes[i] ?? 0));
    },
  );

  test.prop([fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 }), fc.nat()])(
    'agrees with ByteReader reading the same fields in order',
    (sizes, cut) => {
      const [layout, need] = layoutOf(sizes);
      const bytes = new Uint8Array(cut % need);
      const byReader = parseErrorOf((b) => {
        const r = new ByteReader(b, 't');
        for (const [i, n] of sizes.entries()) r.skip(n, `f${i}`);
      }, bytes);
      const e = truncated('t', layout, bytes.length, need);
      expect(byReader).toBeInstanceOf(ParseError);
      expect([e.field, e.offset]).toEqual([byReader?.field, byReader?.offset]);
    },
  );
});

describe('named-offset field access', () => {
  test.prop([fc.uint8Array({ minLength: 4, maxLength: 64 }), fc.nat()])(
    'readU16/readU32 read as DataView does',
    (b, n) => {
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const at16 = n % (b.length - 1);
      const at32 = n % (b.length - 3);
      expect(readU16(b, at16)).toBe(view.getUint16(at16));
      expect(readU32(b, at32)).toBe(view.getUint32(at32));
    },
  );

  test.prop([fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.nat(8)])(
    'writeU16/writeU32 write as DataView does and touch only their bytes',
    (v16, v32, at) => {
      const ours = new Uint8Array(16).fill(0xa5);
      const theirs = new Uint8Array(16).fill(0xa5);
      const view = new DataView(theirs.buffer);
      writeU16(ours, at, v16);
      view.setUint16(at, v16);
      writeU32(ours, at + 4, v32);
      view.setUint32(at + 4, v32);
      expect(ours).toEqual(theirs);
    },
  );
});

describe('concatBytes', () => {
  test.prop([fc.array(fc.uint8Array({ maxLength: 32 }), { maxLength: 5 })])(
    'equals Buffer.concat and is a new buffer, for any number of parts',
    (parts) => {
      const out = concatBytes(...parts);
      expect(out).toEqual(new Uint8Array(Buffer.concat(parts)));
      expect(joinBytes(parts)).toEqual(out);
      // Never one of the parts (callers keep the result while reusing their buffers).
      for (const p of parts) expect(out.buffer).not.toBe(p.buffer);
    },
  );
});
