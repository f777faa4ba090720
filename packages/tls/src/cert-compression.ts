/**
 * Certificate compression (RFC 8879): the client lists the algorithms it can decompress in
 * compress_certificate; a server that shares one sends CompressedCertificate instead of
 * Certificate. zlib and brotli through node:zlib (a built-in; the seam is CertificateCompressor,
 * so another implementation can take its place).
 */
import { brotliCompressSync, brotliDecompressSync, constants, deflateSync, inflateSync } from 'node:zlib';
import { ByteWriter } from '@stepwire/wire';
import { AlertDescription, TlsAlertError } from './codec/alert.ts';
import { ExtensionType, reader, readU16List } from './codec/common.ts';
import type { Extension } from './codec/extensions.ts';

/** CertificateCompressionAlgorithm (RFC 8879 §7.3). */
export const CertificateCompressionAlgorithm = { zlib: 1, brotli: 2, zstd: 3 } as const;

export interface CertificateCompressor {
  readonly algorithm: number;
  compress(data: Uint8Array): Uint8Array;
  /** At most `length` bytes; throws on corrupt input. */
  decompress(data: Uint8Array, length: number): Uint8Array;
}

const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** zlib (RFC 1950) as RFC 8879 §3 names it. */
export const zlibCompressor: CertificateCompressor = {
  algorithm: CertificateCompressionAlgorithm.zlib,
  compress: (d) => u8(deflateSync(d, { level: 9 })),
  // maxOutputLength + 1 lets an over-long result show as longer than announced.
  decompress: (d, length) => u8(inflateSync(d, { maxOutputLength: length + 1 })),
};

/** Brotli (RFC 7932). */
export const brotliCompressor: CertificateCompressor = {
  algorithm: CertificateCompressionAlgorithm.brotli,
  compress: (d) =>
    u8(
      brotliCompressSync(d, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 9, [constants.BROTLI_PARAM_SIZE_HINT]: d.length },
      }),
    ),
  decompress: (d, length) => u8(brotliDecompressSync(d, { maxOutputLength: length + 1 })),
};

export const DEFAULT_COMPRESSORS: readonly CertificateCompressor[] = [brotliCompressor, zlibCompressor];

/** compress_certificate: algorithms<2..2^8-2> (RFC 8879 §3), as a raw extension. */
export function compressCertificateExtension(algorithms: readonly number[]): Extension {
  const w = new ByteWriter(1 + 2 * algorithms.length);
  w.u8(2 * algorithms.length);
  for (const a of algorithms) w.u16(a);
  return { type: 'raw', code: ExtensionType.compress_certificate, data: w.finish().slice() };
}

/** The algorithms of a compress_certificate extension body; throws ParseError (decode_error). */
export function decodeCompressCertificate(data: Uint8Array): number[] {
  const r = reader(data);
  const list = readU16List(r, 1, 'compress_certificate.algorithms', 2, 254);
  r.end('compress_certificate');
  return list;
}

/** The algorithms the client offered, if it sent compress_certificate. */
export function offeredCompression(extensions: readonly Extension[]): number[] | undefined {
  const ext = extensions.find((e) => e.type === 'raw' && e.code === ExtensionType.compress_certificate);
  return ext && ext.type === 'raw' ? decodeCompressCertificate(ext.data) : undefined;
}

/**
 * The Certificate body a CompressedCertificate carries. RFC 8879 §4: a message that does not
 * decompress, or not to the announced length, is a bad_certificate.
 */
export function decompressCertificate(
  compressor: CertificateCompressor,
  data: Uint8Array,
  uncompressedLength: number,
  limit: number,
): Uint8Array {
  if (uncompressedLength > limit)
    throw new TlsAlertError(
      AlertDescription.bad_certificate,
      `compressed certificate of ${uncompressedLength} bytes exceeds our limit`,
    );
  let out: Uint8Array;
  try {
    out = compressor.decompress(data, uncompressedLength);
  } catch (e) {
    throw new TlsAlertError(
      AlertDescription.bad_certificate,
      `certificate does not decompress: ${(e as Error).message}`,
    );
  }
  if (out.length !== uncompressedLength)
    throw new TlsAlertError(
      AlertDescription.bad_certificate,
      `certificate decompressed to ${out.length} bytes, not the announced ${uncompressedLength}`,
    );
  return out;
}
