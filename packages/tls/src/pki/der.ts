/**
 * DER (ITU-T X.690 §10) reader and writer: the subset of ASN.1 that X.509 (RFC 5280),
 * PKCS#8 (RFC 5208/5958), SEC1 (RFC 5915) and PKCS#1 (RFC 8017) keys need.
 *
 * Two faces:
 * - a plain-data tree (`Asn1Node`) with `decodeAsn1`/`encodeAsn1`, the codec every
 *   property test exercises;
 * - `DerReader`, a cursor that reads one typed element at a time and names the field it
 *   reads, so a malformed certificate becomes a ParseError that says "validity.notAfter at
 *   byte 213: month 13". The X.509 parser is written against it.
 *
 * Every decoder is total: any input returns or throws ParseError (layer 'asn1'). Lengths
 * must be definite and minimal (DER, X.690 §10.1), nesting depth is capped, and every
 * length is checked against the bytes actually present before anything is allocated.
 */
import { ByteWriter, ParseError } from '@stepwire/wire';

export const ASN1_LAYER = 'asn1';

/** Nesting deeper than this is refused; real certificates nest about 10 levels. */
export const MAX_DEPTH = 64;
/** A single OID may not have more arcs than this (real ones have < 20). */
const MAX_OID_ARCS = 128;
/** Octets in one OID subidentifier: 2.25 UUID arcs (128 bits) need 19. */
const MAX_SUBIDENTIFIER_OCTETS = 24;
/** Tag numbers above this (high-tag form) are refused: nothing real comes close. */
const MAX_TAG_NUMBER = 0x0fff_ffff;

export type TagClass = 'universal' | 'application' | 'context' | 'private';
const CLASS_BITS: Record<TagClass, number> = {
  universal: 0x00,
  application: 0x40,
  context: 0x80,
  private: 0xc0,
};
const CLASS_OF = ['universal', 'application', 'context', 'private'] as const;

/** Universal tag numbers (X.680 §8.6). */
export const Tag = {
  BOOLEAN: 1,
  INTEGER: 2,
  BIT_STRING: 3,
  OCTET_STRING: 4,
  NULL: 5,
  OBJECT_IDENTIFIER: 6,
  UTF8String: 12,
  SEQUENCE: 16,
  SET: 17,
  PrintableString: 19,
  T61String: 20,
  IA5String: 22,
  UTCTime: 23,
  GeneralizedTime: 24,
  UniversalString: 28,
  BMPString: 30,
} as const;

/** The identifier octets of an element, decoded (X.690 §8.1.2). */
export interface TagInfo {
  cls: TagClass;
  constructed: boolean;
  number: number;
}

/** An ASN.1 value as a tree: primitives keep their contents, constructed values their children. */
export type Asn1Node =
  | { cls: TagClass; constructed: false; tagNumber: number; contents: Uint8Array }
  | { cls: TagClass; constructed: true; tagNumber: number; children: Asn1Node[] };

/** One TLV as read from the input: views into the input, plus where it sat. */
export interface Tlv {
  tag: TagInfo;
  /** Contents octets (a view). */
  contents: Uint8Array;
  /** The whole element, identifier and length included (a view): what a signature covers. */
  raw: Uint8Array;
  /** Absolute offset of the identifier octet in the outermost input. */
  offset: number;
  /** Absolute offset of the first contents octet. */
  contentsOffset: number;
}

function fail(field: string, offset: number, reason: string): never {
  throw new ParseError(ASN1_LAYER, field, offset, reason);
}

/**
 * A cursor over a sequence of DER elements. `base` is where `bytes` starts in the outermost
 * input, so errors point at the real byte; `depth` is how deep in the tree this reader sits.
 */
export class DerReader {
  private pos = 0;

  constructor(
    readonly bytes: Uint8Array,
    readonly base = 0,
    readonly depth = 0,
  ) {
    if (depth > MAX_DEPTH) fail('element', base, `nesting deeper than ${MAX_DEPTH}`);
  }

