/**
 * The glue between our pki (RFC 5280 path validation, TLS 1.3 signature schemes) and the
 * handshake machines' CertificateVerifier and CertificateSigner seams (auth.ts):
 *
 *   const verifier = certificateVerifier({ ca: fs.readFileSync('ca.pem', 'utf8') });
 *   const signer = certificateSigner({ cert: leafChainPem, key: leafKeyPem });
 *   new TlsClient({ serverName: 'stepwire.test', verifier }); new TlsServer({ signer });
 *
 * A refused certificate becomes the TLS alert pki names for the failure (unknown_ca,
 * certificate_expired, bad_certificate, ...; pki's ALERT_FOR), so the peer learns why.
 */

import type { CertificateSigner, CertificateVerifier } from './auth.ts';
import { AlertDescription, TlsAlertError } from './codec/alert.ts';
import { SignatureScheme } from './codec/common.ts';
import {
  algorithmForCertificate,
  CERTIFICATE_VERIFY_SCHEMES,
  CertificateError,
  type Credentials,
  decodeCertificate,
  decodeCertificatesPem,
  decodePrivateKeyPem,
  encodeSpki,
  matchesHostname,
  namesEqual,
  type PrivateKey,
  publicKeyOf,
  SignatureError,
  type SignatureProvider,
  schemesForKey,
  sign,
  type VerifiedPath,
  verifyCertificateChain,
  verifySignature,
  type X509Certificate,
} from './pki/index.ts';

/** Certificates as users hold them: PEM text (one or many blocks), DER bytes, or parsed. */
export type CertificateInput = string | Uint8Array | X509Certificate;
export type CertificatesInput = CertificateInput | readonly CertificateInput[];

/** Every certificate in `input`, parsed; PEM strings may hold several. Throws ParseError on malformed input. */
export function parseCertificates(input: CertificatesInput): X509Certificate[] {
  const list: readonly CertificateInput[] =
    typeof input === 'string' || input instanceof Uint8Array || !Array.isArray(input)
      ? [input as CertificateInput]
      : input;
  const out: X509Certificate[] = [];
  for (const c of list) {
    if (typeof c === 'string') out.push(...decodeCertificatesPem(c));
    else if (c instanceof Uint8Array) out.push(decodeCertificate(c));
    else out.push(c);
  }
  return out;
}

export interface VerifierOptions {
  /** Trust anchors (RFC 5280 §6.1.1 (d)). */
  ca: CertificatesInput;
  /**
   * The extended key usage the peer's leaf must allow: serverAuth when we are the client
   * (the default), clientAuth when we are a server checking client certificates.
   */
  purpose?: 'serverAuth' | 'clientAuth';
  /**
   * The name the server's certificate must hold (RFC 6125). Default: the connection's
   * serverName. A server checking client certificates checks no name.
   */
  hostname?: string;
  /** false: check no name here (the caller does, as node:tls's checkServerIdentity). Default true. */
  checkHostname?: boolean;
  /** Where signatures are checked; pki's default (node:crypto) when absent. */
  signatures?: SignatureProvider;
  /** CertificateVerify schemes we accept, preferred first (signature_algorithms). */
  signatureSchemes?: readonly number[];
  /**
   * Report a refused chain here instead of failing the handshake (node:tls's
   * rejectUnauthorized: false). The CertificateVerify signature is still checked.
   */
  onResult?: (result: { ok: true; path: VerifiedPath } | { ok: false; error: CertificateError }) => void;
  /** With onResult: still fail the handshake on a refused chain. Default true without onResult. */
  reject?: boolean;
}

/** A CertificateError for anything verifyCertificateChain threw. */
/**
 * Certificates a peer sent, parsed, by their DER: a server presents the same chain on every
 * handshake, and a parsed certificate carries the key objects the signature provider caches
 * for it (pki/signature.ts), so the client neither parses the chain nor imports the leaf's
 * key again. Parsing is a pure function of the bytes; verification is still done each time.
 * Bounded: the oldest entry goes first.
 */
const parsedByDer = new Map<string, X509Certificate>();
const PARSED_CACHE_SIZE = 256;

function parsedCertificate(der: Uint8Array): X509Certificate {
  const id = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
  let c = parsedByDer.get(id);
  if (c) return c;
  c = decodeCertificate(der);
  if (parsedByDer.size >= PARSED_CACHE_SIZE) {
    const oldest = parsedByDer.keys().next();
    if (!oldest.done) parsedByDer.delete(oldest.value);
  }
  parsedByDer.set(id, c);
  return c;
}

/** The parsed certificate, or its bytes when they do not parse (the chain check names the error). */
function peerCertificate(der: Uint8Array): X509Certificate | Uint8Array {
  try {
    return parsedCertificate(der);
  } catch {
    return der;
  }
}

function asCertificateError(e: unknown): CertificateError {
  if (e instanceof CertificateError) return e;
  if (e instanceof SignatureError) return new CertificateError('bad_signature', e.message);
  // A ParseError of a trust anchor is local configuration, but the chain still is not trusted.
  return new CertificateError('malformed', (e as Error).message);
}

/**
 * A CertificateVerifier on our pki: path validation from the peer's chain (leaf first) to one
 * of `ca`, the name check against `hostname` or the connection's serverName, validity at the
 * connection's `now`, and the leaf's key checking CertificateVerify (RFC 8446 §4.4.2–§4.4.3).
 */
