/**
 * Record protection (RFC 8446 §5.2-§5.5): one RecordProtection per direction and epoch,
 * owning the AEAD key, the static IV and the 64-bit sequence number.
 */
import { AlertDescription, TlsAlertError } from './codec/alert.ts';
import { ContentType } from './codec/common.ts';
import { MAX_CIPHERTEXT, MAX_PLAINTEXT, RECORD_HEADER_LENGTH } from './codec/record.ts';
import { AEAD_TAG_LENGTH, type Aead, type CryptoProvider } from './crypto/provider.ts';
import { type CipherSuiteParams, trafficKeys } from './keyschedule.ts';

/**
 * RFC 8446 §5.5: AES-GCM keys should protect at most 2^24.5 full-size records; past that a
 * KeyUpdate is due. ChaCha20-Poly1305's limit exceeds the sequence space.
 */
const AEAD_RECORD_LIMIT = {
  AES_128_GCM: 23_726_566,
  AES_256_GCM: 23_726_566,
  CHACHA20_POLY1305: Infinity,
} as const;

export interface OpenedRecord {
  type: number;
  content: Uint8Array;
}

/** A full-size protected record: header, 2^14 bytes, the type byte and the tag. */
const FULL_RECORD = RECORD_HEADER_LENGTH + MAX_PLAINTEXT + 1 + AEAD_TAG_LENGTH;
/** Records of at least this size are sealed into a shared slab (see RecordProtection.take). */
const SLAB_THRESHOLD = 4096;
/** Full-size records per slab: a 64 KiB write is four of them. */
const SLAB_RECORDS = 4;
/** The one-byte trailer per content type (RFC 8446 §5.2 TLSInnerPlaintext.type), made once. */
const TYPE_BYTE: Uint8Array[] = Array.from({ length: 256 }, (_, t) => Uint8Array.of(t));

export class RecordProtection {
  private readonly aead: Aead;
  private readonly iv: Uint8Array;
  /** The per-record nonce, rewritten in place for each record (its first four bytes never change). */
  private readonly nonceBuffer: Uint8Array;
  /**
   * Large records are cut from one allocation, one after the other, so the records of one big
   * write lie side by side in memory and the socket hands them to the transport as one buffer
   * without copying them (TlsSocket's output). Bytes handed out are never written again.
   */
  private slab: Uint8Array = new Uint8Array(0);
  private slabAt = 0;
  private lastRecordSize = 0;
  // The 64-bit sequence number as two u32 halves: cheap to XOR into the nonce, exact to 2^64.
  private seqHi: number;
  private seqLo: number;
  private exhausted = false;
  private count = 0;

  /**
   * @param trafficSecret the traffic secret of this direction and epoch; key and IV are derived from it (§7.3).
   * @param startSequence for tests of sequence exhaustion; records start at 0 (§5.3).
   */
  constructor(
    readonly crypto: CryptoProvider,
    readonly suite: CipherSuiteParams,
    trafficSecret: Uint8Array,
    startSequence = 0n,
  ) {
    const { key, iv } = trafficKeys(crypto, suite, trafficSecret);
    this.aead = crypto.aead(suite.aead, key);
    this.iv = iv;
    this.nonceBuffer = iv.slice();
    this.seqHi = Number(startSequence >> 32n);
    this.seqLo = Number(startSequence & 0xffffffffn);
  }

  get sequenceNumber(): bigint {
    return (BigInt(this.seqHi) << 32n) | BigInt(this.seqLo);
  }

  /** Records protected (or opened) with this key so far. */
  get recordsProcessed(): number {
    return this.count;
  }

  /** RFC 8446 §5.5: true once this key has protected as many records as it safely can. */
  get keyUpdateDue(): boolean {
    return this.count >= AEAD_RECORD_LIMIT[this.suite.aead] || this.seqHi === 0xffffffff;
  }

  /** The per-record nonce: the IV XOR the sequence number left-padded to iv_length (RFC 8446 §5.3). */
  nonce(): Uint8Array {
    return this.nextNonce().slice();
  }

  /** The nonce of the next record, written into nonceBuffer (the AEAD reads it during one call only). */
  private nextNonce(): Uint8Array {
    if (this.exhausted) {
      // RFC 8446 §5.3: a sequence number must not wrap; the connection must rekey or close.
      throw new TlsAlertError(
        AlertDescription.internal_error,
        'sequence number space exhausted without a KeyUpdate',
      );
    }
    const n = this.nonceBuffer;
    const iv = this.iv;
    // iv_length is 12 for every TLS 1.3 AEAD (RFC 8446 §5.3): the sequence number covers bytes 4..11.
    const hi = this.seqHi;
    const lo = this.seqLo;
    n[4] = (iv[4] as number) ^ (hi >>> 24);
    n[5] = (iv[5] as number) ^ ((hi >>> 16) & 0xff);
    n[6] = (iv[6] as number) ^ ((hi >>> 8) & 0xff);
    n[7] = (iv[7] as number) ^ (hi & 0xff);
    n[8] = (iv[8] as number) ^ (lo >>> 24);
    n[9] = (iv[9] as number) ^ ((lo >>> 16) & 0xff);
    n[10] = (iv[10] as number) ^ ((lo >>> 8) & 0xff);
    n[11] = (iv[11] as number) ^ (lo & 0xff);
    return n;
  }

  private advance(): void {
    this.count++;
    if (this.seqLo === 0xffffffff) {
      this.seqLo = 0;
      if (this.seqHi === 0xffffffff) this.exhausted = true;
      else this.seqHi++;
    } else this.seqLo++;
  }

