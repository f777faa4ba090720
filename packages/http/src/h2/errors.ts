/** HTTP/2 error codes (RFC 9113 §7) and the two kinds of error (§5.4). */
import { ParseError } from '@stepwire/wire';

// RFC 9113 §7.
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

export function errorCodeName(code: number): string {
  for (const [k, v] of Object.entries(ErrorCode)) if (v === code) return k;
  return `0x${code.toString(16)}`;
}

/**
 * A protocol error found while decoding or processing a frame. `streamId` is set for a
 * stream error (RFC 9113 §5.4.2: answered with RST_STREAM) and absent for a connection
 * error (§5.4.1: answered with GOAWAY and a close).
 */
export class Http2Error extends ParseError {
  constructor(
    readonly code: number,
    reason: string,
    readonly streamId?: number,
    offset = 0,
  ) {
    super(
      'h2',
      streamId === undefined ? 'connection' : `stream ${streamId}`,
      offset,
      `${errorCodeName(code)}: ${reason}`,
    );
  }
  get isStreamError(): boolean {
    return this.streamId !== undefined;
  }
}

export const connectionError = (code: number, reason: string): Http2Error => new Http2Error(code, reason);
export const streamError = (streamId: number, code: number, reason: string): Http2Error =>
  new Http2Error(code, reason, streamId);
