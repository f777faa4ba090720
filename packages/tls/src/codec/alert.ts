import { ByteWriter } from '@stepwire/wire';
import { reader } from './common.ts';

/** AlertLevel (RFC 8446 §6). In TLS 1.3 the level is implicit in the description, except for close_notify and user_canceled. */
export const AlertLevel = { warning: 1, fatal: 2 } as const;

/** AlertDescription (RFC 8446 §6), every value the RFC defines. */
export const AlertDescription = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  decryption_failed_RESERVED: 21,
  record_overflow: 22,
  decompression_failure_RESERVED: 30,
  handshake_failure: 40,
  no_certificate_RESERVED: 41,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  export_restriction_RESERVED: 60,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  inappropriate_fallback: 86,
  user_canceled: 90,
  no_renegotiation_RESERVED: 100,
  missing_extension: 109,
  unsupported_extension: 110,
  certificate_unobtainable_RESERVED: 111,
  unrecognized_name: 112,
  bad_certificate_status_response: 113,
  bad_certificate_hash_value_RESERVED: 114,
  unknown_psk_identity: 115,
  certificate_required: 116,
  no_application_protocol: 120,
} as const;

export type AlertDescriptionName = keyof typeof AlertDescription;

const NAMES = new Map<number, AlertDescriptionName>(
  Object.entries(AlertDescription).map(([k, v]) => [v, k as AlertDescriptionName]),
);

export function alertName(description: number): string {
  return NAMES.get(description) ?? `alert(${description})`;
}

export interface Alert {
  level: number;
  description: number;
}

/** Exactly two bytes (RFC 8446 §6); level and description are kept as numbers so unknown values survive. */
export function decodeAlert(bytes: Uint8Array, base = 0): Alert {
  const r = reader(bytes, base);
  const level = r.u8('alert.level');
  const description = r.u8('alert.description');
  r.end('alert');
  return { level, description };
}

export function encodeAlert(a: Alert): Uint8Array {
  return new ByteWriter(2).u8(a.level).u8(a.description).finish().slice();
}

/**
 * RFC 8446 §6: every alert except close_notify and user_canceled is fatal, whatever its
 * level field says; the level is sent as fatal for all error alerts.
 */
export function isClosure(description: number): boolean {
  return description === AlertDescription.close_notify || description === AlertDescription.user_canceled;
}

/** A protocol failure that ends the connection with this alert. */
export class TlsAlertError extends Error {
  override readonly name = 'TlsAlertError';
  constructor(
    readonly description: number,
    reason: string,
  ) {
    super(`${alertName(description)}: ${reason}`);
  }
}

/**
 * The alert for input that failed to decode. RFC 8446 §6.2 makes decode_error the rule ("a
 * message could not be decoded because some field was out of the specified range or the
 * length of the message was incorrect"); these fields have an alert of their own in the RFCs.
 */
const ALERT_FOR_FIELD: Record<string, number> = {
  // RFC 8446 §5: "If a TLS implementation receives an unexpected record type, it MUST
  // terminate the connection with an "unexpected_message" alert."
  'record.type': AlertDescription.unexpected_message,
  // RFC 8446 §4: a handshake message type we do not expect (or know) is unexpected_message.
  'handshake.msg_type': AlertDescription.unexpected_message,
  // RFC 8446 §4.6.3: "If an implementation receives any other value [of request_update], it
  // MUST terminate the connection with an "illegal_parameter" alert."
  'key_update.request_update': AlertDescription.illegal_parameter,
  // RFC 8446 §4.2.8: two KeyShareEntry values for one group: "illegal_parameter".
  'key_share.group': AlertDescription.illegal_parameter,
  // RFC 8446 §4.2: two extensions of one type; §4.2.11: pre_shared_key not last ("MUST ...
  // fail the handshake with an "illegal_parameter" alert"). OpenSSL and rustls agree.
  extension_type: AlertDescription.illegal_parameter,
  // RFC 8449 §4: a record_size_limit below 64 "MUST be treated as an illegal_parameter".
  record_size_limit: AlertDescription.illegal_parameter,
};

/** The alert RFC 8446 asks for when `e` (a ParseError's field and reason) ends a connection. */
export function alertForParseError(e: { field: string; reason: string }): number {
  // RFC 8446 §5.1/§5.2: a record over its length limit is a record_overflow, not a decode_error.
  if (/record_overflow/.test(e.reason)) return AlertDescription.record_overflow;
  // RFC 8446 §5.1: zero-length handshake or alert fragments MUST NOT be sent; like other
  // records that break the framing rules they are unexpected messages.
  if (e.field === 'record.length' && /empty/.test(e.reason)) return AlertDescription.unexpected_message;
  // RFC 8446 §5.4: an inner plaintext of only zeros is an unexpected_message.
  if (e.field === 'TLSInnerPlaintext.type') return AlertDescription.unexpected_message;
  return ALERT_FOR_FIELD[e.field] ?? AlertDescription.decode_error;
}
