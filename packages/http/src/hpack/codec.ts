/**
 * HPACK header block coding (RFC 7541): primitive integers and strings (§5), the field
 * representations (§6), and a stateful encoder and decoder each owning its dynamic table.
 */
import { ParseError } from '@stepwire/wire';
import { huffmanDecode, huffmanEncodedLength, huffmanEncodeInto, latin1 } from './huffman.ts';
import {
  DynamicTable,
  ENTRY_OVERHEAD,
  entrySize,
  type HeaderField,
  STATIC_FIELD_INDEX,
  STATIC_NAME_INDEX,
  STATIC_TABLE,
  STATIC_TABLE_LENGTH,
} from './table.ts';

/** RFC 9113 §6.5.2: SETTINGS_HEADER_TABLE_SIZE starts at 4096. */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

// ---- primitives (RFC 7541 §5) -------------------------------------------------------------

/** Largest integer we accept: larger ones cannot be a length or index in any real block. */
const MAX_INTEGER = 0xffffffff;

/**
 * RFC 7541 §5.1: writes `value` with an N-bit prefix into out[at..], OR-ing `flags` into the
 * first byte's high bits. Returns the new end. `out` must have room (at most 6 bytes).
 */
export function encodeIntegerInto(
  value: number,
  prefixBits: number,
  flags: number,
  out: Uint8Array,
  at: number,
): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[at++] = flags | value;
    return at;
  }
  out[at++] = flags | max;
  value -= max;
  while (value >= 128) {
    out[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

export function encodeInteger(value: number, prefixBits: number, flags = 0): Uint8Array {
  const out = new Uint8Array(8);
  return out.slice(0, encodeIntegerInto(value, prefixBits, flags, out, 0));
}

/** A cursor over a header block; `pos` advances as representations are read. */
export class HpackReader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
  ) {
    this.pos = start;
  }

  /** RFC 7541 §5.1, with the prefix in the low `prefixBits` of the current byte. */
  integer(prefixBits: number): number {
    const b = this.bytes;
    if (this.pos >= b.length) throw new ParseError('hpack', 'integer', this.pos, 'truncated');
    const max = (1 << prefixBits) - 1;
    let value = b[this.pos++]! & max;
    if (value < max) return value;
    let m = 1;
    for (;;) {
      if (this.pos >= b.length) throw new ParseError('hpack', 'integer', this.pos, 'truncated');
      const byte = b[this.pos++]!;
      // Zero-valued continuation octets add nothing but must not run on: five of them
      // already cover 2^35.
      if (m > 2 ** 35) throw new ParseError('hpack', 'integer', this.pos - 1, 'integer encoding too long');
      value += (byte & 0x7f) * m;
      m *= 128;
      if (value > MAX_INTEGER)
        throw new ParseError('hpack', 'integer', this.pos - 1, 'integer exceeds 2^32 - 1');
      if ((byte & 0x80) === 0) return value;
    }
  }

  /** RFC 7541 §5.2: H flag, 7-bit-prefix length, then raw or Huffman-coded octets. */
  string(): string {
    const b = this.bytes;
    if (this.pos >= b.length) throw new ParseError('hpack', 'string', this.pos, 'truncated');
    const huffman = (b[this.pos]! & 0x80) !== 0;
    const len = this.integer(7);
    const start = this.pos;
    if (len > b.length - start)
      throw new ParseError('hpack', 'string', start, `length ${len} runs past the block`);
    this.pos = start + len;
    return huffman ? huffmanDecode(b, start, start + len) : latin1(b, start, start + len);
  }
}

export function decodeInteger(bytes: Uint8Array, prefixBits: number): number {
  return new HpackReader(bytes).integer(prefixBits);
}

/** Raw (H=0) or Huffman (H=1) string literal, for tests and tools. */
export function encodeString(s: string, huffman: boolean): Uint8Array {
  const out = new Uint8Array(s.length + 8);
  return out.slice(0, writeString(s, huffman, out, 0));
}

