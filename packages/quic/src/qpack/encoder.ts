import { ByteReader, ByteWriter } from '@stepwire/wire';
import type { Field } from './decoder.ts';
import {
  type DecoderInstruction,
  type EncoderInstruction,
  encodeFieldSection,
  type FieldLine,
  isTruncation,
  type Literal,
  literal,
  QpackError,
  readDecoderInstruction,
  writeEncoderInstruction,
} from './instructions.ts';
import { staticExactIndex, staticNameIndex } from './static-table.ts';
import { DynamicTable, entrySize, maxEntries } from './table.ts';

export interface QpackEncoderOptions {
  /** The peer's SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 §5). */
  peerMaxTableCapacity?: number;
  /** The peer's SETTINGS_QPACK_BLOCKED_STREAMS. */
  peerMaxBlockedStreams?: number;
  /** The capacity we choose, at most the peer's maximum (§3.2.3). */
  capacity?: number;
  /** Names never put in the dynamic table and sent with the N bit (§7.1.3: sensitive values). */
  neverIndex?: readonly string[];
  /** Huffman-code string literals when shorter (default true; false reproduces RFC 9204's examples). */
  huffman?: boolean;
}

/** An unacknowledged field section (§2.1.1: its references keep entries from eviction). */
interface Outstanding {
  streamId: number;
  requiredInsertCount: number;
  references: number[];
}

const DEFAULT_NEVER_INDEX = ['authorization', 'proxy-authorization', 'set-cookie'];

/**
 * The QPACK encoder (RFC 9204 §2.1): encodes field sections against the static table and
 * a dynamic table it fills through the encoder stream, respecting the peer's blocked
 * streams limit and never evicting an entry that is unacknowledged or still referenced
 * (§2.1.1). It reads the peer's decoder stream for acknowledgements.
 */
export class QpackEncoder {
  readonly table = new DynamicTable();
  readonly peerMaxTableCapacity: number;
  readonly peerMaxBlockedStreams: number;
  /** §2.1.4: the number of inserts the decoder has acknowledged (Known Received Count). */
  knownReceivedCount = 0;
  private readonly outstanding: Outstanding[] = [];
  private readonly out = new ByteWriter(64);
  private decoderBuffer = new Uint8Array(0);
  private readonly neverIndex: Set<string>;
  private readonly lit: (text: string) => Literal;

  constructor(opts: QpackEncoderOptions = {}) {
    this.peerMaxTableCapacity = opts.peerMaxTableCapacity ?? 0;
    this.peerMaxBlockedStreams = opts.peerMaxBlockedStreams ?? 0;
    this.neverIndex = new Set(opts.neverIndex ?? DEFAULT_NEVER_INDEX);
    this.lit = opts.huffman === false ? (text) => ({ text, huffman: false }) : literal;
    const capacity = Math.min(opts.capacity ?? 4096, this.peerMaxTableCapacity);
    if (capacity > 0) {
      this.table.setCapacity(capacity);
      this.emit({ type: 'SetDynamicTableCapacity', capacity });
    }
  }

  /** Encoder stream bytes produced so far; clears them. */
  takeEncoderStreamData(): Uint8Array {
    const b = this.out.finish().slice();
    (this as unknown as { out: ByteWriter }).out = new ByteWriter(64);
    return b;
  }

  private emit(i: EncoderInstruction): void {
    writeEncoderInstruction(this.out, i);
  }

  /** Streams whose unacknowledged sections reference entries the decoder may not have yet (§2.1.2). */
  private blockedStreams(): Set<number> {
    return new Set(
      this.outstanding.filter((o) => o.requiredInsertCount > this.knownReceivedCount).map((o) => o.streamId),
    );
  }

  /** §2.1.1: evictable once acknowledged and not referenced by an unacknowledged section (nor by the one being built). */
  private evictable(absolute: number, building: readonly number[]): boolean {
    return (
      absolute < this.knownReceivedCount &&
      !building.includes(absolute) &&
      !this.outstanding.some((o) => o.references.includes(absolute))
    );
  }

