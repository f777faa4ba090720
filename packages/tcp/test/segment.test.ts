import { fromHex, internetChecksum, ParseError, toHex, utf8 } from '@stepwire/wire';
import { decodesOrParseError } from '@stepwire/wire/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeOptions } from '../src/options.ts';
import {
  ACK,
  decodeSegment,
  describeSegment,
  encodeSegment,
  PSH,
  RST,
  SYN,
  type TcpSegment,
} from '../src/segment.ts';
import { arbitraryPseudoHeader, arbitraryTcpSegment } from '../src/testing.ts';

// Vectors: built with Scapy 2.5.0 (`raw(IP(...)/TCP(...))`, an independent encoder that
// computes the checksum itself), TCP header and payload cut out of the IP packet.
const v4 = { src: '198.18.0.1', dst: '198.18.0.2' };
const v4r = { src: '198.18.0.2', dst: '198.18.0.1' };
const vectors: { name: string; pseudo: { src: string; dst: string }; hex: string; seg: TcpSegment }[] = [
  {
    name: 'IPv4 SYN with MSS, SACK-permitted, timestamps, window scale',
    pseudo: v4,
    hex: 'c00000500000100000000000a002ffffbb4e0000020405b40402080a000030390000000001030307',
    seg: {
      srcPort: 49152,
      dstPort: 80,
      seq: 4096,
      ack: 0,
      flags: SYN,
      window: 65535,
      urgentPointer: 0,
      options: { mss: 1460, sackPermitted: true, timestamps: { value: 12345, echo: 0 }, windowScale: 7 },
      payload: new Uint8Array(0),
    },
  },
  {
    name: 'IPv4 PSH,ACK with data, timestamps, sequence number near 2^32',
    pseudo: v4r,
    hex: '0050c000fffffff00000100180180200cd2d00000101080a000003090000303968656c6c6f2c2073746570776972650a',
    seg: {
      srcPort: 80,
      dstPort: 49152,
      seq: 0xfffffff0,
      ack: 4097,
      flags: PSH | ACK,
      window: 512,
      urgentPointer: 0,
      options: { timestamps: { value: 777, echo: 12345 } },
      payload: utf8('hello, stepwire\n'),
    },
  },
  {
    name: 'IPv6 ACK with two SACK blocks and an odd-length payload',
    pseudo: { src: 'fd00:5757::1', dst: 'fd00:5757::2' },
    hex: '01bbc3500000000100000002a01003e81fb600000101051200000064000000c80000012c00000190616263',
    seg: {
      srcPort: 443,
      dstPort: 50000,
      seq: 1,
      ack: 2,
      flags: ACK,
      window: 1000,
      urgentPointer: 0,
      options: {
        sack: [
          { left: 100, right: 200 },
          { left: 300, right: 400 },
        ],
      },
      payload: utf8('abc'),
    },
  },
  {
    name: 'IPv4 RST,ACK without options',
    pseudo: v4,
    hex: '0001000200000007000000095014000023960000',
    seg: {
      srcPort: 1,
      dstPort: 2,
      seq: 7,
      ack: 9,
      flags: RST | ACK,
      window: 0,
      urgentPointer: 0,
      options: {},
      payload: new Uint8Array(0),
    },
  },
];

