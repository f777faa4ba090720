/**
 * Issuing certificates (RFC 5280 §4.1): a self-signed CA and leaves it signs, as
 * `stepwire serve` needs on first use. Output is DER, PEM and PKCS#8 keys that openssl,
 * curl and Node's tls accept.
 */
import { sha1 } from '@noble/hashes/legacy.js';
import { ParseError } from '@stepwire/wire';
import { DerReader, der } from './der.ts';
import { decodePrivateKeyPem, encodePrivateKeyPem, type PrivateKey, publicKeyOf } from './keys.ts';
import { OID } from './oids.ts';
import {
  algorithmIdentifierFor,
  generateKey,
  getDefaultSignatureProvider,
  randomBytesFrom,
  type SignatureAlgorithm,
  type SignatureProvider,
} from './signature.ts';
import {
  decodeCertificate,
  decodeCertificatesPem,
  encodeCertificatePem,
  encodeGeneralNames,
  encodeName,
  encodeSpki,
  type GeneralName,
  KEY_USAGE_BITS,
  type KeyUsage,
  type PublicKey,
  type X509Certificate,
} from './x509.ts';

export interface ExtensionSpec {
  oid: string;
  critical: boolean;
  /** DER of the extension's value (what goes inside extnValue's OCTET STRING). */
  value: Uint8Array;
}

export interface CertificateTemplate {
  /** Subject attributes in order, e.g. `[['O', 'stepwire'], ['CN', 'stepwire CA']]`. */
  subject: [string, string][];
  /** Positive, at most 20 octets (RFC 5280 §4.1.2.2). Default: 16 random octets. */
  serialNumber?: bigint;
  notBefore: Date;
  notAfter: Date;
  publicKey: PublicKey;
  /** basicConstraints (always written, critical): cA and optional pathLenConstraint. */
  isCA: boolean;
  pathLenConstraint?: number;
  keyUsage?: KeyUsage[];
  /** Key purpose OIDs, e.g. OID.serverAuth. */
  extKeyUsage?: string[];
  subjectAltNames?: GeneralName[];
  /** Further extensions, written after the standard ones. */
  extraExtensions?: ExtensionSpec[];
}

export interface Issuer {
  /** The issuer's certificate; undefined for a self-signed certificate. */
  certificate?: X509Certificate;
  privateKey: PrivateKey;
}

