import { ByteReader, ByteWriter, ParseError } from '@stepwire/wire';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.ts';

/**
 * QPACK wire representations (RFC 9204 §4) as plain data: prefixed integers and string
 * literals (§4.1), encoder instructions (§4.3), decoder instructions (§4.4) and encoded
 * field sections with their field line representations (§4.5).
 *
 * Field names and values are strings whose characters are bytes (latin1), so any octet
 * sequence a peer sends is represented exactly; each string literal remembers whether it
 * was Huffman-coded, so decode(encode(x)) is x.
 */

const LAYER = 'qpack';

/** RFC 9204 §6: the error codes, for a QpackError. */
export const QpackErrorCode = {
  QPACK_DECOMPRESSION_FAILED: 0x200,
  QPACK_ENCODER_STREAM_ERROR: 0x201,
  QPACK_DECODER_STREAM_ERROR: 0x202,
} as const;
export type QpackErrorName = keyof typeof QpackErrorCode;

/** A QPACK failure the connection answers with the named HTTP/3 connection error (§6). */
export class QpackError extends Error {
  override readonly name = 'QpackError';
  constructor(
    readonly code: QpackErrorName,
    reason: string,
  ) {
    super(`${code}: ${reason}`);
  }
}

/** A string literal (§4.1.2). */
export interface Literal {
  text: string;
  huffman: boolean;
}

