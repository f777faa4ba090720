/** HTTP/2 frames (RFC 9113 §4, §6): the header alone and whole frames; Http2Error extends ParseError. */
import { decodeFrame, decodeFrameHeader } from '../../packages/http/src/h2/frames.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeFrameHeader(data));
  only(() => decodeFrame(data));
}
