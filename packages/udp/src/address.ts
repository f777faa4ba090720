import { formatIp, isIpv4LimitedBroadcast, isIpv4Multicast, isIpv6Multicast, tryParseIp } from '@stepwire/ip';

export type AddressFamily = 'IPv4' | 'IPv6';

/** An address a user named, in the forms a socket needs: family, canonical text, bytes. */
export interface ResolvedAddress {
  readonly family: AddressFamily;
  readonly address: string;
  /** 4 or 16 bytes, shared by every user of this entry: never mutate. */
  readonly addressBytes: Uint8Array;
}

const canonicalCache = new Map<string, ResolvedAddress | null>();
const CANONICAL_CACHE_MAX = 4096;

/**
 * Family, canonical text and bytes of an address literal, or undefined when the text is not
 * one: the one place a socket parses an address (bind, connect, send's address argument).
 * Cached (bounded) because an echo server passes the same few peer strings to send() for
 * every datagram.
 */
export function canonicalAddress(text: string): ResolvedAddress | undefined {
  const hit = canonicalCache.get(text);
  if (hit !== undefined) return hit ?? undefined;
  const b = tryParseIp(text);
  const out: ResolvedAddress | null = b
    ? { family: b.length === 4 ? 'IPv4' : 'IPv6', address: formatIp(b), addressBytes: b }
    : null;
  if (canonicalCache.size >= CANONICAL_CACHE_MAX) canonicalCache.clear();
  canonicalCache.set(text, out);
  return out ?? undefined;
}

/** Multicast or IPv4 limited broadcast: destinations never answered with an ICMP error (RFC 1122 §4.1.3.1). */
export function isMulticastOrBroadcast(address: Uint8Array): boolean {
  return isIpv4Multicast(address) || isIpv4LimitedBroadcast(address) || isIpv6Multicast(address);
}
