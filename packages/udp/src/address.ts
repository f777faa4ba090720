import {
  cachedAddressBytes,
  formatIp,
  isIpv4LimitedBroadcast,
  isIpv4Multicast,
  isIpv6Multicast,
  tryParseIp,
} from '@stepwire/ip';

export type AddressFamily = 'IPv4' | 'IPv6';

const canonicalCache = new Map<string, { family: AddressFamily; address: string } | null>();
const CANONICAL_CACHE_MAX = 4096;

/**
 * Family and canonical text of an address literal, or undefined when the text is not one.
 * Cached (bounded) because an echo server passes the same few peer strings to send() for
 * every datagram.
 */
export function canonicalAddress(text: string): { family: AddressFamily; address: string } | undefined {
  const hit = canonicalCache.get(text);
  if (hit !== undefined) return hit ?? undefined;
  const b = tryParseIp(text);
  const out = b
    ? { family: b.length === 4 ? ('IPv4' as const) : ('IPv6' as const), address: formatIp(b) }
    : null;
  if (canonicalCache.size >= CANONICAL_CACHE_MAX) canonicalCache.clear();
  canonicalCache.set(text, out);
  return out ?? undefined;
}

/** Multicast or IPv4 limited broadcast: destinations never answered with an ICMP error (RFC 1122 §4.1.3.1). */
export function isMulticastOrBroadcast(address: string): boolean {
  const b = cachedAddressBytes(address);
  if (!b) return false;
  return isIpv4Multicast(b) || isIpv4LimitedBroadcast(b) || isIpv6Multicast(b);
}
