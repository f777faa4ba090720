/** ICMPv6 (RFC 4443), checksum off so mutations reach the bodies; and its one-line description. */
import { decodeIcmpv6, describeIcmp } from '../../packages/ip/src/icmp.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeIcmpv6(data, 'fd00::1', 'fd00::2', { verifyChecksum: false }));
  only(() => describeIcmp(6, data));
}
