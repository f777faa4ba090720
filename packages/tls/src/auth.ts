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