function writeString(s: string, huffman: boolean, out: Uint8Array, at: number, huffmanLength = -1): number {
  if (huffman) {
    at = encodeIntegerInto(huffmanLength >= 0 ? huffmanLength : huffmanEncodedLength(s), 7, 0x80, out, at);
    return huffmanEncodeInto(s, out, at);
  }
  at = encodeIntegerInto(s.length, 7, 0, out, at);
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}

// ---- decoder --------------------------------------------------------------------------------

/**
 * The decoded header list is larger than the limit (RFC 9113 §6.5.2
 * SETTINGS_MAX_HEADER_LIST_SIZE). The block was still processed to its end, so the dynamic
 * table stays in step with the peer's encoder: this is a stream error (431 or
 * RST_STREAM), not a compression error that must end the connection.
 */
export class HeaderListTooLargeError extends ParseError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super('hpack', 'header list', 0, `decoded header list exceeds ${limit} octets`);
  }
}

export interface HpackDecoderOptions {
  /**
   * The table size we allow the peer's encoder (our SETTINGS_HEADER_TABLE_SIZE,
   * RFC 9113 §6.5.2; RFC 7541 §4.2). Default 4096.
   */
  maxTableSize?: number;
  /**
   * Largest decoded header list in octets (name + value + 32 per field, RFC 9113 §6.5.2).
   * The HPACK-bomb defense: a few bytes that reference a large table entry again and again
   * would otherwise decode to megabytes. Default 64 KiB.
   */
  maxHeaderListSize?: number;
}

export class HpackDecoder {
  readonly table: DynamicTable;
  /** The limit the peer's size updates must respect (our SETTINGS_HEADER_TABLE_SIZE). */
  private maxTableSize: number;
  maxHeaderListSize: number;
  /**
   * RFC 7541 §4.2: after we lower the limit below the table's current maximum, the next
   * block MUST start with a size update. Holds the limit to check against, or -1.
   */
  private sizeUpdateRequired = -1;

  constructor(options: HpackDecoderOptions = {}) {
    this.maxTableSize = options.maxTableSize ?? DEFAULT_HEADER_TABLE_SIZE;
    this.maxHeaderListSize = options.maxHeaderListSize ?? 64 * 1024;
    this.table = new DynamicTable(this.maxTableSize);
  }

  /** Our SETTINGS_HEADER_TABLE_SIZE changed and was acknowledged. */
  setMaxTableSize(size: number): void {
    if (size < this.table.maxSize) this.sizeUpdateRequired = size;
    this.maxTableSize = size;
  }

  /** Decodes one complete header block (HEADERS/PUSH_PROMISE plus CONTINUATION fragments). */
  decode(block: Uint8Array): HeaderField[] {
    const r = new HpackReader(block);
    const fields: HeaderField[] = [];
    const table = this.table;
    let listSize = 0;
    const limit = this.maxHeaderListSize;
    let fieldSeen = false;
    const emit = (name: string, value: string, sensitive: boolean) => {
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      // Past the limit, keep decoding (to keep the table in step) but keep nothing.
      if (listSize <= limit) fields.push(sensitive ? { name, value, sensitive } : { name, value });
    };
    while (r.pos < block.length) {
      const at = r.pos;
      const b = block[at]!;
      if (b & 0x80) {
        // RFC 7541 §6.1 indexed header field.
        const [name, value] = this.lookup(r.integer(7), at);
        emit(name, value, false);
      } else if (b & 0x40) {
        // RFC 7541 §6.2.1 literal with incremental indexing.
        const index = r.integer(6);
        const name = index === 0 ? r.string() : this.lookup(index, at)[0];
        const value = r.string();
        table.add(name, value);
        emit(name, value, false);
      } else if (b & 0x20) {
        // RFC 7541 §6.3 dynamic table size update: only before the first field (§4.2).
        if (fieldSeen)
          throw new ParseError('hpack', 'size update', at, 'dynamic table size update after a header field');
        const size = r.integer(5);
        if (size > this.maxTableSize)
          throw new ParseError(
            'hpack',
            'size update',
            at,
            `size ${size} exceeds the limit ${this.maxTableSize}`,
          );
        if (this.sizeUpdateRequired >= 0 && size <= this.sizeUpdateRequired) this.sizeUpdateRequired = -1;
        table.setMaxSize(size);
        continue;
      } else {
        // RFC 7541 §6.2.2 without indexing (0000) and §6.2.3 never indexed (0001).
        const never = (b & 0x10) !== 0;
        const index = r.integer(4);
        const name = index === 0 ? r.string() : this.lookup(index, at)[0];
        const value = r.string();
        emit(name, value, never);
      }
      if (!fieldSeen) {
        fieldSeen = true;
        if (this.sizeUpdateRequired >= 0)
          throw new ParseError('hpack', 'size update', at, 'required dynamic table size update missing');
      }
    }
    if (listSize > limit) throw new HeaderListTooLargeError(listSize, limit);
    return fields;
  }

