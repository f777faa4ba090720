/** IPv4 (RFC 791): a whole datagram, header checksum verified and not. */
import { decodeIpv4 } from '../../packages/ip/src/ipv4.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeIpv4(data));
  only(() => decodeIpv4(data, { verifyChecksum: false }));
}
