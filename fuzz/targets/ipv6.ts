/** IPv6 (RFC 8200) with its extension header chain. */
import { decodeIpv6 } from '../../packages/ip/src/ipv6.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeIpv6(data));
}