  private lookup(index: number, at: number): readonly [string, string] {
    if (index === 0) throw new ParseError('hpack', 'index', at, 'index 0 is not used (RFC 7541 §6.1)');
    if (index <= STATIC_TABLE_LENGTH) return STATIC_TABLE[index - 1] as readonly [string, string];
    const entry = this.table.get(index - STATIC_TABLE_LENGTH - 1);
    if (entry === undefined)
      throw new ParseError('hpack', 'index', at, `index ${index} is beyond the tables`);
    return entry;
  }
}

// ---- encoder --------------------------------------------------------------------------------

/** How one field is represented (RFC 7541 §6.2). */
export type IndexingChoice = 'index' | 'literal' | 'never';

export interface HpackEncoderOptions {
  /** Table size to use (≤ the peer's SETTINGS_HEADER_TABLE_SIZE). Default 4096. */
  maxTableSize?: number;
  /** Huffman-code strings: 'auto' when not longer (as RFC 7541 C.6 does; default), 'always' or 'never'. */
  huffman?: 'auto' | 'always' | 'never';
  /** Override the indexing policy; return undefined to use the default. */
  indexing?: (name: string, value: string) => IndexingChoice | undefined;
}

/**
 * Names whose values must never be indexed: credentials are what compression side
 * channels (CRIME-style, RFC 7541 §7.1) try to recover.
 */
const NEVER_INDEX = new Set(['authorization', 'proxy-authorization']);

export class HpackEncoder {
  readonly table: DynamicTable;
  /** name → value → insertion number of the newest entry with that field. */
  private readonly fieldIndex = new Map<string, Map<string, number>>();
  private readonly nameIndex = new Map<string, number>();
  private readonly huffman: 'auto' | 'always' | 'never';
  private readonly indexing: ((name: string, value: string) => IndexingChoice | undefined) | undefined;
  /** Our own cap on the table size (we may use less than the peer allows). */
  private readonly cap: number;
  /** RFC 7541 §4.2: smallest size since the last block, and the final one, to signal. */
  private pendingMin = -1;
  private pendingFinal = -1;
  private buf = new Uint8Array(1024);

  constructor(options: HpackEncoderOptions = {}) {
    this.cap = options.maxTableSize ?? DEFAULT_HEADER_TABLE_SIZE;
    this.huffman = options.huffman ?? 'auto';
    this.indexing = options.indexing;
    this.table = new DynamicTable(Math.min(this.cap, DEFAULT_HEADER_TABLE_SIZE), (name, value, ins) => {
      const byValue = this.fieldIndex.get(name);
      if (byValue?.get(value) === ins) {
        byValue.delete(value);
        if (byValue.size === 0) this.fieldIndex.delete(name);
      }
      if (this.nameIndex.get(name) === ins) this.nameIndex.delete(name);
    });
  }

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE arrived (RFC 9113 §6.5.2): we use up to our own
   * cap and announce the change at the start of the next block (RFC 7541 §4.2, §6.3).
   */
  setMaxTableSize(peerLimit: number): void {
    const size = Math.min(peerLimit, this.cap);
    this.pendingMin = this.pendingMin < 0 ? size : Math.min(this.pendingMin, size);
    this.pendingFinal = size;
  }