describe('TCP segment codec (RFC 9293 §3.1)', () => {
  for (const v of vectors) {
    it(`decodes and re-encodes: ${v.name}`, () => {
      const bytes = fromHex(v.hex);
      expect(decodeSegment(bytes, v.pseudo)).toEqual(v.seg);
      expect(toHex(encodeSegment(v.seg, v.pseudo))).toBe(v.hex);
    });
  }

  it('rejects a flipped bit as a bad checksum', () => {
    const bytes = fromHex(vectors[1]!.hex);
    bytes[34] = bytes[34]! ^ 0x01; // third payload byte, 'l' -> 'm'
    expect(() => decodeSegment(bytes, v4r)).toThrow(/checksum/);
    expect(decodeSegment(bytes, v4r, { verifyChecksum: false }).payload[2]).toBe(0x6d);
  });

  it('rejects the right segment under the wrong pseudo-header', () => {
    expect(() => decodeSegment(fromHex(vectors[0]!.hex), { src: '198.18.0.1', dst: '198.18.0.3' })).toThrow(
      ParseError,
    );
  });

  it('checks the data offset', () => {
    const short = fromHex(vectors[3]!.hex);
    short[12] = 0x40; // 4 words
    expect(() => decodeSegment(short, v4, { verifyChecksum: false })).toThrow(/data offset/);
    short[12] = 0x60; // 6 words, but the segment has only 20 bytes
    expect(() => decodeSegment(short, v4, { verifyChecksum: false })).toThrow(/data offset/);
  });

  it("takes the pseudo-header's addresses as ip parses them (one parser for every layer)", () => {
    const seg = vectors[0]!.seg;
    // Two spellings of one IPv4-mapped IPv6 address give one checksum (RFC 4291 §2.2).
    const mapped = encodeSegment(seg, { src: '::ffff:198.18.0.1', dst: 'fd00:5757::1' });
    expect(toHex(encodeSegment(seg, { src: '0:0:0:0:0:ffff:c612:1', dst: 'fd00:5757:0::1' }))).toBe(
      toHex(mapped),
    );
    // Text ip refuses is refused here too: leading zeros (ambiguous octal), a zone id, a
    // pair of two families, and text that is no address.
    for (const bad of [
      { src: '198.018.0.1', dst: '198.18.0.2' },
      { src: 'fe80::1%eth0', dst: 'fe80::2' },
      { src: '198.18.0.1', dst: 'fd00::2' },
      { src: 'not an address', dst: '198.18.0.2' },
    ]) {
      expect(() => encodeSegment(seg, bad)).toThrow(RangeError);
      expect(() => decodeSegment(mapped, bad)).toThrow(RangeError);
    }
  });

  it('describes a segment in one line for the trace', () => {
    expect(describeSegment(vectors[0]!.seg)).toBe('SYN seq=4096 win=65535 mss=1460 ws=7 sack ts');
  });

  it('round-trips any segment (decode(encode(x)) = x)', () => {
    fc.assert(
      fc.property(arbitraryTcpSegment(), arbitraryPseudoHeader, (seg, pseudo) => {
        const bytes = encodeSegment(seg, pseudo);
        expect(decodeSegment(bytes, pseudo)).toEqual(seg);
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes arbitrary bytes or throws ParseError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) =>
        decodesOrParseError((b) => decodeSegment(b, v4, { verifyChecksum: false }), bytes),
      ),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) =>
        decodesOrParseError((b) => decodeSegment(b, v4), bytes),
      ),
      { numRuns: 2000 },
    );
  });

  it('validates an encoded segment with a plain RFC 1071 sum over an explicit pseudo-header', () => {
    const bytes = encodeSegment(vectors[1]!.seg, v4r);
    const pseudo = fromHex(`c6120002c6120001 0006 ${bytes.length.toString(16).padStart(4, '0')}`);
    expect(internetChecksum(pseudo, bytes)).toBe(0);
  });
});

describe('TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018, RFC 7413)', () => {
  it('skips NOPs and stops at EOL', () => {
    expect(decodeOptions(fromHex('0101 020405b4 00 ffff'))).toEqual({ mss: 1460 });
  });
  it('keeps unknown options and the TFO cookie', () => {
    expect(decodeOptions(fromHex('2206 01020304 1e03aa 2202'))).toEqual({
      fastOpen: new Uint8Array(0),
      unknown: [{ kind: 30, data: fromHex('aa') }],
    });
  });
  it.each([
    ['length below 2', '0201'],
    ['length past the end', '0205 05b4'],
    ['MSS with length 3', '020305'],
    ['window scale with length 4', '03040000'],
    ['SACK-permitted with length 3', '040300'],
    ['SACK with no block', '0502'],
    ['SACK not 2+8n', '050b 0000000100000002 00'],
    ['timestamps with length 6', '0806 00000000'],
    ['length byte missing', '22'],
  ])('rejects %s', (_name, hex) => {
    expect(() => decodeOptions(fromHex(hex))).toThrow(ParseError);
  });
});
