import { fc, test as fcTest } from '@fast-check/vitest';
import { formatIpv6, parseIpv4, parseIpv6 } from '@stepwire/ip';
import { concatBytes, fromHex, internetChecksum, ParseError, toHex, utf8 } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import { canonicalAddress } from '../src/address.ts';
import {
  decodeUdp,
  decodeUdpHeader,
  encodeUdp,
  encodeUdpInto,
  type PseudoHeader,
  UDP_MAX_PAYLOAD,
} from '../src/datagram.ts';
import {
  arbitraryIpv4Address,
  arbitraryIpv6Address,
  arbitraryPseudoHeader,
  arbitraryUdpDatagram,
} from '../src/testing.ts';

const V4: PseudoHeader<string> = { src: '198.18.0.1', dst: '198.18.0.2' };
const V6: PseudoHeader<string> = { src: 'fd00:5757::1', dst: 'fd00:5757::2' };

/** A pseudo-header built byte by byte from the RFCs, independent of the codec's shortcut. */
function pseudoBytes(p: PseudoHeader<string>, length: number): Uint8Array {
  if (p.src.includes(':')) {
    // RFC 8200 §8.1: src(16) dst(16) upper-layer length(4) zero(3) next header(1)
    return concatBytes(
      parseIpv6(p.src),
      parseIpv6(p.dst),
      new Uint8Array([0, 0, length >> 8, length & 0xff, 0, 0, 0, 17]),
    );
  }
  // RFC 768: src(4) dst(4) zero(1) protocol(1) UDP length(2)
  return concatBytes(parseIpv4(p.src), parseIpv4(p.dst), new Uint8Array([0, 17, length >> 8, length & 0xff]));
}

