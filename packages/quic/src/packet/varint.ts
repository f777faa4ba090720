import { ByteReader, type ByteWriter } from '@stepwire/wire';

/**
 * Variable-length integers (RFC 9000 §16). The two most significant bits of the first
 * byte give the length (1, 2, 4 or 8 bytes); the remaining bits hold the value, so the
 * largest value is 2^62-1.
 *
 * Values are JavaScript numbers. Every quantity a connection counts (offsets, lengths,
 * packet numbers, stream IDs) stays far below 2^53 in practice, so `readVarint` rejects
 * larger values with a ParseError rather than silently rounding them. Limits are
 * different: peers commonly advertise 2^62-1 to mean "unlimited" (MAX_DATA, transport
 * parameters), so `readVarintLimit` saturates those at Number.MAX_SAFE_INTEGER, which a
 * connection treats exactly like 2^62-1.
 */
export const VARINT_MAX = 2 ** 62 - 1;
/** The largest varint this implementation represents exactly. */
export const VARINT_SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** Encoded size of v in bytes (RFC 9000 §16, Table 4). */
export function varintLength(v: number): 1 | 2 | 4 | 8 {
  if (v < 0 || !Number.isInteger(v) || v > VARINT_SAFE_MAX) throw new RangeError(`varint ${v} out of range`);
  if (v <= 63) return 1;
  if (v <= 16383) return 2;
  if (v <= 1073741823) return 4;
  return 8;
}

export function writeVarint(w: ByteWriter, v: number, width?: 1 | 2 | 4 | 8): void {
  const n = width ?? varintLength(v);
  if (n < varintLength(v)) throw new RangeError(`varint ${v} does not fit in ${n} byte(s)`);
  switch (n) {
    case 1:
      w.u8(v);
      return;
    case 2:
      w.u16(0x4000 | v);
      return;
    case 4:
      w.u32((0x80000000 | v) >>> 0);
      return;
    case 8:
      w.u32((0xc0000000 | Math.floor(v / 2 ** 32)) >>> 0);
      w.u32(v >>> 0);
      return;
  }
}

/** Writes into a fixed buffer at `at`; returns the new offset. For encoders on the per-packet path. */
export function putVarint(out: Uint8Array, at: number, v: number, width?: 1 | 2 | 4 | 8): number {
  const n = width ?? varintLength(v);
  if (n < varintLength(v)) throw new RangeError(`varint ${v} does not fit in ${n} byte(s)`);
  let hi = Math.floor(v / 2 ** 32);
  let lo = v >>> 0;
  for (let i = n - 1; i >= 0; i--) {
    out[at + i] = lo & 0xff;
    lo = (lo >>> 8) | ((hi & 0xff) << 24);
    hi >>>= 8;
  }
  out[at] = out[at]! | ([0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0][n] ?? 0);
  return at + n;
}

interface RawVarint {
  value: number;
  /** True when the 8-byte value exceeds 2^53-1 and `value` is not exact. */
  inexact: boolean;
  length: number;
  /** The exact value as high and low 32-bit halves. */
  hi: number;
  lo: number;
}

function readRaw(r: ByteReader, field: string): RawVarint {
  const first = r.u8(field);
  const length = 1 << (first >> 6);
  let value = first & 0x3f;
  if (length === 1) return { value, inexact: false, length, hi: 0, lo: value };
  if (length === 2) {
    value = (value << 8) | r.u8(field);
    return { value, inexact: false, length, hi: 0, lo: value };
  }
  if (length === 4) {
    value = value * 2 ** 24 + r.u24(field);
    return { value, inexact: false, length, hi: 0, lo: value };
  }
  const hi = value * 2 ** 24 + r.u24(field); // top 30 bits
  const lo = r.u32(field);
  value = hi * 2 ** 32 + lo;
  return { value, inexact: hi >= 2 ** 21, length, hi, lo };
}

/** A varint that must be exact (offsets, lengths, packet numbers, stream IDs, error codes). */
export function readVarint(r: ByteReader, field: string): number {
  const at = r.offset;
  const v = readRaw(r, field);
  if (v.inexact) r.fail(field, 'value exceeds 2^53-1, beyond what this implementation tracks', at);
  return v.value;
}

/** A varint that is a limit: values above 2^53-1 mean "practically unlimited" and saturate. */
export function readVarintLimit(r: ByteReader, field: string): number {
  const v = readRaw(r, field);
  return v.inexact ? VARINT_SAFE_MAX : v.value;
}

/**
 * A limit that may not exceed 2^k (k >= 53), e.g. MAX_STREAMS' 2^60 (RFC 9000 §19.11):
 * the bound is checked on the exact value, then the value saturates like readVarintLimit.
 * Returns undefined when the value exceeds the bound.
 */
export function readVarintLimitAtMostPow2(r: ByteReader, field: string, k: number): number | undefined {
  const v = readRaw(r, field);
  const boundHi = 2 ** (k - 32);
  if (v.hi > boundHi || (v.hi === boundHi && v.lo > 0)) return undefined;
  return v.inexact ? VARINT_SAFE_MAX : v.value;
}

/** A varint that also reports how many bytes it took (frame types must be minimal, RFC 9000 §12.4). */
export function readVarintWithLength(r: ByteReader, field: string): { value: number; length: number } {
  const at = r.offset;
  const v = readRaw(r, field);
  if (v.inexact) r.fail(field, 'value exceeds 2^53-1, beyond what this implementation tracks', at);
  return { value: v.value, length: v.length };
}

/** Standalone codec for a single varint, for tests and for callers holding raw bytes. */
export function encodeVarint(v: number, width?: 1 | 2 | 4 | 8): Uint8Array {
  const out = new Uint8Array(width ?? varintLength(v));
  putVarint(out, 0, v, width);
  return out;
}

export function decodeVarint(bytes: Uint8Array, layer = 'quic'): number {
  const r = new ByteReader(bytes, layer);
  const v = readVarint(r, 'varint');
  r.end('varint');
  return v;
}