  get atEnd(): boolean {
    return this.pos >= this.bytes.length;
  }
  get offset(): number {
    return this.base + this.pos;
  }

  fail(field: string, reason: string, at = this.offset): never {
    fail(field, at, reason);
  }

  /** Throws unless every element was consumed. */
  end(field: string): void {
    if (!this.atEnd) fail(field, this.offset, `${this.bytes.length - this.pos} unexpected trailing byte(s)`);
  }

  /** The tag of the next element without consuming it, or undefined at the end. */
  peekTag(field = 'element'): TagInfo | undefined {
    if (this.atEnd) return undefined;
    const save = this.pos;
    try {
      return this.readTag(field);
    } finally {
      this.pos = save;
    }
  }

  private byte(field: string): number {
    const b = this.bytes[this.pos];
    if (b === undefined) fail(field, this.offset, 'unexpected end of input');
    this.pos++;
    return b;
  }

  // X.690 §8.1.2
  private readTag(field: string): TagInfo {
    const first = this.byte(field);
    const cls = CLASS_OF[first >> 6]!;
    const constructed = (first & 0x20) !== 0;
    let number = first & 0x1f;
    if (number === 0x1f) {
      // High-tag-number form, X.690 §8.1.2.4: base-128, first subsequent octet not 0x80 (§8.1.2.4.2 c).
      const start = this.offset;
      number = 0;
      for (;;) {
        const b = this.byte(`${field}.tag`);
        if (number === 0 && b === 0x80) fail(`${field}.tag`, start, 'non-minimal high tag number');
        number = number * 128 + (b & 0x7f);
        if (number > MAX_TAG_NUMBER) fail(`${field}.tag`, start, 'tag number too large');
        if ((b & 0x80) === 0) break;
      }
      // DER: numbers below 31 must use the low-tag form.
      if (number < 0x1f) fail(`${field}.tag`, start, `tag number ${number} in high-tag form`);
    }
    return { cls, constructed, number };
  }

  // X.690 §8.1.3 with the DER restrictions of §10.1.
  private readLength(field: string): number {
    const at = this.offset;
    const first = this.byte(`${field}.length`);
    if (first < 0x80) return first;
    if (first === 0x80) fail(`${field}.length`, at, 'indefinite length is not DER');
    const n = first & 0x7f;
    if (n > 4) fail(`${field}.length`, at, `length of ${n} octets is too long`);
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + this.byte(`${field}.length`);
    if (len < 0x80 || len < 256 ** (n - 1)) fail(`${field}.length`, at, 'non-minimal length encoding');
    return len;
  }

  /** Reads the next element, whatever it is. */
  next(field: string): Tlv {
    const offset = this.offset;
    const start = this.pos;
    if (this.atEnd) fail(field, offset, 'missing element');
    const tag = this.readTag(field);
    const len = this.readLength(field);
    if (len > this.bytes.length - this.pos) {
      fail(field, offset, `length ${len} exceeds the ${this.bytes.length - this.pos} byte(s) present`);
    }
    const contentsOffset = this.offset;
    const contents = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    return { tag, contents, raw: this.bytes.subarray(start, this.pos), offset, contentsOffset };
  }

  /** Reads the next element and checks its tag. */
  expect(field: string, cls: TagClass, number: number, constructed: boolean): Tlv {
    const tlv = this.next(field);
    const t = tlv.tag;
    if (t.cls !== cls || t.number !== number || t.constructed !== constructed) {
      fail(
        field,
        tlv.offset,
        `expected ${describeTag({ cls, number, constructed })}, found ${describeTag(t)}`,
      );
    }
    return tlv;
  }

  private universal(field: string, number: number, constructed = false): Tlv {
    return this.expect(field, 'universal', number, constructed);
  }

  /** A reader over the contents of a constructed element. */
  childReader(tlv: Tlv): DerReader {
    return new DerReader(tlv.contents, tlv.contentsOffset, this.depth + 1);
  }

