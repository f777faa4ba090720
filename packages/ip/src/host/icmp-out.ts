/**
 * When a host may send an ICMP error, and how much of the offending datagram it quotes
 * (RFC 1122 §3.2.2 and RFC 1812 §4.3.2 for ICMPv4; RFC 4443 §2.4 for ICMPv6).
 */

import { ParseError } from '@stepwire/wire';
import {
  cachedAddressBytes,
  isIpv4LimitedBroadcast,
  isIpv4Multicast,
  isIpv6Multicast,
  isUnspecified,
} from '../address.ts';
import { isIcmpv4ErrorType, isIcmpv6ErrorType } from '../icmp.ts';
import { IPV4_MIN_HEADER } from '../ipv4.ts';
import { decodeIpv6, IPV6_HEADER_LENGTH } from '../ipv6.ts';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, type IpVersion } from '../types.ts';

/** RFC 1812 §4.3.2.3: quote as much as fits in a 576-byte ICMP datagram. */
export const QUOTE_V4 = 576 - IPV4_MIN_HEADER - 8;
/** RFC 4443 §2.4(c): as much as fits without exceeding the minimum IPv6 MTU. */
export const QUOTE_V6 = 1280 - IPV6_HEADER_LENGTH - 8;

/** Why an error is not sent; each reason is counted as `<layer>.error.suppressed.<why>`. */
export type IcmpSuppression = 'malformed' | 'fragment' | 'icmp-error' | 'to-group' | 'bad-source';

/** The offending datagram: its addresses and its leading bytes. */
export interface OffendingDatagram {
  src: string;
  dst: string;
  original: Uint8Array;
}

/**
 * RFC 1122 §3.2.2 / RFC 4443 §2.4(e): never an error about an ICMP error, a datagram to or
 * from a broadcast or multicast address, or a fragment other than the first. An IPv6
 * Parameter Problem about an unrecognized option whose type asks for it (RFC 8200 §4.2,
 * action 2) may answer a multicast destination: `multicastDstOk`.
 */
export function icmpErrorSuppressed(
  version: IpVersion,
  off: OffendingDatagram,
  broadcasts: ReadonlySet<string>,
  multicastDstOk: boolean,
): IcmpSuppression | 'no-address' | undefined {
  const o = off.original;
  const srcBytes = cachedAddressBytes(off.src);
  const dstBytes = cachedAddressBytes(off.dst);
  if (srcBytes === undefined || dstBytes === undefined) return 'no-address';
  if (version === 4) {
    const hl = o.length >= IPV4_MIN_HEADER ? ((o[0] ?? 0) & 0x0f) * 4 : 0;
    if (hl < IPV4_MIN_HEADER) return 'malformed';
    if (((((o[6] ?? 0) & 0x1f) << 8) | (o[7] ?? 0)) !== 0) return 'fragment';
    if (o[9] === IPPROTO_ICMP && (o.length <= hl || isIcmpv4ErrorType(o[hl] ?? 0))) return 'icmp-error';
    if (isIpv4Multicast(dstBytes) || broadcasts.has(off.dst) || isIpv4LimitedBroadcast(dstBytes))
      return 'to-group';
    if (
      isIpv4Multicast(srcBytes) ||
      broadcasts.has(off.src) ||
      isUnspecified(srcBytes) ||
      srcBytes[0] === 127
    )
      return 'bad-source';
    return undefined;
  }
  try {
    const q = decodeIpv6(o, { truncated: true });
    const fh = q.extensionHeaders.find((h) => h.kind === 'fragment');
    if (fh?.kind === 'fragment' && fh.fragmentOffset !== 0) return 'fragment';
    if (q.nextHeader === IPPROTO_ICMPV6 && (q.payload.length === 0 || isIcmpv6ErrorType(q.payload[0] ?? 0)))
      return 'icmp-error';
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    return 'malformed';
  }
  if (isIpv6Multicast(dstBytes) && !multicastDstOk) return 'to-group';
  if (isIpv6Multicast(srcBytes) || isUnspecified(srcBytes)) return 'bad-source';
  return undefined;
}

/** The quote an error carries: the datagram's leading bytes, no more than the RFC allows. */
export function icmpQuote(version: IpVersion, original: Uint8Array): Uint8Array {
  return original.subarray(0, Math.min(original.length, version === 4 ? QUOTE_V4 : QUOTE_V6));
}
