import { finishChecksum, fromHex, ParseError, sum16, toHex } from '@stepwire/wire';
import { decodesOrParseError } from '@stepwire/wire/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pseudoHeaderSum } from '../src/checksum.ts';
import { decodeIcmpv4, decodeIcmpv6, encodeIcmpv4, encodeIcmpv6 } from '../src/icmp.ts';
import { decodeIpv4, encodeIpv4, type Ipv4DecodeInfo } from '../src/ipv4.ts';
import { decodeIpv6, encodeIpv6, type Ipv6DecodeInfo } from '../src/ipv6.ts';
import {
  arbitraryIcmpv4Message,
  arbitraryIcmpv6Message,
  arbitraryIpv4Packet,
  arbitraryIpv6Address,
  arbitraryIpv6Packet,
} from '../src/testing.ts';

// Vectors marked "scapy" were generated with Scapy 2.5.0 (an independent encoder), e.g.
// bytes(IP(src="198.18.0.1",dst="198.18.0.2",id=0x1234,ttl=64,flags="DF")/ICMP(type=8,id=1,seq=1)/bytes(range(56))).
const V4_ECHO =
  '450000541234400040019c4dc6120001c6120002080000eb00010001000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637';
const V4_OPTS = '470000240007000003111d8ac6120001c6120002010707040102030400010002000873b3';
const V4_FRAG_NEEDED =
  '45000038000100004001eda0c61200fec61200010304898c00000578450005dc000140004011a8e1c6120001c61200090005000600086de4';
const V6_ECHO =
  '6000000000103a40fd005757000000000000000000000001fd0057570000000000000000000000028000456a000100016162636465666768';
const V6_EXT =
  '60000000003a0040fd000000000000000000000000000001fd0000000000000000000000000000023c000502000001002b001e0378797a002c02000000000000fd00000000000000000000000000000311000001deadbeef00070009000a9d5c6869';
const V6_PTB =
  '6000000000383a40fd0000000000000000000000000000fefd000000000000000000000000000001020086ed000005006000000005781140fd000000000000000000000000000001fd00000000000000000000000000000200010002000805d7';
const V6_PARAM =
  '6000000000303a40fd0000000000000000000000000000fefd0000000000000000000000000000010401a94700000006600000000000fd40fd000000000000000000000000000001fd000000000000000000000000000002';

