/** ICMPv4 (RFC 792), checksum off so mutations reach the bodies; and its one-line description. */
import { decodeIcmpv4, describeIcmp } from '../../packages/ip/src/icmp.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeIcmpv4(data, { verifyChecksum: false }));
  only(() => describeIcmp(4, data));
}
