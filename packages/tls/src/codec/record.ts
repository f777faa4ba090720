import { ByteWriter, ParseError } from '@stepwire/wire';
import { ContentType, parseFail, reader } from './common.ts';

/** RFC 8446 §5.1: a TLSPlaintext fragment MUST NOT exceed 2^14 bytes. */
export const MAX_PLAINTEXT = 1 << 14;
/** RFC 8446 §5.2: a TLSCiphertext encrypted_record MUST NOT exceed 2^14 + 256 bytes. */
export const MAX_CIPHERTEXT = MAX_PLAINTEXT + 256;
export const RECORD_HEADER_LENGTH = 5;

/** The five bytes in front of every record (RFC 8446 §5.1). */
export interface RecordHeader {
  type: number;
  legacyRecordVersion: number;
  length: number;
}

/** An unprotected record (RFC 8446 §5.1). */
export interface TLSPlaintext {
  type: number;
  /** 0x0301 in an initial ClientHello for compatibility, 0x0303 otherwise; ignored on receipt. */
  legacyRecordVersion: number;
  fragment: Uint8Array;
}

/** A protected record (RFC 8446 §5.2): opaque_type is always application_data (23). */
export interface TLSCiphertext {
  legacyRecordVersion: number;
  encryptedRecord: Uint8Array;
}

/** Content types a record may carry (RFC 8446 §5.1; anything else is unexpected_message). */
const KNOWN_TYPES = new Set<number>([
  ContentType.change_cipher_spec,
  ContentType.alert,
  ContentType.handshake,
  ContentType.application_data,
]);

export function decodeRecordHeader(bytes: Uint8Array, base = 0): RecordHeader {
  const r = reader(bytes, base);
  const type = r.u8('record.type');
  if (!KNOWN_TYPES.has(type)) r.fail('record.type', `unknown content type ${type}`, 0);
  const legacyRecordVersion = r.u16('record.legacy_record_version');
  // Only the major byte is checked: 0x03xx covers every SSL 3/TLS record; anything else is not TLS.
  if (legacyRecordVersion >> 8 !== 3) r.fail('record.legacy_record_version', 'not a TLS record', 1);
  const length = r.u16('record.length');
  // The ciphertext limit is the larger one; the per-kind limit is checked by the specific decoders.
  if (length > MAX_CIPHERTEXT) r.fail('record.length', `${length} exceeds 2^14+256 (record_overflow)`, 3);
  return { type, legacyRecordVersion, length };
}

export function encodeRecordHeader(h: RecordHeader): Uint8Array {
  return new ByteWriter(5).u8(h.type).u16(h.legacyRecordVersion).u16(h.length).finish().slice();
}

/** Decode exactly one unprotected record; the input must be the whole record. */
export function decodeTLSPlaintext(bytes: Uint8Array, base = 0): TLSPlaintext {
  const h = decodeRecordHeader(bytes, base);
  // RFC 8446 §5.1: length MUST NOT exceed 2^14; more is a record_overflow.
  if (h.length > MAX_PLAINTEXT)
    parseFail('record.length', base + 3, `${h.length} exceeds 2^14 (record_overflow)`);
  const r = reader(bytes, base);
  r.skip(RECORD_HEADER_LENGTH, 'record header');
  const fragment = r.copy(h.length, 'record.fragment');
  r.end('record');
  // RFC 8446 §5.1: zero-length fragments of handshake or alert type MUST NOT be sent.
  if (h.length === 0 && (h.type === ContentType.handshake || h.type === ContentType.alert)) {
    parseFail('record.length', base + 3, 'empty handshake or alert record');
  }
  return { type: h.type, legacyRecordVersion: h.legacyRecordVersion, fragment };
}

export function encodeTLSPlaintext(p: TLSPlaintext): Uint8Array {
  if (p.fragment.length > MAX_PLAINTEXT) throw new RangeError('TLSPlaintext fragment exceeds 2^14');
  const w = new ByteWriter(RECORD_HEADER_LENGTH + p.fragment.length);
  w.u8(p.type).u16(p.legacyRecordVersion).u16(p.fragment.length).bytes(p.fragment);
  return w.finish();
}

/** Decode exactly one protected record; the input must be the whole record. */
export function decodeTLSCiphertext(bytes: Uint8Array, base = 0): TLSCiphertext {
  const h = decodeRecordHeader(bytes, base);
  if (h.type !== ContentType.application_data) {
    parseFail('record.opaque_type', base, `protected records carry type 23, not ${h.type}`);
  }
  const r = reader(bytes, base);
  r.skip(RECORD_HEADER_LENGTH, 'record header');
  const encryptedRecord = r.copy(h.length, 'record.encrypted_record');
  r.end('record');
  return { legacyRecordVersion: h.legacyRecordVersion, encryptedRecord };
}

