/**
 * @stepwire/tls: TLS 1.3 (RFC 8446) over any byte stream.
 *
 * - Codecs (codec/*): records, alerts, handshake messages and extensions, each a plain-data
 *   type with decodeX/encodeX; arbitraries in '@stepwire/tls/testing'.
 * - Crypto seam (crypto/*): CryptoProvider, nobleCrypto (default) and nodeCrypto (OpenSSL).
 * - Key schedule and record protection: KeySchedule, Transcript, RecordProtection.
 * - Sans-I/O machines: TlsClient and TlsServer take bytes and `now`, return bytes and events;
 *   certificates come in through the CertificateVerifier and CertificateSigner seams.
 * - TlsSocket (connect/accept): the same machines as a Node Duplex over any Duplex.
 * Secrets leave only through the keyLog callback (NSS key log lines), never through traces.
 */

// ---- Core: crypto seam, codecs, key schedule, record protection, handshake machines (tls core helper) ----
export {
  type CertificateRequestContext,
  type CertificateSigner,
  type CertificateVerifier,
  certificateVerifyInput,
  selectCertificate,
} from './auth.ts';
export * from './cert-compression.ts';
export * from './client.ts';
export * from './codec/alert.ts';
export * from './codec/common.ts';
export * from './codec/extensions.ts';
export * from './codec/handshake.ts';
export * from './codec/record.ts';
export * from './connection.ts';
export * from './crypto/index.ts';
export * from './kex.ts';
export * from './keylog.ts';
export * from './keyschedule.ts';
export * from './record.ts';
export * from './server.ts';
export * from './socket.ts';

// ---- PKI: X.509, ASN.1, certificate signatures (pki helper adds its exports below) ----

export * from './anti-replay.ts';
// ---- node:tls-shaped API and the pki glue for the seams (api.ts, credentials.ts) ----
// The explicit `connect` below takes precedence over socket.ts's: it keeps that form
// (connect(transport, TlsClientOptions)) as an overload and adds connect({ socket, ... }).
export {
  type ConnectionSource,
  type ConnectOptions,
  connect,
  createServer,
  decodeSession,
  encodeSession,
  type KeyCertPair,
  type PeerCertificate,
  type ProviderChoice,
  SecureServer,
  SecureSocket,
  type ServerOptions,
} from './api.ts';
export * from './credentials.ts';
export * as pki from './pki/index.ts';
export * from './session-ticket.ts';
