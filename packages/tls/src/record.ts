/**
 * Record protection (RFC 8446 §5.2-§5.5): one RecordProtection per direction and epoch,
 * owning the AEAD key, the static IV and the 64-bit sequence number.
 */
import { ParseError } from '@stepwire/wire';
import { AlertDescription, TlsAlertError } from './codec/alert.ts';
import { ContentType } from './codec/common.ts';
import {
  decodeTLSInnerPlaintext,
  MAX_CIPHERTEXT,
  MAX_PLAINTEXT,
  RECORD_HEADER_LENGTH,
} from './codec/record.ts';
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

export class RecordProtection {
  private readonly aead: Aead;
  private readonly iv: Uint8Array;
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
    if (this.exhausted) {
      // RFC 8446 §5.3: a sequence number must not wrap; the connection must rekey or close.
      throw new TlsAlertError(
        AlertDescription.internal_error,
        'sequence number space exhausted without a KeyUpdate',
      );
    }
    const n = this.iv.slice();
    const len = n.length;
    n[len - 8] = n[len - 8]! ^ (this.seqHi >>> 24);
    n[len - 7] = n[len - 7]! ^ ((this.seqHi >>> 16) & 0xff);
    n[len - 6] = n[len - 6]! ^ ((this.seqHi >>> 8) & 0xff);
    n[len - 5] = n[len - 5]! ^ (this.seqHi & 0xff);
    n[len - 4] = n[len - 4]! ^ (this.seqLo >>> 24);
    n[len - 3] = n[len - 3]! ^ ((this.seqLo >>> 16) & 0xff);
    n[len - 2] = n[len - 2]! ^ ((this.seqLo >>> 8) & 0xff);
    n[len - 1] = n[len - 1]! ^ (this.seqLo & 0xff);
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
    const nonce = this.nonce();
    const inner = new Uint8Array(innerLength);
    inner.set(content, 0);
    inner[content.length] = type;
    const length = innerLength + AEAD_TAG_LENGTH;
    const out = new Uint8Array(RECORD_HEADER_LENGTH + length);
    // opaque_type application_data, legacy_record_version 0x0303 (RFC 8446 §5.2).
    out[0] = ContentType.application_data;
    out[1] = 3;
    out[2] = 3;
    out[3] = length >> 8;
    out[4] = length & 0xff;
    out.set(this.aead.seal(nonce, out.subarray(0, RECORD_HEADER_LENGTH), inner), RECORD_HEADER_LENGTH);
    this.advance();
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
    const nonce = this.nonce();
    const inner = this.aead.open(
      nonce,
      record.subarray(0, RECORD_HEADER_LENGTH),
      record.subarray(RECORD_HEADER_LENGTH),
    );
    if (inner === null)
      throw new TlsAlertError(AlertDescription.bad_record_mac, 'record failed authentication');
    this.advance();
    try {
      const p = decodeTLSInnerPlaintext(inner);
      return { type: p.type, content: p.content };
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      const overflow = inner.length > MAX_PLAINTEXT + 1;
      throw new TlsAlertError(
        overflow ? AlertDescription.record_overflow : AlertDescription.unexpected_message,
        e.reason,
      );
    }
  }
}
