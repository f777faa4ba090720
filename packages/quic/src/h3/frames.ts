import { ByteReader, ByteWriter, concatBytes, ParseError } from '@stepwire/wire';
import { readVarint, readVarintLimit, varintLength, writeVarint } from '../packet/varint.ts';

/**
 * HTTP/3 frames (RFC 9114 §7). Every frame is Type (i), Length (i), then Length bytes of
 * payload (§7.1). The codec is structural only: which frame may appear on which stream,
 * duplicate settings and HTTP/2's reserved identifiers are the connection's rules
 * (h3/connection.ts), because their errors depend on where the frame was read.
 */

/** RFC 9114 §7.2 and §11.2.1. */
export const H3FrameType = {
  DATA: 0x00,
  HEADERS: 0x01,
  CANCEL_PUSH: 0x03,
  SETTINGS: 0x04,
  PUSH_PROMISE: 0x05,
  GOAWAY: 0x07,
  MAX_PUSH_ID: 0x0d,
} as const;

/** RFC 9114 §7.2.8: HTTP/2 frame types with no HTTP/3 meaning; receiving one is H3_FRAME_UNEXPECTED. */
export const HTTP2_ONLY_FRAME_TYPES: ReadonlySet<number> = new Set([0x02, 0x06, 0x08, 0x09]);

/** RFC 9114 §7.2.4.1 and RFC 9204 §5; 0x08 from RFC 9220, 0x33 from RFC 9297. */
export const H3SettingId = {
  QPACK_MAX_TABLE_CAPACITY: 0x01,
  MAX_FIELD_SECTION_SIZE: 0x06,
  QPACK_BLOCKED_STREAMS: 0x07,
  ENABLE_CONNECT_PROTOCOL: 0x08,
  H3_DATAGRAM: 0x33,
} as const;

/** RFC 9114 §7.2.4.1: HTTP/2 setting identifiers that are an error (H3_SETTINGS_ERROR) in HTTP/3. */
export const HTTP2_ONLY_SETTING_IDS: ReadonlySet<number> = new Set([0x00, 0x02, 0x03, 0x04, 0x05]);

/** RFC 9114 §6.2: the first varint of a unidirectional stream. */
export const H3StreamType = {
  CONTROL: 0x00,
  PUSH: 0x01,
  QPACK_ENCODER: 0x02,
  QPACK_DECODER: 0x03,
} as const;

/**
 * RFC 9114 §7.2.8 / §6.2.3: reserved ("grease") frame, setting and stream types are
 * 0x1f * N + 0x21. Values above 2^53 saturate when read, so only exact values are judged.
 */
export function isReservedH3Type(t: number): boolean {
  return t >= 0x21 && t <= Number.MAX_SAFE_INTEGER && (t - 0x21) % 0x1f === 0;
}

export interface H3Setting {
  id: number;
  value: number;
}

export type H3Frame =
  | { type: 'DATA'; data: Uint8Array }
  /** The QPACK-encoded field section (RFC 9204 §4.5). */
  | { type: 'HEADERS'; fieldSection: Uint8Array }
  | { type: 'CANCEL_PUSH'; pushId: number }
  /** In the order sent; duplicates are the connection's to refuse (§7.2.4). */
  | { type: 'SETTINGS'; settings: H3Setting[] }
  | { type: 'PUSH_PROMISE'; pushId: number; fieldSection: Uint8Array }
  /** A stream ID from a server, a push ID from a client (§5.2). */
  | { type: 'GOAWAY'; id: number }
  | { type: 'MAX_PUSH_ID'; pushId: number }
  /**
   * Any other type: reserved/grease types (§7.2.8), HTTP/2-only types and extensions.
   * Types above 2^53 are read saturated to Number.MAX_SAFE_INTEGER (still unknown).
   */
  | { type: 'unknown'; frameType: number; payload: Uint8Array };

const LAYER = 'h3';

/** The frame's wire type number. */
export function h3FrameTypeOf(f: H3Frame): number {
  return f.type === 'unknown' ? f.frameType : H3FrameType[f.type];
}

/**
 * Decodes a frame's payload once Type and Length are known. Throws ParseError when the
 * payload ends early or has bytes left over, which §7.1 makes H3_FRAME_ERROR.
 */
