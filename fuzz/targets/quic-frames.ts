/** QUIC frames (RFC 9000 §19) as a packet payload, and QUIC transport parameters (RFC 9000 §18). */
import { decodeFrames } from '../../packages/quic/src/frames/frame.ts';
import { decodeTransportParameters } from '../../packages/quic/src/transport-parameters.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeFrames(data));
  only(() => decodeTransportParameters(data));
}
