/**
 * gRPC status codes (grpc/grpc doc/statuscodes.md) and the two tables that turn HTTP/2
 * outcomes into one: HTTP status → gRPC status (doc/http-grpc-status-mapping.md) for
 * responses that are not gRPC at all, and RST_STREAM error code → gRPC status
 * (PROTOCOL-HTTP2.md, "Errors") for calls the transport ended.
 */
import { ErrorCode } from '../h2/errors.ts';

/** The status codes, one row each, as statuscodes.md numbers them. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const NAMES = new Map<number, string>(Object.entries(GrpcStatus).map(([k, v]) => [v, k]));

export function grpcStatusName(code: number): string {
  return NAMES.get(code) ?? `STATUS_${code}`;
}

/** A call's outcome: the code, the (decoded) grpc-message and the trailing metadata. */
export class GrpcError extends Error {
  override readonly name = 'GrpcError';
  constructor(
    readonly code: number,
    readonly details: string = '',
    readonly trailers: Record<string, string> = {},
  ) {
    super(`${grpcStatusName(code)}${details ? `: ${details}` : ''}`);
  }
}

/**
 * http-grpc-status-mapping.md: a response without grpc-status whose HTTP status is not
 * 200 (a proxy or a plain HTTP server answered) becomes this gRPC status.
 */
export function grpcStatusFromHttp(httpStatus: number): GrpcStatusCode {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/**
 * PROTOCOL-HTTP2.md "Errors": the status a client reports when the stream was reset.
 * CANCEL is CANCELLED unless the client itself reset the stream because its deadline
 * passed (the caller knows that, and reports DEADLINE_EXCEEDED instead).
 */
export function grpcStatusFromRstStream(errorCode: number): GrpcStatusCode {
  switch (errorCode) {
    case ErrorCode.REFUSED_STREAM:
      return GrpcStatus.UNAVAILABLE;
    case ErrorCode.CANCEL:
      return GrpcStatus.CANCELLED;
    case ErrorCode.ENHANCE_YOUR_CALM:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case ErrorCode.INADEQUATE_SECURITY:
      return GrpcStatus.PERMISSION_DENIED;
    default:
      // NO_ERROR (reset before trailers), PROTOCOL_ERROR, INTERNAL_ERROR,
      // FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, FRAME_SIZE_ERROR, COMPRESSION_ERROR,
      // CONNECT_ERROR all map to INTERNAL.
      return GrpcStatus.INTERNAL;
  }
}
