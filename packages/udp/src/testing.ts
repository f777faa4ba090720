import { formatIpv6 } from '@stepwire/ip';
import fc from 'fast-check';
import type { PseudoHeader, UdpDatagram } from './datagram.ts';

export const arbitraryPort: fc.Arbitrary<number> = fc.integer({ min: 0, max: 0xffff });

/** A UDP datagram; payloads are short by default (parsers' edge cases live there). */
export const arbitraryUdpDatagramOf = (maxPayload = 512): fc.Arbitrary<UdpDatagram> =>
  fc.record({
    srcPort: arbitraryPort,
    dstPort: arbitraryPort,
    payload: fc.uint8Array({ minLength: 0, maxLength: maxPayload }),
  });

export const arbitraryUdpDatagram: fc.Arbitrary<UdpDatagram> = arbitraryUdpDatagramOf();

/** A dotted quad in canonical text. */
export const arbitraryIpv4Address: fc.Arbitrary<string> = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((b) => b.join('.'));

/** IPv6 in RFC 5952 canonical text; biased toward zero runs so '::' compression is exercised. */
export const arbitraryIpv6Address: fc.Arbitrary<string> = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((words) => {
    const b = new Uint8Array(16);
    words.forEach((w, i) => {
      b[2 * i] = w >> 8;
      b[2 * i + 1] = w & 0xff;
    });
    return formatIpv6(b);
  });

/** A pseudo-header of either family (both addresses of the same family). */
export const arbitraryPseudoHeader: fc.Arbitrary<PseudoHeader> = fc.oneof(
  fc.record({ src: arbitraryIpv4Address, dst: arbitraryIpv4Address }),
  fc.record({ src: arbitraryIpv6Address, dst: arbitraryIpv6Address }),
);
