/**
 * IPv4 in truncated mode: the datagram quoted inside an ICMP error (RFC 792; RFC 1812 §4.3.2.3
 * lets routers quote more), shorter than its Total Length, checksum not checked (as host.ts).
 */
import type { Ipv4DecodeInfo } from '../../packages/ip/src/ipv4.ts';
import { decodeIpv4 } from '../../packages/ip/src/ipv4.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeIpv4(data, { truncated: true, verifyChecksum: false }, {} as Ipv4DecodeInfo));
}
