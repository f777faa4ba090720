/** Classic pcap files (draft-ietf-opsawg-pcap): either byte order and precision. */
import { decodePcap } from '../../packages/link/src/pcap.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodePcap(data));
}
