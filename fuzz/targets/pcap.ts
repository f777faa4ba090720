/** Classic pcap files (draft-ietf-opsawg-pcap): either byte order and precision; a file that decodes encodes back to the same octets. */
import { decodePcap, encodePcap } from '../../packages/link/src/pcap.ts';
import { reencodes } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  reencodes('pcap', data, decodePcap, encodePcap);
}
