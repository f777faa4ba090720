/**
 * QPACK (RFC 9204): the encoder stream into a decoder (dynamic table inserts), then field
 * sections on streams, each chunk with a 2-byte length; the first chunk is the encoder
 * stream. QpackError (the connection error of §6) and ParseError are the contract.
 */
import { QpackDecoder } from '../../packages/quic/src/qpack/decoder.ts';
import { QpackError } from '../../packages/quic/src/qpack/instructions.ts';
import { chunks, only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  const d = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 4 });
  const [encoderStream, ...sections] = chunks(data);
  let ok = true;
  only(() => {
    try {
      if (encoderStream) d.onEncoderStream(encoderStream);
    } catch (e) {
      ok = false;
      throw e;
    }
  }, QpackError);
  if (!ok) return;
  sections.forEach((s, i) => {
    only(() => d.decodeFieldSection(4 * i, s), QpackError);
  });
  only(() => d.takeDecoderStreamData(), QpackError);
}