describe('IPv4 header (RFC 791)', () => {
  it('decodes the Wikipedia header-checksum example (checksum 0xb861)', () => {
    // en.wikipedia.org/wiki/Internet_checksum: 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7
    const hdr = fromHex('450000730000400040 11b861c0a80001c0a800c7');
    const pkt = new Uint8Array(0x73);
    pkt.set(hdr);
    const info = {} as Ipv4DecodeInfo;
    const p = decodeIpv4(pkt, undefined, info);
    expect(info.headerChecksum).toBe(0xb861);
    expect(p).toMatchObject({
      src: '192.168.0.1',
      dst: '192.168.0.199',
      ttl: 64,
      protocol: 17,
      dontFragment: true,
    });
    expect(p.payload.length).toBe(0x73 - 20);
    expect(toHex(encodeIpv4(p).subarray(0, 20))).toBe(toHex(hdr));
  });

  it('decodes and re-encodes a scapy echo request byte-exact', () => {
    const b = fromHex(V4_ECHO);
    const p = decodeIpv4(b);
    expect(p).toMatchObject({
      identification: 0x1234,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 1,
      src: '198.18.0.1',
      dst: '198.18.0.2',
      options: [],
    });
    expect(toHex(encodeIpv4(p))).toBe(V4_ECHO);
  });

  it('keeps options as TLVs (scapy: NOP, Record Route)', () => {
    const b = fromHex(V4_OPTS);
    const p = decodeIpv4(b);
    expect(p.options.map((o) => [o.type, toHex(o.data)])).toEqual([
      [1, ''],
      [7, '0401020304'],
    ]);
    expect(toHex(encodeIpv4(p))).toBe(V4_OPTS);
  });

  it('a bad checksum is a ParseError on field checksum, unless verification is off', () => {
    const b = fromHex(V4_ECHO);
    b[8] = 63;
    const err = (() => {
      try {
        decodeIpv4(b);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ParseError);
    expect((err as ParseError).field).toBe('checksum');
    expect(decodeIpv4(b, { verifyChecksum: false }).ttl).toBe(63);
  });

  it('ignores link padding beyond Total Length and refuses a short buffer', () => {
    const b = fromHex(`${V4_ECHO}00000000`);
    expect(decodeIpv4(b).payload.length).toBe(64);
    expect(() => decodeIpv4(fromHex(V4_ECHO).subarray(0, 80))).toThrow(/totalLength/);
    expect(decodeIpv4(fromHex(V4_ECHO).subarray(0, 28), { truncated: true }).payload.length).toBe(8);
  });

  it.each([
    ['option length 0', '4600001800000000401100000a0000010a00000207000000', 'options.length'],
    ['option overruns the header', '4600001800000000401100000a0000010a00000244090000', 'options.data'],
    ['option length octet missing', '4600001800000000401100000a0000010a00000201010144', 'options.length'],
    ['IHL below 5', '440000140000000040110000', 'ihl'],
    ['version 6', '650000140000000040110000', 'version'],
    ['Total Length below IHL', '450000100000000040110000', 'totalLength'],
  ])('malformed: %s is a ParseError', (_, hex, field) => {
    const b = fromHex(hex);
    if (b.length >= 20 && (b[0]! & 0xf) >= 5) {
      const hl = (b[0]! & 0xf) * 4;
      b[10] = 0;
      b[11] = 0;
      const ck = finishChecksum(sum16(b.subarray(0, hl)));
      b[10] = ck >> 8;
      b[11] = ck & 0xff;
    }
    expect(() => decodeIpv4(b)).toThrow(ParseError);
    try {
      decodeIpv4(b);
    } catch (e) {
      expect((e as ParseError).field).toBe(field);
    }
  });

  it('round-trips any packet', () => {
    fc.assert(
      fc.property(arbitraryIpv4Packet(), (p) => {
        expect(decodeIpv4(encodeIpv4(p))).toEqual(p);
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes arbitrary bytes or throws ParseError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => decodesOrParseError((x) => decodeIpv4(x), b)),
      { numRuns: 3000 },
    );
    // Valid-looking headers with random tails reach the option parser.
    const tail = fc.uint8Array({ minLength: 0, maxLength: 60 });
    fc.assert(
      fc.property(fc.integer({ min: 5, max: 15 }), tail, (ihl, rest) => {
        const b = new Uint8Array(20 + rest.length);
        b[0] = 0x40 | ihl;
        b[3] = b.length;
        b.set(rest, 20);
        const ck = finishChecksum(sum16(b.subarray(0, Math.min(b.length, ihl * 4))));
        b[10] = ck >> 8;
        b[11] = ck & 0xff;
        return decodesOrParseError((x) => decodeIpv4(x), b);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('IPv6 header and extension headers (RFC 8200)', () => {
  it('decodes a scapy echo request byte-exact', () => {
    const p = decodeIpv6(fromHex(V6_ECHO));
    expect(p).toMatchObject({
      src: 'fd00:5757::1',
      dst: 'fd00:5757::2',
      hopLimit: 64,
      nextHeader: 58,
      extensionHeaders: [],
    });
    expect(toHex(encodeIpv6(p))).toBe(V6_ECHO);
  });

  it('walks Hop-by-Hop, Destination, Routing and Fragment headers (scapy)', () => {
    const info = { extOffsets: [] } as unknown as Ipv6DecodeInfo;
    const p = decodeIpv6(fromHex(V6_EXT), undefined, info);
    expect(p.extensionHeaders.map((h) => h.kind)).toEqual([
      'hop-by-hop',
      'destination',
      'routing',
      'fragment',
    ]);
    const [hbh, dst, rt, frag] = p.extensionHeaders;
    expect(hbh).toEqual({ kind: 'hop-by-hop', options: [{ type: 5, data: fromHex('0000') }] });
    expect(dst).toEqual({ kind: 'destination', options: [{ type: 0x1e, data: fromHex('78797a') }] });
    expect(rt).toMatchObject({ kind: 'routing', routingType: 0, segmentsLeft: 0 });
    expect(frag).toEqual({
      kind: 'fragment',
      fragmentOffset: 0,
      moreFragments: true,
      identification: 0xdeadbeef,
    });
    expect(p.nextHeader).toBe(17);
    expect(toHex(p.payload)).toBe('00070009000a9d5c6869');
    expect(info.extOffsets).toEqual([40, 48, 56, 80]);
    expect(info.lastNextHeaderOffset).toBe(80);
    expect(info.headerLength).toBe(88);
    // Our padding (PadN after Router Alert, Pad1 after 'xyz') matches scapy's: byte-exact.
    expect(toHex(encodeIpv6(p))).toBe(V6_EXT);
  });

  it('stops at an unknown Next Header and leaves the rest as payload', () => {
    const b = fromHex(V6_PARAM).subarray(48);
    const p = decodeIpv6(b);
    expect(p.nextHeader).toBe(253);
    expect(p.payload.length).toBe(0);
  });

  it('refuses Hop-by-Hop anywhere but first (RFC 8200 §4.3)', () => {
    const p = decodeIpv6(fromHex(V6_EXT));
    const bad = encodeIpv6({
      ...p,
      extensionHeaders: [p.extensionHeaders[1]!, p.extensionHeaders[0]!],
    });
    expect(() => decodeIpv6(bad)).toThrow(/Hop-by-Hop/);
  });

  it('round-trips any packet', () => {
    fc.assert(
      fc.property(arbitraryIpv6Packet(), (p) => {
        expect(decodeIpv6(encodeIpv6(p))).toEqual(p);
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes arbitrary bytes or throws ParseError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => decodesOrParseError((x) => decodeIpv6(x), b)),
      { numRuns: 2000 },
    );
    // A valid fixed header whose chain is random exercises the extension-header walk.
    fc.assert(
      fc.property(
        fc.constantFrom(0, 43, 44, 60),
        fc
          .uint8Array({ maxLength: 120 })
          .map((b) => b.map((x, i) => (i % 8 === 0 ? [0, 43, 44, 60, 17][x % 5]! : x))),
        (nh, rest) => {
          const b = new Uint8Array(40 + rest.length);
          b[0] = 0x60;
          b[4] = rest.length >> 8;
          b[5] = rest.length & 0xff;
          b[6] = nh;
          b.set(rest, 40);
          return decodesOrParseError((x) => decodeIpv6(x), b);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('ICMPv4 (RFC 792)', () => {
  it('decodes the scapy echo request and re-encodes it byte-exact', () => {
    const ip = decodeIpv4(fromHex(V4_ECHO));
    const m = decodeIcmpv4(ip.payload);
    expect(m).toMatchObject({ kind: 'echo-request', code: 0, identifier: 1, sequence: 1 });
    expect(toHex(encodeIcmpv4(m))).toBe(toHex(ip.payload));
  });

  it('fragmentation needed carries the next-hop MTU (RFC 1191 §4) and quotes the datagram', () => {
    const ip = decodeIpv4(fromHex(V4_FRAG_NEEDED));
    const m = decodeIcmpv4(ip.payload);
    expect(m).toMatchObject({ kind: 'destination-unreachable', code: 4, nextHopMtu: 1400 });
    if (m.kind !== 'destination-unreachable') throw new Error('kind');
    const quoted = decodeIpv4(m.original, { truncated: true });
    expect(quoted).toMatchObject({ src: '198.18.0.1', dst: '198.18.0.9', dontFragment: true, protocol: 17 });
    expect(toHex(encodeIcmpv4(m))).toBe(toHex(ip.payload));
  });

  it('rejects a bad checksum; unknown types decode generically', () => {
    const ip = decodeIpv4(fromHex(V4_ECHO));
    const bad = ip.payload.slice();
    bad[9] = bad[9]! ^ 1;
    expect(() => decodeIcmpv4(bad)).toThrow(/checksum/);
    const ts = encodeIcmpv4({ kind: 'unknown', type: 13, code: 0, body: new Uint8Array(16) });
    expect(decodeIcmpv4(ts)).toMatchObject({ kind: 'unknown', type: 13, code: 0 });
  });

  it('round-trips any message and survives arbitrary bytes', () => {
    fc.assert(
      fc.property(arbitraryIcmpv4Message, (m) => {
        expect(decodeIcmpv4(encodeIcmpv4(m))).toEqual(m);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => decodesOrParseError((x) => decodeIcmpv4(x), b)),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) =>
        decodesOrParseError((x) => decodeIcmpv4(x, { verifyChecksum: false }), b),
      ),
      { numRuns: 1000 },
    );
  });
});

describe('ICMPv6 (RFC 4443)', () => {
  it('verifies the scapy echo request over the pseudo-header and re-encodes it', () => {
    const ip = decodeIpv6(fromHex(V6_ECHO));
    const m = decodeIcmpv6(ip.payload, ip.src, ip.dst);
    expect(m).toMatchObject({ kind: 'echo-request', identifier: 1, sequence: 1 });
    expect(toHex(encodeIcmpv6(m, ip.src, ip.dst))).toBe(toHex(ip.payload));
    // The same bytes claimed to come from another source fail: the pseudo-header counts.
    expect(() => decodeIcmpv6(ip.payload, 'fd00:5757::3', ip.dst)).toThrow(/checksum/);
  });

  it('packet too big and parameter problem (scapy)', () => {
    const ptb = decodeIpv6(fromHex(V6_PTB));
    const m = decodeIcmpv6(ptb.payload, ptb.src, ptb.dst);
    expect(m).toMatchObject({ kind: 'packet-too-big', mtu: 1280 });
    const pp = decodeIpv6(fromHex(V6_PARAM));
    const n = decodeIcmpv6(pp.payload, pp.src, pp.dst);
    expect(n).toMatchObject({ kind: 'parameter-problem', code: 1, pointer: 6 });
  });

  it('round-trips any message and survives arbitrary bytes', () => {
    fc.assert(
      fc.property(arbitraryIcmpv6Message, arbitraryIpv6Address, arbitraryIpv6Address, (m, s, d) => {
        expect(decodeIcmpv6(encodeIcmpv6(m, s, d), s, d)).toEqual(m);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) =>
        decodesOrParseError((x) => decodeIcmpv6(x, 'fd00::1', 'fd00::2', { verifyChecksum: false }), b),
      ),
      { numRuns: 1000 },
    );
  });
});

describe('pseudoHeaderSum', () => {
  it('makes the scapy UDP checksums verify (IPv4 and IPv6)', () => {
    const v4 = decodeIpv4(fromHex(V4_OPTS));
    expect(finishChecksum(sum16(v4.payload, pseudoHeaderSum(v4.src, v4.dst, 17, v4.payload.length)))).toBe(0);
    const v6 = decodeIpv6(fromHex(V6_PTB));
    const m = decodeIcmpv6(v6.payload, v6.src, v6.dst);
    if (m.kind !== 'packet-too-big') throw new Error('kind');
    const q = decodeIpv6(m.original, { truncated: true });
    expect(q.nextHeader).toBe(17);
    // The quoted UDP header (length 8) carries scapy's checksum.
    const udp = q.payload;
    const sum = sum16(udp, pseudoHeaderSum(q.src, q.dst, 17, 8));
    expect(finishChecksum(sum)).toBe(0);
  });
  it('accepts bytes as well as strings', () => {
    const a = pseudoHeaderSum('198.18.0.1', '198.18.0.2', 6, 40);
    const b = pseudoHeaderSum(new Uint8Array([198, 18, 0, 1]), new Uint8Array([198, 18, 0, 2]), 6, 40);
    expect(a).toBe(b);
  });
});