  sequence(field: string): DerReader {
    return this.childReader(this.universal(field, Tag.SEQUENCE, true));
  }
  /** A SEQUENCE, returned with its raw bytes (e.g. tbsCertificate, which a signature covers). */
  sequenceTlv(field: string): { reader: DerReader; tlv: Tlv } {
    const tlv = this.universal(field, Tag.SEQUENCE, true);
    return { reader: this.childReader(tlv), tlv };
  }
  set(field: string): DerReader {
    return this.childReader(this.universal(field, Tag.SET, true));
  }

  /** `[n] EXPLICIT`, if the next element is that tag; undefined otherwise. */
  optionalExplicit(n: number, field: string): DerReader | undefined {
    const t = this.peekTag(field);
    if (t?.cls !== 'context' || t.number !== n) return undefined;
    const tlv = this.expect(field, 'context', n, true);
    return this.childReader(tlv);
  }
  /** `[n] IMPLICIT` (primitive or constructed as the caller says), if next; else undefined. */
  optionalImplicit(n: number, field: string, constructed: boolean): Tlv | undefined {
    const t = this.peekTag(field);
    if (t?.cls !== 'context' || t.number !== n) return undefined;
    return this.expect(field, 'context', n, constructed);
  }
  /** True (without consuming) when the next element has this universal tag. */
  nextIs(number: number, cls: TagClass = 'universal'): boolean {
    const t = this.peekTag();
    return t !== undefined && t.cls === cls && t.number === number;
  }

  boolean(field: string): boolean {
    const tlv = this.universal(field, Tag.BOOLEAN);
    return decodeBooleanContents(tlv.contents, field, tlv.contentsOffset);
  }
  integer(field: string): bigint {
    const tlv = this.universal(field, Tag.INTEGER);
    return decodeIntegerContents(tlv.contents, field, tlv.contentsOffset);
  }
  /** A non-negative INTEGER as unsigned big-endian magnitude (no sign octet), e.g. an RSA modulus. */
  unsignedIntegerBytes(field: string): Uint8Array {
    const tlv = this.universal(field, Tag.INTEGER);
    checkIntegerContents(tlv.contents, field, tlv.contentsOffset);
    if ((tlv.contents[0]! & 0x80) !== 0) fail(field, tlv.contentsOffset, 'negative where unsigned expected');
    return tlv.contents[0] === 0 && tlv.contents.length > 1 ? tlv.contents.slice(1) : tlv.contents.slice();
  }
  /** An INTEGER that must fit a small range (versions, path lengths). */
  smallInteger(field: string, min: number, max: number): number {
    const at = this.offset;
    const v = this.integer(field);
    if (v < BigInt(min) || v > BigInt(max)) fail(field, at, `${v} outside ${min}..${max}`);
    return Number(v);
  }
  null(field: string): void {
    const tlv = this.universal(field, Tag.NULL);
    if (tlv.contents.length !== 0) fail(field, tlv.contentsOffset, 'NULL with contents');
  }
  oid(field: string): string {
    const tlv = this.universal(field, Tag.OBJECT_IDENTIFIER);
    return decodeOidContents(tlv.contents, field, tlv.contentsOffset);
  }
  bitString(field: string): BitString {
    const tlv = this.universal(field, Tag.BIT_STRING);
    return decodeBitStringContents(tlv.contents, field, tlv.contentsOffset);
  }
  /** A BIT STRING that must be whole octets (keys, signatures). */
  bitStringBytes(field: string): Uint8Array {
    const at = this.offset;
    const bs = this.bitString(field);
    if (bs.unusedBits !== 0) fail(field, at, `${bs.unusedBits} unused bit(s) where whole octets expected`);
    return bs.bytes;
  }
  octetString(field: string): Uint8Array {
    return this.universal(field, Tag.OCTET_STRING).contents.slice();
  }
  /** Any of the string types X.509 names use, decoded to a JS string. */
  string(field: string): { type: StringType; value: string } {
    const tlv = this.next(field);
    const type = STRING_TYPE_OF[tlv.tag.number];
    if (tlv.tag.cls !== 'universal' || tlv.tag.constructed || type === undefined) {
      fail(field, tlv.offset, `expected a string, found ${describeTag(tlv.tag)}`);
    }
    return { type, value: decodeStringContents(type, tlv.contents, field, tlv.contentsOffset) };
  }
  /** UTCTime or GeneralizedTime (RFC 5280 §4.1.2.5). */
  time(field: string): Date {
    const tlv = this.next(field);
    const t = tlv.tag;
    if (t.cls === 'universal' && !t.constructed && t.number === Tag.UTCTime) {
      return decodeUtcTime(tlv.contents, field, tlv.contentsOffset);
    }
    if (t.cls === 'universal' && !t.constructed && t.number === Tag.GeneralizedTime) {
      return decodeGeneralizedTime(tlv.contents, field, tlv.contentsOffset);
    }
    return fail(field, tlv.offset, `expected UTCTime or GeneralizedTime, found ${describeTag(t)}`);
  }
}

