/**
 * HTTP/2 frames (RFC 9113 §4.1, §6) and PRIORITY_UPDATE (RFC 9218 §7.1), as plain data with
 * `decodeFrame` / `encodeFrame`. Decoding checks what a single frame can violate on its own
 * (sizes, stream 0 rules, padding, setting values) and throws Http2Error carrying the error
 * code and whether it is a stream or a connection error; state rules live in the connection.
 */
import { ErrorCode, Http2Error } from './errors.ts';

// RFC 9113 §6 frame types; RFC 9218 §7.1 PRIORITY_UPDATE.
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
  PRIORITY_UPDATE: 0x10,
} as const;

// RFC 9113 §6 flags.
export const Flags = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

// RFC 9113 §6.5.2, RFC 8441 §3, RFC 9218 §2.1.
export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
  NO_RFC7540_PRIORITIES: 0x9,
} as const;

/** RFC 9113 §4.1: 9-octet frame header. */
export const FRAME_HEADER_LENGTH = 9;
/** RFC 9113 §4.2: SETTINGS_MAX_FRAME_SIZE bounds. */
export const MIN_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 16_777_215;
/** RFC 9113 §6.9.1: a flow-control window never exceeds 2^31 - 1. */
export const MAX_WINDOW = 0x7fffffff;
/** RFC 9113 §3.4: the client connection preface. */
export const CONNECTION_PREFACE = new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** RFC 9113 §5.3.2 (deprecated priority scheme; still parsed). */
export interface PrioritySpec {
  exclusive: boolean;
  streamDependency: number;
  /** The weight field as sent, 0–255 (the weight is this plus 1). */
  weight: number;
}

export type Setting = readonly [id: number, value: number];

export type Http2Frame =
  | { type: 'DATA'; streamId: number; endStream: boolean; data: Uint8Array; padding?: number }
  | {
      type: 'HEADERS';
      streamId: number;
      endStream: boolean;
      endHeaders: boolean;
      priority?: PrioritySpec;
      headerBlockFragment: Uint8Array;
      padding?: number;
    }
  | { type: 'PRIORITY'; streamId: number; priority: PrioritySpec }
  | { type: 'RST_STREAM'; streamId: number; errorCode: number }
  | { type: 'SETTINGS'; ack: boolean; settings: Setting[] }
  | {
      type: 'PUSH_PROMISE';
      streamId: number;
      endHeaders: boolean;
      promisedStreamId: number;
      headerBlockFragment: Uint8Array;
      padding?: number;
    }
  | { type: 'PING'; ack: boolean; opaqueData: Uint8Array }
  | { type: 'GOAWAY'; lastStreamId: number; errorCode: number; debugData: Uint8Array }
  | { type: 'WINDOW_UPDATE'; streamId: number; windowSizeIncrement: number }
  | { type: 'CONTINUATION'; streamId: number; endHeaders: boolean; headerBlockFragment: Uint8Array }
  | { type: 'PRIORITY_UPDATE'; prioritizedStreamId: number; priorityFieldValue: string }
  | { type: 'UNKNOWN'; frameType: number; flags: number; streamId: number; payload: Uint8Array };

export type FrameTypeName = Http2Frame['type'];

export interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  streamId: number;
}

/** RFC 9113 §4.1; the reserved bit is ignored on receipt. */
export function decodeFrameHeader(b: Uint8Array, at = 0): FrameHeader {
  if (b.length - at < FRAME_HEADER_LENGTH)
    throw new Http2Error(ErrorCode.FRAME_SIZE_ERROR, 'truncated frame header', undefined, at);
  return {
    length: (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!,
    type: b[at + 3]!,
    flags: b[at + 4]!,
    streamId: ((b[at + 5]! & 0x7f) * 0x1000000 + ((b[at + 6]! << 16) | (b[at + 7]! << 8) | b[at + 8]!)) >>> 0,
  };
}

const u32 = (b: Uint8Array, at: number) =>
  (b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!)) >>> 0;

const conn = (code: number, reason: string, at = 0) => new Http2Error(code, reason, undefined, at);

