import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { cachedAddressBytes } from '../src/address.ts';
import { encodeIpv4, encodeIpv4Into, ipv4HeaderLength, writeIpv4HeaderBefore } from '../src/ipv4.ts';
import { encodeIpv6, encodeIpv6Into, ipv6HeaderLength } from '../src/ipv6.ts';
import { arbitraryIpv4Packet, arbitraryIpv6Packet } from '../src/testing.ts';

/**
 * The send path writes the IP header into room left in front of a transport segment
 * (encodeIpv4Into / encodeIpv6Into) instead of copying the segment behind a new header.
 * Whether the payload is copied or already in place, the bytes must be the plain
 * encoder's, which the codec suites check against RFC vectors and tshark.
 */
describe('IP header written in place', () => {
  fcTest.prop([arbitraryIpv4Packet(1600), fc.integer({ min: 0, max: 48 })])(
    'IPv4: encodeIpv4Into at any offset equals encodeIpv4, payload copied or in place',
    (p, offset) => {
      const plain = encodeIpv4(p);
      const copied = new Uint8Array(offset + plain.length + 2).fill(0x5a);
      expect(encodeIpv4Into(p, copied, offset)).toBe(plain.length);
      expect(copied.subarray(offset, offset + plain.length)).toEqual(plain);
      expect(copied.subarray(0, offset).every((b) => b === 0x5a)).toBe(true);

      const hdr = ipv4HeaderLength(p);
      const buf = new Uint8Array(offset + plain.length);
      buf.set(p.payload, offset + hdr);
      const inPlace = { ...p, payload: buf.subarray(offset + hdr) };
      encodeIpv4Into(inPlace, buf, offset);
      expect(buf.subarray(offset)).toEqual(plain);
    },
  );

  fcTest.prop([arbitraryIpv4Packet(1600), fc.integer({ min: 0, max: 48 })])(
    'IPv4: writeIpv4HeaderBefore (the send path, from fields) equals encodeIpv4 of the same datagram',
    (q, offset) => {
      // What the send path originates: no options, not a fragment, DSCP 0.
      const p = { ...q, dscp: 0, reservedFlag: false, moreFragments: false, fragmentOffset: 0, options: [] };
      const plain = encodeIpv4(p);
      const buf = new Uint8Array(offset + plain.length).fill(0x5a);
      buf.set(p.payload, offset + 20);
      const src = cachedAddressBytes(p.src);
      const dst = cachedAddressBytes(p.dst);
      if (src === undefined || dst === undefined) throw new Error('arbitrary address did not parse');
      writeIpv4HeaderBefore(
        buf,
        offset,
        p.payload.length,
        p.ecn,
        p.identification,
        p.dontFragment,
        p.ttl,
        p.protocol,
        src,
        dst,
      );
      expect(buf.subarray(offset)).toEqual(plain);
      expect(buf.subarray(0, offset).every((b) => b === 0x5a)).toBe(true);
    },
  );

  fcTest.prop([arbitraryIpv6Packet(1600), fc.integer({ min: 0, max: 48 })])(
    'IPv6: encodeIpv6Into at any offset equals encodeIpv6, payload copied or in place',
    (p, offset) => {
      const plain = encodeIpv6(p);
      const copied = new Uint8Array(offset + plain.length + 2).fill(0x5a);
      expect(encodeIpv6Into(p, copied, offset)).toBe(plain.length);
      expect(copied.subarray(offset, offset + plain.length)).toEqual(plain);
      expect(copied.subarray(0, offset).every((b) => b === 0x5a)).toBe(true);

      const hdr = ipv6HeaderLength(p);
      const buf = new Uint8Array(offset + plain.length);
      buf.set(p.payload, offset + hdr);
      const inPlace = { ...p, payload: buf.subarray(offset + hdr) };
      encodeIpv6Into(inPlace, buf, offset);
      expect(buf.subarray(offset)).toEqual(plain);
    },
  );

  fcTest.prop([arbitraryIpv4Packet(64)])(
    'IPv4: a buffer too short is a RangeError, nothing written past it',
    (p) => {
      const plain = encodeIpv4(p);
      const buf = new Uint8Array(plain.length - 1);
      expect(() => encodeIpv4Into(p, buf, 0)).toThrow(RangeError);
    },
  );
});