  /**
   * Inserts an entry ahead of any field section that uses it (a "speculative insert",
   * RFC 9204 Appendix B.3), naming a static or dynamic entry when one has the name.
   * Returns the new entry's absolute index, or undefined when it cannot fit without
   * evicting an entry that must stay (§2.1.1).
   */
  insert(name: string, value: string): number | undefined {
    const t = this.table;
    const sn = staticNameIndex(name);
    const dn = t.find(name, value).name;
    if (!t.insert(name, value, (abs) => this.evictable(abs, []))) return undefined;
    if (sn !== undefined)
      this.emit({ type: 'InsertWithNameReference', isStatic: true, nameIndex: sn, value: this.lit(value) });
    else if (dn !== undefined) {
      this.emit({
        type: 'InsertWithNameReference',
        isStatic: false,
        nameIndex: t.insertCount - 2 - dn,
        value: this.lit(value),
      });
    } else this.emit({ type: 'InsertWithLiteralName', name: this.lit(name), value: this.lit(value) });
    return t.insertCount - 1;
  }

  /**
   * §4.3.4: re-inserts an existing entry, typically one about to become unevictable-but-old
   * ("draining", §2.1.1.1), so sections can keep referencing it. Returns the new index.
   */
  duplicate(absolute: number): number | undefined {
    const t = this.table;
    const e = t.get(absolute);
    if (!e) throw new RangeError(`no dynamic table entry ${absolute}`);
    const relative = t.insertCount - 1 - absolute;
    if (!t.insert(e.name, e.value, (abs) => abs !== absolute && this.evictable(abs, []))) return undefined;
    this.emit({ type: 'Duplicate', index: relative });
    return t.insertCount - 1;
  }

  /** Encodes a field section for `streamId`; encoder stream bytes it needs are left for takeEncoderStreamData. */
  encodeFieldSection(streamId: number, fields: readonly Field[]): Uint8Array {
    const t = this.table;
    const base = t.insertCount;
    const blocked = this.blockedStreams();
    // §2.1.2: referencing unacknowledged entries may block this stream; only allowed while
    // under the peer's limit (or when this stream already counts as blocked).
    const mayBlock = blocked.has(streamId) || blocked.size < this.peerMaxBlockedStreams;
    const usable = (abs: number) => abs < this.knownReceivedCount || mayBlock;
    const lines: FieldLine[] = [];
    const references: number[] = [];
    const ref = (abs: number): { postBase: boolean; index: number } => {
      references.push(abs);
      return abs >= base ? { postBase: true, index: abs - base } : { postBase: false, index: base - 1 - abs };
    };
    for (const [name, value] of fields) {
      const never = this.neverIndex.has(name);
      const st = staticExactIndex(name, value);
      if (st !== undefined) {
        lines.push({ type: 'Indexed', isStatic: true, index: st });
        continue;
      }
      let found = never ? {} : t.find(name, value);
      if (found.exact !== undefined && !usable(found.exact)) found = { name: found.name };
      if (found.exact === undefined && !never && this.worthIndexing(name, value)) {
        // Insert, naming the static or dynamic entry with the same name when there is one.
        // When this stream may not block, the new entry serves later sections, once acknowledged.
        const sn = staticNameIndex(name);
        const dn = found.name;
        if (t.insert(name, value, (abs) => this.evictable(abs, references))) {
          if (sn !== undefined) {
            this.emit({
              type: 'InsertWithNameReference',
              isStatic: true,
              nameIndex: sn,
              value: this.lit(value),
            });
          } else if (dn !== undefined) {
            // §3.2.2 lets the name's entry be the one this insert evicts: the decoder reads the name first.
            this.emit({
              type: 'InsertWithNameReference',
              isStatic: false,
              nameIndex: t.insertCount - 2 - dn,
              value: this.lit(value),
            });
          } else {
            this.emit({ type: 'InsertWithLiteralName', name: this.lit(name), value: this.lit(value) });
          }
          if (mayBlock) found = { exact: t.insertCount - 1 };
        }
      }
      if (found.exact !== undefined) {
        const r = ref(found.exact);
        lines.push(
          r.postBase
            ? { type: 'IndexedPostBase', index: r.index }
            : { type: 'Indexed', isStatic: false, index: r.index },
        );
        continue;
      }
      const sn = staticNameIndex(name);
      if (sn !== undefined) {
        lines.push({
          type: 'LiteralWithNameReference',
          neverIndexed: never,
          isStatic: true,
          nameIndex: sn,
          value: this.lit(value),
        });
        continue;
      }
      if (found.name !== undefined && usable(found.name) && t.get(found.name) !== undefined) {
        const r = ref(found.name);
        lines.push(
          r.postBase
            ? {
                type: 'LiteralWithPostBaseNameReference',
                neverIndexed: never,
                nameIndex: r.index,
                value: this.lit(value),
              }
            : {
                type: 'LiteralWithNameReference',
                neverIndexed: never,
                isStatic: false,
                nameIndex: r.index,
                value: this.lit(value),
              },
        );
        continue;
      }
      lines.push({
        type: 'LiteralWithLiteralName',
        neverIndexed: never,
        name: this.lit(name),
        value: this.lit(value),
      });
    }
    const requiredInsertCount = references.length === 0 ? 0 : Math.max(...references) + 1;
    if (requiredInsertCount > 0) this.outstanding.push({ streamId, requiredInsertCount, references });
    return encodeFieldSection({ prefix: this.prefix(requiredInsertCount, base), lines });
  }