/** Strips RFC 9113 §6.1 padding: returns [start, end) of the content. */
function unpad(p: Uint8Array, padded: boolean, prefix: number, type: string): [number, number, number?] {
  // RFC 9113 §4.2/§6.2: a payload too short for its fixed fields (Pad Length, the
  // priority fields, a Promised Stream ID) is a FRAME_SIZE_ERROR.
  const fixed = (padded ? 1 : 0) + prefix;
  if (p.length < fixed)
    throw conn(ErrorCode.FRAME_SIZE_ERROR, `${type}: payload shorter than its ${fixed} fixed octets`);
  if (!padded) return [prefix, p.length];
  const pad = p[0]!;
  // RFC 9113 §6.1/§6.2/§6.6: padding that is the length of the payload or more is a PROTOCOL_ERROR.
  if (1 + prefix + pad > p.length)
    throw conn(ErrorCode.PROTOCOL_ERROR, `${type}: padding exceeds the payload`);
  return [1 + prefix, p.length - pad, pad];
}

function decodePriority(p: Uint8Array, at: number): PrioritySpec {
  const dep = u32(p, at);
  return { exclusive: (dep & 0x80000000) !== 0, streamDependency: dep & 0x7fffffff, weight: p[at + 4]! };
}

/**
 * RFC 9113 §6.5.2, RFC 8441 §3, RFC 9218 §2.1: values outside a setting's range are errors
 * of the code the RFC names. Unknown settings are kept (and ignored by the connection).
 */