describe('UDP codec vectors', () => {
  // RFC 768 has no test vectors. These datagrams were produced by Scapy 2.5.0, an
  // independent implementation: raw(IP(src, dst)/UDP(sport, dport)/Raw(data))[20:] (or [40:]
  // after an IPv6 header).
  const vectors: {
    name: string;
    pseudo: PseudoHeader<string>;
    hex: string;
    sp: number;
    dp: number;
    data: string;
  }[] = [
    { name: 'IPv4 hello', pseudo: V4, hex: 'c0000007000d6fd268656c6c6f', sp: 49152, dp: 7, data: 'hello' },
    { name: 'IPv4 odd length', pseudo: V4, hex: '04d2162e000b854b6f6464', sp: 1234, dp: 5678, data: 'odd' },
    { name: 'IPv4 empty payload', pseudo: V4, hex: '04d2162e000858b6', sp: 1234, dp: 5678, data: '' },
    {
      name: 'IPv6',
      pseudo: V6,
      hex: '9c400035001bee3f7374657077697265206f766572206970763621',
      sp: 40000,
      dp: 53,
      data: 'stepwire over ipv6!',
    },
  ];
  for (const v of vectors) {
    it(`decodes and re-encodes the Scapy datagram: ${v.name}`, () => {
      const d = decodeUdp(fromHex(v.hex), v.pseudo);
      expect(d).toEqual({ srcPort: v.sp, dstPort: v.dp, payload: utf8(v.data) });
      expect(toHex(encodeUdp(d, v.pseudo))).toBe(v.hex);
    });
  }

  it('sends a computed checksum of zero as 0xffff (RFC 768)', () => {
    for (const pseudo of [V4, V6]) {
      // With payload 0x0000 the checksum is c; a payload word equal to c brings the sum to
      // 0xffff, so the computed checksum becomes 0.
      const probe = encodeUdp({ srcPort: 1000, dstPort: 2000, payload: new Uint8Array(2) }, pseudo);
      const c = (probe[6]! << 8) | probe[7]!;
      const payload = new Uint8Array([c >> 8, c & 0xff]);
      const wire = encodeUdp({ srcPort: 1000, dstPort: 2000, payload }, pseudo);
      const zeroed = wire.slice();
      zeroed[6] = 0;
      zeroed[7] = 0;
      expect(internetChecksum(pseudoBytes(pseudo, wire.length), zeroed)).toBe(0);
      expect(decodeUdpHeader(wire).checksum).toBe(0xffff);
      expect(decodeUdp(wire, pseudo).payload).toEqual(payload);
    }
  });

  it('accepts a zero checksum over IPv4 (RFC 768: none computed)', () => {
    const wire = encodeUdp({ srcPort: 5, dstPort: 6, payload: utf8('abc') }, V4);
    wire[6] = 0;
    wire[7] = 0;
    expect(decodeUdp(wire, V4).payload).toEqual(utf8('abc'));
  });

  it('rejects a zero checksum over IPv6 (RFC 8200 §8.1)', () => {
    const wire = encodeUdp({ srcPort: 5, dstPort: 6, payload: utf8('abc') }, V6);
    wire[6] = 0;
    wire[7] = 0;
    expect(() => decodeUdp(wire, V6)).toThrow(expect.objectContaining({ field: 'checksum', layer: 'udp' }));
  });

  it('rejects a wrong checksum with field "checksum", and the skip option accepts it', () => {
    const wire = encodeUdp({ srcPort: 5, dstPort: 6, payload: utf8('abc') }, V4);
    wire[9] = wire[9]! ^ 0x01;
    let err: unknown;
    try {
      decodeUdp(wire, V4);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParseError);
    expect((err as ParseError).field).toBe('checksum');
    expect((err as ParseError).offset).toBe(6);
    expect(decodeUdp(wire, V4, { verifyChecksum: false }).payload).toEqual(utf8('acc'));
  });

  it('verifies the checksum against the addresses (pseudo-header)', () => {
    const wire = encodeUdp({ srcPort: 5, dstPort: 6, payload: utf8('abc') }, V4);
    expect(() => decodeUdp(wire, { src: '198.18.0.1', dst: '198.18.0.3' })).toThrow(ParseError);
  });

  it('checks the Length field: below 8 and beyond the buffer are errors', () => {
    const wire = encodeUdp({ srcPort: 5, dstPort: 6, payload: utf8('abcd') }, V4);
    const short = wire.slice();
    short[4] = 0;
    short[5] = 7;
    expect(() => decodeUdp(short, V4)).toThrow(expect.objectContaining({ field: 'length' }));
    const long = wire.slice();
    long[5] = wire.length + 1;
    expect(() => decodeUdp(long, V4)).toThrow(expect.objectContaining({ field: 'length' }));
    // Cut short inside Checksum: the error names that field (ParseError's offset rule).
    expect(() => decodeUdp(wire.subarray(0, 7), V4)).toThrow(
      expect.objectContaining({ field: 'checksum', offset: 6 }),
    );
  });

  it('ignores bytes after Length (as Linux and BSD trim them), checksum over Length bytes only', () => {
    const wire = encodeUdp({ srcPort: 5, dstPort: 6, payload: utf8('abcd') }, V4);
    const padded = concatBytes(wire, utf8('junk'));
    expect(decodeUdp(padded, V4).payload).toEqual(utf8('abcd'));
  });

  it('returns the payload as a view into the input', () => {
    const wire = encodeUdp({ srcPort: 5, dstPort: 6, payload: utf8('abcd') }, V6);
    const d = decodeUdp(wire, V6);
    expect(d.payload.buffer).toBe(wire.buffer);
    expect(d.payload.byteOffset).toBe(wire.byteOffset + 8);
  });

  it('encodes the largest payload and refuses one byte more', () => {
    const max = new Uint8Array(UDP_MAX_PAYLOAD).fill(0xa5);
    const wire = encodeUdp({ srcPort: 1, dstPort: 2, payload: max }, V6);
    expect(wire.length).toBe(0xffff);
    expect(decodeUdp(wire, V6).payload.length).toBe(UDP_MAX_PAYLOAD);
    expect(() =>
      encodeUdp({ srcPort: 1, dstPort: 2, payload: new Uint8Array(UDP_MAX_PAYLOAD + 1) }, V6),
    ).toThrow(RangeError);
    expect(() => encodeUdp({ srcPort: 65536, dstPort: 2, payload: max }, V6)).toThrow(RangeError);
  });
});

