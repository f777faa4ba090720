// @stepwire/tls: TLS 1.3 (RFC 8446) over any byte stream.

// ---- Core: crypto seam, codecs, key schedule, record protection, handshake machines (tls core helper) ----
export { type CertificateSigner, type CertificateVerifier, certificateVerifyInput } from './auth.ts';
export * from './client.ts';
export * from './codec/alert.ts';
export * from './codec/common.ts';
export * from './codec/extensions.ts';
export * from './codec/handshake.ts';
export * from './codec/record.ts';
export * from './connection.ts';
export * from './crypto/index.ts';
export * from './keylog.ts';
export * from './keyschedule.ts';
export * from './record.ts';
export * from './server.ts';
export * from './socket.ts';

// ---- PKI: X.509, ASN.1, certificate signatures (pki helper adds its exports below) ----
