/**
 * QUIC transport error codes (RFC 9000 §20.1), carried in CONNECTION_CLOSE frames of type
 * 0x1c. 0x0100-0x01ff are CRYPTO_ERROR: a TLS alert in the low byte (RFC 9001 §4.8).
 */
export const TransportErrorCode = {
  NO_ERROR: 0x00,
  INTERNAL_ERROR: 0x01,
  CONNECTION_REFUSED: 0x02,
  FLOW_CONTROL_ERROR: 0x03,
  STREAM_LIMIT_ERROR: 0x04,
  STREAM_STATE_ERROR: 0x05,
  FINAL_SIZE_ERROR: 0x06,
  FRAME_ENCODING_ERROR: 0x07,
  TRANSPORT_PARAMETER_ERROR: 0x08,
  CONNECTION_ID_LIMIT_ERROR: 0x09,
  PROTOCOL_VIOLATION: 0x0a,
  INVALID_TOKEN: 0x0b,
  APPLICATION_ERROR: 0x0c,
  CRYPTO_BUFFER_EXCEEDED: 0x0d,
  KEY_UPDATE_ERROR: 0x0e,
  AEAD_LIMIT_REACHED: 0x0f,
  NO_VIABLE_PATH: 0x10,
} as const;
export type TransportErrorName = keyof typeof TransportErrorCode;

/** RFC 9001 §4.8: CRYPTO_ERROR for a TLS alert. */
export function cryptoError(alert: number): number {
  return 0x0100 + (alert & 0xff);
}

const NAMES = new Map<number, string>(Object.entries(TransportErrorCode).map(([k, v]) => [v, k]));

/** The RFC name of a transport error code, e.g. "PROTOCOL_VIOLATION" or "CRYPTO_ERROR(0x28)". */
export function transportErrorName(code: number): string {
  const n = NAMES.get(code);
  if (n) return n;
  if (code >= 0x0100 && code <= 0x01ff)
    return `CRYPTO_ERROR(0x${(code & 0xff).toString(16).padStart(2, '0')})`;
  return `0x${code.toString(16)}`;
}