export function decodeH3FramePayload(frameType: number, payload: Uint8Array, base = 0): H3Frame {
  const r = new ByteReader(payload, LAYER, base);
  let f: H3Frame;
  switch (frameType) {
    case H3FrameType.DATA:
      return { type: 'DATA', data: payload };
    case H3FrameType.HEADERS:
      return { type: 'HEADERS', fieldSection: payload };
    case H3FrameType.CANCEL_PUSH:
      f = { type: 'CANCEL_PUSH', pushId: readVarint(r, 'Push ID') };
      break;
    case H3FrameType.SETTINGS: {
      // §7.2.4: a sequence of Identifier (i), Value (i). Reserved settings may carry any
      // 62-bit value, so both saturate rather than fail.
      const settings: H3Setting[] = [];
      while (!r.atEnd)
        settings.push({ id: readVarintLimit(r, 'Identifier'), value: readVarintLimit(r, 'Value') });
      return { type: 'SETTINGS', settings };
    }
    case H3FrameType.PUSH_PROMISE: {
      const pushId = readVarint(r, 'Push ID');
      return { type: 'PUSH_PROMISE', pushId, fieldSection: r.rest('Encoded Field Section') };
    }
    case H3FrameType.GOAWAY:
      f = { type: 'GOAWAY', id: readVarint(r, 'Stream ID/Push ID') };
      break;
    case H3FrameType.MAX_PUSH_ID:
      f = { type: 'MAX_PUSH_ID', pushId: readVarint(r, 'Push ID') };
      break;
    default:
      return { type: 'unknown', frameType, payload };
  }
  r.end('frame payload');
  return f;
}

/** Reads one whole frame from r (a view into r's bytes for the payload). */
export function readH3Frame(r: ByteReader): H3Frame {
  const frameType = readVarintLimit(r, 'Type');
  const length = readVarint(r, 'Length');
  const base = r.absoluteOffset;
  return decodeH3FramePayload(frameType, r.bytesView(length, 'Frame Payload'), base);
}

/** Exactly one frame; trailing bytes are a ParseError. */
export function decodeH3Frame(bytes: Uint8Array): H3Frame {
  const r = new ByteReader(bytes, LAYER);
  const f = readH3Frame(r);
  r.end('frame');
  return f;
}

/** Every frame in bytes, in order (a whole stream, for tests and offline decoding). */
export function decodeH3Frames(bytes: Uint8Array): H3Frame[] {
  const r = new ByteReader(bytes, LAYER);
  const out: H3Frame[] = [];
  while (!r.atEnd) out.push(readH3Frame(r));
  return out;
}

function payloadOf(f: H3Frame): Uint8Array {
  const w = new ByteWriter(16);
  switch (f.type) {
    case 'DATA':
      return f.data;
    case 'HEADERS':
      return f.fieldSection;
    case 'unknown':
      return f.payload;
    case 'CANCEL_PUSH':
    case 'MAX_PUSH_ID':
      writeVarint(w, f.pushId);
      break;
    case 'GOAWAY':
      writeVarint(w, f.id);
      break;
    case 'SETTINGS':
      for (const s of f.settings) {
        writeVarint(w, s.id);
        writeVarint(w, s.value);
      }
      break;
    case 'PUSH_PROMISE':
      writeVarint(w, f.pushId);
      w.bytes(f.fieldSection);
      break;
  }
  return w.finish();
}

/** The Type and Length that precede a payload of `length` bytes (§7.1). */
export function encodeH3FrameHeader(frameType: number, length: number): Uint8Array {
  const w = new ByteWriter(varintLength(frameType) + varintLength(length));
  writeVarint(w, frameType);
  writeVarint(w, length);
  return w.finish();
}

export function encodeH3Frame(f: H3Frame): Uint8Array {
  const payload = payloadOf(f);
  const t = h3FrameTypeOf(f);
  const out = new Uint8Array(varintLength(t) + varintLength(payload.length) + payload.length);
  const w = new ByteWriter(out.length);
  writeVarint(w, t);
  writeVarint(w, payload.length);
  w.bytes(payload);
  return w.finish();
}

/** One line for a trace ladder. */
export function summarizeH3Frame(f: H3Frame): string {
  switch (f.type) {
    case 'DATA':
      return `DATA len=${f.data.length}`;
    case 'HEADERS':
      return `HEADERS len=${f.fieldSection.length}`;
    case 'SETTINGS':
      return `SETTINGS ${f.settings.map((s) => `0x${s.id.toString(16)}=${s.value}`).join(' ')}`;
    case 'GOAWAY':
      return `GOAWAY id=${f.id}`;
    case 'CANCEL_PUSH':
    case 'MAX_PUSH_ID':
      return `${f.type} push=${f.pushId}`;
    case 'PUSH_PROMISE':
      return `PUSH_PROMISE push=${f.pushId} len=${f.fieldSection.length}`;
    case 'unknown':
      return `frame 0x${f.frameType.toString(16)} len=${f.payload.length}`;
  }
}

