/**
 * The header fields of a gRPC call (PROTOCOL-HTTP2.md, "Requests" and "Responses"):
 * grpc-timeout with its units, grpc-message's percent-encoding, and custom metadata.
 */
import { ParseError } from '@stepwire/wire';

/** PROTOCOL-HTTP2.md: TimeoutUnit — Hour, Minute, Second, Millisecond, Microsecond, Nanosecond. */
export type GrpcTimeoutUnit = 'H' | 'M' | 'S' | 'm' | 'u' | 'n';
/** grpc-timeout → TimeoutValue TimeoutUnit, TimeoutValue a positive integer of at most 8 digits. */
export interface GrpcTimeout {
  value: number;
  unit: GrpcTimeoutUnit;
}

/** Milliseconds in one of each unit. */
export const GRPC_TIMEOUT_UNIT_MS: Record<GrpcTimeoutUnit, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};
export const GRPC_TIMEOUT_MAX_VALUE = 99_999_999;

export function encodeGrpcTimeout(t: GrpcTimeout): string {
  if (!Number.isInteger(t.value) || t.value < 0 || t.value > GRPC_TIMEOUT_MAX_VALUE)
    throw new RangeError(`grpc-timeout value ${t.value} is not an integer of at most 8 digits`);
  return `${t.value}${t.unit}`;
}

export function decodeGrpcTimeout(text: string): GrpcTimeout {
  const digits = text.slice(0, -1);
  const unit = text.slice(-1);
  if (!(unit in GRPC_TIMEOUT_UNIT_MS))
    throw new ParseError(
      'grpc',
      'grpc-timeout',
      Math.max(0, text.length - 1),
      `unit '${unit}' is not one of HMSmun`,
    );
  // At most 8 ASCII digits; no sign, no spaces.
  if (!/^[0-9]{1,8}$/.test(digits))
    throw new ParseError('grpc', 'grpc-timeout', 0, `value '${digits}' is not 1 to 8 digits`);
  return { value: Number(digits), unit: unit as GrpcTimeoutUnit };
}

export function grpcTimeoutToMillis(t: GrpcTimeout): number {
  return t.value * GRPC_TIMEOUT_UNIT_MS[t.unit];
}

/**
 * The finest unit whose value fits 8 digits, rounded up so the server never sees a
 * deadline earlier than the client's (gRPC's encoders may round up, never down).
 */
export function grpcTimeoutFromMillis(ms: number): GrpcTimeout {
  const order: GrpcTimeoutUnit[] = ['n', 'u', 'm', 'S', 'M', 'H'];
  for (const unit of order) {
    const value = Math.max(1, Math.ceil(ms / GRPC_TIMEOUT_UNIT_MS[unit] - 1e-9));
    if (value <= GRPC_TIMEOUT_MAX_VALUE) return { value, unit };
  }
  return { value: GRPC_TIMEOUT_MAX_VALUE, unit: 'H' };
}

/**
 * PROTOCOL-HTTP2.md "Status-Message": the UTF-8 bytes of the message, each outside
 * 0x20–0x7E, and '%' itself, written as %XX.
 */
export function encodeGrpcMessageText(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let out = '';
  for (const b of bytes) {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The reverse; a '%' not followed by two hex digits is kept as it is (the spec asks decoders to be lenient). */
export function decodeGrpcMessageText(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) bytes.push(c);
    else for (const b of new TextEncoder().encode(text[i] ?? '')) bytes.push(b);
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(new Uint8Array(bytes));
}

/**
 * Custom metadata: lowercase names to values. Names ending in "-bin" carry binary values,
 * base64-encoded on the wire (PROTOCOL-HTTP2.md "Custom-Metadata"); here they stay base64 text.
 */
export type GrpcMetadata = Record<string, string>;

/** Header fields gRPC itself defines; they never reach the application as metadata. */
const RESERVED = new Set([
  'content-type',
  'te',
  'grpc-timeout',
  'grpc-encoding',
  'grpc-accept-encoding',
  'grpc-status',
  'grpc-message',
  'content-length',
]);

/** Metadata from an incoming header object (pseudo-headers and gRPC's own fields left out). */
export function metadataFromHeaders(headers: Record<string, unknown> | undefined): GrpcMetadata {
  const md: GrpcMetadata = {};
  if (!headers) return md;
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(':') || RESERVED.has(k) || v === undefined) continue;
    md[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return md;
}

/**
 * Metadata to send: names lowercased; reserved names (which would confuse the peer) refused
 * with an error, or, where no one could catch it (a server finishing a call), left out.
 */
export function metadataToHeaders(md: GrpcMetadata | undefined, strict = true): Record<string, string> {
  const out: Record<string, string> = {};
  if (!md) return out;
  for (const [k, v] of Object.entries(md)) {
    const name = k.toLowerCase();
    if (name.startsWith(':') || RESERVED.has(name)) {
      if (strict) throw new Error(`metadata name '${k}' is reserved by gRPC`);
      continue;
    }
    out[name] = v;
  }
  return out;
}