export function describeTag(t: TagInfo): string {
  if (t.cls === 'universal') {
    const name = Object.entries(Tag).find(([, n]) => n === t.number)?.[0];
    return name ?? `UNIVERSAL ${t.number}${t.constructed ? ' (constructed)' : ''}`;
  }
  return `[${t.cls === 'context' ? '' : `${t.cls.toUpperCase()} `}${t.number}]${t.constructed ? ' (constructed)' : ''}`;
}

// ---------- contents decoders (X.690 §8 with DER rules from §10/§11) ----------

export interface BitString {
  bytes: Uint8Array;
  /** 0..7 unused bits in the last octet. */
  unusedBits: number;
}

// X.690 §11.1: DER encodes TRUE as 0xFF.
function decodeBooleanContents(c: Uint8Array, field: string, at: number): boolean {
  if (c.length !== 1) fail(field, at, `BOOLEAN of ${c.length} octets`);
  if (c[0] === 0x00) return false;
  if (c[0] === 0xff) return true;
  return fail(field, at, `BOOLEAN 0x${c[0]!.toString(16)} is not DER`);
}

// X.690 §8.3.2: the first nine bits may not all be equal (minimal two's complement).
function checkIntegerContents(c: Uint8Array, field: string, at: number): void {
  if (c.length === 0) fail(field, at, 'empty INTEGER');
  if (c.length > 1) {
    const a = c[0]!;
    const b = c[1]! & 0x80;
    if ((a === 0x00 && b === 0) || (a === 0xff && b !== 0)) fail(field, at, 'non-minimal INTEGER');
  }
}

