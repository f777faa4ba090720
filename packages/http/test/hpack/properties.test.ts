/** HPACK laws as properties: round-trip through an encoder/decoder pair across many blocks,
 * and decoder totality over arbitrary bytes; plus the HPACK-bomb bound. */
import { ParseError } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HeaderListTooLargeError,
  HpackDecoder,
  HpackEncoder,
  huffmanDecode,
  huffmanEncode,
} from '../../src/hpack/index.ts';
import {
  arbitraryHeaderBlockSequence,
  arbitraryHeaderList,
  arbitraryOctetString,
} from '../../src/hpack/testing.ts';

describe('HPACK properties', () => {
  it('Huffman: decode(encode(s)) = s for any octet string', () => {
    fc.assert(
      fc.property(arbitraryOctetString(200), (s) => {
        expect(huffmanDecode(huffmanEncode(s))).toBe(s);
      }),
    );
  });

  it('Huffman: decode of arbitrary bytes returns a string or throws ParseError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          huffmanDecode(b);
        } catch (e) {
          expect(e).toBeInstanceOf(ParseError);
        }
      }),
    );
  });

  it('a connection’s header blocks round-trip through an encoder/decoder pair, table sizes changing', () => {
    fc.assert(
      fc.property(
        arbitraryHeaderBlockSequence,
        fc.constantFrom('auto', 'never', 'always'),
        (seq, huffman) => {
          const enc = new HpackEncoder({ huffman });
          const dec = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
          seq.blocks.forEach((list, i) => {
            const size = seq.tableSizes[i];
            if (size !== undefined) {
              // The SETTINGS_HEADER_TABLE_SIZE exchange: the decoder's side announces, the encoder obeys.
              dec.setMaxTableSize(size);
              enc.setMaxTableSize(size);
            }
            const out = dec.decode(enc.encode(list));
            expect(out.map((f) => [f.name, f.value])).toEqual(list.map((f) => [f.name, f.value]));
            // A sensitive field stays never-indexed (RFC 7541 §6.2.3); the policy may add others (credentials).
            list.forEach((f, j) => {
              if (f.sensitive) expect(out[j]?.sensitive).toBe(true);
            });
            // Both tables stay identical: that is what keeps a connection decodable.
            expect(dec.table.entries()).toEqual(enc.table.entries());
            expect(dec.table.size).toBeLessThanOrEqual(dec.table.maxSize);
          });
        },
      ),
    );
  });

  it('decode of arbitrary bytes returns a list or throws ParseError, on a fresh and on a used table', () => {
    fc.assert(
      fc.property(
        arbitraryHeaderList(),
        fc.oneof(
          fc.uint8Array({ maxLength: 100 }),
          // Indexed fields with long integer encodings, the shape that once produced NaN indices.
          fc
            .array(fc.constantFrom(0xff, 0x80, 0x7f, 0x01, 0xbe), { maxLength: 60 })
            .map((a) => Uint8Array.from(a)),
        ),
        (warm, junk) => {
          const enc = new HpackEncoder();
          const dec = new HpackDecoder();
          dec.decode(enc.encode(warm));
          for (const d of [dec, new HpackDecoder()]) {
            try {
              const out = d.decode(junk);
              for (const f of out) {
                expect(typeof f.name).toBe('string');
                expect(typeof f.value).toBe('string');
              }
            } catch (e) {
              expect(e).toBeInstanceOf(ParseError);
            }
          }
        },
      ),
    );
  });
});

describe('HPACK bomb (header list size limit)', () => {
  it('a 4 KB table entry referenced 10 000 times is refused without building the list, and the table stays in step', () => {
    const dec = new HpackDecoder({ maxHeaderListSize: 16 * 1024 });
    const enc = new HpackEncoder();
    const big = { name: 'x-bomb', value: 'A'.repeat(3000) };
    const first = enc.encode([big]);
    expect(dec.decode(first)).toHaveLength(1);
    // 0xbe is index 62: the newest dynamic entry. 10 000 bytes would expand to 30 MB.
    const bomb = new Uint8Array(10_000).fill(0xbe);
    let err: unknown;
    try {
      dec.decode(bomb);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HeaderListTooLargeError);
    expect((err as HeaderListTooLargeError).size).toBe(10_000 * (6 + 3000 + 32));
    // Still usable: the next block referencing the entry decodes normally.
    expect(dec.decode(enc.encode([big]))).toEqual([big]);
  });
});
