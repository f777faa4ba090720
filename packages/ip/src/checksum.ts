import { finishChecksum, sum16 } from '@stepwire/wire';
import { cachedAddressBytes } from './address.ts';

/**
 * The addresses of the IP header that carries a transport segment: a UDP or TCP checksum
 * covers them through the pseudo-header (RFC 768; RFC 9293 §3.1; RFC 8200 §8.1 for IPv6).
 * Both of one family, each as bytes (4 or 16, what a receive path holds: IpDelivery's
 * srcBytes/dstBytes) or canonical text (what a person writes; parsed through a cache).
 * `PseudoHeader<string>` names the text-only form (test arbitraries, captures). The protocol and length the pseudo-header also holds come from the codec.
 */
export interface PseudoHeader<A extends string | Uint8Array = string | Uint8Array> {
  src: A;
  dst: A;
}

/** True when the pseudo-header's addresses are IPv6 (16 bytes, or text with ':'). */
export function isIpv6PseudoHeader(p: PseudoHeader): boolean {
  return typeof p.src === 'string' ? p.src.includes(':') : p.src.length === 16;
}

/**
 * The unfolded one's-complement sum of the pseudo-header a transport checksum covers:
 * IPv4 (RFC 768, RFC 9293 §3.1): src, dst, zero, protocol, 16-bit length;
 * IPv6 (RFC 8200 §8.1): src, dst, 32-bit upper-layer length, three zero bytes, next header.
 *
 * Pass the result as `initial` to sum16() over the transport bytes, then finishChecksum().
 * Addresses are canonical strings or raw bytes (4 or 16); both must be of one family.
 */
export function pseudoHeaderSum(
  src: string | Uint8Array,
  dst: string | Uint8Array,
  protocol: number,
  length: number,
): number {
  const s = typeof src === 'string' ? cachedAddressBytes(src) : src;
  const d = typeof dst === 'string' ? cachedAddressBytes(dst) : dst;
  if (s === undefined || d === undefined || s.length !== d.length || (s.length !== 4 && s.length !== 16)) {
    throw new RangeError(`pseudoHeaderSum: bad address pair ${String(src)} ${String(dst)}`);
  }
  let sum = 0;
  for (let i = 0; i < s.length; i += 2) sum += ((s[i]! << 8) | s[i + 1]!) + ((d[i]! << 8) | d[i + 1]!);
  if (s.length === 4) {
    sum += protocol & 0xff;
    sum += length & 0xffff;
  } else {
    sum += (length >>> 16) & 0xffff;
    sum += length & 0xffff;
    sum += protocol & 0xff;
  }
  return sum;
}

/**
 * Finish a checksum left partial (PacketInfo.csum 'partial'): the field at `start + offset`
 * holds the folded pseudo-header sum; sum everything from `start` to the end over it and
 * write the complement there, as a NIC or the kernel's skb_checksum_help does.
 */
export function completeChecksum(packet: Uint8Array, start: number, offset: number): void {
  const at = start + offset;
  if (start < 0 || at + 2 > packet.length)
    throw new RangeError(`completeChecksum: field at ${at} outside ${packet.length}`);
  const ck = finishChecksum(sum16(packet.subarray(start)));
  packet[at] = ck >> 8;
  packet[at + 1] = ck & 0xff;
}
