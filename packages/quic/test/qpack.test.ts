import { fc, test as fcTest } from '@fast-check/vitest';
import { fromHex, toHex, utf8 } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import { QpackDecoder } from '../src/qpack/decoder.ts';
import { QpackEncoder } from '../src/qpack/encoder.ts';
import { HUFFMAN_CODE_LENGTHS, HUFFMAN_CODES, huffmanDecode, huffmanEncode } from '../src/qpack/huffman.ts';
import {
  decodeDecoderInstructions,
  decodeEncoderInstructions,
  decodeFieldSection,
  encodeDecoderInstructions,
  encodeEncoderInstructions,
  encodeFieldSection,
  QpackError,
} from '../src/qpack/instructions.ts';
import { QPACK_STATIC_TABLE } from '../src/qpack/static-table.ts';
import {
  arbitraryDecoderInstruction,
  arbitraryEncodedFieldSection,
  arbitraryEncoderInstruction,
  arbitraryFieldList,
} from '../src/testing.ts';

const h = (s: string) => fromHex(s.replace(/\s/g, ''));

describe('Huffman code (RFC 7541 §5.2, Appendix B), shared by QPACK (RFC 9204 §4.1.2)', () => {
  it('is a complete prefix code whose first codes match Appendix B', () => {
    expect(HUFFMAN_CODE_LENGTHS.reduce((s, l) => s + 2 ** -l, 0)).toBe(1);
    // Appendix B, symbols 0..9, ' ' (32), '0' (48), 'a' (97), EOS (256).
    expect(HUFFMAN_CODES.slice(0, 10)).toEqual([
      0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7, 0xfffffe8, 0xffffea,
    ]);
    expect([HUFFMAN_CODES[32], HUFFMAN_CODES[48], HUFFMAN_CODES[97], HUFFMAN_CODES[256]]).toEqual([
      0x14, 0x0, 0x3, 0x3fffffff,
    ]);
  });
  // RFC 7541 Appendix C.4.1-C.4.3 Huffman-coded strings.
  it.each([
    ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
    ['no-cache', 'a8eb 1064 9cbf'],
    ['custom-key', '25a8 49e9 5ba9 7d7f'],
    ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
  ])('RFC 7541 C.4: %s', (text, hex) => {
    expect(toHex(huffmanEncode(utf8(text)))).toBe(hex.replace(/ /g, ''));
    expect(huffmanDecode(h(hex))).toEqual(utf8(text));
  });
  it('rejects EOS, long padding and padding that is not all ones (§5.2)', () => {
    expect(huffmanDecode(h('ffffffff'))).toBe('EOS in string');
    expect(huffmanDecode(h('1fff'))).toBe('padding longer than 7 bits'); // '0' then 11 ones
    expect(huffmanDecode(h('00'))).toBe('padding not all ones'); // '0' (00000) then 000
  });
  fcTest.prop([fc.uint8Array({ maxLength: 64 })])('round trip', (b) => {
    expect(huffmanDecode(huffmanEncode(b))).toEqual(b);
  });
  fcTest.prop([arbitraryBytes(32)])('arbitrary bytes decode or report an error', (b) => {
    const r = huffmanDecode(b);
    expect(typeof r === 'string' || r instanceof Uint8Array).toBe(true);
  });
});

describe('QPACK static table (RFC 9204 Appendix A)', () => {
  it('has 99 entries with the RFC’s landmarks', () => {
    expect(QPACK_STATIC_TABLE).toHaveLength(99);
    expect(QPACK_STATIC_TABLE[0]).toEqual([':authority', '']);
    expect(QPACK_STATIC_TABLE[1]).toEqual([':path', '/']);
    expect(QPACK_STATIC_TABLE[17]).toEqual([':method', 'GET']);
    expect(QPACK_STATIC_TABLE[25]).toEqual([':status', '200']);
    expect(QPACK_STATIC_TABLE[85]?.[1]).toBe("script-src 'none'; object-src 'none'; base-uri 'none'");
    expect(QPACK_STATIC_TABLE[98]).toEqual(['x-frame-options', 'sameorigin']);
  });
});

