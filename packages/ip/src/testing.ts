import fc from 'fast-check';
import { formatIpv4, formatIpv6, parseIp } from './address.ts';
import type { PseudoHeader } from './checksum.ts';
import type { IcmpMessage } from './icmp.ts';
import { type Ipv4Option, type Ipv4Packet, ipv4OptionsLength } from './ipv4.ts';
import type { Ipv6ExtensionHeader, Ipv6Option, Ipv6Packet } from './ipv6.ts';
import type { IcmpErrorReport, IpDelivery } from './types.ts';

/** Arbitraries for the IP codecs, for round-trip laws here and in users' own tests. */

export const arbitraryIpv4Address: fc.Arbitrary<string> = fc
  .uint8Array({ minLength: 4, maxLength: 4 })
  .map((b) => formatIpv4(b));

/** Biased toward zero groups so that '::' compression is exercised. */
export const arbitraryIpv6Address: fc.Arbitrary<string> = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((ws) => {
    const b = new Uint8Array(16);
    ws.forEach((w, i) => {
      b[2 * i] = w >> 8;
      b[2 * i + 1] = w & 0xff;
    });
    return formatIpv6(b);
  });

/** A transport pseudo-header (RFC 768, RFC 9293 §3.1, RFC 8200 §8.1): two addresses of one family. */
export const arbitraryPseudoHeader: fc.Arbitrary<PseudoHeader<string>> = fc.oneof(
  fc.record({ src: arbitraryIpv4Address, dst: arbitraryIpv4Address }),
  fc.record({ src: arbitraryIpv6Address, dst: arbitraryIpv6Address }),
);

export const arbitraryIpv4Option: fc.Arbitrary<Ipv4Option> = fc.oneof(
  fc.constant({ type: 1, data: new Uint8Array(0) }),
  fc.record({ type: fc.integer({ min: 2, max: 255 }), data: fc.uint8Array({ maxLength: 12 }) }),
);

export const arbitraryIpv4Options: fc.Arbitrary<Ipv4Option[]> = fc
  .array(arbitraryIpv4Option, { maxLength: 6 })
  .filter((os) => ipv4OptionsLength(os) <= 40);

export const arbitraryIpv4Packet = (maxPayload = 256): fc.Arbitrary<Ipv4Packet> =>
  fc.record({
    dscp: fc.integer({ min: 0, max: 63 }),
    ecn: fc.integer({ min: 0, max: 3 }),
    identification: fc.integer({ min: 0, max: 0xffff }),
    reservedFlag: fc.boolean(),
    dontFragment: fc.boolean(),
    moreFragments: fc.boolean(),
    fragmentOffset: fc.integer({ min: 0, max: 0x1fff }),
    ttl: fc.integer({ min: 0, max: 255 }),
    protocol: fc.integer({ min: 0, max: 255 }),
    src: arbitraryIpv4Address,
    dst: arbitraryIpv4Address,
    options: fc.oneof(fc.constant<Ipv4Option[]>([]), arbitraryIpv4Options),
    payload: fc.uint8Array({ maxLength: maxPayload, size: 'medium' }),
  });

const EXT = new Set([0, 43, 44, 60]);
/** A Next Header value that ends the chain: anything but the four extension headers parsed. */
export const arbitraryUpperLayerProtocol: fc.Arbitrary<number> = fc
  .integer({ min: 0, max: 255 })
  .filter((n) => !EXT.has(n));

export const arbitraryIpv6Option: fc.Arbitrary<Ipv6Option> = fc.record({
  type: fc.integer({ min: 2, max: 255 }),
  data: fc.uint8Array({ maxLength: 24 }),
});

const optionsHeader = (kind: 'hop-by-hop' | 'destination'): fc.Arbitrary<Ipv6ExtensionHeader> =>
  fc.record({ kind: fc.constant(kind), options: fc.array(arbitraryIpv6Option, { maxLength: 4 }) });

const routingHeader: fc.Arbitrary<Ipv6ExtensionHeader> = fc.record({
  kind: fc.constant('routing' as const),
  routingType: fc.integer({ min: 0, max: 255 }),
  segmentsLeft: fc.integer({ min: 0, max: 255 }),
  data: fc
    .integer({ min: 0, max: 4 })
    .chain((k) => fc.uint8Array({ minLength: 4 + 8 * k, maxLength: 4 + 8 * k })),
});

export const arbitraryIpv6FragmentHeader: fc.Arbitrary<Ipv6ExtensionHeader> = fc.record({
  kind: fc.constant('fragment' as const),
  fragmentOffset: fc.integer({ min: 0, max: 0x1fff }),
  moreFragments: fc.boolean(),
  identification: fc.integer({ min: 0, max: 0xffffffff }),
});

