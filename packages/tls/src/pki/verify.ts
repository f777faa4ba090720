/**
 * Certification path building and validation (RFC 5280 §6, simplified to what TLS needs:
 * no policies, no name constraints, no revocation) and server identity checks (RFC 6125).
 *
 * Input is what a TLS 1.3 Certificate message carries (RFC 8446 §4.4.2: the leaf first,
 * then certificates that may help, in any order, possibly with extras) and the trust anchors
 * the user configured. Paths are built depth-first from the leaf toward an anchor, trying
 * each candidate issuer, so extra or out-of-order certificates do no harm.
 *
 * Every failure is a CertificateError with a `code` (what went wrong) and an `alert`
 * (RFC 8446 §6.2 AlertDescription name the handshake should send).
 */
import { ParseError } from '@stepwire/wire';
import { canonicalIp, tryParseIp } from './ip.ts';
import { OID } from './oids.ts';
import {
  algorithmForCertificate,
  getDefaultSignatureProvider,
  MAX_RSA_BITS,
  SignatureError,
  type SignatureProvider,
} from './signature.ts';
import {
  commonNameOf,
  decodeCertificate,
  KNOWN_EXTENSIONS,
  namesEqual,
  nameToString,
  type X509Certificate,
} from './x509.ts';

export type CertificateErrorCode =
  | 'no_certificate'
  | 'malformed'
  | 'expired'
  | 'not_yet_valid'
  | 'unknown_issuer'
  | 'bad_signature'
  | 'signature_algorithm_mismatch'
  | 'unsupported_algorithm'
  | 'weak_key'
  | 'not_a_ca'
  | 'path_length_exceeded'
  | 'chain_too_long'
  | 'issuer_key_usage'
  | 'leaf_key_usage'
  | 'ext_key_usage'
  | 'unknown_critical_extension'
  | 'hostname_mismatch';

/** TLS alerts (RFC 8446 §6.2) a certificate problem is reported with. */
export type CertificateAlert =
  | 'bad_certificate'
  | 'unsupported_certificate'
  | 'certificate_expired'
  | 'unknown_ca'
  | 'certificate_required';

/**
 * Which alert each failure sends. RFC 8446 §6.2 defines the alerts; where it leaves a choice
 * this follows OpenSSL's ssl_verify_alarm_type (path problems such as a non-CA issuer are
 * unknown_ca; wrong purpose is unsupported_certificate) and Go (a wrong host is bad_certificate).
 */
export const ALERT_FOR: Record<CertificateErrorCode, CertificateAlert> = {
  no_certificate: 'certificate_required',
  malformed: 'bad_certificate',
  expired: 'certificate_expired',
  not_yet_valid: 'certificate_expired',
  unknown_issuer: 'unknown_ca',
  bad_signature: 'bad_certificate',
  signature_algorithm_mismatch: 'bad_certificate',
  unsupported_algorithm: 'unsupported_certificate',
  weak_key: 'unsupported_certificate',
  not_a_ca: 'unknown_ca',
  path_length_exceeded: 'unknown_ca',
  chain_too_long: 'unknown_ca',
  issuer_key_usage: 'unknown_ca',
  leaf_key_usage: 'unsupported_certificate',
  ext_key_usage: 'unsupported_certificate',
  unknown_critical_extension: 'unsupported_certificate',
  hostname_mismatch: 'bad_certificate',
};

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  readonly alert: CertificateAlert;
  constructor(
    readonly code: CertificateErrorCode,
    message: string,
    /** Position in the path (0 = leaf) of the certificate at fault, when known. */
    readonly depth?: number,
    /** Subject of the certificate at fault. */
    readonly subject?: string,
  ) {
    super(`${code}: ${message}${subject !== undefined ? ` [${subject}]` : ''}`);
    this.alert = ALERT_FOR[code];
  }
}

export interface VerifyOptions {
  /** Certificates whose keys are trusted (RFC 5280 §6.1.1 (d)); DER or parsed. */
  trustAnchors: readonly (X509Certificate | Uint8Array)[];
  /** The validation time (RFC 5280 §6.1.1 (c)); a sans-I/O caller passes its clock's now. */
  now: Date;
  /** DNS name or IP address literal the peer must hold; omitted: no identity check. */
  hostname?: string;
  /** The extended key usage the leaf must allow when it has the extension. Default 'serverAuth'. */
  purpose?: 'serverAuth' | 'clientAuth';
  /** Most certificates in a path, anchor included. Default 8. */
  maxDepth?: number;
  /** Smallest RSA modulus accepted, in bits. Default 2048. */
  minRsaBits?: number;
  /** Match the subject CN when the certificate has no subjectAltName at all (RFC 6125 §6.4.4). Default true. */
  commonNameFallback?: boolean;
  provider?: SignatureProvider;
}