  encode(fields: readonly HeaderField[]): Uint8Array {
    // Worst case per field: 1 + 5 (index) + 2 × (5 + length) bytes; Huffman never expands
    // since it is only used when shorter... except with 'always', where a string can grow
    // to 30/8 of its length.
    let need = 24;
    const grow = this.huffman === 'always' ? 4 : 1;
    for (const f of fields) need += 16 + (f.name.length + f.value.length) * grow;
    if (this.buf.length < need) this.buf = new Uint8Array(Math.max(need, this.buf.length * 2));
    const out = this.buf;
    let at = 0;
    if (this.pendingMin >= 0) {
      if (this.pendingMin < this.pendingFinal) {
        at = encodeIntegerInto(this.pendingMin, 5, 0x20, out, at);
        this.table.setMaxSize(this.pendingMin);
      }
      at = encodeIntegerInto(this.pendingFinal, 5, 0x20, out, at);
      this.table.setMaxSize(this.pendingFinal);
      this.pendingMin = this.pendingFinal = -1;
    }
    for (const f of fields) at = this.field(f, out, at);
    return out.slice(0, at);
  }

  private choose(f: HeaderField): IndexingChoice {
    if (f.sensitive) return 'never';
    const custom = this.indexing?.(f.name, f.value);
    if (custom !== undefined) return custom;
    if (NEVER_INDEX.has(f.name)) return 'never';
    // Short cookies are guessable by brute force through the table (RFC 7541 §7.1.3).
    if (f.name === 'cookie' && f.value.length < 20) return 'never';
    // An entry taking most of the table would evict everything for one use.
    if (entrySize(f.name, f.value) > (this.table.maxSize * 3) / 4) return 'literal';
    return 'index';
  }

  /** Writes a string literal, Huffman-coded when the policy says so (RFC 7541 §5.2). */
  private string(s: string, out: Uint8Array, at: number): number {
    if (this.huffman === 'never' || s.length === 0) return writeString(s, false, out, at);
    const h = huffmanEncodedLength(s);
    if (this.huffman === 'always' || h <= s.length) return writeString(s, true, out, at, h);
    return writeString(s, false, out, at);
  }

  private field(f: HeaderField, out: Uint8Array, at: number): number {
    const { name, value } = f;
    const choice = this.choose(f);
    if (choice !== 'never') {
      // RFC 7541 §6.1: a full match in either table is one indexed field.
      const s = STATIC_FIELD_INDEX.get(name)?.get(value);
      if (s !== undefined) return encodeIntegerInto(s, 7, 0x80, out, at);
      const d = this.fieldIndex.get(name)?.get(value);
      if (d !== undefined) {
        const pos = this.table.positionOf(d);
        if (pos >= 0) return encodeIntegerInto(STATIC_TABLE_LENGTH + 1 + pos, 7, 0x80, out, at);
      }
    }
    let nameIdx = STATIC_NAME_INDEX.get(name) ?? 0;
    if (nameIdx === 0) {
      const d = this.nameIndex.get(name);
      if (d !== undefined) {
        const pos = this.table.positionOf(d);
        if (pos >= 0) nameIdx = STATIC_TABLE_LENGTH + 1 + pos;
      }
    }
    if (choice === 'index') at = encodeIntegerInto(nameIdx, 6, 0x40, out, at);
    else at = encodeIntegerInto(nameIdx, 4, choice === 'never' ? 0x10 : 0, out, at);
    if (nameIdx === 0) at = this.string(name, out, at);
    at = this.string(value, out, at);
    if (choice === 'index') {
      const ins = this.table.inserted;
      this.table.add(name, value);
      if (this.table.positionOf(ins) >= 0) {
        let byValue = this.fieldIndex.get(name);
        if (byValue === undefined) this.fieldIndex.set(name, (byValue = new Map()));
        byValue.set(value, ins);
        this.nameIndex.set(name, ins);
      }
    }
    return at;
  }
}