export const latin1 = {
  encode: (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1')),
  decode: (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1'),
};

/** A literal that uses Huffman coding when that is shorter (§4.1.2 leaves the choice to the encoder). */
export function literal(text: string): Literal {
  const raw = latin1.encode(text);
  return { text, huffman: huffmanEncodedLength(raw) < raw.length };
}

// ---- §4.1.1 prefixed integers (RFC 7541 §5.1) ----

/** Writes `flags` in the bits above an n-bit prefix integer. */
export function writePrefixInt(w: ByteWriter, flags: number, n: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`prefix integer ${v} out of range`);
  const max = (1 << n) - 1;
  if (v < max) {
    w.u8(flags | v);
    return;
  }
  w.u8(flags | max);
  v -= max;
  while (v >= 128) {
    w.u8((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  w.u8(v);
}

/**
 * Reads an n-bit prefix integer (the first byte's upper bits are the caller's). §4.1.1:
 * QPACK implementations must decode integers up to 62 bits; this one stops at 2^53-1,
 * beyond any table size, index or length a peer could use.
 */
export function readPrefixInt(r: ByteReader, n: number, field: string): number {
  const at = r.offset;
  const max = (1 << n) - 1;
  let v = r.u8(field) & max;
  if (v < max) return v;
  let m = 0;
  for (;;) {
    const b = r.u8(field);
    v += (b & 0x7f) * 2 ** m;
    m += 7;
    if (v > Number.MAX_SAFE_INTEGER) r.fail(field, 'integer exceeds 2^53-1', at);
    if ((b & 0x80) === 0) return v;
  }
}

/** §4.1.2: H flag just above an n-bit length prefix, then the (maybe Huffman-coded) octets. */
export function writeLiteral(w: ByteWriter, flags: number, n: number, s: Literal): void {
  const raw = latin1.encode(s.text);
  const data = s.huffman ? huffmanEncode(raw) : raw;
  writePrefixInt(w, flags | (s.huffman ? 1 << n : 0), n, data.length);
  w.bytes(data);
}

export function readLiteral(r: ByteReader, n: number, field: string, maxLength: number): Literal {
  const at = r.offset;
  const huffman = ((r.bytes[r.offset] ?? 0) & (1 << n)) !== 0;
  const length = readPrefixInt(r, n, `${field}Length`);
  // Every peer-controlled length is bounded before any allocation (a header list limit).
  if (length > maxLength)
    r.fail(`${field}Length`, `string of ${length} bytes exceeds the limit of ${maxLength}`, at);
  const data = r.bytesView(length, field);
  if (!huffman) return { text: latin1.decode(data), huffman };
  const decoded = huffmanDecode(data);
  if (typeof decoded === 'string') r.fail(field, `Huffman: ${decoded} (RFC 7541 §5.2)`, at);
  return { text: latin1.decode(decoded), huffman };
}

// ---- §4.3 encoder instructions ----

export type EncoderInstruction =
  /** §4.3.1: 001xxxxx. */
  | { type: 'SetDynamicTableCapacity'; capacity: number }
  /** §4.3.2: 1Txxxxxx; T=1 static. Dynamic name indexes are relative (§3.2.5). */
  | { type: 'InsertWithNameReference'; isStatic: boolean; nameIndex: number; value: Literal }
  /** §4.3.3: 01Hxxxxx. */
  | { type: 'InsertWithLiteralName'; name: Literal; value: Literal }
  /** §4.3.4: 000xxxxx, a relative index. */
  | { type: 'Duplicate'; index: number };

export function writeEncoderInstruction(w: ByteWriter, i: EncoderInstruction): void {
  switch (i.type) {
    case 'SetDynamicTableCapacity':
      writePrefixInt(w, 0x20, 5, i.capacity);
      return;
    case 'InsertWithNameReference':
      writePrefixInt(w, 0x80 | (i.isStatic ? 0x40 : 0), 6, i.nameIndex);
      writeLiteral(w, 0, 7, i.value);
      return;
    case 'InsertWithLiteralName':
      writeLiteral(w, 0x40, 5, i.name);
      writeLiteral(w, 0, 7, i.value);
      return;
    case 'Duplicate':
      writePrefixInt(w, 0x00, 5, i.index);
      return;
  }
}

export function readEncoderInstruction(r: ByteReader, maxStringLength = 65536): EncoderInstruction {
  const first = r.bytes[r.offset];
  if (first === undefined) return r.fail('instruction', 'needs 1 byte, 0 left');
  if (first & 0x80) {
    const isStatic = (first & 0x40) !== 0;
    const nameIndex = readPrefixInt(r, 6, 'nameIndex');
    return {
      type: 'InsertWithNameReference',
      isStatic,
      nameIndex,
      value: readLiteral(r, 7, 'value', maxStringLength),
    };
  }
  if (first & 0x40) {
    const name = readLiteral(r, 5, 'name', maxStringLength);
    return { type: 'InsertWithLiteralName', name, value: readLiteral(r, 7, 'value', maxStringLength) };
  }
  if (first & 0x20) return { type: 'SetDynamicTableCapacity', capacity: readPrefixInt(r, 5, 'capacity') };
  return { type: 'Duplicate', index: readPrefixInt(r, 5, 'index') };
}

// ---- §4.4 decoder instructions ----

export type DecoderInstruction =
  /** §4.4.1: 1xxxxxxx. */
  | { type: 'SectionAcknowledgment'; streamId: number }
  /** §4.4.2: 01xxxxxx. */
  | { type: 'StreamCancellation'; streamId: number }
  /** §4.4.3: 00xxxxxx. */
  | { type: 'InsertCountIncrement'; increment: number };

export function writeDecoderInstruction(w: ByteWriter, i: DecoderInstruction): void {
  if (i.type === 'SectionAcknowledgment') writePrefixInt(w, 0x80, 7, i.streamId);
  else if (i.type === 'StreamCancellation') writePrefixInt(w, 0x40, 6, i.streamId);
  else writePrefixInt(w, 0x00, 6, i.increment);
}

export function readDecoderInstruction(r: ByteReader): DecoderInstruction {
  const first = r.bytes[r.offset];
  if (first === undefined) return r.fail('instruction', 'needs 1 byte, 0 left');
  if (first & 0x80) return { type: 'SectionAcknowledgment', streamId: readPrefixInt(r, 7, 'streamId') };
  if (first & 0x40) return { type: 'StreamCancellation', streamId: readPrefixInt(r, 6, 'streamId') };
  return { type: 'InsertCountIncrement', increment: readPrefixInt(r, 6, 'increment') };
}

// ---- §4.5 field sections ----

/** §4.5.1: Required Insert Count (encoded, §4.5.1.1) and Base as Sign + Delta Base (§4.5.1.2). */
export interface FieldSectionPrefix {
  encodedInsertCount: number;
  sign: boolean;
  deltaBase: number;
}

export type FieldLine =
  /** §4.5.2: 1Txxxxxx; a dynamic index is relative to Base. */
  | { type: 'Indexed'; isStatic: boolean; index: number }
  /** §4.5.3: 0001xxxx. */
  | { type: 'IndexedPostBase'; index: number }
  /** §4.5.4: 01NTxxxx; N = never indexed (§7.1.3). */
  | {
      type: 'LiteralWithNameReference';
      neverIndexed: boolean;
      isStatic: boolean;
      nameIndex: number;
      value: Literal;
    }
  /** §4.5.5: 0000Nxxx. */
  | { type: 'LiteralWithPostBaseNameReference'; neverIndexed: boolean; nameIndex: number; value: Literal }
  /** §4.5.6: 001NHxxx. */
  | { type: 'LiteralWithLiteralName'; neverIndexed: boolean; name: Literal; value: Literal };

export interface EncodedFieldSection {
  prefix: FieldSectionPrefix;
  lines: FieldLine[];
}

export function writeFieldLine(w: ByteWriter, l: FieldLine): void {
  switch (l.type) {
    case 'Indexed':
      writePrefixInt(w, 0x80 | (l.isStatic ? 0x40 : 0), 6, l.index);
      return;
    case 'IndexedPostBase':
      writePrefixInt(w, 0x10, 4, l.index);
      return;
    case 'LiteralWithNameReference':
      writePrefixInt(w, 0x40 | (l.neverIndexed ? 0x20 : 0) | (l.isStatic ? 0x10 : 0), 4, l.nameIndex);
      writeLiteral(w, 0, 7, l.value);
      return;
    case 'LiteralWithPostBaseNameReference':
      writePrefixInt(w, l.neverIndexed ? 0x08 : 0, 3, l.nameIndex);
      writeLiteral(w, 0, 7, l.value);
      return;
    case 'LiteralWithLiteralName':
      writeLiteral(w, 0x20 | (l.neverIndexed ? 0x10 : 0), 3, l.name);
      writeLiteral(w, 0, 7, l.value);
      return;
  }
}

export function readFieldLine(r: ByteReader, maxStringLength: number): FieldLine {
  const first = r.bytes[r.offset];
  if (first === undefined) return r.fail('fieldLine', 'needs 1 byte, 0 left');
  if (first & 0x80)
    return { type: 'Indexed', isStatic: (first & 0x40) !== 0, index: readPrefixInt(r, 6, 'index') };
  if (first & 0x40) {
    const neverIndexed = (first & 0x20) !== 0;
    const isStatic = (first & 0x10) !== 0;
    const nameIndex = readPrefixInt(r, 4, 'nameIndex');
    return {
      type: 'LiteralWithNameReference',
      neverIndexed,
      isStatic,
      nameIndex,
      value: readLiteral(r, 7, 'value', maxStringLength),
    };
  }
  if (first & 0x20) {
    const neverIndexed = (first & 0x10) !== 0;
    const name = readLiteral(r, 3, 'name', maxStringLength);
    return {
      type: 'LiteralWithLiteralName',
      neverIndexed,
      name,
      value: readLiteral(r, 7, 'value', maxStringLength),
    };
  }
  if (first & 0x10) return { type: 'IndexedPostBase', index: readPrefixInt(r, 4, 'index') };
  const neverIndexed = (first & 0x08) !== 0;
  const nameIndex = readPrefixInt(r, 3, 'nameIndex');
  return {
    type: 'LiteralWithPostBaseNameReference',
    neverIndexed,
    nameIndex,
    value: readLiteral(r, 7, 'value', maxStringLength),
  };
}

export function encodeFieldSection(s: EncodedFieldSection): Uint8Array {
  const w = new ByteWriter(64);
  writePrefixInt(w, 0, 8, s.prefix.encodedInsertCount);
  writePrefixInt(w, s.prefix.sign ? 0x80 : 0, 7, s.prefix.deltaBase);
  for (const l of s.lines) writeFieldLine(w, l);
  return w.finish().slice();
}

export function decodeFieldSection(bytes: Uint8Array, maxStringLength = 65536): EncodedFieldSection {
  const r = new ByteReader(bytes, LAYER);
  const encodedInsertCount = readPrefixInt(r, 8, 'requiredInsertCount');
  const sign = ((r.bytes[r.offset] ?? 0) & 0x80) !== 0;
  const deltaBase = readPrefixInt(r, 7, 'deltaBase');
  const lines: FieldLine[] = [];
  while (!r.atEnd) lines.push(readFieldLine(r, maxStringLength));
  return { prefix: { encodedInsertCount, sign, deltaBase }, lines };
}

function encodeAll<T>(items: readonly T[], write: (w: ByteWriter, x: T) => void): Uint8Array {
  const w = new ByteWriter(64);
  for (const x of items) write(w, x);
  return w.finish().slice();
}
function decodeAll<T>(bytes: Uint8Array, read: (r: ByteReader) => T): T[] {
  const r = new ByteReader(bytes, LAYER);
  const out: T[] = [];
  while (!r.atEnd) out.push(read(r));
  return out;
}

export const encodeEncoderInstructions = (is: readonly EncoderInstruction[]) =>
  encodeAll(is, writeEncoderInstruction);
export const decodeEncoderInstructions = (b: Uint8Array) => decodeAll(b, (r) => readEncoderInstruction(r));
export const encodeDecoderInstructions = (is: readonly DecoderInstruction[]) =>
  encodeAll(is, writeDecoderInstruction);
export const decodeDecoderInstructions = (b: Uint8Array) => decodeAll(b, readDecoderInstruction);

/** True when a ParseError only means the bytes ended mid-instruction (stream data may arrive split). */
export function isTruncation(e: unknown): boolean {
  return e instanceof ParseError && e.reason.startsWith('needs ');
}
