/**
 * The glue from our pki (RFC 5280 path validation, TLS 1.3 signature schemes) to the
 * handshake machines' CertificateVerifier and CertificateSigner seams. It depends on nothing
 * but @stepwire/tls, so benchmarks can use it too.
 */
import {
  AlertDescription,
  type CertificateSigner,
  type CertificateVerifier,
  TlsAlertError,
} from '@stepwire/tls';
import {
  CERTIFICATE_VERIFY_SCHEMES,
  CertificateError,
  type Credentials,
  decodeCertificate,
  type SignatureProvider,
  schemesForKey,
  sign,
  verifyCertificateChain,
  verifySignature,
  type X509Certificate,
} from '../../packages/tls/src/pki/index.ts';

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
 * A CertificateVerifier on our pki: RFC 5280 path validation to `trust`, the RFC 6125 name
 * check, and CertificateVerify signatures; a refusal is the TLS alert pki names for it.
 */
export function pkiVerifier(
  trust: Trust,
  purpose: 'serverAuth' | 'clientAuth' = 'serverAuth',
  /** Where signatures are checked: pki's default (node:crypto) or pureSignatures. */
  provider?: SignatureProvider,
): CertificateVerifier {
  const trustAnchors = anchorsOf(trust);
  return {
    signatureSchemes: CERTIFICATE_VERIFY_SCHEMES,
    verifyChain(chain, context) {
      try {
        verifyCertificateChain(chain[0], chain.slice(1), {
          trustAnchors,
          now: new Date(context.now),
          hostname: context.serverName,
          purpose,
          ...(provider ? { provider } : {}),
        });
      } catch (e) {
        if (e instanceof CertificateError) throw new TlsAlertError(AlertDescription[e.alert], e.message);
        throw new TlsAlertError(AlertDescription.bad_certificate, (e as Error).message);
      }
    },
    verifySignature(leaf, scheme, content, signature) {
      try {
        return verifySignature(
          scheme,
          decodeCertificate(leaf).subjectPublicKeyInfo,
          content,
          signature,
          provider,
        );
      } catch {
        return false;
      }
    },
  };
}

/** A CertificateSigner on our pki for a certificate and its key. */
export function pkiSigner(id: HasCredentials | Credentials, provider?: SignatureProvider): CertificateSigner {
  const c = credentialsOf(id);
  return {
    certificateChain: [c.certificateDer],
    signatureSchemes: schemesForKey(c.privateKey),
    sign: (scheme, content) => sign(scheme, c.privateKey, content, provider),
  };
}
