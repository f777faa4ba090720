/** WebSocket (RFC 6455): frame header and frames (§5.2), the handshake response head (§4.1), extension offers (§9.1). */
import { decodeFrame, decodeFrameHeader } from '../../packages/http/src/ws/frame.ts';
import { decodeHandshakeResponse, parseExtensions } from '../../packages/http/src/ws/handshake.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeFrameHeader(data));
  only(() => decodeFrame(data));
  only(() => decodeHandshakeResponse(data));
  const text = new TextDecoder('latin1').decode(data);
  only(() => parseExtensions(text.split('\n')));
}