/** A chain in an order RFC 8200 §4.1 allows: Hop-by-Hop first, a Fragment header last. */
export const arbitraryIpv6ExtensionHeaders: fc.Arbitrary<Ipv6ExtensionHeader[]> = fc
  .tuple(
    fc.option(optionsHeader('hop-by-hop'), { nil: undefined }),
    fc.array(fc.oneof(optionsHeader('destination'), routingHeader), { maxLength: 3 }),
    fc.option(arbitraryIpv6FragmentHeader, { nil: undefined }),
  )
  .map(([hbh, mid, frag]) => [...(hbh ? [hbh] : []), ...mid, ...(frag ? [frag] : [])]);

export const arbitraryIpv6Packet = (maxPayload = 256): fc.Arbitrary<Ipv6Packet> =>
  fc.record({
    trafficClass: fc.integer({ min: 0, max: 255 }),
    flowLabel: fc.integer({ min: 0, max: 0xfffff }),
    hopLimit: fc.integer({ min: 0, max: 255 }),
    src: arbitraryIpv6Address,
    dst: arbitraryIpv6Address,
    extensionHeaders: fc.oneof(fc.constant<Ipv6ExtensionHeader[]>([]), arbitraryIpv6ExtensionHeaders),
    nextHeader: arbitraryUpperLayerProtocol,
    payload: fc.uint8Array({ maxLength: maxPayload, size: 'medium' }),
  });

const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const bytes = fc.uint8Array({ maxLength: 64 });
const echo = (kind: 'echo-request' | 'echo-reply'): fc.Arbitrary<IcmpMessage> =>
  fc.record({ kind: fc.constant(kind), code: u8, identifier: u16, sequence: u16, data: bytes });

const V4_KNOWN = new Set([0, 3, 8, 11, 12]);
const V6_KNOWN = new Set([1, 2, 3, 4, 128, 129]);

export const arbitraryIcmpv4Message: fc.Arbitrary<IcmpMessage> = fc.oneof(
  echo('echo-request'),
  echo('echo-reply'),
  fc.record({
    kind: fc.constant('destination-unreachable' as const),
    code: u8,
    nextHopMtu: u16,
    original: bytes,
  }),
  fc.record({ kind: fc.constant('time-exceeded' as const), code: u8, original: bytes }),
  fc.record({ kind: fc.constant('parameter-problem' as const), code: u8, pointer: u8, original: bytes }),
  fc.record({
    kind: fc.constant('unknown' as const),
    type: u8.filter((t) => !V4_KNOWN.has(t)),
    code: u8,
    body: bytes,
  }),
);

export const arbitraryIcmpv6Message: fc.Arbitrary<IcmpMessage> = fc.oneof(
  echo('echo-request'),
  echo('echo-reply'),
  fc.record({ kind: fc.constant('destination-unreachable' as const), code: u8, original: bytes }),
  fc.record({
    kind: fc.constant('packet-too-big' as const),
    code: u8,
    mtu: fc.integer({ min: 0, max: 0xffffffff }),
    original: bytes,
  }),
  fc.record({ kind: fc.constant('time-exceeded' as const), code: u8, original: bytes }),
  fc.record({
    kind: fc.constant('parameter-problem' as const),
    code: u8,
    pointer: fc.integer({ min: 0, max: 0xffffffff }),
    original: bytes,
  }),
  fc.record({
    kind: fc.constant('unknown' as const),
    type: u8.filter((t) => !V6_KNOWN.has(t)),
    code: u8,
    body: bytes,
  }),
);

/**
 * A delivery built by hand (a test feeding a transport directly, no Host): the address
 * bytes a Host takes from the header are parsed from the text here, once.
 */
export function ipDelivery(d: Omit<IpDelivery, 'srcBytes' | 'dstBytes'>): IpDelivery {
  return { ...d, srcBytes: parseIp(d.src), dstBytes: parseIp(d.dst) };
}

/** An ICMP error report built by hand, its quoted addresses' bytes parsed from the text. */
export function icmpErrorReport(e: Omit<IcmpErrorReport, 'srcBytes' | 'dstBytes'>): IcmpErrorReport {
  return { ...e, srcBytes: parseIp(e.src), dstBytes: parseIp(e.dst) };
}

/**
 * An IPv4 packet built by hand: `fields` name what a test is about (protocol, addresses,
 * payload, any header field it varies); the rest are a plain datagram's (no DSCP/ECN,
 * identification 1, DF set, TTL 64, no options).
 */
export function ipv4Packet(
  fields: Pick<Ipv4Packet, 'protocol' | 'src' | 'dst' | 'payload'> & Partial<Ipv4Packet>,
): Ipv4Packet {
  return {
    dscp: 0,
    ecn: 0,
    identification: 1,
    reservedFlag: false,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    options: [],
    ...fields,
  };
}