export interface VerifiedPath {
  /** Leaf first, trust anchor last. */
  chain: X509Certificate[];
  anchor: X509Certificate;
}

/** Most candidate paths examined before giving up: bounds the work a hostile peer can cause. */
const MAX_PATHS = 64;
/** Most steps of the path search: bounds the search over certificates that all claim the same names. */
const MAX_SEARCH_STEPS = 256;
/** Most certificates taken from the peer (RFC 8446 allows any number; real chains have 2–4). */
const MAX_PEER_CERTIFICATES = 32;

function parse(c: X509Certificate | Uint8Array, depth: number): X509Certificate {
  if (!(c instanceof Uint8Array)) return c;
  try {
    return decodeCertificate(c);
  } catch (e) {
    if (e instanceof ParseError) throw new CertificateError('malformed', e.message, depth);
    throw e;
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Validates `leaf` (the first certificate of a TLS Certificate message) up to one of the trust
 * anchors, using `intermediates` (the rest of the message) as needed. Returns the path it
 * validated; throws CertificateError otherwise.
 */
export function verifyCertificateChain(
  leaf: X509Certificate | Uint8Array | undefined,
  intermediates: readonly (X509Certificate | Uint8Array)[],
  options: VerifyOptions,
): VerifiedPath {
  if (leaf === undefined) throw new CertificateError('no_certificate', 'the peer sent no certificate');
  const leafCert = parse(leaf, 0);
  const pool = intermediates.slice(0, MAX_PEER_CERTIFICATES).map((c, i) => parse(c, i + 1));
  // Anchors are local configuration, not peer input: a malformed one is a ParseError for the caller.
  const anchors = options.trustAnchors.map((c) => (c instanceof Uint8Array ? decodeCertificate(c) : c));
  const maxDepth = options.maxDepth ?? 8;
  const provider = options.provider ?? getDefaultSignatureProvider();

  // Checks on the leaf alone come first: they do not depend on which path is found.
  checkLeaf(leafCert, options);

  let firstError: CertificateError | undefined;
  let pathsTried = 0;
  let steps = 0;
  // Each (certificate, issuer) signature is checked at most once however many paths share it.
  const signatureChecks = new Map<X509Certificate, Map<X509Certificate, CertificateError | null>>();
  const checkEdge = (c: X509Certificate, issuer: X509Certificate, depth: number): void => {
    let row = signatureChecks.get(c);
    if (!row) signatureChecks.set(c, (row = new Map()));
    let verdict = row.get(issuer);
    if (verdict === undefined) {
      try {
        checkSignature(c, issuer, depth, provider);
        verdict = null;
      } catch (e) {
        if (!(e instanceof CertificateError)) throw e;
        verdict = e;
      }
      row.set(issuer, verdict);
    }
    if (verdict) throw verdict;
  };
  const note = (e: unknown) => {
    if (!(e instanceof CertificateError)) throw e;
    firstError ??= e;
  };

  const search = (path: X509Certificate[]): VerifiedPath | undefined => {
    if (++steps > MAX_SEARCH_STEPS) return undefined;
    const cur = path[path.length - 1]!;
    // The certificate is itself an anchor (e.g. a pinned self-signed leaf or a root sent by the peer).
    if (anchors.some((a) => sameBytes(a.raw, cur.raw))) {
      if (++pathsTried > MAX_PATHS) return undefined;
      try {
        validatePath(path, options, checkEdge);
        return { chain: path, anchor: cur };
      } catch (e) {
        note(e);
      }
    }
    for (const anchor of anchors) {
      if (!mayHaveIssued(anchor, cur) || path.some((p) => sameBytes(p.raw, anchor.raw))) continue;
      if (++pathsTried > MAX_PATHS) return undefined;
      const full = [...path, anchor];
      try {
        validatePath(full, options, checkEdge);
        return { chain: full, anchor };
      } catch (e) {
        note(e);
      }
    }
    if (path.length + 1 >= maxDepth) {
      if (pool.some((c) => mayHaveIssued(c, cur))) {
        note(
          new CertificateError('chain_too_long', `no anchor within ${maxDepth} certificates`, path.length),
        );
      }
      return undefined;
    }
    for (const next of pool) {
      if (!mayHaveIssued(next, cur) || path.some((p) => sameBytes(p.raw, next.raw))) continue;
      const found = search([...path, next]);
      if (found) return found;
      if (pathsTried > MAX_PATHS || steps > MAX_SEARCH_STEPS) return undefined;
    }
    return undefined;
  };

  const found = search([leafCert]);
  if (found) return found;
  throw (
    firstError ??
    new CertificateError(
      'unknown_issuer',
      `no trusted issuer for ${nameToString(leafCert.issuer)}`,
      0,
      nameToString(leafCert.subject),
    )
  );
}

/** Name chaining (RFC 5280 §6.1.3 (a)(4)) plus the key identifier hint when both sides carry one. */
function mayHaveIssued(issuer: X509Certificate, child: X509Certificate): boolean {
  if (!namesEqual(issuer.subject, child.issuer)) return false;
  const aki = child.authorityKeyIdentifier?.keyIdentifier;
  const ski = issuer.subjectKeyIdentifier;
  return !(aki && ski && !sameBytes(aki, ski));
}

function checkLeaf(leaf: X509Certificate, options: VerifyOptions): void {
  const subject = nameToString(leaf.subject);
  if (leaf.subjectPublicKeyInfo.publicKey.type === 'unknown') {
    throw new CertificateError(
      'unsupported_algorithm',
      `leaf key ${leaf.subjectPublicKeyInfo.publicKey.algorithm}`,
      0,
      subject,
    );
  }
  // RFC 5280 §4.2.1.3: a key used for TLS 1.3 CertificateVerify must allow digitalSignature.
  if (leaf.keyUsage && !leaf.keyUsage.includes('digitalSignature')) {
    throw new CertificateError('leaf_key_usage', 'keyUsage lacks digitalSignature', 0, subject);
  }
  checkExtKeyUsage(leaf, options.purpose ?? 'serverAuth', 0);
  if (
    options.hostname !== undefined &&
    !matchesHostname(leaf, options.hostname, options.commonNameFallback ?? true)
  ) {
    throw new CertificateError(
      'hostname_mismatch',
      `certificate is not valid for ${options.hostname}`,
      0,
      subject,
    );
  }
}

// RFC 5280 §4.2.1.12: if present, the extension limits the purposes the key may be used for.
function checkExtKeyUsage(c: X509Certificate, purpose: 'serverAuth' | 'clientAuth', depth: number): void {
  if (!c.extKeyUsage) return;
  const wanted = purpose === 'serverAuth' ? OID.serverAuth : OID.clientAuth;
  if (!c.extKeyUsage.includes(wanted) && !c.extKeyUsage.includes(OID.anyExtendedKeyUsage)) {
    throw new CertificateError(
      'ext_key_usage',
      `extKeyUsage does not allow ${purpose}`,
      depth,
      nameToString(c.subject),
    );
  }
}

/** RFC 5280 §6.1.3/§6.1.4 over a candidate path [leaf, ..., trust anchor]. */
function validatePath(
  path: X509Certificate[],
  options: VerifyOptions,
  checkEdge: (c: X509Certificate, issuer: X509Certificate, depth: number) => void,
): void {
  const now = options.now.getTime();
  const minRsaBits = options.minRsaBits ?? 2048;
  // Walk from the anchor toward the leaf, as RFC 5280 §6.1 does.
  for (let i = path.length - 1; i >= 0; i--) {
    const c = path[i]!;
    const subject = nameToString(c.subject);
    const isAnchor = i === path.length - 1;
    // §6.1.3 (a)(2): the validity period includes the current time.
    if (now < c.notBefore.getTime()) {
      throw new CertificateError(
        'not_yet_valid',
        `not valid before ${c.notBefore.toISOString()}`,
        i,
        subject,
      );
    }
    if (now > c.notAfter.getTime()) {
      throw new CertificateError('expired', `expired at ${c.notAfter.toISOString()}`, i, subject);
    }
    // RFC 5280 §4.2: a critical extension that is not recognized means the certificate is rejected.
    const unknown = c.extensions.find((e) => e.critical && !KNOWN_EXTENSIONS.has(e.oid));
    if (unknown) {
      throw new CertificateError(
        'unknown_critical_extension',
        `critical extension ${unknown.oid}`,
        i,
        subject,
      );
    }
    const key = c.subjectPublicKeyInfo.publicKey;
    if (key.type === 'rsa' && key.bits < minRsaBits) {
      throw new CertificateError('weak_key', `RSA key of ${key.bits} bits`, i, subject);
    }
    if (key.type === 'rsa' && (key.bits > MAX_RSA_BITS || key.e >= 1n << 64n)) {
      throw new CertificateError(
        'unsupported_algorithm',
        `RSA key of ${key.bits} bits, e of ${key.e.toString(2).length} bits`,
        i,
        subject,
      );
    }
    if (i > 0) checkIssuer(path, i, isAnchor, options);
    // The anchor's own signature is never checked: its key is trusted directly (§6.1.1 (d)).
    if (!isAnchor) checkEdge(c, path[i + 1]!, i);
  }
}

function checkIssuer(path: X509Certificate[], i: number, isAnchor: boolean, options: VerifyOptions): void {
  const c = path[i]!;
  const subject = nameToString(c.subject);
  // §6.1.4 (k): an issuer must be a CA. A v1 certificate has no extensions to say so; it is
  // accepted only as a trust anchor (the user vouched for it), as OpenSSL does.
  if (!c.basicConstraints?.cA && !(isAnchor && c.version === 1)) {
    throw new CertificateError('not_a_ca', 'issuer is not a CA (basicConstraints cA is not set)', i, subject);
  }
  // §6.1.4 (l)/(m): pathLenConstraint counts the non-self-issued intermediates below this CA.
  const limit = c.basicConstraints?.pathLenConstraint;
  if (limit !== undefined) {
    let below = 0;
    for (let j = 1; j < i; j++) if (!namesEqual(path[j]!.subject, path[j]!.issuer)) below++;
    if (below > limit) {
      throw new CertificateError(
        'path_length_exceeded',
        `pathLenConstraint ${limit}, ${below} CA(s) below`,
        i,
        subject,
      );
    }
  }
  // §6.1.4 (n): if keyUsage is present, keyCertSign must be set.
  if (c.keyUsage && !c.keyUsage.includes('keyCertSign')) {
    throw new CertificateError('issuer_key_usage', 'issuer keyUsage lacks keyCertSign', i, subject);
  }
  // Not RFC 5280, but the common practice (CA/Browser Forum, OpenSSL, Go): an intermediate's
  // extKeyUsage constrains the leaves below it.
  if (!isAnchor) checkExtKeyUsage(c, options.purpose ?? 'serverAuth', i);
}

function checkSignature(
  c: X509Certificate,
  issuer: X509Certificate,
  i: number,
  provider: SignatureProvider,
): void {
  const subject = nameToString(c.subject);
  // §4.1.1.2: signatureAlgorithm must equal tbsCertificate.signature.
  const a = c.signatureAlgorithm;
  const b = c.tbsSignature;
  if (a.oid !== b.oid || !sameBytes(a.parameters ?? new Uint8Array(), b.parameters ?? new Uint8Array())) {
    throw new CertificateError(
      'signature_algorithm_mismatch',
      'signatureAlgorithm differs from tbsCertificate.signature',
      i,
      subject,
    );
  }
  let ok: boolean;
  try {
    const alg = algorithmForCertificate(a);
    ok = provider.verify(alg, issuer.subjectPublicKeyInfo, c.tbsCertificate, c.signatureValue);
  } catch (e) {
    if (e instanceof SignatureError) {
      throw new CertificateError(
        e.alert === 'unsupported_certificate' ? 'unsupported_algorithm' : 'bad_signature',
        e.message,
        i,
        subject,
      );
    }
    throw e;
  }
  if (!ok)
    throw new CertificateError(
      'bad_signature',
      `signature by ${nameToString(issuer.subject)} does not verify`,
      i,
      subject,
    );
}

/**
 * RFC 6125 §6.4 identity check. `hostname` is a DNS name or an IP literal (IPv6 optionally in
 * brackets). IP literals match only iPAddress entries (§6.4.5 / RFC 5280 §4.2.1.6); DNS names
 * match dNSName entries, with a wildcard allowed only as the whole left-most label (§6.4.3; the
 * stricter rule of RFC 9525 §6.3 forbids partial-label wildcards such as 'w*.example.com').
 * The subject CN is consulted only when there is no subjectAltName extension at all.
 */
export function matchesHostname(cert: X509Certificate, hostname: string, commonNameFallback = true): boolean {
  const ip = tryParseIp(hostname);
  if (ip) {
    const want = canonicalIp(hostname.replace(/^\[(.*)\]$/, '$1'));
    return (cert.subjectAltName ?? []).some((g) => g.type === 'ip' && g.value === want);
  }
  const host = normalizeDns(hostname);
  if (host === undefined) return false;
  if (cert.subjectAltName) {
    return cert.subjectAltName.some((g) => g.type === 'dns' && dnsPatternMatches(g.value, host));
  }
  if (!commonNameFallback) return false;
  const cn = commonNameOf(cert.subject);
  return cn !== undefined && dnsPatternMatches(cn, host);
}

/** Lowercase, no trailing dot, LDH labels (RFC 1123 §2.1); undefined if not a host name. */
function normalizeDns(name: string): string | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n.length === 0 || n.length > 253) return undefined;
  const labels = n.split('.');
  if (labels.some((l) => !/^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l))) return undefined;
  return n;
}

function dnsPatternMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, '');
  if (!p.startsWith('*.')) return normalizeDns(p) === host;
  const suffix = p.slice(2);
  // The wildcard stands for exactly one label, and the rest must be a name of at least two labels
  // so that '*.com' or '*' never match (RFC 6125 §7.2, RFC 9525 §6.3).
  if (normalizeDns(suffix) === undefined || !suffix.includes('.')) return false;
  const dot = host.indexOf('.');
  if (dot <= 0) return false;
  return host.slice(dot + 1) === suffix;
}
