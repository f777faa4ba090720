/**
 * QUIC packet headers (RFC 9000 §17, RFC 8999): the invariant header, a protected header as
 * a receiver first parses it, a plaintext packet, Retry and Version Negotiation. The first
 * byte picks the short-header Destination Connection ID length (0-20).
 */
import {
  decodeInvariantHeader,
  decodePlainPacket,
  decodeRetry,
  decodeVersionNegotiation,
  parseProtectedHeader,
} from '../../packages/quic/src/packet/header.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  if (data.length === 0) return;
  const dcid = data[0]! % 21;
  const b = data.subarray(1);
  only(() => decodeInvariantHeader(b, dcid));
  only(() => parseProtectedHeader(b, dcid));
  only(() => decodePlainPacket(b, dcid));
  only(() => decodeRetry(b));
  only(() => decodeVersionNegotiation(b));
}