/** Unsigned big-endian bytes to a bigint, in linear time (a shift loop is quadratic on long input). */
export function bytesToBigInt(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`);
}

function decodeIntegerContents(c: Uint8Array, field: string, at: number): bigint {
  checkIntegerContents(c, field, at);
  let v = bytesToBigInt(c);
  if ((c[0]! & 0x80) !== 0) v -= 1n << BigInt(c.length * 8);
  return v;
}

function decodeBitStringContents(c: Uint8Array, field: string, at: number): BitString {
  if (c.length === 0) fail(field, at, 'BIT STRING without the unused-bits octet');
  const unusedBits = c[0]!;
  if (unusedBits > 7) fail(field, at, `${unusedBits} unused bits`);
  if (c.length === 1 && unusedBits !== 0) fail(field, at, 'empty BIT STRING with unused bits');
  const bytes = c.slice(1);
  // X.690 §11.2.1: DER sets unused bits to zero.
  if (unusedBits !== 0 && (bytes[bytes.length - 1]! & ((1 << unusedBits) - 1)) !== 0) {
    fail(field, at, 'unused bits are not zero');
  }
  return { bytes, unusedBits };
}

// X.690 §8.19
function decodeOidContents(c: Uint8Array, field: string, at: number): string {
  if (c.length === 0) fail(field, at, 'empty OBJECT IDENTIFIER');
  const subs: bigint[] = [];
  let v = 0n;
  let started = false;
  let octets = 0;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (!started && b === 0x80) fail(field, at + i, 'non-minimal OID subidentifier');
    if (!started) octets = 0;
    if (++octets > MAX_SUBIDENTIFIER_OCTETS) fail(field, at + i, 'OID subidentifier too long');
    started = true;
    v = (v << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      subs.push(v);
      if (subs.length > MAX_OID_ARCS) fail(field, at, 'too many OID arcs');
      v = 0n;
      started = false;
    }
  }
  if (started) fail(field, at + c.length - 1, 'OID ends inside a subidentifier');
  const first = subs[0]!;
  // §8.19.4: the first subidentifier packs the first two arcs as 40*X + Y.
  const arcs = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...arcs, ...subs.slice(1)].join('.');
}

export type StringType =
  | 'utf8String'
  | 'printableString'
  | 'ia5String'
  | 't61String'
  | 'bmpString'
  | 'universalString';

const STRING_TYPE_OF: Record<number, StringType> = {
  [Tag.UTF8String]: 'utf8String',
  [Tag.PrintableString]: 'printableString',
  [Tag.IA5String]: 'ia5String',
  [Tag.T61String]: 't61String',
  [Tag.BMPString]: 'bmpString',
  [Tag.UniversalString]: 'universalString',
};
const STRING_TAG: Record<StringType, number> = {
  utf8String: Tag.UTF8String,
  printableString: Tag.PrintableString,
  ia5String: Tag.IA5String,
  t61String: Tag.T61String,
  bmpString: Tag.BMPString,
  universalString: Tag.UniversalString,
};

// X.680 §41.4 (PrintableString character set).
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeStringContents(type: StringType, c: Uint8Array, field: string, at: number): string {
  switch (type) {
    case 'utf8String':
      try {
        return utf8Fatal.decode(c);
      } catch {
        return fail(field, at, 'invalid UTF-8');
      }
    case 'printableString':
    case 'ia5String': {
      let s = '';
      for (let i = 0; i < c.length; i++) {
        const b = c[i]!;
        if (b > 0x7f) fail(field, at + i, `non-ASCII octet 0x${b.toString(16)} in ${type}`);
        s += String.fromCharCode(b);
      }
      if (type === 'printableString' && !PRINTABLE.test(s))
        fail(field, at, 'character outside PrintableString');
      return s;
    }
    case 't61String': {
      // Treated as Latin-1, as most implementations do in practice.
      let s = '';
      for (const b of c) s += String.fromCharCode(b);
      return s;
    }
    case 'bmpString': {
      if (c.length % 2 !== 0) fail(field, at, 'BMPString of odd length');
      let s = '';
      for (let i = 0; i < c.length; i += 2) s += String.fromCharCode((c[i]! << 8) | c[i + 1]!);
      return s;
    }
    case 'universalString': {
      if (c.length % 4 !== 0) fail(field, at, 'UniversalString length not a multiple of 4');
      let s = '';
      for (let i = 0; i < c.length; i += 4) {
        const cp = ((c[i]! << 24) | (c[i + 1]! << 16) | (c[i + 2]! << 8) | c[i + 3]!) >>> 0;
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(field, at + i, 'invalid code point');
        s += String.fromCodePoint(cp);
      }
      return s;
    }
  }
}

function digits(c: Uint8Array, from: number, n: number, field: string, at: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const b = c[i];
    if (b === undefined || b < 0x30 || b > 0x39) fail(field, at + i, 'expected a digit');
    v = v * 10 + (b - 0x30);
  }
  return v;
}

function makeDate(
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
  field: string,
  at: number,
): Date {
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const daysIn = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1] ?? 0;
  if (mo < 1 || mo > 12) fail(field, at, `month ${mo}`);
  if (d < 1 || d > daysIn) fail(field, at, `day ${d} of month ${mo}`);
  if (h > 23 || mi > 59 || s > 59) fail(field, at, `time ${h}:${mi}:${s}`);
  const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, s));
  date.setUTCFullYear(y);
  return date;
}

// RFC 5280 §4.1.2.5.1: YYMMDDHHMMSSZ; YY >= 50 is 19YY, else 20YY. Seconds and 'Z' are required.
function decodeUtcTime(c: Uint8Array, field: string, at: number): Date {
  if (c.length !== 13 || c[12] !== 0x5a) fail(field, at, 'UTCTime is not YYMMDDHHMMSSZ');
  const yy = digits(c, 0, 2, field, at);
  const y = yy >= 50 ? 1900 + yy : 2000 + yy;
  return makeDate(
    y,
    digits(c, 2, 2, field, at),
    digits(c, 4, 2, field, at),
    digits(c, 6, 2, field, at),
    digits(c, 8, 2, field, at),
    digits(c, 10, 2, field, at),
    field,
    at,
  );
}

// RFC 5280 §4.1.2.5.2: YYYYMMDDHHMMSSZ, no fractional seconds.
function decodeGeneralizedTime(c: Uint8Array, field: string, at: number): Date {
  if (c.length !== 15 || c[14] !== 0x5a) fail(field, at, 'GeneralizedTime is not YYYYMMDDHHMMSSZ');
  return makeDate(
    digits(c, 0, 4, field, at),
    digits(c, 4, 2, field, at),
    digits(c, 6, 2, field, at),
    digits(c, 8, 2, field, at),
    digits(c, 10, 2, field, at),
    digits(c, 12, 2, field, at),
    field,
    at,
  );
}

// ---------- the tree codec ----------

/** Decodes exactly one DER element (no trailing bytes) into a tree. */
export function decodeAsn1(bytes: Uint8Array): Asn1Node {
  const r = new DerReader(bytes);
  const node = readNode(r, 'element');
  r.end('element');
  return node;
}

function readNode(r: DerReader, field: string): Asn1Node {
  const tlv = r.next(field);
  const { cls, constructed, number } = tlv.tag;
  if (!constructed) {
    // X.690 §8.9.1/§8.11.1 and §10.2: SEQUENCE and SET are always constructed.
    if (cls === 'universal' && (number === Tag.SEQUENCE || number === Tag.SET)) {
      fail(field, tlv.offset, `primitive ${number === Tag.SEQUENCE ? 'SEQUENCE' : 'SET'}`);
    }
    return { cls, constructed: false, tagNumber: number, contents: tlv.contents.slice() };
  }
  const child = r.childReader(tlv);
  const children: Asn1Node[] = [];
  let i = 0;
  while (!child.atEnd) children.push(readNode(child, `${field}[${i++}]`));
  return { cls, constructed: true, tagNumber: number, children };
}

/** Encodes a tree as DER. */
export function encodeAsn1(node: Asn1Node): Uint8Array {
  const w = new ByteWriter(256);
  writeNode(w, node);
  return w.finish().slice();
}

function writeNode(w: ByteWriter, node: Asn1Node): void {
  const contents = node.constructed ? encodeChildren(node.children) : node.contents;
  writeHeader(w, { cls: node.cls, constructed: node.constructed, number: node.tagNumber }, contents.length);
  w.bytes(contents);
}

function encodeChildren(children: Asn1Node[]): Uint8Array {
  const w = new ByteWriter(256);
  for (const c of children) writeNode(w, c);
  return w.finish();
}

function writeHeader(w: ByteWriter, tag: TagInfo, length: number): void {
  const lead = CLASS_BITS[tag.cls] | (tag.constructed ? 0x20 : 0);
  if (!Number.isInteger(tag.number) || tag.number < 0 || tag.number > MAX_TAG_NUMBER) {
    throw new RangeError(`tag number ${tag.number} out of range`);
  }
  if (tag.number < 0x1f) {
    w.u8(lead | tag.number);
  } else {
    w.u8(lead | 0x1f);
    const groups: number[] = [];
    let n = tag.number;
    do {
      groups.unshift(n & 0x7f);
      n = Math.floor(n / 128);
    } while (n > 0);
    groups.forEach((g, i) => {
      w.u8(i < groups.length - 1 ? g | 0x80 : g);
    });
  }
  if (length < 0x80) {
    w.u8(length);
  } else {
    const octets: number[] = [];
    let n = length;
    while (n > 0) {
      octets.unshift(n & 0xff);
      n = Math.floor(n / 256);
    }
    w.u8(0x80 | octets.length);
    for (const o of octets) w.u8(o);
  }
}

/** One TLV from a tag and contents. */
export function tlv(tag: TagInfo, contents: Uint8Array): Uint8Array {
  const w = new ByteWriter(contents.length + 8);
  writeHeader(w, tag, contents.length);
  w.bytes(contents);
  return w.finish().slice();
}

// ---------- the writer: build DER bytes directly ----------

function cat(parts: Uint8Array[]): Uint8Array {
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

const universal = (number: number, constructed: boolean): TagInfo => ({
  cls: 'universal',
  constructed,
  number,
});

/**
 * DER builders. Each returns a complete element's bytes, so they nest:
 * `der.sequence(der.integer(1n), der.oid('1.2.840.10045.2.1'))`.
 */
export const der = {
  boolean(v: boolean): Uint8Array {
    return tlv(universal(Tag.BOOLEAN, false), Uint8Array.of(v ? 0xff : 0x00));
  },
  integer(v: bigint | number): Uint8Array {
    return tlv(universal(Tag.INTEGER, false), encodeIntegerContents(BigInt(v)));
  },
  /** A non-negative INTEGER from an unsigned big-endian magnitude (adds the sign octet as needed). */
  unsignedInteger(magnitude: Uint8Array): Uint8Array {
    let i = 0;
    while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
    const m = magnitude.subarray(i);
    const c = m.length === 0 ? Uint8Array.of(0) : (m[0]! & 0x80) !== 0 ? cat([Uint8Array.of(0), m]) : m;
    return tlv(universal(Tag.INTEGER, false), c);
  },
  bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
    if (unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
      throw new RangeError(`bad unused bits ${unusedBits}`);
    }
    const c = cat([Uint8Array.of(unusedBits), bytes]);
    if (unusedBits) c[c.length - 1]! &= ~((1 << unusedBits) - 1) & 0xff;
    return tlv(universal(Tag.BIT_STRING, false), c);
  },
  octetString(bytes: Uint8Array): Uint8Array {
    return tlv(universal(Tag.OCTET_STRING, false), bytes);
  },
  null(): Uint8Array {
    return Uint8Array.of(0x05, 0x00);
  },
  oid(dotted: string): Uint8Array {
    return tlv(universal(Tag.OBJECT_IDENTIFIER, false), encodeOidContents(dotted));
  },
  string(type: StringType, value: string): Uint8Array {
    return tlv(universal(STRING_TAG[type], false), encodeStringContents(type, value));
  },
  utf8String(v: string): Uint8Array {
    return der.string('utf8String', v);
  },
  printableString(v: string): Uint8Array {
    return der.string('printableString', v);
  },
  ia5String(v: string): Uint8Array {
    return der.string('ia5String', v);
  },
  utcTime(d: Date): Uint8Array {
    const y = d.getUTCFullYear();
    if (y < 1950 || y > 2049) throw new RangeError(`UTCTime cannot carry year ${y}`);
    return tlv(universal(Tag.UTCTime, false), ascii(`${pad(y % 100, 2)}${timeTail(d)}`));
  },
  generalizedTime(d: Date): Uint8Array {
    const y = d.getUTCFullYear();
    if (y < 0 || y > 9999) throw new RangeError(`GeneralizedTime cannot carry year ${y}`);
    return tlv(universal(Tag.GeneralizedTime, false), ascii(`${pad(y, 4)}${timeTail(d)}`));
  },
  /** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
  time(d: Date): Uint8Array {
    const y = d.getUTCFullYear();
    return y >= 1950 && y <= 2049 ? der.utcTime(d) : der.generalizedTime(d);
  },
  sequence(...items: Uint8Array[]): Uint8Array {
    return tlv(universal(Tag.SEQUENCE, true), cat(items));
  },
  /** SET OF, with elements in DER order (X.690 §11.6: sorted by their encodings). */
  setOf(...items: Uint8Array[]): Uint8Array {
    return tlv(universal(Tag.SET, true), cat([...items].sort(compareBytes)));
  },
  /** `[n] EXPLICIT inner`. */
  explicit(n: number, inner: Uint8Array): Uint8Array {
    return tlv({ cls: 'context', constructed: true, number: n }, inner);
  },
  /** `[n] IMPLICIT` over primitive contents. */
  implicit(n: number, contents: Uint8Array, constructed = false): Uint8Array {
    return tlv({ cls: 'context', constructed, number: n }, contents);
  },
  /** Concatenation, for building SEQUENCE contents in pieces. */
  concat(...items: Uint8Array[]): Uint8Array {
    return cat(items);
  },
};

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function pad(n: number, w: number): string {
  return String(n).padStart(w, '0');
}
function timeTail(d: Date): string {
  return `${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}Z`;
}
function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function encodeIntegerContents(v: bigint): Uint8Array {
  // Minimal two's complement: grow until the top bit of the first octet matches the sign.
  const bytes: number[] = [];
  let x = v;
  for (;;) {
    const b = Number(x & 0xffn);
    bytes.unshift(b);
    x >>= 8n;
    if ((x === 0n && (b & 0x80) === 0) || (x === -1n && (b & 0x80) !== 0)) break;
  }
  return Uint8Array.from(bytes);
}

export function encodeOidContents(dotted: string): Uint8Array {
  if (!/^\d+(\.\d+)+$/.test(dotted)) throw new RangeError(`not a dotted OID: ${dotted}`);
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const [a, b] = arcs as [bigint, bigint];
  if (a > 2n || (a < 2n && b >= 40n)) throw new RangeError(`invalid OID arcs ${a}.${b}`);
  const subs = [a * 40n + b, ...arcs.slice(2)];
  const out: number[] = [];
  for (const s of subs) {
    const groups: number[] = [];
    let x = s;
    do {
      groups.unshift(Number(x & 0x7fn));
      x >>= 7n;
    } while (x > 0n);
    groups.forEach((g, i) => {
      out.push(i < groups.length - 1 ? g | 0x80 : g);
    });
  }
  return Uint8Array.from(out);
}

function encodeStringContents(type: StringType, v: string): Uint8Array {
  switch (type) {
    case 'utf8String':
      return new TextEncoder().encode(v);
    case 'printableString':
    case 'ia5String':
      if (!/^[\x00-\x7f]*$/.test(v) || (type === 'printableString' && !PRINTABLE.test(v))) {
        throw new RangeError(`${JSON.stringify(v)} does not fit ${type}`);
      }
      return ascii(v);
    case 't61String': {
      if (!/^[\x00-\xff]*$/.test(v)) throw new RangeError('T61String limited to Latin-1 here');
      return ascii(v);
    }
    case 'bmpString': {
      const out = new Uint8Array(v.length * 2);
      for (let i = 0; i < v.length; i++) {
        out[2 * i] = v.charCodeAt(i) >> 8;
        out[2 * i + 1] = v.charCodeAt(i) & 0xff;
      }
      return out;
    }
    case 'universalString': {
      const cps = [...v].map((ch) => ch.codePointAt(0)!);
      const out = new Uint8Array(cps.length * 4);
      const view = new DataView(out.buffer);
      cps.forEach((cp, i) => {
        view.setUint32(i * 4, cp);
      });
      return out;
    }
  }
}

/** Decodes a DER INTEGER element (whole input). */
export function decodeInteger(bytes: Uint8Array): bigint {
  const r = new DerReader(bytes);
  const v = r.integer('integer');
  r.end('integer');
  return v;
}
/** Decodes a DER OBJECT IDENTIFIER element (whole input) to its dotted form. */
export function decodeOid(bytes: Uint8Array): string {
  const r = new DerReader(bytes);
  const v = r.oid('oid');
  r.end('oid');
  return v;
}