describe('RFC 9204 Appendix B examples', () => {
  it('B.1: literal field line with name reference, both directions', () => {
    const wire = '0000 510b 2f69 6e64 6578 2e68 746d 6c';
    const d = new QpackDecoder();
    expect(d.decodeFieldSection(0, h(wire))).toEqual({ status: 'done', fields: [[':path', '/index.html']] });
    const e = new QpackEncoder({ huffman: false });
    expect(toHex(e.encodeFieldSection(0, [[':path', '/index.html']]))).toBe(toHex(h(wire)));
    expect(e.takeEncoderStreamData()).toHaveLength(0);
  });

  it('B.2-B.5: dynamic table, speculative insert, duplicate, cancellation, eviction (decoder)', () => {
    const d = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });
    // B.2
    d.onEncoderStream(
      h('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468'),
    );
    expect([d.table.capacity, d.table.size, d.table.insertCount]).toEqual([220, 106, 2]);
    d.takeDecoderStreamData();
    expect(d.decodeFieldSection(4, h('0381 10 11'))).toEqual({
      status: 'done',
      fields: [
        [':authority', 'www.example.com'],
        [':path', '/sample/path'],
      ],
    });
    expect(toHex(d.takeDecoderStreamData())).toBe('84'); // Section Acknowledgment (stream=4)
    // B.3
    d.onEncoderStream(h('4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565'));
    expect(d.table.size).toBe(160);
    expect(toHex(d.takeDecoderStreamData())).toBe('01'); // Insert Count Increment (1)
    // B.4
    d.onEncoderStream(h('02'));
    expect(d.table.size).toBe(217);
    expect(d.table.get(3)).toEqual({ name: ':authority', value: 'www.example.com' });
    d.takeDecoderStreamData();
    expect(d.decodeFieldSection(8, h('0500 80 c1 81'))).toEqual({
      status: 'done',
      fields: [
        [':authority', 'www.example.com'],
        [':path', '/'],
        ['custom-key', 'custom-value'],
      ],
    });
    d.takeDecoderStreamData();
    d.cancelStream(8);
    expect(toHex(d.takeDecoderStreamData())).toBe('48'); // Stream Cancellation (Stream=8)
    // B.5: inserting custom-value2 (relative index 1 = absolute 2's name) evicts entry 0.
    d.onEncoderStream(h('810d 6375 7374 6f6d 2d76 616c 7565 32'));
    expect(d.table.size).toBe(215);
    expect(d.table.get(0)).toBeUndefined();
    expect(d.table.get(4)).toEqual({ name: 'custom-key', value: 'custom-value2' });
  });

  it('B.2: our encoder produces the RFC’s encoder stream and field section', () => {
    const e = new QpackEncoder({
      peerMaxTableCapacity: 220,
      peerMaxBlockedStreams: 1,
      capacity: 220,
      huffman: false,
    });
    const section = e.encodeFieldSection(4, [
      [':authority', 'www.example.com'],
      [':path', '/sample/path'],
    ]);
    expect(toHex(e.takeEncoderStreamData())).toBe(
      toHex(h('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468')),
    );
    expect(toHex(section)).toBe('03811011');
    e.onDecoderStream(h('84'));
    expect(e.knownReceivedCount).toBe(2);
  });

  it('B.2-B.5: our encoder replays the whole example, byte for byte, against our decoder', () => {
    const e = new QpackEncoder({
      peerMaxTableCapacity: 220,
      peerMaxBlockedStreams: 1,
      capacity: 220,
      huffman: false,
    });
    const d = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });
    const step = (encoderHex: string) => {
      expect(toHex(e.takeEncoderStreamData())).toBe(encoderHex.replace(/ /g, ''));
      d.onEncoderStream(h(encoderHex));
    };
    // B.2
    const s4 = e.encodeFieldSection(4, [
      [':authority', 'www.example.com'],
      [':path', '/sample/path'],
    ]);
    step('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468');
    expect(toHex(s4)).toBe('03811011');
    expect(d.decodeFieldSection(4, s4).status).toBe('done');
    expect(toHex(d.takeDecoderStreamData())).toBe('84');
    e.onDecoderStream(h('84'));
    // B.3: speculative insert, acknowledged by an Insert Count Increment.
    expect(e.insert('custom-key', 'custom-value')).toBe(2);
    step('4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565');
    expect(toHex(d.takeDecoderStreamData())).toBe('01');
    e.onDecoderStream(h('01'));
    expect(e.knownReceivedCount).toBe(3);
    // B.4: duplicate the oldest entry, then a section referencing it, then cancellation.
    expect(e.duplicate(0)).toBe(3);
    step('02');
    d.takeDecoderStreamData();
    const s8 = e.encodeFieldSection(8, [
      [':authority', 'www.example.com'],
      [':path', '/'],
      ['custom-key', 'custom-value'],
    ]);
    expect(toHex(s8)).toBe('050080c181');
    e.onDecoderStream(h('48'));
    // B.5: inserting custom-value2 names entry 2 (relative 1) and evicts entry 0.
    expect(e.insert('custom-key', 'custom-value2')).toBe(4);
    step('810d 6375 7374 6f6d 2d76 616c 7565 32');
    expect([e.table.size, d.table.size]).toEqual([215, 215]);
  });

  it('the decoder instructions of Appendix B round-trip', () => {
    expect(decodeDecoderInstructions(h('84 01 48'))).toEqual([
      { type: 'SectionAcknowledgment', streamId: 4 },
      { type: 'InsertCountIncrement', increment: 1 },
      { type: 'StreamCancellation', streamId: 8 },
    ]);
  });
});