export function checkSetting(id: number, value: number): void {
  switch (id) {
    case SettingId.ENABLE_PUSH:
    case SettingId.ENABLE_CONNECT_PROTOCOL:
    case SettingId.NO_RFC7540_PRIORITIES:
      if (value > 1) throw conn(ErrorCode.PROTOCOL_ERROR, `setting 0x${id.toString(16)} must be 0 or 1`);
      break;
    case SettingId.INITIAL_WINDOW_SIZE:
      if (value > MAX_WINDOW)
        throw conn(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
      break;
    case SettingId.MAX_FRAME_SIZE:
      if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE)
        throw conn(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE outside 16384..16777215');
      break;
  }
}

/** Decodes one whole frame (header and payload, exactly). Throws Http2Error. */
export function decodeFrame(bytes: Uint8Array): Http2Frame {
  const h = decodeFrameHeader(bytes);
  if (bytes.length !== FRAME_HEADER_LENGTH + h.length)
    throw conn(ErrorCode.FRAME_SIZE_ERROR, `frame length ${h.length} but ${bytes.length - 9} payload octets`);
  return decodeFramePayload(h, bytes.subarray(FRAME_HEADER_LENGTH));
}

export function decodeFramePayload(h: FrameHeader, p: Uint8Array): Http2Frame {
  const { flags, streamId } = h;
  const needStream = (type: string) => {
    if (streamId === 0) throw conn(ErrorCode.PROTOCOL_ERROR, `${type} on stream 0`);
  };
  const needZero = (type: string) => {
    if (streamId !== 0) throw conn(ErrorCode.PROTOCOL_ERROR, `${type} on stream ${streamId}, not 0`);
  };
  switch (h.type) {
    case FrameType.DATA: {
      needStream('DATA'); // RFC 9113 §6.1
      const [s, e, pad] = unpad(p, (flags & Flags.PADDED) !== 0, 0, 'DATA');
      const f: Http2Frame = {
        type: 'DATA',
        streamId,
        endStream: (flags & Flags.END_STREAM) !== 0,
        data: p.subarray(s, e),
      };
      if (pad !== undefined) f.padding = pad;
      return f;
    }
    case FrameType.HEADERS: {
      needStream('HEADERS'); // RFC 9113 §6.2
      const hasPriority = (flags & Flags.PRIORITY) !== 0;
      const [s, e, pad] = unpad(p, (flags & Flags.PADDED) !== 0, hasPriority ? 5 : 0, 'HEADERS');
      const f: Http2Frame = {
        type: 'HEADERS',
        streamId,
        endStream: (flags & Flags.END_STREAM) !== 0,
        endHeaders: (flags & Flags.END_HEADERS) !== 0,
        headerBlockFragment: p.subarray(s, e),
      };
      if (hasPriority) f.priority = decodePriority(p, s - 5);
      if (pad !== undefined) f.padding = pad;
      return f;
    }
    case FrameType.PRIORITY: {
      needStream('PRIORITY'); // RFC 9113 §6.3
      if (p.length !== 5)
        throw new Http2Error(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY length is not 5', streamId);
      return { type: 'PRIORITY', streamId, priority: decodePriority(p, 0) };
    }
    case FrameType.RST_STREAM: {
      needStream('RST_STREAM'); // RFC 9113 §6.4
      if (p.length !== 4) throw conn(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length is not 4');
      return { type: 'RST_STREAM', streamId, errorCode: u32(p, 0) };
    }
    case FrameType.SETTINGS: {
      needZero('SETTINGS'); // RFC 9113 §6.5
      const ack = (flags & Flags.ACK) !== 0;
      if (ack && p.length !== 0) throw conn(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      if (p.length % 6 !== 0) throw conn(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6');
      const settings: Setting[] = [];
      for (let i = 0; i < p.length; i += 6) {
        const id = (p[i]! << 8) | p[i + 1]!;
        const value = u32(p, i + 2);
        checkSetting(id, value);
        settings.push([id, value]);
      }
      return { type: 'SETTINGS', ack, settings };
    }
    case FrameType.PUSH_PROMISE: {
      needStream('PUSH_PROMISE'); // RFC 9113 §6.6
      const [s, e, pad] = unpad(p, (flags & Flags.PADDED) !== 0, 4, 'PUSH_PROMISE');
      if (e < s) throw conn(ErrorCode.FRAME_SIZE_ERROR, 'PUSH_PROMISE too short');
      const f: Http2Frame = {
        type: 'PUSH_PROMISE',
        streamId,
        endHeaders: (flags & Flags.END_HEADERS) !== 0,
        promisedStreamId: u32(p, s - 4) & 0x7fffffff,
        headerBlockFragment: p.subarray(s, e),
      };
      if (pad !== undefined) f.padding = pad;
      return f;
    }
    case FrameType.PING: {
      needZero('PING'); // RFC 9113 §6.7
      if (p.length !== 8) throw conn(ErrorCode.FRAME_SIZE_ERROR, 'PING length is not 8');
      return { type: 'PING', ack: (flags & Flags.ACK) !== 0, opaqueData: p.slice() };
    }
    case FrameType.GOAWAY: {
      needZero('GOAWAY'); // RFC 9113 §6.8
      if (p.length < 8) throw conn(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8');
      return {
        type: 'GOAWAY',
        lastStreamId: u32(p, 0) & 0x7fffffff,
        errorCode: u32(p, 4),
        debugData: p.slice(8),
      };
    }
    case FrameType.WINDOW_UPDATE: {
      // RFC 9113 §6.9: wrong length is a connection FRAME_SIZE_ERROR; a zero increment is a
      // stream error on a stream and a connection error on stream 0.
      if (p.length !== 4) throw conn(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length is not 4');
      const windowSizeIncrement = u32(p, 0) & 0x7fffffff;
      if (windowSizeIncrement === 0) {
        if (streamId === 0) throw conn(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE increment 0');
        throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE increment 0', streamId);
      }
      return { type: 'WINDOW_UPDATE', streamId, windowSizeIncrement };
    }
    case FrameType.CONTINUATION: {
      needStream('CONTINUATION'); // RFC 9113 §6.10
      return {
        type: 'CONTINUATION',
        streamId,
        endHeaders: (flags & Flags.END_HEADERS) !== 0,
        headerBlockFragment: p,
      };
    }
    case FrameType.PRIORITY_UPDATE: {
      needZero('PRIORITY_UPDATE'); // RFC 9218 §7.1
      if (p.length < 4) throw conn(ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY_UPDATE shorter than 4');
      const prioritizedStreamId = u32(p, 0) & 0x7fffffff;
      if (prioritizedStreamId === 0) throw conn(ErrorCode.PROTOCOL_ERROR, 'PRIORITY_UPDATE for stream 0');
      return {
        type: 'PRIORITY_UPDATE',
        prioritizedStreamId,
        priorityFieldValue: Buffer.from(p.buffer, p.byteOffset + 4, p.length - 4).toString('latin1'),
      };
    }
    default:
      // RFC 9113 §5.5: unknown frame types are ignored (the connection drops them).
      return { type: 'UNKNOWN', frameType: h.type, flags, streamId, payload: p };
  }
}

// ---- encoding ------------------------------------------------------------------------------

function header(out: Uint8Array, length: number, type: number, flags: number, streamId: number): void {
  out[0] = length >>> 16;
  out[1] = length >>> 8;
  out[2] = length;
  out[3] = type;
  out[4] = flags;
  out[5] = (streamId >>> 24) & 0x7f;
  out[6] = streamId >>> 16;
  out[7] = streamId >>> 8;
  out[8] = streamId;
}

function put32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = v >>> 16;
  out[at + 2] = v >>> 8;
  out[at + 3] = v;
}

function frame(type: number, flags: number, streamId: number, payloadLength: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH + payloadLength);
  header(out, payloadLength, type, flags, streamId);
  return out;
}

/** A padded frame: pad length, prefix, content, zero padding (RFC 9113 §6.1). */
function padded(
  type: number,
  flags: number,
  streamId: number,
  prefix: number,
  content: Uint8Array,
  padding: number | undefined,
): { out: Uint8Array; at: number } {
  const padLen = padding === undefined ? 0 : 1 + padding;
  const out = frame(
    type,
    flags | (padding === undefined ? 0 : Flags.PADDED),
    streamId,
    padLen + prefix + content.length,
  );
  let at = FRAME_HEADER_LENGTH;
  if (padding !== undefined) out[at++] = padding;
  out.set(content, at + prefix);
  return { out, at };
}

function putPriority(out: Uint8Array, at: number, p: PrioritySpec): void {
  put32(out, at, ((p.exclusive ? 0x80000000 : 0) | (p.streamDependency & 0x7fffffff)) >>> 0);
  out[at + 4] = p.weight;
}

export function encodeFrame(f: Http2Frame): Uint8Array {
  switch (f.type) {
    case 'DATA':
      return padded(FrameType.DATA, f.endStream ? Flags.END_STREAM : 0, f.streamId, 0, f.data, f.padding).out;
    case 'HEADERS': {
      const flags =
        (f.endStream ? Flags.END_STREAM : 0) |
        (f.endHeaders ? Flags.END_HEADERS : 0) |
        (f.priority ? Flags.PRIORITY : 0);
      const { out, at } = padded(
        FrameType.HEADERS,
        flags,
        f.streamId,
        f.priority ? 5 : 0,
        f.headerBlockFragment,
        f.padding,
      );
      if (f.priority) putPriority(out, at, f.priority);
      return out;
    }
    case 'PRIORITY': {
      const out = frame(FrameType.PRIORITY, 0, f.streamId, 5);
      putPriority(out, 9, f.priority);
      return out;
    }
    case 'RST_STREAM': {
      const out = frame(FrameType.RST_STREAM, 0, f.streamId, 4);
      put32(out, 9, f.errorCode);
      return out;
    }
    case 'SETTINGS': {
      const out = frame(FrameType.SETTINGS, f.ack ? Flags.ACK : 0, 0, f.settings.length * 6);
      f.settings.forEach(([id, value], i) => {
        out[9 + i * 6] = id >>> 8;
        out[10 + i * 6] = id;
        put32(out, 11 + i * 6, value);
      });
      return out;
    }
    case 'PUSH_PROMISE': {
      const { out, at } = padded(
        FrameType.PUSH_PROMISE,
        f.endHeaders ? Flags.END_HEADERS : 0,
        f.streamId,
        4,
        f.headerBlockFragment,
        f.padding,
      );
      put32(out, at, f.promisedStreamId & 0x7fffffff);
      return out;
    }
    case 'PING': {
      const out = frame(FrameType.PING, f.ack ? Flags.ACK : 0, 0, 8);
      out.set(f.opaqueData.subarray(0, 8), 9);
      return out;
    }
    case 'GOAWAY': {
      const out = frame(FrameType.GOAWAY, 0, 0, 8 + f.debugData.length);
      put32(out, 9, f.lastStreamId & 0x7fffffff);
      put32(out, 13, f.errorCode);
      out.set(f.debugData, 17);
      return out;
    }
    case 'WINDOW_UPDATE': {
      const out = frame(FrameType.WINDOW_UPDATE, 0, f.streamId, 4);
      put32(out, 9, f.windowSizeIncrement & 0x7fffffff);
      return out;
    }
    case 'CONTINUATION': {
      const out = frame(
        FrameType.CONTINUATION,
        f.endHeaders ? Flags.END_HEADERS : 0,
        f.streamId,
        f.headerBlockFragment.length,
      );
      out.set(f.headerBlockFragment, 9);
      return out;
    }
    case 'PRIORITY_UPDATE': {
      const v = Buffer.from(f.priorityFieldValue, 'latin1');
      const out = frame(FrameType.PRIORITY_UPDATE, 0, 0, 4 + v.length);
      put32(out, 9, f.prioritizedStreamId & 0x7fffffff);
      out.set(v, 13);
      return out;
    }
    case 'UNKNOWN': {
      const out = frame(f.frameType, f.flags, f.streamId, f.payload.length);
      out.set(f.payload, 9);
      return out;
    }
  }
}

/** The 9-octet header of a DATA frame, for writing the payload without copying it. */
export function encodeDataHeader(streamId: number, length: number, endStream: boolean): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH);
  header(out, length, FrameType.DATA, endStream ? Flags.END_STREAM : 0, streamId);
  return out;
}

/** One-line summary for traces and the ladder. */
export function frameSummary(f: Http2Frame): string {
  switch (f.type) {
    case 'DATA':
      return `DATA s=${f.streamId} len=${f.data.length}${f.endStream ? ' END_STREAM' : ''}`;
    case 'HEADERS':
      return `HEADERS s=${f.streamId}${f.endStream ? ' END_STREAM' : ''}${f.endHeaders ? ' END_HEADERS' : ''}`;
    case 'SETTINGS':
      return f.ack ? 'SETTINGS ACK' : `SETTINGS ${f.settings.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'GOAWAY':
      return `GOAWAY last=${f.lastStreamId} code=${f.errorCode}`;
    case 'WINDOW_UPDATE':
      return `WINDOW_UPDATE s=${f.streamId} +${f.windowSizeIncrement}`;
    case 'RST_STREAM':
      return `RST_STREAM s=${f.streamId} code=${f.errorCode}`;
    case 'PING':
      return `PING${f.ack ? ' ACK' : ''}`;
    default:
      return f.type;
  }
}

/**
 * Splits a byte stream into frames (RFC 9113 §4.1). Frames longer than `maxFrameSize` (our
 * SETTINGS_MAX_FRAME_SIZE) are refused from the header alone, before their payload is
 * buffered (§4.2): the limit bounds this buffer.
 */
export class FrameReader {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private end = 0;
  constructor(public maxFrameSize = MIN_MAX_FRAME_SIZE) {}

  push(chunk: Uint8Array): void {
    if (this.start === this.end) {
      this.buf = chunk;
      this.start = 0;
      this.end = chunk.length;
      return;
    }
    const pending = this.end - this.start;
    const merged = new Uint8Array(pending + chunk.length);
    merged.set(this.buf.subarray(this.start, this.end));
    merged.set(chunk, pending);
    this.buf = merged;
    this.start = 0;
    this.end = merged.length;
  }

  get buffered(): number {
    return this.end - this.start;
  }

  /** The next complete frame's header and payload, or undefined until more bytes arrive. */
  next(): { header: FrameHeader; payload: Uint8Array } | undefined {
    if (this.end - this.start < FRAME_HEADER_LENGTH) return undefined;
    const header = decodeFrameHeader(this.buf, this.start);
    if (header.length > this.maxFrameSize)
      throw conn(
        ErrorCode.FRAME_SIZE_ERROR,
        `frame of ${header.length} octets exceeds SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`,
      );
    const total = FRAME_HEADER_LENGTH + header.length;
    if (this.end - this.start < total) return undefined;
    const payload = this.buf.subarray(this.start + FRAME_HEADER_LENGTH, this.start + total);
    this.start += total;
    return { header, payload };
  }
}
