/**
 * HTTP/1.1 message syntax (RFC 9112): request and response heads (lenient and strict), a
 * field line, trailers, a chunk header and a whole chunked body. HttpParseError extends
 * ParseError; nothing else may escape.
 */
import {
  decodeChunkedBody,
  decodeChunkHeader,
  decodeFieldLine,
  decodeRequestHead,
  decodeRequestHeadStrictly,
  decodeResponseHead,
  decodeTrailerSection,
} from '../../packages/http/src/h1/codec.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeRequestHead(data));
  only(() => decodeRequestHeadStrictly(data));
  only(() => decodeResponseHead(data));
  only(() => decodeFieldLine(data));
  only(() => decodeTrailerSection(data));
  only(() => decodeChunkHeader(data));
  only(() => decodeChunkedBody(data));
}
