/**
 * The seams for certificate authentication. The handshake machines only call these
 * interfaces; the X.509 path validation and signature code (src/pki) or a test double
 * implements them.
 */
import { TlsAlertError } from './codec/alert.ts';

export interface CertificateVerifier {
  /** CertificateVerify schemes we accept, in preference order: sent as signature_algorithms (RFC 8446 §4.2.3). */
  readonly signatureSchemes: readonly number[];
  /**
   * Validate the peer's chain (leaf first, DER). Throw a TlsAlertError naming the alert to
   * send (bad_certificate, unknown_ca, certificate_expired, ...) to refuse it (RFC 8446 §4.4.2.4).
   * `now` is the connection's clock in milliseconds since the Unix epoch.
   */
  verifyChain(chain: readonly Uint8Array[], context: { serverName?: string; now: number }): void;
  /** True when `signature` over `content` by the leaf certificate's key verifies under `scheme`. */
  verifySignature(leaf: Uint8Array, scheme: number, content: Uint8Array, signature: Uint8Array): boolean;
}

export interface CertificateSigner {
  /** Our chain, leaf first, DER. */
  readonly certificateChain: readonly Uint8Array[];
  /** Schemes our key can sign with, in preference order. */
  readonly signatureSchemes: readonly number[];
  sign(scheme: number, content: Uint8Array): Uint8Array;
  /**
   * Whether the leaf is for this server name (RFC 6125), so a server holding several
   * certificates can choose by SNI (RFC 6066 §3). Absent: the certificate serves any name.
   */
  matchesServerName?(name: string): boolean;
  /**
   * The SignatureSchemes of the signatures inside the chain (a self-signed root's excluded),
   * matched against the client's signature_algorithms_cert (RFC 8446 §4.2.3).
   */
  readonly chainSchemes?: readonly number[];
}

/** What a ClientHello says that chooses among several certificates. */
export interface CertificateRequestContext {
  /** signature_algorithms (RFC 8446 §4.2.3), the client's preference order. */
  signatureAlgorithms: readonly number[];
  /** signature_algorithms_cert, when sent; otherwise signature_algorithms applies to certificates too. */
  signatureAlgorithmsCert?: readonly number[];
  /** SNI host_name (RFC 6066 §3). */
  serverName?: string;
}

/**
 * Choose a certificate and its CertificateVerify scheme among several, as rustls and nginx do:
 * first the certificates for the client's SNI (all of them when none is), then the first one
 * (in our order) whose key signs with a scheme in signature_algorithms, preferring one whose
 * chain is signed with schemes the client accepts in certificates (RFC 8446 §4.2.3). When no
 * chain fits, a certificate the client may still accept is sent anyway (RFC 8446 §4.4.2.2:
 * "the server SHOULD continue the handshake by sending the client a certificate chain of its
 * choice"). Undefined when no key can make a signature the client accepts (handshake_failure).
 */
export function selectCertificate(
  signers: readonly CertificateSigner[],
  hello: CertificateRequestContext,
): { signer: CertificateSigner; scheme: number } | undefined {
  const name = hello.serverName;
  const named = name === undefined ? [] : signers.filter((s) => s.matchesServerName?.(name) === true);
  const pool = named.length > 0 ? named : signers;
  const certSchemes = hello.signatureAlgorithmsCert ?? hello.signatureAlgorithms;
  let fallback: { signer: CertificateSigner; scheme: number } | undefined;
  for (const signer of pool) {
    const scheme = signer.signatureSchemes.find((x) => hello.signatureAlgorithms.includes(x));
    if (scheme === undefined) continue;
    if ((signer.chainSchemes ?? []).every((x) => certSchemes.includes(x))) return { signer, scheme };
    fallback ??= { signer, scheme };
  }
  return fallback;
}

/**
 * The content a CertificateVerify signs (RFC 8446 §4.4.3): 64 spaces, the context string,
 * a zero byte, then the transcript hash.
 */
export function certificateVerifyInput(side: 'server' | 'client', transcriptHash: Uint8Array): Uint8Array {
  const context = `TLS 1.3, ${side} CertificateVerify`;
  const out = new Uint8Array(64 + context.length + 1 + transcriptHash.length);
  out.fill(0x20, 0, 64);
  for (let i = 0; i < context.length; i++) out[64 + i] = context.charCodeAt(i);
  out.set(transcriptHash, 64 + context.length + 1);
  return out;
}

/** Constant-time comparison for MACs (Finished, binders): no early exit on the first difference. */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function alert(description: number, reason: string): never {
  throw new TlsAlertError(description, reason);
}
