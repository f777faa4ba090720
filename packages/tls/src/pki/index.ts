/**
 * The certificate layer of @stepwire/tls: DER, X.509, keys, signatures, chain validation, issuing.
 *
 * What a TLS 1.3 handshake calls (RFC 8446 §4.4.2–§4.4.3):
 *
 *   // client, on the server's Certificate message (DER entries, leaf first):
 *   const { chain } = verifyCertificateChain(entries[0], entries.slice(1), { trustAnchors, now, hostname });
 *   // ... throws CertificateError; send the alert named by err.alert.
 *   // on CertificateVerify:
 *   const content = certificateVerifyContent('server', transcriptHash);
 *   if (!CERTIFICATE_VERIFY_SCHEMES.includes(scheme)) -> illegal_parameter
 *   if (!verifySignature(scheme, chain[0].subjectPublicKeyInfo, content, signature)) -> decrypt_error
 *   // ... verifySignature throws SignatureError (alert 'illegal_parameter') if the scheme does not fit the key.
 *
 *   // server, with credentials from createStepwireCredentials() or credentialsFromPem():
 *   const scheme = schemesForKey(leaf.privateKey).find((s) => peerSchemes.includes(s));
 *   const signature = sign(scheme, leaf.privateKey, certificateVerifyContent('server', transcriptHash));
 *
 * Signatures go through a SignatureProvider: `nodeSignatures` (default) or `pureSignatures`;
 * pass one explicitly or call setDefaultSignatureProvider.
 */
export {
  type Asn1Node,
  type BitString,
  DerReader,
  decodeAsn1,
  der,
  encodeAsn1,
  type StringType,
  Tag,
  type TagClass,
  type TagInfo,
  type Tlv,
} from './der.ts';
export { canonicalIp, formatIp, parseIp, tryParseIp } from './ip.ts';
export {
  type CaOptions,
  type CertificateTemplate,
  type Credentials,
  createCertificateAuthority,
  createLeafCertificate,
  createStepwireCredentials,
  credentialsFromPem,
  defaultCertificateSignature,
  type ExtensionSpec,
  type Issuer,
  issueCertificate,
  keyIdentifier,
  type LeafOptions,
  STEPWIRE_SERVER_NAMES,
} from './issue.ts';
export {
  decodePkcs1,
  decodePkcs8,
  decodePrivateKeyPem,
  decodeSec1,
  ecKeyFromScalar,
  ed25519KeyFromSeed,
  encodePkcs1,
  encodePkcs8,
  encodePrivateKeyPem,
  encodeSec1,
  generateKeyFrom,
  type KeySource,
  type KeyType,
  type PrivateKey,
  publicKeyOf,
} from './keys.ts';
export { NAME_ATTRIBUTES, OID } from './oids.ts';
export {
  algorithmForCertificate,
  algorithmForScheme,
  algorithmIdentifierFor,
  CERTIFICATE_VERIFY_SCHEMES,
  certificateVerifyContent,
  describeAlgorithm,
  ecdsaCompactToDer,
  ecdsaDerToCompact,
  generateKey,
  getDefaultSignatureProvider,
  MAX_RSA_BITS,
  nodeSignatures,
  pureSignatures,
  type SignatureAlgorithm,
  SignatureError,
  type SignatureHash,
  type SignatureProvider,
  type SignatureSchemeName,
  schemesForKey,
  setDefaultSignatureProvider,
  sign,
  signatureSchemeName,
  signWith,
  verifySignature,
  verifyWith,
} from './signature.ts';
export {
  ALERT_FOR,
  type CertificateAlert,
  CertificateError,
  type CertificateErrorCode,
  matchesHostname,
  type VerifiedPath,
  type VerifyOptions,
  verifyCertificateChain,
} from './verify.ts';
export {
  type AlgorithmIdentifier,
  type AttributeTypeAndValue,
  type AuthorityKeyIdentifier,
  altNames,
  type BasicConstraints,
  type CertificateExtension,
  certificateSummary,
  commonNameOf,
  decodeCertificate,
  decodeCertificatesPem,
  decodeName,
  decodePem,
  decodeSpki,
  encodeCertificatePem,
  encodeGeneralNames,
  encodeName,
  encodePem,
  encodeSpki,
  type GeneralName,
  KEY_USAGE_BITS,
  type KeyUsage,
  KNOWN_EXTENSIONS,
  type Name,
  namesEqual,
  nameToRfc4514,
  nameToString,
  type PemBlock,
  type PublicKey,
  type RelativeDistinguishedName,
  type SubjectPublicKeyInfo,
  type X509Certificate,
} from './x509.ts';
