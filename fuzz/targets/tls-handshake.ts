/**
 * TLS 1.3 handshake messages (RFC 8446 §4): every message type through decodeHandshake; a
 * message that decodes encodes back to the same octets (the transcript hash depends on it).
 */
import { decodeHandshake, encodeHandshake } from '../../packages/tls/src/codec/handshake.ts';
import { reencodes } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  reencodes('handshake', data, (b) => decodeHandshake(b), encodeHandshake);
}