/** The signature algorithm a key signs certificates with (RFC 5758 / RFC 8410 / RFC 4055). */
export function defaultCertificateSignature(key: PrivateKey): SignatureAlgorithm {
  switch (key.type) {
    case 'ed25519':
      return { kind: 'ed25519' };
    case 'ec':
      return { kind: 'ecdsa', hash: key.curve === 'P-256' ? 'sha256' : 'sha384' };
    case 'rsa':
      return { kind: 'rsa-pkcs1', hash: 'sha256' };
  }
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's value. */
export function keyIdentifier(key: PublicKey): Uint8Array {
  const spki = new DerReader(encodeSpki(key)).sequence('spki');
  spki.sequence('algorithm');
  return sha1(spki.bitStringBytes('subjectPublicKey'));
}

/** KeyUsage as a DER named-bit BIT STRING: trailing zero bits dropped (X.690 §11.2.2). */
function keyUsageDer(usages: KeyUsage[]): Uint8Array {
  const bits = usages.map((u) => KEY_USAGE_BITS.indexOf(u));
  if (bits.length === 0) throw new RangeError('keyUsage needs at least one bit (RFC 5280 §4.2.1.3)');
  const highest = Math.max(...bits);
  const bytes = new Uint8Array((highest >> 3) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return der.bitString(bytes, 7 - (highest & 7));
}

function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return der.sequence(der.oid(oid), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

/** RFC 5280 §4.1.2.2: a positive serial of up to 20 octets; 16 random ones, from the provider. */
function randomSerial(provider: SignatureProvider): bigint {
  const b = randomBytesFrom(provider, 16);
  b[0]! &= 0x7f; // positive
  b[0]! |= 0x01; // and non-zero, with a fixed length
  return BigInt(`0x${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`);
}

/** Builds, signs and returns a certificate (parsed, so `raw` is its DER). */
export function issueCertificate(
  template: CertificateTemplate,
  issuer: Issuer,
  options: { signature?: SignatureAlgorithm; provider?: SignatureProvider } = {},
): X509Certificate {
  const provider = options.provider ?? getDefaultSignatureProvider();
  const sigAlg = options.signature ?? defaultCertificateSignature(issuer.privateKey);
  const algId = algorithmIdentifierFor(sigAlg);
  const subjectName = encodeName(template.subject);
  const issuerName = issuer.certificate ? issuer.certificate.subject.raw : subjectName;
  const serial = template.serialNumber ?? randomSerial(provider);
  if (serial <= 0n || serial >= 1n << 159n)
    throw new RangeError('serialNumber must be positive and at most 20 octets');

  const exts: Uint8Array[] = [];
  // RFC 5280 §4.2.1.9: basicConstraints MUST be critical in CA certificates; we mark it critical always.
  exts.push(
    extension(
      OID.basicConstraints,
      true,
      der.sequence(
        ...(template.isCA ? [der.boolean(true)] : []),
        ...(template.isCA && template.pathLenConstraint !== undefined
          ? [der.integer(template.pathLenConstraint)]
          : []),
      ),
    ),
  );
  // RFC 5280 §4.2.1.3: SHOULD be critical.
  if (template.keyUsage) exts.push(extension(OID.keyUsage, true, keyUsageDer(template.keyUsage)));
  if (template.extKeyUsage) {
    exts.push(
      extension(OID.extKeyUsage, false, der.sequence(...template.extKeyUsage.map((o) => der.oid(o)))),
    );
  }
  if (template.subjectAltNames?.length) {
    // RFC 5280 §4.2.1.6: critical when the subject is empty.
    exts.push(
      extension(
        OID.subjectAltName,
        template.subject.length === 0,
        encodeGeneralNames(template.subjectAltNames),
      ),
    );
  }
  // RFC 5280 §4.2.1.2 (SKI in every CA; SHOULD in leaves) and §4.2.1.1 (AKI except in self-signed).
  exts.push(extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(template.publicKey))));
  const issuerKeyId = issuer.certificate?.subjectKeyIdentifier;
  if (issuer.certificate) {
    const kid = issuerKeyId ?? keyIdentifier(publicKeyOf(issuer.privateKey));
    exts.push(extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicit(0, kid))));
  }
  for (const e of template.extraExtensions ?? []) exts.push(extension(e.oid, e.critical, e.value));

  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3
    der.integer(serial),
    algId,
    issuerName,
    der.sequence(der.time(template.notBefore), der.time(template.notAfter)),
    subjectName,
    encodeSpki(template.publicKey),
    der.explicit(3, der.sequence(...exts)),
  );
  const signature = provider.sign(sigAlg, issuer.privateKey, tbs);
  return decodeCertificate(der.sequence(tbs, algId, der.bitString(signature)));
}

/** A certificate with its private key, in the forms servers and tools want. */
export interface Credentials {
  certificate: X509Certificate;
  /** DER of the certificate. */
  certificateDer: Uint8Array;
  certificatePem: string;
  privateKey: PrivateKey;
  /** PKCS#8 'PRIVATE KEY' PEM. */
  privateKeyPem: string;
}

function credentials(certificate: X509Certificate, privateKey: PrivateKey): Credentials {
  return {
    certificate,
    certificateDer: certificate.raw,
    certificatePem: encodeCertificatePem(certificate),
    privateKey,
    privateKeyPem: encodePrivateKeyPem(privateKey),
  };
}

/**
 * Credentials from PEM text (what `stepwire serve` stores): the first certificate and the
 * private key, which must belong to it. Throws ParseError on malformed PEM or DER, and
 * RangeError if the key is not the certificate's.
 */
export function credentialsFromPem(certificatePem: string, privateKeyPem: string): Credentials {
  const certificate = decodeCertificatesPem(certificatePem)[0];
  if (!certificate) throw new ParseError('pem', 'CERTIFICATE', 0, 'no CERTIFICATE block');
  const privateKey = decodePrivateKeyPem(privateKeyPem);
  const spki = encodeSpki(publicKeyOf(privateKey));
  const a = certificate.subjectPublicKeyInfo.raw;
  if (spki.length !== a.length || spki.some((v, i) => v !== a[i])) {
    throw new RangeError('the private key does not belong to the certificate');
  }
  return credentials(certificate, privateKey);
}

