/**
 * The `code` values node:tls gives its errors, so Node code that checks them works on ours:
 * OpenSSL's reason for an alert (Node prefixes 'ERR_SSL_' to OpenSSL's reason string in upper
 * case: 'sslv3 alert handshake failure' -> ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE), and X.509
 * verification results by OpenSSL's X509_V_ERR names without the prefix, which Node uses both
 * as the error code and as `authorizationError`.
 */
import { AlertDescription, type AlertDescriptionName } from './codec/alert.ts';
import type { CertificateError } from './pki/index.ts';

/** OpenSSL's reason names for received alerts (ssl/ssl_err.c: SSL_R_SSLV3_ALERT_*, SSL_R_TLSV1_*, SSL_R_TLSV13_*). */
const OPENSSL_ALERT_REASON: Partial<Record<AlertDescriptionName, string>> = {
  unexpected_message: 'SSLV3_ALERT_UNEXPECTED_MESSAGE',
  bad_record_mac: 'SSLV3_ALERT_BAD_RECORD_MAC',
  record_overflow: 'TLSV1_ALERT_RECORD_OVERFLOW',
  handshake_failure: 'SSLV3_ALERT_HANDSHAKE_FAILURE',
  bad_certificate: 'SSLV3_ALERT_BAD_CERTIFICATE',
  unsupported_certificate: 'SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  certificate_revoked: 'SSLV3_ALERT_CERTIFICATE_REVOKED',
  certificate_expired: 'SSLV3_ALERT_CERTIFICATE_EXPIRED',
  certificate_unknown: 'SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  illegal_parameter: 'SSLV3_ALERT_ILLEGAL_PARAMETER',
  unknown_ca: 'TLSV1_ALERT_UNKNOWN_CA',
  access_denied: 'TLSV1_ALERT_ACCESS_DENIED',
  decode_error: 'TLSV1_ALERT_DECODE_ERROR',
  decrypt_error: 'TLSV1_ALERT_DECRYPT_ERROR',
  protocol_version: 'TLSV1_ALERT_PROTOCOL_VERSION',
  insufficient_security: 'TLSV1_ALERT_INSUFFICIENT_SECURITY',
  internal_error: 'TLSV1_ALERT_INTERNAL_ERROR',
  inappropriate_fallback: 'TLSV1_ALERT_INAPPROPRIATE_FALLBACK',
  user_canceled: 'TLSV1_ALERT_USER_CANCELLED',
  missing_extension: 'TLSV13_ALERT_MISSING_EXTENSION',
  unsupported_extension: 'TLSV1_UNSUPPORTED_EXTENSION',
  unrecognized_name: 'TLSV1_UNRECOGNIZED_NAME',
  bad_certificate_status_response: 'TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE',
  unknown_psk_identity: 'TLSV1_ALERT_UNKNOWN_PSK_IDENTITY',
  certificate_required: 'TLSV13_ALERT_CERTIFICATE_REQUIRED',
  no_application_protocol: 'TLSV1_ALERT_NO_APPLICATION_PROTOCOL',
};

/**
 * node:tls's code for a TLS failure: for an alert the peer sent, OpenSSL's reason for that
 * alert; for one we sent, the same name (OpenSSL's own reasons for what it detects vary by
 * cause, the alert is what both sides agree on).
 */
export function nodeCodeForAlert(alert: string): string {
  const reason = OPENSSL_ALERT_REASON[alert as AlertDescriptionName];
  if (reason) return `ERR_SSL_${reason}`;
  if (alert in AlertDescription) return `ERR_SSL_TLSV1_ALERT_${alert.toUpperCase()}`;
  return 'ERR_SSL_PROTOCOL_ERROR';
}

/** OpenSSL's X509_V_ERR_* names (as Node reports them) for our pki's certificate errors. */
const X509_CODE: Record<CertificateError['code'], string> = {
  no_certificate: 'UNABLE_TO_GET_ISSUER_CERT',
  malformed: 'CERT_REJECTED',
  expired: 'CERT_HAS_EXPIRED',
  not_yet_valid: 'CERT_NOT_YET_VALID',
  unknown_issuer: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  bad_signature: 'CERT_SIGNATURE_FAILURE',
  signature_algorithm_mismatch: 'CERT_SIGNATURE_FAILURE',
  unsupported_algorithm: 'UNSUPPORTED_SIGNATURE_ALGORITHM',
  weak_key: 'EE_KEY_TOO_SMALL',
  not_a_ca: 'INVALID_CA',
  path_length_exceeded: 'PATH_LENGTH_EXCEEDED',
  chain_too_long: 'CERT_CHAIN_TOO_LONG',
  issuer_key_usage: 'KEYUSAGE_NO_CERTSIGN',
  leaf_key_usage: 'INVALID_PURPOSE',
  ext_key_usage: 'INVALID_PURPOSE',
  unknown_critical_extension: 'UNHANDLED_CRITICAL_EXTENSION',
  hostname_mismatch: 'ERR_TLS_CERT_ALTNAME_INVALID',
};

/**
 * Node's code for a refused chain. An unknown issuer reads as OpenSSL tells it apart: a lone
 * self-signed leaf is DEPTH_ZERO_SELF_SIGNED_CERT, a chain ending in an untrusted self-signed
 * root SELF_SIGNED_CERT_IN_CHAIN, a lone leaf whose issuer we lack
 * UNABLE_TO_VERIFY_LEAF_SIGNATURE, a longer chain whose root we lack
 * UNABLE_TO_GET_ISSUER_CERT_LOCALLY.
 */
export function nodeCodeForCertificateError(
  e: CertificateError,
  chain: readonly { selfSigned: boolean }[] = [],
): string {
  if (e.code === 'weak_key' && (e.depth ?? 0) > 0) return 'CA_KEY_TOO_SMALL';
  if (e.code !== 'unknown_issuer') return X509_CODE[e.code];
  const last = chain[chain.length - 1];
  if (chain.length === 1 && last?.selfSigned) return 'DEPTH_ZERO_SELF_SIGNED_CERT';
  if (last?.selfSigned) return 'SELF_SIGNED_CERT_IN_CHAIN';
  if (chain.length <= 1) return 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
  return 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
}

/** The messages OpenSSL's X509_verify_cert_error_string gives, for the codes Node users meet most. */
export const X509_MESSAGE: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
};