export function encodeTLSCiphertext(c: TLSCiphertext): Uint8Array {
  if (c.encryptedRecord.length > MAX_CIPHERTEXT) throw new RangeError('TLSCiphertext exceeds 2^14+256');
  const w = new ByteWriter(RECORD_HEADER_LENGTH + c.encryptedRecord.length);
  w.u8(ContentType.application_data).u16(c.legacyRecordVersion).u16(c.encryptedRecord.length);
  return w.bytes(c.encryptedRecord).finish();
}

/**
 * The plaintext inside a protected record (RFC 8446 §5.2): content, the real content
 * type, then any number of zero bytes of padding (§5.4).
 */
export interface TLSInnerPlaintext {
  content: Uint8Array;
  type: number;
  /** Number of zero bytes after the type. */
  zeros: number;
}

export function encodeTLSInnerPlaintext(p: TLSInnerPlaintext): Uint8Array {
  // RFC 8446 §5.4: the padded inner plaintext MUST NOT exceed 2^14 + 1 bytes.
  if (p.content.length + 1 + p.zeros > MAX_PLAINTEXT + 1)
    throw new RangeError('TLSInnerPlaintext exceeds 2^14+1');
  if (p.type === 0) throw new RangeError('inner content type 0 cannot be recovered');
  const out = new Uint8Array(p.content.length + 1 + p.zeros);
  out.set(p.content, 0);
  out[p.content.length] = p.type;
  return out;
}

/**
 * RFC 8446 §5.4: the type is the last non-zero byte; no non-zero byte at all is an
 * unexpected_message. More than 2^14+1 bytes is a record_overflow (§5.2).
 */
export function decodeTLSInnerPlaintext(bytes: Uint8Array, base = 0): TLSInnerPlaintext {
  if (bytes.length > MAX_PLAINTEXT + 1) {
    parseFail('TLSInnerPlaintext', base, `${bytes.length} bytes exceeds 2^14+1 (record_overflow)`);
  }
  let i = bytes.length - 1;
  while (i >= 0 && bytes[i] === 0) i--;
  if (i < 0) parseFail('TLSInnerPlaintext.type', base, 'no non-zero content type (all padding)');
  return { content: bytes.slice(0, i), type: bytes[i]!, zeros: bytes.length - 1 - i };
}

/**
 * Cuts a byte stream into whole records. The buffer never grows past one maximal
 * record plus one read: a header announcing an oversized record throws at once.
 *
 * The records returned are views, not copies: of the chunk passed in when no partial record
 * was waiting, else of a fresh buffer joining the two. They are for the caller to use
 * before its next push (the chunk's owner may reuse it after); only the incomplete tail is
 * copied and kept.
 */
export class RecordReader {
  private buf: Uint8Array = new Uint8Array(0);
  private consumed = 0;

  get buffered(): number {
    return this.buf.length;
  }

  /** Add stream bytes; returns every record now complete, each as header + body bytes. */
  push(chunk: Uint8Array): Uint8Array[] {
    const { records, error } = this.pushUntilError(chunk);
    if (error) throw error;
    return records;
  }

  /**
   * Like push, but the records complete before a bad header come back together with the
   * error, so a receiver handles them (and answers them) before it fails on the rest.
   */
  pushUntilError(chunk: Uint8Array): { records: Uint8Array[]; error?: ParseError } {
    let buf: Uint8Array;
    if (this.buf.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.buf.length + chunk.length);
      buf.set(this.buf, 0);
      buf.set(chunk, this.buf.length);
    }
    const out: Uint8Array[] = [];
    let at = 0;
    let error: ParseError | undefined;
    while (buf.length - at >= RECORD_HEADER_LENGTH) {
      // A ParseError (record_overflow, bad type) comes before waiting for an impossible body.
      let h: RecordHeader;
      try {
        h = decodeRecordHeader(buf.subarray(at, at + RECORD_HEADER_LENGTH), this.consumed + at);
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
        error = e;
        break;
      }
      const total = RECORD_HEADER_LENGTH + h.length;
      if (buf.length - at < total) break;
      out.push(buf.subarray(at, at + total));
      at += total;
    }
    this.consumed += at;
    // The incomplete tail outlives this call: a copy, since the chunk is not ours to keep.
    this.buf = at === buf.length ? new Uint8Array(0) : buf.slice(at);
    return error ? { records: out, error } : { records: out };
  }
}