  /** A field worth a table entry: one that fits twice, so the table is not churned by a single large value. */
  private worthIndexing(name: string, value: string): boolean {
    return this.table.capacity > 0 && entrySize(name, value) <= this.table.capacity / 2;
  }

  /** §4.5.1: the encoded Required Insert Count and the Base as sign and delta. */
  private prefix(ric: number, base: number) {
    if (ric === 0) return { encodedInsertCount: 0, sign: false, deltaBase: 0 };
    const encodedInsertCount = (ric % (2 * maxEntries(this.peerMaxTableCapacity))) + 1;
    return base >= ric
      ? { encodedInsertCount, sign: false, deltaBase: base - ric }
      : { encodedInsertCount, sign: true, deltaBase: ric - base - 1 };
  }

  /** Bytes from the peer's decoder stream. Throws QpackError(QPACK_DECODER_STREAM_ERROR). */
  onDecoderStream(data: Uint8Array): void {
    const buf = new Uint8Array(this.decoderBuffer.length + data.length);
    buf.set(this.decoderBuffer, 0);
    buf.set(data, this.decoderBuffer.length);
    const r = new ByteReader(buf, 'qpack-decoder-stream');
    let consumed = 0;
    try {
      while (!r.atEnd) {
        this.apply(readDecoderInstruction(r));
        consumed = r.offset;
      }
    } catch (e) {
      if (e instanceof QpackError) throw e;
      if (!isTruncation(e)) throw new QpackError('QPACK_DECODER_STREAM_ERROR', (e as Error).message);
    }
    this.decoderBuffer = buf.slice(consumed);
    if (this.decoderBuffer.length > 16)
      throw new QpackError('QPACK_DECODER_STREAM_ERROR', 'instruction too long');
  }

  private apply(i: DecoderInstruction): void {
    switch (i.type) {
      case 'SectionAcknowledgment': {
        // §4.4.1: acknowledges the earliest unacknowledged section on that stream.
        const at = this.outstanding.findIndex((o) => o.streamId === i.streamId);
        if (at < 0)
          throw new QpackError(
            'QPACK_DECODER_STREAM_ERROR',
            `no unacknowledged section on stream ${i.streamId}`,
          );
        const [o] = this.outstanding.splice(at, 1);
        this.knownReceivedCount = Math.max(this.knownReceivedCount, o!.requiredInsertCount);
        return;
      }
      case 'StreamCancellation':
        for (let k = this.outstanding.length - 1; k >= 0; k--) {
          if (this.outstanding[k]!.streamId === i.streamId) this.outstanding.splice(k, 1);
        }
        return;
      case 'InsertCountIncrement':
        // §4.4.3: zero, or beyond what was sent, is QPACK_DECODER_STREAM_ERROR.
        if (i.increment === 0 || this.knownReceivedCount + i.increment > this.table.insertCount) {
          throw new QpackError('QPACK_DECODER_STREAM_ERROR', `invalid Insert Count Increment ${i.increment}`);
        }
        this.knownReceivedCount += i.increment;
        return;
    }
  }
}
