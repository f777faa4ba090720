import { QpackErrorCode } from '../qpack/instructions.ts';

/**
 * HTTP/3 error codes (RFC 9114 §8.1), carried in CONNECTION_CLOSE (type 0x1d),
 * RESET_STREAM and STOP_SENDING; QPACK's three (RFC 9204 §6) share the space.
 */
export const H3ErrorCode = {
  H3_NO_ERROR: 0x0100,
  H3_GENERAL_PROTOCOL_ERROR: 0x0101,
  H3_INTERNAL_ERROR: 0x0102,
  H3_STREAM_CREATION_ERROR: 0x0103,
  H3_CLOSED_CRITICAL_STREAM: 0x0104,
  H3_FRAME_UNEXPECTED: 0x0105,
  H3_FRAME_ERROR: 0x0106,
  H3_EXCESSIVE_LOAD: 0x0107,
  H3_ID_ERROR: 0x0108,
  H3_SETTINGS_ERROR: 0x0109,
  H3_MISSING_SETTINGS: 0x010a,
  H3_REQUEST_REJECTED: 0x010b,
  H3_REQUEST_CANCELLED: 0x010c,
  H3_REQUEST_INCOMPLETE: 0x010d,
  H3_MESSAGE_ERROR: 0x010e,
  H3_CONNECT_ERROR: 0x010f,
  H3_VERSION_FALLBACK: 0x0110,
  ...QpackErrorCode,
} as const;
export type H3ErrorName = keyof typeof H3ErrorCode;

const NAMES = new Map<number, string>(Object.entries(H3ErrorCode).map(([k, v]) => [v, k]));

/** The RFC name of an HTTP/3 or QPACK error code; reserved codes (§8.1: 0x1f*N+0x21) by number. */
export function h3ErrorName(code: number): string {
  return NAMES.get(code) ?? `0x${code.toString(16)}`;
}

/**
 * A connection error (RFC 9114 §8): the connection is closed with this code. Thrown
 * inside the core and turned into a CONNECTION_CLOSE at its edge.
 */
export class H3ConnectionError extends Error {
  override readonly name = 'H3ConnectionError';
  constructor(
    readonly code: H3ErrorName,
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
  }
}

/** A stream error (RFC 9114 §8): only the stream is reset, with this code. */
export class H3StreamError extends Error {
  override readonly name = 'H3StreamError';
  constructor(
    readonly code: H3ErrorName,
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
  }
}
