/** A TCP segment (RFC 9293 §3.1), checksum skipped so mutations reach the options and flags. */
import { decodeSegment, describeSegment } from '../../packages/tcp/src/segment.ts';
import { only } from './expect.ts';

const V4 = { src: '198.18.0.1', dst: '198.18.0.2' };

export function fuzz(data: Uint8Array): void {
  only(() => {
    const s = decodeSegment(data, V4, { verifyChecksum: false });
    describeSegment(s);
  });
  only(() => decodeSegment(data, V4));
}