describe('QPACK decoder defenses', () => {
  it('§2.2.1: blocks up to SETTINGS_QPACK_BLOCKED_STREAMS, then fails; unblocks when inserts arrive', () => {
    const d = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });
    expect(d.decodeFieldSection(4, h('0381 10 11'))).toEqual({ status: 'blocked' });
    expect(() => d.decodeFieldSection(8, h('0381 10'))).toThrow(/QPACK_DECOMPRESSION_FAILED/);
    const un = d.onEncoderStream(
      h('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468'),
    );
    expect(un).toEqual([
      {
        streamId: 4,
        result: {
          status: 'done',
          fields: [
            [':authority', 'www.example.com'],
            [':path', '/sample/path'],
          ],
        },
      },
    ]);
  });
  it('§4.3.1, §3.2.2: capacity above our maximum, an oversized insert, a bad index are encoder stream errors', () => {
    expect(() => new QpackDecoder({ maxTableCapacity: 100 }).onEncoderStream(h('3fbd01'))).toThrow(
      /QPACK_ENCODER_STREAM_ERROR/,
    );
    const d = new QpackDecoder({ maxTableCapacity: 64 });
    d.onEncoderStream(h('3f13')); // capacity 50, below the 57 bytes of the entry
    expect(() => d.onEncoderStream(h('c00f 7777 772e 6578 616d 706c 652e 636f 6d'))).toThrow(
      /exceeds capacity/,
    );
    expect(() => new QpackDecoder({ maxTableCapacity: 64 }).onEncoderStream(h('05'))).toThrow(
      /relative index/,
    );
  });
  it('§4.5.1.1: references past Required Insert Count or to evicted entries fail', () => {
    const d = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 1 });
    d.onEncoderStream(h('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d'));
    expect(() => d.decodeFieldSection(0, h('0200 10'))).toThrow(/invalid dynamic table reference/); // RIC 1, base 1, post-base 0 = abs 1
    expect(() => d.decodeFieldSection(0, h('0000 80'))).toThrow(/invalid dynamic table reference/);
    expect(() => d.decodeFieldSection(0, h('0000 ff64'))).toThrow(/static index/);
    expect(() => d.decodeFieldSection(0, h('0f00'))).toThrow(/exceeds/); // encoded RIC 15 > 2*6
    d.onEncoderStream(h('c10c 2f73 616d 706c 652f 7061 7468'));
    // RIC 2, Base 2: referencing entry 1 is exactly what RIC 2 says; referencing only
    // entry 0 makes RIC 2 more than the section needs.
    expect(d.decodeFieldSection(0, h('0300 80')).status).toBe('done');
    expect(() => d.decodeFieldSection(0, h('0300 81'))).toThrow(/largest reference/);
  });
  it('refuses an encoder stream that never completes an instruction beyond the buffer limit', () => {
    const d = new QpackDecoder({ maxTableCapacity: 220, maxEncoderStreamBuffer: 32 });
    expect(() => d.onEncoderStream(h(`4a${'63'.repeat(40)}`))).toThrow(/QPACK_ENCODER_STREAM_ERROR/);
  });
  it('instructions split across stream chunks are reassembled', () => {
    const d = new QpackDecoder({ maxTableCapacity: 220 });
    const bytes = h('3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d');
    for (const b of bytes) d.onEncoderStream(Uint8Array.of(b));
    expect(d.table.get(0)).toEqual({ name: ':authority', value: 'www.example.com' });
  });
  it('RFC 9114 §4.2.2: a field section above SETTINGS_MAX_FIELD_SECTION_SIZE is refused', () => {
    const d = new QpackDecoder({ maxFieldSectionSize: 40 });
    expect(d.decodeFieldSection(0, h('0000 510b 2f69 6e64 6578 2e68 746d 6c'))).toEqual({
      status: 'too-large',
      size: 5 + 11 + 32,
    });
  });
  it('§4.4.3: an Insert Count Increment of 0 or beyond the inserts sent is a decoder stream error', () => {
    const e = new QpackEncoder({ peerMaxTableCapacity: 220, peerMaxBlockedStreams: 1 });
    expect(() => e.onDecoderStream(h('00'))).toThrow(/QPACK_DECODER_STREAM_ERROR/);
    expect(() => e.onDecoderStream(h('01'))).toThrow(/QPACK_DECODER_STREAM_ERROR/);
    expect(() => e.onDecoderStream(h('84'))).toThrow(/no unacknowledged section/);
  });
  fcTest.prop([arbitraryBytes(64), arbitraryBytes(64)])(
    'hostile bytes give QpackError, never anything else',
    (enc, sec) => {
      const d = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 4 });
      for (const run of [() => d.onEncoderStream(enc), () => d.decodeFieldSection(0, sec)]) {
        try {
          run();
        } catch (e) {
          if (!(e instanceof QpackError)) throw e;
        }
      }
      const e = new QpackEncoder({ peerMaxTableCapacity: 4096, peerMaxBlockedStreams: 4 });
      try {
        e.onDecoderStream(enc);
      } catch (err) {
        if (!(err instanceof QpackError)) throw err;
      }
    },
  );
});

