/** TLS 1.3 handshake messages (RFC 8446 §4): every message type through decodeHandshake. */
import { decodeHandshake } from '../../packages/tls/src/codec/handshake.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeHandshake(data));
}
