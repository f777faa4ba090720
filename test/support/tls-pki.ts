/**
 * Certificates for the handshake seams from the fixtures: thin adapters over the package's
 * own pki glue (certificateVerifier/certificateSigner in @stepwire/tls), so the interop tests
 * exercise exactly what users get. It depends on nothing but @stepwire/tls, so benchmarks can
 * use it too.
 */
import {
  type CertificateSigner,
  type CertificateVerifier,
  certificateSigner,
  certificateVerifier,
} from '@stepwire/tls';
import type { Credentials, SignatureProvider, X509Certificate } from '../../packages/tls/src/pki/index.ts';

/** Anything with a certificate: a PEM fixture (tls-peers.ts) or pki Credentials. */
interface HasCredentials {
  credentials: Credentials;
}

export type Trust = HasCredentials | Credentials | readonly (HasCredentials | Credentials)[];

function anchorsOf(trust: Trust): X509Certificate[] {
  const list = Array.isArray(trust) ? trust : [trust];
  return list.map((t: HasCredentials | Credentials) => ('credentials' in t ? t.credentials : t).certificate);
}

function credentialsOf(id: HasCredentials | Credentials): Credentials {
  return 'credentials' in id ? id.credentials : id;
}

/**
 * Verifies the peer's chain against `trust` (RFC 5280 path validation, the RFC 6125 name check
 * against the connection's server name for servers) and its CertificateVerify signatures; a
 * refusal is the TLS alert pki names for it.
 */
export function pkiVerifier(
  trust: Trust,
  purpose: 'serverAuth' | 'clientAuth' = 'serverAuth',
  /** Where signatures are checked: pki's default (node:crypto) or pureSignatures. */
  provider?: SignatureProvider,
): CertificateVerifier {
  return certificateVerifier({
    ca: anchorsOf(trust),
    purpose,
    ...(provider ? { signatures: provider } : {}),
  });
}

/** Signs CertificateVerify with a fixture's key, sending its certificate. */
export function pkiSigner(id: HasCredentials | Credentials, provider?: SignatureProvider): CertificateSigner {
  const c = credentialsOf(id);
  return certificateSigner({
    cert: c.certificate,
    key: c.privateKey,
    ...(provider ? { signatures: provider } : {}),
  });
}
