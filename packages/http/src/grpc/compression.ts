/**
 * Message compression (grpc/grpc doc/compression.md): a message whose Compressed-Flag is 1
 * is compressed with the call's grpc-encoding. We read identity, gzip (RFC 1952) and
 * deflate (gRPC's "deflate" is the zlib format, RFC 1950), and can send gzip or deflate.
 * Decompression is bounded by the receive limit, so a small compressed message cannot
 * expand past it (a "zip bomb" ends the call RESOURCE_EXHAUSTED).
 */
import zlib from 'node:zlib';
import { GrpcError, GrpcStatus } from './status.ts';

export type GrpcEncoding = 'identity' | 'gzip' | 'deflate';
/** grpc-accept-encoding we send: every encoding we can read. */
export const GRPC_ACCEPT_ENCODING = 'identity,deflate,gzip';

export function isGrpcEncoding(s: unknown): s is GrpcEncoding {
  return s === 'identity' || s === 'gzip' || s === 'deflate';
}

export function grpcCompress(encoding: GrpcEncoding, data: Uint8Array): Uint8Array {
  if (encoding === 'gzip') return zlib.gzipSync(data);
  if (encoding === 'deflate') return zlib.deflateSync(data);
  return data;
}

/**
 * The message's bytes: decompressed when its flag says so. A set flag on a call whose
 * encoding is identity is a protocol violation (compression.md: INTERNAL).
 */
export function grpcDecompress(
  encoding: GrpcEncoding,
  compressed: boolean,
  data: Uint8Array,
  maxMessageSize: number,
): Uint8Array {
  if (!compressed) return data;
  if (encoding === 'identity')
    throw new GrpcError(GrpcStatus.INTERNAL, 'compressed message on a call without grpc-encoding');
  try {
    const options = { maxOutputLength: Math.max(1, maxMessageSize) };
    const out = encoding === 'gzip' ? zlib.gunzipSync(data, options) : zlib.inflateSync(data, options);
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
      throw new GrpcError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `decompressed message larger than max (${maxMessageSize})`,
      );
    throw new GrpcError(
      GrpcStatus.INTERNAL,
      `cannot decompress a ${encoding} message: ${(e as Error).message}`,
    );
  }
}
