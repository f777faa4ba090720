import { arbitraryIpv4Address, arbitraryIpv6Address, arbitraryPseudoHeader } from '@stepwire/ip/testing';
import fc from 'fast-check';
import type { UdpDatagram } from './datagram.ts';

export const arbitraryPort: fc.Arbitrary<number> = fc.integer({ min: 0, max: 0xffff });

/** A UDP datagram; payloads are short by default (parsers' edge cases live there). */
export const arbitraryUdpDatagramOf = (maxPayload = 512): fc.Arbitrary<UdpDatagram> =>
  fc.record({
    srcPort: arbitraryPort,
    dstPort: arbitraryPort,
    payload: fc.uint8Array({ minLength: 0, maxLength: maxPayload }),
  });

export const arbitraryUdpDatagram: fc.Arbitrary<UdpDatagram> = arbitraryUdpDatagramOf();

// Addresses in canonical text and pseudo-headers come from ip's arbitraries: one generator
// for every transport, as PseudoHeader is one type (ip).
export { arbitraryIpv4Address, arbitraryIpv6Address, arbitraryPseudoHeader };