  /**
   * Protect one record (RFC 8446 §5.2): TLSInnerPlaintext = content || type || zeros,
   * sealed with the record header as additional data. Returns the whole TLSCiphertext.
   */
  seal(type: number, content: Uint8Array, padding = 0): Uint8Array {
    const innerLength = content.length + 1 + padding;
    // RFC 8446 §5.4: the inner plaintext, padding included, MUST NOT exceed 2^14 + 1 bytes.
    if (innerLength > MAX_PLAINTEXT + 1)
      throw new RangeError(`record of ${innerLength} bytes exceeds 2^14+1`);
    const nonce = this.nextNonce();
    const length = innerLength + AEAD_TAG_LENGTH;
    const out = this.take(RECORD_HEADER_LENGTH + length);
    // opaque_type application_data, legacy_record_version 0x0303 (RFC 8446 §5.2).
    out[0] = ContentType.application_data;
    out[1] = 3;
    out[2] = 3;
    out[3] = length >> 8;
    out[4] = length & 0xff;
    const header = out.subarray(0, RECORD_HEADER_LENGTH);
    const trailer = padding === 0 ? (TYPE_BYTE[type] ?? Uint8Array.of(type)) : typeAndZeros(type, padding);
    if (this.aead.sealInto) {
      // Straight into the record: no inner-plaintext copy, no ciphertext copy.
      this.aead.sealInto(nonce, header, content, trailer, out, RECORD_HEADER_LENGTH);
    } else {
      const inner = new Uint8Array(innerLength);
      inner.set(content, 0);
      inner.set(trailer, content.length);
      out.set(this.aead.seal(nonce, header, inner), RECORD_HEADER_LENGTH);
    }
    this.advance();
    return out;
  }

  /**
   * `n` bytes for a record. Small records get their own allocation; large ones are cut from a
   * slab with room for SLAB_RECORDS full records, so one large write's records are contiguous
   * (and a connection that sends small records holds no slab).
   */
  private take(n: number): Uint8Array {
    // A record shorter than the last one ends a run (the tail of a large write): after it the
    // slab is let go, so a connection that has gone quiet does not hold its unused rest.
    const endsRun = n < this.lastRecordSize;
    this.lastRecordSize = n;
    if (endsRun) {
      const room = this.slab.length - this.slabAt;
      const tail = room >= n ? this.slab.subarray(this.slabAt, this.slabAt + n) : new Uint8Array(n);
      this.slab = new Uint8Array(0);
      this.slabAt = 0;
      return tail;
    }
    if (n < SLAB_THRESHOLD && this.slab.length - this.slabAt < n) return new Uint8Array(n);
    if (this.slab.length - this.slabAt < n) {
      // Not zero-filled: every byte handed out is written by seal (header, sealed body, tag)
      // before the record leaves, and zeroing 64 KiB per four records showed in profiles.
      this.slab = uninitialized(Math.max(n, FULL_RECORD * SLAB_RECORDS));
      this.slabAt = 0;
    }
    const out = this.slab.subarray(this.slabAt, this.slabAt + n);
    this.slabAt += n;
    if (this.slab.length - this.slabAt < SLAB_THRESHOLD) {
      // Nothing large fits in what is left: let the slab go with its last record.
      this.slab = new Uint8Array(0);
      this.slabAt = 0;
    }
    return out;
  }

  /**
   * Deprotect one whole record (header + encrypted_record). Failures are the alerts
   * RFC 8446 §5.2 names: bad_record_mac, record_overflow, unexpected_message (all padding).
   */
  open(record: Uint8Array): OpenedRecord {
    if (record.length < RECORD_HEADER_LENGTH)
      throw new TlsAlertError(AlertDescription.decode_error, 'short record');
    const length = (record[3]! << 8) | record[4]!;
    if (record[0] !== ContentType.application_data) {
      throw new TlsAlertError(AlertDescription.unexpected_message, `protected record with type ${record[0]}`);
    }
    if (length !== record.length - RECORD_HEADER_LENGTH) {
      throw new TlsAlertError(AlertDescription.decode_error, 'record length does not match its header');
    }
    if (length > MAX_CIPHERTEXT)
      throw new TlsAlertError(AlertDescription.record_overflow, `${length} > 2^14+256`);
    const nonce = this.nextNonce();
    const inner = this.aead.open(
      nonce,
      record.subarray(0, RECORD_HEADER_LENGTH),
      record.subarray(RECORD_HEADER_LENGTH),
    );
    if (inner === null)
      throw new TlsAlertError(AlertDescription.bad_record_mac, 'record failed authentication');
    this.advance();
    // RFC 8446 §5.2: more than 2^14 + 1 bytes of inner plaintext is a record_overflow.
    if (inner.length > MAX_PLAINTEXT + 1) {
      throw new TlsAlertError(
        AlertDescription.record_overflow,
        `${inner.length} bytes exceeds 2^14+1 (record_overflow)`,
      );
    }
    // RFC 8446 §5.4: the type is the last non-zero byte; none at all is an unexpected_message.
    // The content is a view of the freshly decrypted buffer, which nothing else holds.
    let i = inner.length - 1;
    while (i >= 0 && inner[i] === 0) i--;
    if (i < 0)
      throw new TlsAlertError(AlertDescription.unexpected_message, 'no non-zero content type (all padding)');
    return { type: inner[i] as number, content: inner.subarray(0, i) };
  }
}

/** The type byte followed by `padding` zeros (RFC 8446 §5.4). */
function typeAndZeros(type: number, padding: number): Uint8Array {
  const t = new Uint8Array(1 + padding);
  t[0] = type;
  return t;
}

function uninitialized(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
