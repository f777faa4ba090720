/**
 * node:tls option values to our machines' terms: suite, group and signature scheme names to
 * code points, the TLS versions we can honour, the crypto provider, the default trust anchors
 * and node:tls's cert/key arrays to key/cert pairs.
 */
import { rootCertificates } from 'node:tls';
import { CipherSuite, NamedGroup, SignatureScheme } from '../codec/common.ts';
import { type CertificatesInput, parseCertificates } from '../credentials.ts';
import { nobleCrypto } from '../crypto/noble.ts';
import { nodeCrypto } from '../crypto/node.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import {
  nodeSignatures,
  type PrivateKey,
  pureSignatures,
  type SignatureProvider,
  type X509Certificate,
} from '../pki/index.ts';
import type { CommonOptions, KeyCertPair, ProviderChoice, ServerOptions } from './options.ts';

const CIPHER_NAMES = CipherSuite as Record<string, number>;
const GROUP_ALIASES: Record<string, number> = {
  x25519mlkem768: NamedGroup.X25519MLKEM768,
  x25519: NamedGroup.x25519,
  'p-256': NamedGroup.secp256r1,
  prime256v1: NamedGroup.secp256r1,
  secp256r1: NamedGroup.secp256r1,
  'p-384': NamedGroup.secp384r1,
  secp384r1: NamedGroup.secp384r1,
  'p-521': NamedGroup.secp521r1,
  secp521r1: NamedGroup.secp521r1,
  x448: NamedGroup.x448,
};

/** cipherSuites, else the TLS 1.3 names in node:tls's `ciphers` (undefined: our default). */
export function suitesOf(o: CommonOptions): number[] | undefined {
  if (o.cipherSuites !== undefined) return cipherSuitesOf(o.cipherSuites);
  const names = (o.ciphers ?? '').split(':').filter((n) => CIPHER_NAMES[n] !== undefined);
  return names.length > 0 ? cipherSuitesOf(names.join(':')) : undefined;
}

function cipherSuitesOf(v: string | readonly number[] | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return [...v];
  return v
    .split(':')
    .filter((s) => s !== '')
    .map((name) => {
      const code = CIPHER_NAMES[name];
      if (code === undefined) throw new RangeError(`unknown TLS 1.3 cipher suite '${name}'`);
      return code;
    });
}

export function groupsOf(v: string | readonly number[] | undefined): number[] | undefined {
  if (v === undefined || v === 'auto') return undefined;
  if (typeof v !== 'string') return [...v];
  return v
    .split(':')
    .filter((s) => s !== '')
    .map((name) => {
      const code = GROUP_ALIASES[name.toLowerCase()];
      if (code === undefined)
        throw new RangeError(
          `unsupported group '${name}' (X25519MLKEM768, X25519, X448, P-256, P-384 and P-521 exist)`,
        );
      return code;
    });
}

const SCHEME_NAMES = SignatureScheme as Record<string, number>;

export function sigalgsOf(v: string | readonly number[] | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return [...v];
  return v
    .split(':')
    .filter((s) => s !== '')
    .map((name) => {
      const code = SCHEME_NAMES[name.toLowerCase()];
      if (code === undefined) throw new RangeError(`unknown TLS 1.3 signature scheme '${name}'`);
      return code;
    });
}

const VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** A minVersion up to TLSv1.3 allows TLS 1.3; a maxVersion below it would need a TLS we lack. */
export function checkVersions(o: CommonOptions): void {
  if (o.minVersion !== undefined && !VERSIONS.includes(o.minVersion))
    throw new RangeError(`minVersion '${o.minVersion}' is not a TLS version`);
  if (o.maxVersion !== undefined && o.maxVersion !== 'TLSv1.3')
    throw new RangeError(`maxVersion '${o.maxVersion}': only TLSv1.3 is implemented (RFC 8446)`);
}

export function providerOf(p: ProviderChoice | undefined): {
  crypto: CryptoProvider;
  signatures?: SignatureProvider;
} {
  if (p === undefined) return { crypto: nobleCrypto };
  if (p === 'noble') return { crypto: nobleCrypto, signatures: pureSignatures };
  if (p === 'node') return { crypto: nodeCrypto, signatures: nodeSignatures };
  return { crypto: p };
}

let defaultAnchors: X509Certificate[] | undefined;
/** node:tls's bundled Mozilla roots, parsed once; any our strict parser refuses is left out. */
export function defaultCa(): X509Certificate[] {
  if (!defaultAnchors) {
    defaultAnchors = rootCertificates.flatMap((pem) => {
      try {
        return parseCertificates(pem);
      } catch {
        return [];
      }
    });
  }
  return defaultAnchors;
}

/**
 * The key/cert pairs of server options: `certificates`, then cert/key, where (as in node:tls)
 * a key array goes with a cert array of the same length, one chain per key.
 */
export function keyCertPairs(o: Pick<ServerOptions, 'cert' | 'key' | 'certificates'>): KeyCertPair[] {
  const out: KeyCertPair[] = [...(o.certificates ?? [])];
  if (o.key === undefined && o.cert === undefined) return out;
  if (o.key === undefined || o.cert === undefined) throw new TypeError('cert and key go together');
  if (Array.isArray(o.key)) {
    const certs = o.cert as readonly CertificatesInput[];
    if (!Array.isArray(o.cert) || certs.length !== o.key.length)
      throw new TypeError('with several keys, cert is an array of as many chains, in the same order');
    const keys = o.key as readonly (string | PrivateKey)[];
    for (let i = 0; i < keys.length; i++) out.push({ key: keys[i]!, cert: certs[i]! });
  } else out.push({ key: o.key as string | PrivateKey, cert: o.cert as CertificatesInput });
  return out;
}
