import { ParseError } from './errors.ts';

/**
 * A bounds-checked, big-endian reader. Every read names the field it reads, so a short
 * or malformed input becomes a ParseError that says which field ran off the end.
 * `base` is the reader's position within the outermost buffer, for error offsets.
 */
export class ByteReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly layer: string,
    readonly base = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.pos;
  }
  /** Offset within the outermost buffer, for error reports. */
  get absoluteOffset(): number {
    return this.base + this.pos;
  }
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  get atEnd(): boolean {
    return this.pos >= this.bytes.length;
  }

  fail(field: string, reason: string, at = this.pos): never {
    throw new ParseError(this.layer, field, this.base + at, reason);
  }

  private need(n: number, field: string): void {
    if (n > this.bytes.length - this.pos) {
      this.fail(field, `needs ${n} byte(s), ${this.bytes.length - this.pos} left`);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.view.getUint8(this.pos++);
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u24(field: string): number {
    this.need(3, field);
    const v = (this.view.getUint8(this.pos) << 16) | this.view.getUint16(this.pos + 1);
    this.pos += 3;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }
  /** A view (not a copy) of the next n bytes. */
  bytesView(n: number, field: string): Uint8Array {
    if (n < 0) this.fail(field, `negative length ${n}`);
    this.need(n, field);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** A copy of the next n bytes, safe to keep after the input buffer is reused. */
  copy(n: number, field: string): Uint8Array {
    return this.bytesView(n, field).slice();
  }
  rest(field: string): Uint8Array {
    return this.bytesView(this.remaining, field);
  }
  skip(n: number, field: string): void {
    this.need(n, field);
    this.pos += n;
  }
  /** A reader over the next n bytes, whose errors report offsets in the outer buffer. */
  sub(n: number, field: string): ByteReader {
    const start = this.pos;
    const view = this.bytesView(n, field);
    return new ByteReader(view, this.layer, this.base + start);
  }
  /** Throws unless every byte was consumed. */
  end(field: string): void {
    if (this.pos !== this.bytes.length) this.fail(field, `${this.bytes.length - this.pos} trailing byte(s)`);
  }
}

/** A growable big-endian writer. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initial = 64) {
    this.buf = new Uint8Array(Math.max(1, initial));
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.pos++, v);
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }
  u24(v: number): this {
    this.ensure(3);
    this.view.setUint8(this.pos, (v >>> 16) & 0xff);
    this.view.setUint16(this.pos + 1, v & 0xffff);
    this.pos += 3;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
    return this;
  }
  u64(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.pos, v);
    this.pos += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }
  /** Overwrite a u16 already written, e.g. a length or checksum field. */
  patchU16(at: number, v: number): this {
    this.view.setUint16(at, v);
    return this;
  }
  patchU8(at: number, v: number): this {
    this.view.setUint8(at, v);
    return this;
  }
  patchU24(at: number, v: number): this {
    this.view.setUint8(at, (v >>> 16) & 0xff);
    this.view.setUint16(at + 1, v & 0xffff);
    return this;
  }
  patchU32(at: number, v: number): this {
    this.view.setUint32(at, v >>> 0);
    return this;
  }
  /** The bytes written so far (a view; copy if the writer will be reused). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * Bytes [start, end) of `b` as a new view: what subarray returns, without the species-constructor
 * lookup V8 makes subarray pay on every call (several times a packet on the hot paths).
 */
export function subview(b: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset + start, end - start);
}

/**
 * Uninitialised bytes for a packet whose every byte the caller writes. Buffer.allocUnsafe
 * serves packet-sized requests from a shared slab, several times cheaper than
 * `new Uint8Array(n)`, which allocates and zeroes a backing store each time: the encoders
 * on the per-packet path use this. The result is a plain Uint8Array view (so `.slice()`
 * still copies, and equality with other Uint8Arrays holds); its `.buffer` is shared, so
 * always pair it with byteOffset/byteLength.
 */
export function allocBytes(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/**
 * The big-endian 16-bit field at byte `at`: for codecs that read a fixed header by its
 * named field offsets after one length check (the caller guarantees the two bytes exist).
 */
export function readU16(b: Uint8Array, at: number): number {
  return ((b[at] as number) << 8) | (b[at + 1] as number);
}
/** The big-endian 32-bit field at byte `at`, unsigned (the caller guarantees the four bytes). */
export function readU32(b: Uint8Array, at: number): number {
  return (
    (((b[at] as number) << 24) |
      ((b[at + 1] as number) << 16) |
      ((b[at + 2] as number) << 8) |
      (b[at + 3] as number)) >>>
    0
  );
}
/** Write `v` as the big-endian 16-bit field at byte `at`. */
export function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}
/** Write `v` as the big-endian 32-bit field at byte `at`. */
export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** The parts one after another, in a new buffer (never one of the parts, even when the others are empty). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  // Two parts (a buffered remainder and a new chunk, a prefix and a body) is the common
  // case on receive paths: sized and copied directly, without the loop.
  if (parts.length === 2) {
    const a = parts[0] as Uint8Array;
    const b = parts[1] as Uint8Array;
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }
  return joinBytes(parts);
}

/** concatBytes over a list: no spread, so any number of parts (a capture's records). */
export function joinBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`not hex: ${hex.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const utf8 = (s: string): Uint8Array => enc.encode(s);
export const fromUtf8 = (b: Uint8Array): string => dec.decode(b);