export function certificateVerifier(options: VerifierOptions): CertificateVerifier {
  const trustAnchors = parseCertificates(options.ca);
  const purpose = options.purpose ?? 'serverAuth';
  const reject = options.reject ?? options.onResult === undefined;
  return {
    signatureSchemes: options.signatureSchemes ?? CERTIFICATE_VERIFY_SCHEMES,
    verifyChain(chain, context) {
      const hostname =
        purpose === 'serverAuth' && options.checkHostname !== false
          ? (options.hostname ?? context.serverName)
          : undefined;
      let error: CertificateError;
      try {
        const leaf = chain[0];
        const path = verifyCertificateChain(
          leaf === undefined ? undefined : peerCertificate(leaf),
          chain.slice(1).map(peerCertificate),
          {
            trustAnchors,
            now: new Date(context.now),
            ...(hostname !== undefined ? { hostname } : {}),
            purpose,
            ...(options.signatures ? { provider: options.signatures } : {}),
          },
        );
        options.onResult?.({ ok: true, path });
        return;
      } catch (e) {
        error = asCertificateError(e);
      }
      options.onResult?.({ ok: false, error });
      // RFC 8446 §4.4.2.4: a chain we cannot accept ends the handshake with the matching alert.
      if (reject) throw new TlsAlertError(AlertDescription[error.alert], error.message);
    },
    verifySignature(leaf, scheme, content, signature) {
      try {
        return verifySignature(
          scheme,
          parsedCertificate(leaf).subjectPublicKeyInfo,
          content,
          signature,
          options.signatures,
        );
      } catch (e) {
        // RFC 8446 §4.4.3: a scheme that does not fit the leaf's key is an illegal_parameter.
        if (e instanceof SignatureError)
          throw new TlsAlertError(AlertDescription.illegal_parameter, e.message);
        return false;
      }
    },
  };
}

export interface SignerOptions {
  /** Our certificate chain, leaf first: PEM text (one or several blocks), DER, or parsed. */
  cert: CertificatesInput;
  /** The leaf's private key: PEM (PKCS#8, SEC 1 or PKCS#1) or parsed. */
  key: string | PrivateKey;
  /** Where signatures are made; pki's default (node:crypto) when absent. */
  signatures?: SignatureProvider;
}

/**
 * A CertificateSigner on our pki. Its schemes are the ones the key can make, preferred
 * first; the machine signs with the first one the peer listed in signature_algorithms
 * (RFC 8446 §4.4.3), or fails the handshake if there is none. Throws RangeError when the
 * key does not belong to the leaf.
 */
export function certificateSigner(options: SignerOptions | Credentials): CertificateSigner {
  const { chain, key, signatures } =
    'privateKey' in options
      ? { chain: [options.certificate], key: options.privateKey, signatures: undefined }
      : {
          chain: parseCertificates(options.cert),
          key: typeof options.key === 'string' ? decodePrivateKeyPem(options.key) : options.key,
          signatures: options.signatures,
        };
  const leaf = chain[0];
  if (!leaf) throw new RangeError('no certificate given');
  const spki = encodeSpki(publicKeyOf(key));
  const leafSpki = leaf.subjectPublicKeyInfo.raw;
  if (spki.length !== leafSpki.length || spki.some((v, i) => v !== leafSpki[i]))
    throw new RangeError('the private key does not belong to the first certificate');
  const chainSchemes = new Set<number>();
  for (const c of chain) {
    // A self-signed root's own signature is not checked by anyone (it is the anchor).
    if (namesEqual(c.subject, c.issuer)) continue;
    const scheme = certificateSignatureScheme(c);
    if (scheme !== undefined) chainSchemes.add(scheme);
  }
  return {
    certificateChain: chain.map((c) => c.raw),
    signatureSchemes: schemesForKey(key),
    sign: (scheme, content) => sign(scheme, key, content, signatures),
    // RFC 6066 §3 / RFC 6125: SNI is a DNS name; an IP literal is never sent, but a client that
    // connects by address is still best served by a certificate naming it.
    matchesServerName: (name) => {
      try {
        return matchesHostname(leaf, name, false);
      } catch {
        return false;
      }
    },
    chainSchemes: [...chainSchemes],
  };
}

/**
 * The TLS SignatureScheme (RFC 8446 §4.2.3) a certificate's signature corresponds to, for
 * signature_algorithms_cert; undefined when TLS has no code point for it.
 */
export function certificateSignatureScheme(c: X509Certificate): number | undefined {
  let alg: ReturnType<typeof algorithmForCertificate>;
  try {
    alg = algorithmForCertificate(c.signatureAlgorithm);
  } catch {
    return undefined;
  }
  const h = { sha256: 0, sha384: 1, sha512: 2 } as const;
  switch (alg.kind) {
    case 'ed25519':
      return SignatureScheme.ed25519;
    case 'ecdsa':
      return [
        SignatureScheme.ecdsa_secp256r1_sha256,
        SignatureScheme.ecdsa_secp384r1_sha384,
        SignatureScheme.ecdsa_secp521r1_sha512,
      ][h[alg.hash]];
    case 'rsa-pkcs1':
      return [
        SignatureScheme.rsa_pkcs1_sha256,
        SignatureScheme.rsa_pkcs1_sha384,
        SignatureScheme.rsa_pkcs1_sha512,
      ][h[alg.hash]];
    case 'rsa-pss':
      return [
        SignatureScheme.rsa_pss_rsae_sha256,
        SignatureScheme.rsa_pss_rsae_sha384,
        SignatureScheme.rsa_pss_rsae_sha512,
      ][h[alg.hash]];
  }
}
