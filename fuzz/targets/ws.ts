/**
 * WebSocket (RFC 6455): frame header and frames (§5.2; a frame that decodes encodes back to
 * the same octets), the handshake response head (§4.1), extension offers (§9.1).
 */
import { decodeFrame, decodeFrameHeader, encodeFrame } from '../../packages/http/src/ws/frame.ts';
import { decodeHandshakeResponse, parseExtensions } from '../../packages/http/src/ws/handshake.ts';
import { only, reencodes } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeFrameHeader(data));
  reencodes('ws frame', data, decodeFrame, encodeFrame);
  only(() => decodeHandshakeResponse(data));
  const text = new TextDecoder('latin1').decode(data);
  only(() => parseExtensions(text.split('\n')));
}
