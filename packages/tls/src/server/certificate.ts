/**
 * Our certificate for one handshake: which of our signers and which CertificateVerify
 * scheme fit the client's SNI and signature_algorithms (RFC 8446 §4.4.2.2, §4.2.3), and the
 * Certificate message itself, compressed when the client offers an algorithm we have
 * (RFC 8879 §4).
 */
import { alert, type CertificateRequestContext, type CertificateSigner, selectCertificate } from '../auth.ts';
import type { CertificateCompressor } from '../cert-compression.ts';
import { DEFAULT_COMPRESSORS, offeredCompression } from '../cert-compression.ts';
import { AlertDescription } from '../codec/alert.ts';
import { findExtension } from '../codec/extensions.ts';
import { type ClientHello, encodeHandshake, type HandshakeMessage } from '../codec/handshake.ts';
import type { TlsServerOptions } from './options.ts';

/** The certificate and CertificateVerify scheme for this ClientHello (RFC 8446 §4.4.2.2, §4.2.3). */
export function chooseCertificate(
  signer: TlsServerOptions['signer'],
  ch: ClientHello,
  serverName: string | undefined,
): { signer: CertificateSigner; scheme: number } {
  const sa = findExtension(ch.extensions, 'signature_algorithms');
  // RFC 8446 §4.2.3: certificate authentication needs signature_algorithms.
  if (!sa) alert(AlertDescription.missing_extension, 'no signature_algorithms');
  const saCert = findExtension(ch.extensions, 'signature_algorithms_cert');
  const hello: CertificateRequestContext = {
    signatureAlgorithms: sa.schemes,
    ...(saCert ? { signatureAlgorithmsCert: saCert.schemes } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
  };
  const pool = typeof signer === 'function' ? signer(hello) : signer;
  const certificate = selectCertificate(isSignerList(pool) ? pool : [pool], hello);
  // RFC 8446 §4.4.2.2/§4.2.3: no key of ours can sign in a way the client accepts.
  if (certificate === undefined) alert(AlertDescription.handshake_failure, 'no signature scheme in common');
  return certificate;
}

function isSignerList(
  p: CertificateSigner | readonly CertificateSigner[],
): p is readonly CertificateSigner[] {
  return Array.isArray(p);
}

/**
 * Our Certificate (RFC 8446 §4.4.2), or a CompressedCertificate with the first of our
 * algorithms the client offered (RFC 8879 §4).
 */
export function certificateMessage(
  ch: ClientHello,
  signer: CertificateSigner,
  compression: TlsServerOptions['certificateCompression'],
): HandshakeMessage {
  const message: HandshakeMessage = {
    msgType: 'certificate',
    certificateRequestContext: new Uint8Array(0),
    certificateList: signer.certificateChain.map((certData) => ({ certData, extensions: [] })),
  };
  const offered = offeredCompression(ch.extensions);
  const compressor =
    offered && compression !== false
      ? (compression ?? DEFAULT_COMPRESSORS).find((c) => offered.includes(c.algorithm))
      : undefined;
  return compressor ? compressedCertificate(signer, message, compressor) : message;
}

/** Compressed Certificate bodies per signer and algorithm: the same bytes every time, compressed once. */
const compressedCache = new WeakMap<CertificateSigner, Map<number, HandshakeMessage>>();

function compressedCertificate(
  signer: CertificateSigner,
  message: HandshakeMessage,
  compressor: CertificateCompressor,
): HandshakeMessage {
  let bySigner = compressedCache.get(signer);
  if (!bySigner) compressedCache.set(signer, (bySigner = new Map()));
  const cached = bySigner.get(compressor.algorithm);
  if (cached) return cached;
  const body = encodeHandshake(message).subarray(4);
  const out: HandshakeMessage = {
    msgType: 'compressed_certificate',
    algorithm: compressor.algorithm,
    uncompressedLength: body.length,
    compressedCertificateMessage: compressor.compress(body),
  };
  bySigner.set(compressor.algorithm, out);
  return out;
}