describe('UDP codec laws', () => {
  fcTest.prop([arbitraryUdpDatagram, arbitraryPseudoHeader, fc.nat(64), fc.nat(8)], { numRuns: 300 })(
    "encodeUdpInto writes encodeUdp's bytes at the offset and leaves the rest alone",
    (d, pseudo, before, after) => {
      const want = encodeUdp(d, pseudo);
      const out = new Uint8Array(before + want.length + after).fill(0xa5);
      expect(encodeUdpInto(d, pseudo, out, before)).toBe(want.length);
      expect([...out.subarray(before, before + want.length)]).toEqual([...want]);
      expect(out.subarray(0, before).every((x) => x === 0xa5)).toBe(true);
      expect(out.subarray(before + want.length).every((x) => x === 0xa5)).toBe(true);
      expect(() => encodeUdpInto(d, pseudo, out, before + after + 1)).toThrow(RangeError);
    },
  );
  fcTest.prop([arbitraryUdpDatagram, arbitraryPseudoHeader], { numRuns: 500 })(
    'decode(encode(x)) equals x',
    (d, pseudo) => {
      expect(decodeUdp(encodeUdp(d, pseudo), pseudo)).toEqual(d);
    },
  );

  fcTest.prop([arbitraryUdpDatagram, arbitraryPseudoHeader], { numRuns: 300 })(
    'the encoded checksum verifies with a byte-built pseudo-header and is never zero',
    (d, pseudo) => {
      const wire = encodeUdp(d, pseudo);
      expect(internetChecksum(pseudoBytes(pseudo, wire.length), wire)).toBe(0);
      expect(decodeUdpHeader(wire).checksum).not.toBe(0);
      expect(decodeUdpHeader(wire).length).toBe(wire.length);
    },
  );

  fcTest.prop([arbitraryUdpDatagram, arbitraryPseudoHeader, fc.nat(), fc.integer({ min: 1, max: 255 })], {
    numRuns: 300,
  })('a single corrupted byte outside Length is detected', (d, pseudo, at, flip) => {
    const wire = encodeUdp(d, pseudo);
    // Length bytes (4, 5) are left out: a shorter Length drops bytes from the sum and can
    // match by chance (1 in 65535), which is the checksum's nature, not a codec bug.
    const choices = [...wire.keys()].filter((i) => i !== 4 && i !== 5);
    const i = choices[at % choices.length]!;
    wire[i] = wire[i]! ^ flip;
    if (i >= 6 && i <= 7 && wire[6] === 0 && wire[7] === 0 && !pseudo.src.includes(':')) {
      // Corrupted into "no checksum", which IPv4 accepts (RFC 768).
      expect(decodeUdp(wire, pseudo).payload).toEqual(d.payload);
      return;
    }
    expect(() => decodeUdp(wire, pseudo)).toThrow(expect.objectContaining({ field: 'checksum' }));
  });

  fcTest.prop([arbitraryBytes(300), arbitraryPseudoHeader], { numRuns: 1000 })(
    'arbitrary bytes decode or throw ParseError',
    (bytes, pseudo) => decodesOrParseError((b) => decodeUdp(b, pseudo), bytes),
  );

  fcTest.prop([arbitraryBytes(40)], { numRuns: 300 })('decodeUdpHeader: arbitrary bytes', (bytes) =>
    decodesOrParseError(decodeUdpHeader, bytes),
  );
});

describe('address helpers', () => {
  fcTest.prop([arbitraryIpv6Address], { numRuns: 300 })('IPv6 canonical text round-trips', (a) => {
    expect(formatIpv6(parseIpv6(a))).toBe(a);
    expect(canonicalAddress(a)).toEqual({ family: 'IPv6', address: a, addressBytes: parseIpv6(a) });
  });
  fcTest.prop([arbitraryIpv4Address], { numRuns: 100 })('IPv4 text round-trips', (a) => {
    expect(canonicalAddress(a)).toEqual({ family: 'IPv4', address: a, addressBytes: parseIpv4(a) });
  });
  it('canonicalizes per RFC 5952 and rejects non-addresses', () => {
    expect(canonicalAddress('FD00:5757:0:0:0:0:0:0001')?.address).toBe('fd00:5757::1');
    expect(canonicalAddress('2001:db8:0:1:1:1:1:1')?.address).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonicalAddress('2001:0:0:1:0:0:0:1')?.address).toBe('2001:0:0:1::1');
    expect(canonicalAddress('::ffff:198.18.0.1')?.address).toBe('::ffff:c612:1');
    expect(canonicalAddress('::')?.address).toBe('::');
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.256',
      '01.2.3.4',
      'fd00:::1',
      '1:2:3:4:5:6:7:8:9',
      'localhost',
      'g::1',
    ]) {
      expect(canonicalAddress(bad)).toBeUndefined();
    }
  });
});
