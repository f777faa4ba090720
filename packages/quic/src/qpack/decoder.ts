import { ByteReader, ByteWriter } from '@stepwire/wire';
import {
  type DecoderInstruction,
  decodeFieldSection,
  type EncoderInstruction,
  type FieldLine,
  isTruncation,
  QpackError,
  readEncoderInstruction,
  writeDecoderInstruction,
} from './instructions.ts';
import { QPACK_STATIC_TABLE } from './static-table.ts';
import { DynamicTable, entrySize, maxEntries } from './table.ts';

/** A decoded field: [name, value] as latin1 strings. */
export type Field = readonly [string, string];

export interface QpackDecoderOptions {
  /** Our SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 §5; 0 by default: no dynamic table). */
  maxTableCapacity?: number;
  /** Our SETTINGS_QPACK_BLOCKED_STREAMS (§5; 0 by default). */
  maxBlockedStreams?: number;
  /** Our SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2); sections above it are refused. */
  maxFieldSectionSize?: number;
  /** Bytes of an incomplete encoder instruction we buffer before calling it an attack. */
  maxEncoderStreamBuffer?: number;
}

export type FieldSectionResult =
  | { status: 'done'; fields: Field[] }
  /** §2.2.1: the section needs inserts that have not arrived; it is kept and returned by onEncoderStream later. */
  | { status: 'blocked' }
  /** RFC 9114 §4.2.2: the decoded size (name + value + 32 per field) exceeds maxFieldSectionSize. */
  | { status: 'too-large'; size: number };

interface Blocked {
  streamId: number;
  requiredInsertCount: number;
  bytes: Uint8Array;
}

/**
 * The QPACK decoder (RFC 9204 §2.2): applies the peer's encoder stream to the dynamic
 * table, decodes field sections (blocking those that need inserts not yet received, up
 * to the blocked-streams limit), and produces the decoder stream (Section
 * Acknowledgment, Stream Cancellation, Insert Count Increment).
 */
export class QpackDecoder {
  readonly table = new DynamicTable();
  readonly maxTableCapacity: number;
  readonly maxBlockedStreams: number;
  readonly maxFieldSectionSize: number;
  private readonly maxEncoderStreamBuffer: number;
  private encoderBuffer = new Uint8Array(0);
  private readonly blocked: Blocked[] = [];
  private out = new ByteWriter(16);
  /** The Known Received Count the encoder has been told about (§2.2.2.3 / §4.4.3). */
  private acknowledgedInsertCount = 0;

  constructor(opts: QpackDecoderOptions = {}) {
    this.maxTableCapacity = opts.maxTableCapacity ?? 0;
    this.maxBlockedStreams = opts.maxBlockedStreams ?? 0;
    this.maxFieldSectionSize = opts.maxFieldSectionSize ?? Number.POSITIVE_INFINITY;
    this.maxEncoderStreamBuffer = opts.maxEncoderStreamBuffer ?? 64 * 1024;
  }

  get blockedStreams(): number {
    return this.blocked.length;
  }

  /**
   * Decoder stream bytes produced so far (to be sent on our decoder stream); clears them.
   * §4.4.3: inserts not covered by a Section Acknowledgment are reported here, once, as
   * an Insert Count Increment: deferring it to the moment of sending lets acknowledgements
   * of sections decoded meanwhile make it smaller or unnecessary.
   */
  takeDecoderStreamData(): Uint8Array {
    if (this.table.insertCount > this.acknowledgedInsertCount) {
      this.emit({
        type: 'InsertCountIncrement',
        increment: this.table.insertCount - this.acknowledgedInsertCount,
      });
      this.acknowledgedInsertCount = this.table.insertCount;
    }
    const b = this.out.finish().slice();
    this.out = new ByteWriter(16);
    return b;
  }

  private emit(i: DecoderInstruction): void {
    writeDecoderInstruction(this.out, i);
  }

