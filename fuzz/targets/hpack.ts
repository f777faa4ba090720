/**
 * HPACK (RFC 7541) header blocks through one decoder, so the dynamic table carries over from
 * block to block as on a connection: chunks with a 2-byte length each. ParseError and its
 * subclasses (HeaderListTooLargeError) are the decoder's contract.
 */
import { HpackDecoder } from '../../packages/http/src/hpack/codec.ts';
import { chunks, only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  const d = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 16 * 1024 });
  for (const block of chunks(data)) {
    let failed = false;
    only(() => {
      try {
        d.decode(block);
      } catch (e) {
        failed = true;
        throw e;
      }
    });
    // A decoding error is a connection error (RFC 7541 §2.3.3 / RFC 9113 §4.3): no more blocks.
    if (failed) return;
  }
}
