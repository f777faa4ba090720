import type { CertificateSigner } from '../auth.ts';
import { type CertificatesInput, certificateSigner, parseCertificates } from '../credentials.ts';
import type { PrivateKey, X509Certificate } from '../pki/index.ts';
import type { KeyCertPair, ProviderChoice } from './options.ts';
import { keyCertPairs, providerOf } from './parse-options.ts';

/**
 * node:tls's SecureContext: certificates (and trust anchors) made once and used by many
 * connections, for SNICallback, addContext and the secureContext options.
 */
export class SecureContext {
  /** Our certificates, in preference order (empty for a client-only context without cert/key). */
  readonly signers: readonly CertificateSigner[];
  readonly ca?: X509Certificate[];
  /** The parsed options, so a client context can still give its own cert and key. */
  readonly pairs: readonly KeyCertPair[];
  constructor(options: SecureContextOptions = {}) {
    const { signatures } = providerOf(options.provider);
    this.pairs = keyCertPairs(options);
    this.signers = this.pairs.map((p) =>
      certificateSigner({ cert: p.cert, key: p.key, ...(signatures ? { signatures } : {}) }),
    );
    if (options.ca !== undefined) this.ca = parseCertificates(options.ca);
  }
}

export interface SecureContextOptions {
  cert?: CertificatesInput | readonly CertificatesInput[];
  key?: string | PrivateKey | readonly (string | PrivateKey)[];
  certificates?: readonly KeyCertPair[];
  ca?: CertificatesInput;
  provider?: ProviderChoice;
}

/** node:tls's createSecureContext. */
export function createSecureContext(options: SecureContextOptions = {}): SecureContext {
  return new SecureContext(options);
}