  /**
   * Bytes from the peer's encoder stream (they may split instructions anywhere). Returns the
   * field sections this unblocked. Throws QpackError(QPACK_ENCODER_STREAM_ERROR) on a bad instruction.
   */
  onEncoderStream(data: Uint8Array): { streamId: number; result: FieldSectionResult }[] {
    const buf = new Uint8Array(this.encoderBuffer.length + data.length);
    buf.set(this.encoderBuffer, 0);
    buf.set(data, this.encoderBuffer.length);
    const r = new ByteReader(buf, 'qpack-encoder-stream');
    let consumed = 0;
    try {
      while (!r.atEnd) {
        const ins = readEncoderInstruction(r, this.maxEncoderStreamBuffer);
        this.apply(ins);
        consumed = r.offset;
      }
    } catch (e) {
      if (e instanceof QpackError) throw e;
      if (!isTruncation(e)) throw new QpackError('QPACK_ENCODER_STREAM_ERROR', (e as Error).message);
    }
    this.encoderBuffer = buf.slice(consumed);
    if (this.encoderBuffer.length > this.maxEncoderStreamBuffer) {
      throw new QpackError('QPACK_ENCODER_STREAM_ERROR', 'incomplete instruction exceeds the buffer limit');
    }
    return this.unblock();
  }

  private apply(i: EncoderInstruction): void {
    const t = this.table;
    switch (i.type) {
      case 'SetDynamicTableCapacity':
        // §4.3.1: above our SETTINGS_QPACK_MAX_TABLE_CAPACITY is QPACK_ENCODER_STREAM_ERROR.
        if (i.capacity > this.maxTableCapacity) {
          throw new QpackError(
            'QPACK_ENCODER_STREAM_ERROR',
            `capacity ${i.capacity} exceeds the maximum ${this.maxTableCapacity}`,
          );
        }
        t.setCapacity(i.capacity);
        return;
      case 'InsertWithNameReference': {
        const name = i.isStatic
          ? QPACK_STATIC_TABLE[i.nameIndex]?.[0]
          : t.get(t.insertCount - 1 - i.nameIndex)?.name; // §3.2.5: relative to the insert count
        if (name === undefined)
          throw new QpackError('QPACK_ENCODER_STREAM_ERROR', `no entry for name index ${i.nameIndex}`);
        this.insert(name, i.value.text);
        return;
      }
      case 'InsertWithLiteralName':
        this.insert(i.name.text, i.value.text);
        return;
      case 'Duplicate': {
        const e = t.get(t.insertCount - 1 - i.index);
        if (!e) throw new QpackError('QPACK_ENCODER_STREAM_ERROR', `no entry for relative index ${i.index}`);
        this.insert(e.name, e.value);
        return;
      }
    }
  }

  private insert(name: string, value: string): void {
    // §3.2.2: an entry larger than the capacity is QPACK_ENCODER_STREAM_ERROR.
    if (!this.table.insert(name, value)) {
      throw new QpackError(
        'QPACK_ENCODER_STREAM_ERROR',
        `entry of ${entrySize(name, value)} bytes exceeds capacity ${this.table.capacity}`,
      );
    }
  }

  /** §4.5.1.1: recovers Required Insert Count from its encoded form. */
  requiredInsertCount(encoded: number): number {
    if (encoded === 0) return 0;
    const maxE = maxEntries(this.maxTableCapacity);
    const fullRange = 2 * maxE;
    if (encoded > fullRange)
      throw new QpackError(
        'QPACK_DECOMPRESSION_FAILED',
        `encoded insert count ${encoded} exceeds ${fullRange}`,
      );
    const maxValue = this.table.insertCount + maxE;
    const maxWrapped = Math.floor(maxValue / fullRange) * fullRange;
    let ric = maxWrapped + encoded - 1;
    if (ric > maxValue) {
      if (ric <= fullRange)
        throw new QpackError('QPACK_DECOMPRESSION_FAILED', 'invalid Required Insert Count');
      ric -= fullRange;
    }
    if (ric === 0)
      throw new QpackError('QPACK_DECOMPRESSION_FAILED', 'encoded Required Insert Count decodes to 0');
    return ric;
  }

  /**
   * Decodes one field section from a HEADERS frame on `streamId`. Throws
   * QpackError(QPACK_DECOMPRESSION_FAILED) for anything malformed (§2.2, §4.5).
   */
  decodeFieldSection(streamId: number, bytes: Uint8Array): FieldSectionResult {
    let section: ReturnType<typeof decodeFieldSection>;
    try {
      section = decodeFieldSection(bytes, Math.min(this.maxFieldSectionSize, 1 << 24));
    } catch (e) {
      throw new QpackError('QPACK_DECOMPRESSION_FAILED', (e as Error).message);
    }
    const ric = this.requiredInsertCount(section.prefix.encodedInsertCount);
    if (ric > this.table.insertCount) {
      // §2.2.1: a blocked stream, unless that exceeds SETTINGS_QPACK_BLOCKED_STREAMS.
      if (this.blocked.length >= this.maxBlockedStreams) {
        throw new QpackError(
          'QPACK_DECOMPRESSION_FAILED',
          `more than ${this.maxBlockedStreams} blocked streams`,
        );
      }
      this.blocked.push({ streamId, requiredInsertCount: ric, bytes: bytes.slice() });
      return { status: 'blocked' };
    }
    return this.decodeReady(streamId, section, ric);
  }