/**
 * Reads a stream's frames as its bytes arrive in pieces. DATA payloads are passed on as
 * they arrive (a body is never held whole); unknown frames are skipped without buffering
 * (§9: their payload is discarded); every other payload is buffered up to `maxPayload`,
 * beyond which the frame is refused before a byte of it is kept (§7.1, H3_EXCESSIVE_LOAD
 * in the connection's words).
 */
export type H3StreamItem =
  | { kind: 'frame'; frame: H3Frame }
  /** A piece of a DATA frame's payload; `last` on the piece that completes the frame. */
  | { kind: 'data'; data: Uint8Array; last: boolean }
  /** An unknown frame's type, reported once as its header is read (its payload is skipped). */
  | { kind: 'skipped'; frameType: number; length: number };

export class H3FrameTooLarge extends Error {
  constructor(
    readonly frameType: number,
    readonly length: number,
    readonly limit: number,
  ) {
    super(`frame 0x${frameType.toString(16)} of ${length} bytes exceeds the limit of ${limit}`);
  }
}

export class H3FrameReader {
  private buffer: Uint8Array = new Uint8Array(0);
  /** The frame being read: its type and the payload bytes still to come. */
  private current: { frameType: number; remaining: number; kind: 'data' | 'skip' | 'buffer' } | undefined;
  /** Bytes of the whole stream read so far, for error offsets. */
  private consumed = 0;

  constructor(private readonly maxPayload: number) {}

  /** True when no frame is partly read: the stream may end here (§7.1: a truncated frame is H3_FRAME_ERROR). */
  get atFrameBoundary(): boolean {
    return this.current === undefined && this.buffer.length === 0;
  }

  /** Throws ParseError (H3_FRAME_ERROR) or H3FrameTooLarge. */
  push(chunk: Uint8Array): H3StreamItem[] {
    const out: H3StreamItem[] = [];
    let buf = this.buffer.length === 0 ? chunk : concatBytes(this.buffer, chunk);
    for (;;) {
      const c = this.current;
      if (c === undefined) {
        if (buf.length === 0) break;
        const r = new ByteReader(buf, LAYER, this.consumed);
        let frameType: number;
        let length: number;
        try {
          frameType = readVarintLimit(r, 'Type');
          length = readVarint(r, 'Length');
        } catch (e) {
          // Only a header cut short by the chunk boundary waits for more bytes.
          if (e instanceof ParseError && e.reason.startsWith('needs ')) break;
          throw e;
        }
        buf = buf.subarray(r.offset);
        this.consumed += r.offset;
        const kind = frameType === H3FrameType.DATA ? 'data' : KNOWN_TYPES.has(frameType) ? 'buffer' : 'skip';
        if (kind === 'buffer' && length > this.maxPayload)
          throw new H3FrameTooLarge(frameType, length, this.maxPayload);
        if (kind === 'skip') out.push({ kind: 'skipped', frameType, length });
        this.current = { frameType, remaining: length, kind };
        if (length === 0) {
          this.current = undefined;
          if (kind === 'data') out.push({ kind: 'data', data: new Uint8Array(0), last: true });
          else if (kind === 'buffer')
            out.push({
              kind: 'frame',
              frame: decodeH3FramePayload(frameType, new Uint8Array(0), this.consumed),
            });
        }
        continue;
      }
      if (c.kind === 'buffer') {
        if (buf.length < c.remaining) break;
        const payload = buf.slice(0, c.remaining);
        out.push({ kind: 'frame', frame: decodeH3FramePayload(c.frameType, payload, this.consumed) });
        buf = buf.subarray(c.remaining);
        this.consumed += c.remaining;
        this.current = undefined;
        continue;
      }
      if (buf.length === 0) break;
      const n = Math.min(buf.length, c.remaining);
      if (c.kind === 'data') out.push({ kind: 'data', data: buf.slice(0, n), last: n === c.remaining });
      buf = buf.subarray(n);
      this.consumed += n;
      c.remaining -= n;
      if (c.remaining === 0) this.current = undefined;
    }
    this.buffer = buf.length === 0 ? new Uint8Array(0) : buf.slice();
    return out;
  }
}

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(H3FrameType));
