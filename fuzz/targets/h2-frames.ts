/**
 * HTTP/2 frames (RFC 9113 §4, §6): the header alone and whole frames; Http2Error extends
 * ParseError. A frame that decodes re-encodes to as many octets as it came in (padding,
 * priority and every field kept): the check that caught HEADERS with the PRIORITY flag and
 * fewer than 5 payload octets being read past its end (fixed in 9a68d28).
 */
import {
  decodeFrame,
  decodeFrameHeader,
  encodeFrame,
  type Http2Frame,
} from '../../packages/http/src/h2/frames.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeFrameHeader(data));
  let frame: Http2Frame | undefined;
  only(() => {
    frame = decodeFrame(data);
  });
  if (frame === undefined) return;
  const again = encodeFrame(frame);
  if (again.length !== data.length) {
    throw new Error(`${frame.type}: ${data.length} octets decode to a frame that encodes to ${again.length}`);
  }
}
