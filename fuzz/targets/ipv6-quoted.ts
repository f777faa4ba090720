/** IPv6 in truncated mode: the packet quoted in an ICMPv6 error (RFC 4443 §3), as host.ts decodes it. */
import { decodeIpv6 } from '../../packages/ip/src/ipv6.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeIpv6(data, { truncated: true }));
}
