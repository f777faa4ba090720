/** pcapng files (draft-ietf-opsawg-pcapng): sections, interfaces, packets and TLS secrets blocks, either byte order; then the packets and secrets the trace command reads from them. */
import { decodePcapng, pcapngPackets } from '../../packages/link/src/pcapng.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => pcapngPackets(decodePcapng(data)));
}