const DAY = 86_400_000;
/** Validity starts an hour early so that a peer whose clock is a little behind still accepts it. */
const BACKDATE = 3_600_000;

export interface CaOptions {
  now: Date;
  commonName?: string;
  organization?: string;
  /** P-256 by default: the key type every TLS client accepts. */
  keyType?: 'P-256' | 'ed25519' | 'rsa2048';
  validDays?: number;
  provider?: SignatureProvider;
}

/** A self-signed CA: basicConstraints cA (pathLen 0: it signs leaves only), keyCertSign + cRLSign. */
export function createCertificateAuthority(options: CaOptions): Credentials {
  const privateKey = generateKey(
    options.keyType ?? 'P-256',
    options.provider ?? getDefaultSignatureProvider(),
  );
  const certificate = issueCertificate(
    {
      subject: [
        ['O', options.organization ?? 'stepwire'],
        ['CN', options.commonName ?? 'stepwire test CA'],
      ],
      notBefore: new Date(options.now.getTime() - BACKDATE),
      notAfter: new Date(options.now.getTime() + (options.validDays ?? 3650) * DAY),
      publicKey: publicKeyOf(privateKey),
      isCA: true,
      pathLenConstraint: 0,
      keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    },
    { privateKey },
    { provider: options.provider },
  );
  return credentials(certificate, privateKey);
}

export interface LeafOptions {
  now: Date;
  dnsNames: string[];
  ipAddresses?: string[];
  commonName?: string;
  keyType?: 'P-256' | 'ed25519' | 'rsa2048';
  validDays?: number;
  /** Both by default, so one certificate serves as server and as client identity. */
  extKeyUsage?: ('serverAuth' | 'clientAuth')[];
  provider?: SignatureProvider;
}

/** A leaf for TLS: digitalSignature, serverAuth/clientAuth, the names in subjectAltName. */
export function createLeafCertificate(ca: Credentials, options: LeafOptions): Credentials {
  const privateKey = generateKey(
    options.keyType ?? 'P-256',
    options.provider ?? getDefaultSignatureProvider(),
  );
  const cn = options.commonName ?? options.dnsNames[0];
  const certificate = issueCertificate(
    {
      subject: cn ? [['CN', cn]] : [],
      notBefore: new Date(options.now.getTime() - BACKDATE),
      notAfter: new Date(options.now.getTime() + (options.validDays ?? 365) * DAY),
      publicKey: publicKeyOf(privateKey),
      isCA: false,
      keyUsage: ['digitalSignature'],
      extKeyUsage: (options.extKeyUsage ?? ['serverAuth', 'clientAuth']).map((p) => OID[p]),
      subjectAltNames: [
        ...options.dnsNames.map((value): GeneralName => ({ type: 'dns', value })),
        ...(options.ipAddresses ?? []).map((value): GeneralName => ({ type: 'ip', value })),
      ],
    },
    { certificate: ca.certificate, privateKey: ca.privateKey },
    { provider: options.provider },
  );
  return credentials(certificate, privateKey);
}

/** The names `stepwire serve` answers to on its simulated and TUN networks. */
export const STEPWIRE_SERVER_NAMES = {
  dnsNames: ['stepwire.test'],
  ipAddresses: ['198.18.0.2', 'fd00:5757::2'],
} as const;

/** A fresh CA and a leaf for stepwire.test, 198.18.0.2 and fd00:5757::2 signed by it. */
export function createStepwireCredentials(
  now: Date,
  options: { keyType?: 'P-256' | 'ed25519'; provider?: SignatureProvider } = {},
): { ca: Credentials; leaf: Credentials } {
  const ca = createCertificateAuthority({ now, keyType: options.keyType, provider: options.provider });
  const leaf = createLeafCertificate(ca, {
    now,
    dnsNames: [...STEPWIRE_SERVER_NAMES.dnsNames],
    ipAddresses: [...STEPWIRE_SERVER_NAMES.ipAddresses],
    keyType: options.keyType,
    provider: options.provider,
  });
  return { ca, leaf };
}