describe('QPACK codecs: laws', () => {
  fcTest.prop([fc.array(arbitraryEncoderInstruction, { maxLength: 6 })])(
    'encoder instructions round trip',
    (is) => {
      expect(decodeEncoderInstructions(encodeEncoderInstructions(is))).toEqual(is);
    },
  );
  fcTest.prop([fc.array(arbitraryDecoderInstruction, { maxLength: 6 })])(
    'decoder instructions round trip',
    (is) => {
      expect(decodeDecoderInstructions(encodeDecoderInstructions(is))).toEqual(is);
    },
  );
  fcTest.prop([arbitraryEncodedFieldSection])('field sections round trip', (s) => {
    expect(decodeFieldSection(encodeFieldSection(s))).toEqual(s);
  });
  fcTest.prop([arbitraryBytes(64)])('arbitrary bytes', (b) => {
    decodesOrParseError(decodeEncoderInstructions, b);
    decodesOrParseError(decodeDecoderInstructions, b);
    return decodesOrParseError((x) => decodeFieldSection(x), b);
  });
});

describe('QPACK encoder → decoder', () => {
  it('a repeated field list costs one byte per field once the inserts are acknowledged', () => {
    const e = new QpackEncoder({ peerMaxTableCapacity: 4096, peerMaxBlockedStreams: 0 });
    const d = new QpackDecoder({ maxTableCapacity: 4096 });
    const fields: [string, string][] = [
      [':authority', 'example.net'],
      ['user-agent', 'stepwire/1'],
      ['x-trace', 'abc'],
    ];
    // Blocked streams 0: the first section may not reference unacknowledged inserts, so it is all literals.
    const first = e.encodeFieldSection(0, fields);
    d.onEncoderStream(e.takeEncoderStreamData());
    expect(d.decodeFieldSection(0, first)).toEqual({ status: 'done', fields });
    e.onDecoderStream(d.takeDecoderStreamData());
    expect(e.knownReceivedCount).toBe(3);
    const second = e.encodeFieldSection(4, fields);
    expect(second.length).toBe(2 + fields.length);
    expect(d.decodeFieldSection(4, second)).toEqual({ status: 'done', fields });
    // Never-indexed names stay out of the table and carry the N bit (§7.1.3).
    const secret = e.encodeFieldSection(8, [['authorization', 'Bearer x']]);
    expect(decodeFieldSection(secret).lines[0]).toMatchObject({
      type: 'LiteralWithNameReference',
      neverIndexed: true,
    });
  });

  fcTest.prop([
    fc.array(arbitraryFieldList, { minLength: 1, maxLength: 8 }),
    fc.integer({ min: 0, max: 512 }),
    fc.integer({ min: 0, max: 3 }),
    fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
  ])(
    'every field list decodes to itself, whether the encoder stream arrives before or after',
    (lists, capacity, blocked, late) => {
      const e = new QpackEncoder({
        peerMaxTableCapacity: capacity,
        peerMaxBlockedStreams: blocked,
        capacity,
      });
      const d = new QpackDecoder({ maxTableCapacity: capacity, maxBlockedStreams: blocked });
      const decoded = new Map<number, unknown>();
      lists.forEach((fields, i) => {
        const streamId = 4 * i;
        const section = e.encodeFieldSection(streamId, fields);
        const encoderData = e.takeEncoderStreamData();
        const deliverEncoder = () => {
          for (const u of d.onEncoderStream(encoderData)) decoded.set(u.streamId, u.result);
        };
        if (!late[i]) deliverEncoder();
        const r = d.decodeFieldSection(streamId, section);
        if (r.status !== 'blocked') decoded.set(streamId, r);
        if (late[i]) deliverEncoder();
        e.onDecoderStream(d.takeDecoderStreamData());
        expect(decoded.get(streamId)).toEqual({ status: 'done', fields });
      });
    },
  );
});
