/** UDP (RFC 768): header alone, and the datagram over both families with and without its checksum. */
import { decodeUdp, decodeUdpHeader } from '../../packages/udp/src/datagram.ts';
import { only } from './expect.ts';

const V4 = { src: '198.18.0.1', dst: '198.18.0.2' };
const V6 = { src: 'fd00::1', dst: 'fd00::2' };

export function fuzz(data: Uint8Array): void {
  only(() => decodeUdpHeader(data));
  only(() => decodeUdp(data, V4));
  only(() => decodeUdp(data, V6));
  only(() => decodeUdp(data, V4, { verifyChecksum: false }));
}