  private decodeReady(
    streamId: number,
    section: ReturnType<typeof decodeFieldSection>,
    ric: number,
  ): FieldSectionResult {
    const { sign, deltaBase } = section.prefix;
    // §4.5.1.2: Base = RIC + DeltaBase, or RIC - DeltaBase - 1 with the sign bit.
    const base = sign ? ric - deltaBase - 1 : ric + deltaBase;
    if (base < 0) throw new QpackError('QPACK_DECOMPRESSION_FAILED', 'negative Base');
    const fields: Field[] = [];
    let size = 0;
    this.largestReferenced = -1;
    for (const line of section.lines) {
      const f = this.resolve(line, base, ric);
      size += entrySize(f[0], f[1]);
      fields.push(f);
    }
    // §4.5.1.1: the encoder sets Required Insert Count to the largest absolute index it
    // references plus one; a larger value (one the section does not need) is an error.
    if (ric > 0 && this.largestReferenced + 1 !== ric) {
      throw new QpackError(
        'QPACK_DECOMPRESSION_FAILED',
        `Required Insert Count ${ric} but the largest reference is ${this.largestReferenced}`,
      );
    }
    // §2.2.2.1: a section that referenced the dynamic table is acknowledged.
    if (ric > 0) {
      this.emit({ type: 'SectionAcknowledgment', streamId });
      this.acknowledgedInsertCount = Math.max(this.acknowledgedInsertCount, ric);
    }
    if (size > this.maxFieldSectionSize) return { status: 'too-large', size };
    return { status: 'done', fields };
  }

  /** The largest absolute index referenced by the section being decoded. */
  private largestReferenced = -1;

  private dynamic(absolute: number, ric: number): { name: string; value: string } {
    this.largestReferenced = Math.max(this.largestReferenced, absolute);
    // §4.5.1.1 / §2.2.3: an evicted entry, or one at or past Required Insert Count, is an error.
    const e = absolute < ric ? this.table.get(absolute) : undefined;
    if (!e) throw new QpackError('QPACK_DECOMPRESSION_FAILED', `invalid dynamic table reference ${absolute}`);
    return e;
  }

  private staticEntry(index: number): readonly [string, string] {
    const e = QPACK_STATIC_TABLE[index];
    if (!e) throw new QpackError('QPACK_DECOMPRESSION_FAILED', `static index ${index} out of range`);
    return e;
  }

  private resolve(l: FieldLine, base: number, ric: number): Field {
    switch (l.type) {
      case 'Indexed': {
        if (l.isStatic) return this.staticEntry(l.index);
        const e = this.dynamic(base - 1 - l.index, ric);
        return [e.name, e.value];
      }
      case 'IndexedPostBase': {
        const e = this.dynamic(base + l.index, ric);
        return [e.name, e.value];
      }
      case 'LiteralWithNameReference': {
        const name = l.isStatic
          ? this.staticEntry(l.nameIndex)[0]
          : this.dynamic(base - 1 - l.nameIndex, ric).name;
        return [name, l.value.text];
      }
      case 'LiteralWithPostBaseNameReference':
        return [this.dynamic(base + l.nameIndex, ric).name, l.value.text];
      case 'LiteralWithLiteralName':
        return [l.name.text, l.value.text];
    }
  }

  private unblock(): { streamId: number; result: FieldSectionResult }[] {
    const out: { streamId: number; result: FieldSectionResult }[] = [];
    for (let i = 0; i < this.blocked.length; ) {
      const b = this.blocked[i]!;
      if (b.requiredInsertCount > this.table.insertCount) {
        i++;
        continue;
      }
      this.blocked.splice(i, 1);
      out.push({
        streamId: b.streamId,
        result: this.decodeReady(b.streamId, decodeFieldSection(b.bytes), b.requiredInsertCount),
      });
    }
    return out;
  }

  /**
   * §4.4.2: the stream was reset or abandoned before its field section was decoded; the
   * encoder learns it can release the section's references.
   */
  cancelStream(streamId: number): void {
    const i = this.blocked.findIndex((b) => b.streamId === streamId);
    if (i >= 0) this.blocked.splice(i, 1);
    if (this.maxTableCapacity > 0) this.emit({ type: 'StreamCancellation', streamId });
  }
}
