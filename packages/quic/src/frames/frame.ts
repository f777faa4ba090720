import { ByteReader, ByteWriter, ParseError } from '@stepwire/wire';
import {
  readVarint,
  readVarintLimit,
  readVarintLimitAtMostPow2,
  readVarintWithLength,
  VARINT_MAX,
  varintLength,
  writeVarint,
} from '../packet/varint.ts';

/**
 * Every frame of RFC 9000 §19, plus DATAGRAM (RFC 9221 §4), as plain data.
 *
 * Frame types are the RFC's names. Fields are the RFC's field names in camelCase. A
 * frame whose wire form has variants (STREAM's OFF/LEN/FIN bits, ACK with ECN counts,
 * DATAGRAM with or without Length) says which variant it is, so decode(encode(x)) is x.
 *
 * Decoding failures are ParseErrors; a connection maps them to FRAME_ENCODING_ERROR
 * (RFC 9000 §12.4: "badly formatted frame"), which is what the RFC asks for in each case
 * the decoder checks below.
 */

const LAYER = 'quic';

/** Frame type codes (RFC 9000 §19, Table 3; RFC 9221 §4). */
export const FrameType = {
  PADDING: 0x00,
  PING: 0x01,
  ACK: 0x02,
  ACK_ECN: 0x03,
  RESET_STREAM: 0x04,
  STOP_SENDING: 0x05,
  CRYPTO: 0x06,
  NEW_TOKEN: 0x07,
  STREAM: 0x08, // 0x08..0x0f: OFF 0x04, LEN 0x02, FIN 0x01 (§19.8)
  MAX_DATA: 0x10,
  MAX_STREAM_DATA: 0x11,
  MAX_STREAMS_BIDI: 0x12,
  MAX_STREAMS_UNI: 0x13,
  DATA_BLOCKED: 0x14,
  STREAM_DATA_BLOCKED: 0x15,
  STREAMS_BLOCKED_BIDI: 0x16,
  STREAMS_BLOCKED_UNI: 0x17,
  NEW_CONNECTION_ID: 0x18,
  RETIRE_CONNECTION_ID: 0x19,
  PATH_CHALLENGE: 0x1a,
  PATH_RESPONSE: 0x1b,
  CONNECTION_CLOSE: 0x1c,
  CONNECTION_CLOSE_APPLICATION: 0x1d,
  HANDSHAKE_DONE: 0x1e,
  DATAGRAM: 0x30, // 0x30 without Length, 0x31 with Length (RFC 9221 §4)
} as const;

export const STREAM_OFF_BIT = 0x04;
export const STREAM_LEN_BIT = 0x02;
export const STREAM_FIN_BIT = 0x01;
export const DATAGRAM_LEN_BIT = 0x01;

/** RFC 9000 §19.11: a count of streams above 2^60 cannot be expressed as a stream ID. */
export const MAX_STREAMS_LIMIT = 2 ** 60;
export const STATELESS_RESET_TOKEN_LENGTH = 16;
export const PATH_DATA_LENGTH = 8;

/** §19.1: a run of consecutive PADDING bytes, kept as one value. */
export interface PaddingFrame {
  type: 'PADDING';
  length: number;
}
/** §19.2. */
export interface PingFrame {
  type: 'PING';
}
/** One Gap/ACK Range pair after the First ACK Range (§19.3.1). */
export interface AckRange {
  gap: number;
  ackRangeLength: number;
}
/** §19.3.2. */
export interface EcnCounts {
  ect0: number;
  ect1: number;
  ecnCe: number;
}
/** §19.3 (types 0x02 and 0x03). ackDelay is the encoded value, in units of 2^ack_delay_exponent µs. */
export interface AckFrame {
  type: 'ACK';
  largestAcknowledged: number;
  ackDelay: number;
  firstAckRange: number;
  ackRanges: AckRange[];
  /** Present for type 0x03. */
  ecnCounts: EcnCounts | undefined;
}
/** §19.4. */
export interface ResetStreamFrame {
  type: 'RESET_STREAM';
  streamId: number;
  applicationProtocolErrorCode: number;
  finalSize: number;
}
/** §19.5. */
export interface StopSendingFrame {
  type: 'STOP_SENDING';
  streamId: number;
  applicationProtocolErrorCode: number;
}
/** §19.6. */
export interface CryptoFrame {
  type: 'CRYPTO';
  offset: number;
  data: Uint8Array;
}
/** §19.7. */
export interface NewTokenFrame {
  type: 'NEW_TOKEN';
  token: Uint8Array;
}
/** §19.8. Without Length the data runs to the end of the packet, so the frame must be last. */
export interface StreamFrame {
  type: 'STREAM';
  streamId: number;
  offset: number;
  /** Whether the OFF bit is set; when false the offset is 0. */
  hasOffset: boolean;
  /** Whether the LEN bit is set. */
  hasLength: boolean;
  fin: boolean;
  data: Uint8Array;
}
/** §19.9. */
export interface MaxDataFrame {
  type: 'MAX_DATA';
  maximumData: number;
}
/** §19.10. */
export interface MaxStreamDataFrame {
  type: 'MAX_STREAM_DATA';
  streamId: number;
  maximumStreamData: number;
}
/** §19.11 (0x12 bidirectional, 0x13 unidirectional). */
export interface MaxStreamsFrame {
  type: 'MAX_STREAMS';
  bidirectional: boolean;
  maximumStreams: number;
}
/** §19.12. */
export interface DataBlockedFrame {
  type: 'DATA_BLOCKED';
  maximumData: number;
}
/** §19.13. */
export interface StreamDataBlockedFrame {
  type: 'STREAM_DATA_BLOCKED';
  streamId: number;
  maximumStreamData: number;
}
/** §19.14. */
export interface StreamsBlockedFrame {
  type: 'STREAMS_BLOCKED';
  bidirectional: boolean;
  maximumStreams: number;
}
/** §19.15. */
export interface NewConnectionIdFrame {
  type: 'NEW_CONNECTION_ID';
  sequenceNumber: number;
  retirePriorTo: number;
  connectionId: Uint8Array;
  statelessResetToken: Uint8Array;
}
/** §19.16. */
export interface RetireConnectionIdFrame {
  type: 'RETIRE_CONNECTION_ID';
  sequenceNumber: number;
}
/** §19.17. */
export interface PathChallengeFrame {
  type: 'PATH_CHALLENGE';
  data: Uint8Array;
}
/** §19.18. */
export interface PathResponseFrame {
  type: 'PATH_RESPONSE';
  data: Uint8Array;
}
/** §19.19, type 0x1c: an error of the QUIC layer, naming the frame type that caused it (0 if unknown). */
export interface ConnectionCloseFrame {
  type: 'CONNECTION_CLOSE';
  errorCode: number;
  frameType: number;
  reasonPhrase: Uint8Array;
}
/** §19.19, type 0x1d: an error of the application. */
export interface ApplicationCloseFrame {
  type: 'CONNECTION_CLOSE_APPLICATION';
  errorCode: number;
  reasonPhrase: Uint8Array;
}
/** §19.20. */
export interface HandshakeDoneFrame {
  type: 'HANDSHAKE_DONE';
}
/** RFC 9221 §4. */
export interface DatagramFrame {
  type: 'DATAGRAM';
  hasLength: boolean;
  data: Uint8Array;
}

export type Frame =
  | PaddingFrame
  | PingFrame
  | AckFrame
  | ResetStreamFrame
  | StopSendingFrame
  | CryptoFrame
  | NewTokenFrame
  | StreamFrame
  | MaxDataFrame
  | MaxStreamDataFrame
  | MaxStreamsFrame
  | DataBlockedFrame
  | StreamDataBlockedFrame
  | StreamsBlockedFrame
  | NewConnectionIdFrame
  | RetireConnectionIdFrame
  | PathChallengeFrame
  | PathResponseFrame
  | ConnectionCloseFrame
  | ApplicationCloseFrame
  | HandshakeDoneFrame
  | DatagramFrame;

export type FrameName = Frame['type'];

/** The wire type code of a frame value (the variant bits included). */
export function frameTypeCode(f: Frame): number {
  switch (f.type) {
    case 'ACK':
      return f.ecnCounts ? FrameType.ACK_ECN : FrameType.ACK;
    case 'STREAM':
      return (
        FrameType.STREAM |
        (f.hasOffset ? STREAM_OFF_BIT : 0) |
        (f.hasLength ? STREAM_LEN_BIT : 0) |
        (f.fin ? STREAM_FIN_BIT : 0)
      );
    case 'MAX_STREAMS':
      return f.bidirectional ? FrameType.MAX_STREAMS_BIDI : FrameType.MAX_STREAMS_UNI;
    case 'STREAMS_BLOCKED':
      return f.bidirectional ? FrameType.STREAMS_BLOCKED_BIDI : FrameType.STREAMS_BLOCKED_UNI;
    case 'DATAGRAM':
      return FrameType.DATAGRAM | (f.hasLength ? DATAGRAM_LEN_BIT : 0);
    default:
      return FrameType[f.type];
  }
}

// ---- ACK ranges as packet-number intervals ----

/** An inclusive range of acknowledged packet numbers. */
export interface PacketRange {
  smallest: number;
  largest: number;
}

/**
 * RFC 9000 §19.3.1: the acknowledged ranges, largest first. Each Gap is one less than the
 * number of unacknowledged packets between two ranges, each ACK Range Length one less
 * than the number of packets in the range.
 */
export function ackFrameRanges(
  f: Pick<AckFrame, 'largestAcknowledged' | 'firstAckRange' | 'ackRanges'>,
): PacketRange[] {
  const out: PacketRange[] = [];
  let largest = f.largestAcknowledged;
  let smallest = largest - f.firstAckRange;
  out.push({ smallest, largest });
  for (const r of f.ackRanges) {
    largest = smallest - r.gap - 2;
    smallest = largest - r.ackRangeLength;
    out.push({ smallest, largest });
  }
  return out;
}

/** The inverse of ackFrameRanges: ranges must be disjoint, non-adjacent and sorted largest first. */
export function ackFrameFromRanges(
  ranges: readonly PacketRange[],
  ackDelay: number,
  ecnCounts?: EcnCounts,
): AckFrame {
  const first = ranges[0];
  if (!first) throw new RangeError('an ACK frame acknowledges at least one packet');
  const ackRanges: AckRange[] = [];
  let prev = first;
  for (let i = 1; i < ranges.length; i++) {
    const r = ranges[i]!;
    const gap = prev.smallest - r.largest - 2;
    if (gap < 0 || r.smallest > r.largest || r.smallest < 0)
      throw new RangeError('ACK ranges must be sorted, disjoint and non-adjacent');
    ackRanges.push({ gap, ackRangeLength: r.largest - r.smallest });
    prev = r;
  }
  return {
    type: 'ACK',
    largestAcknowledged: first.largest,
    ackDelay,
    firstAckRange: first.largest - first.smallest,
    ackRanges,
    ecnCounts,
  };
}

// ---- encoding ----

function writeBytesWithLength(w: ByteWriter, b: Uint8Array): void {
  writeVarint(w, b.length);
  w.bytes(b);
}

function checkFixed(b: Uint8Array, n: number, name: string): void {
  if (b.length !== n) throw new RangeError(`${name} must be ${n} bytes`);
}

export function writeFrame(w: ByteWriter, f: Frame): void {
  if (f.type === 'PADDING') {
    if (f.length < 1) throw new RangeError('PADDING length must be at least 1');
    w.zeros(f.length);
    return;
  }
  writeVarint(w, frameTypeCode(f));
  switch (f.type) {
    case 'PING':
    case 'HANDSHAKE_DONE':
      return;
    case 'ACK':
      writeVarint(w, f.largestAcknowledged);
      writeVarint(w, f.ackDelay);
      writeVarint(w, f.ackRanges.length);
      writeVarint(w, f.firstAckRange);
      for (const r of f.ackRanges) {
        writeVarint(w, r.gap);
        writeVarint(w, r.ackRangeLength);
      }
      if (f.ecnCounts) {
        writeVarint(w, f.ecnCounts.ect0);
        writeVarint(w, f.ecnCounts.ect1);
        writeVarint(w, f.ecnCounts.ecnCe);
      }
      return;
    case 'RESET_STREAM':
      writeVarint(w, f.streamId);
      writeVarint(w, f.applicationProtocolErrorCode);
      writeVarint(w, f.finalSize);
      return;
    case 'STOP_SENDING':
      writeVarint(w, f.streamId);
      writeVarint(w, f.applicationProtocolErrorCode);
      return;
    case 'CRYPTO':
      writeVarint(w, f.offset);
      writeBytesWithLength(w, f.data);
      return;
    case 'NEW_TOKEN':
      if (f.token.length === 0) throw new RangeError('NEW_TOKEN carries a non-empty token (RFC 9000 §19.7)');
      writeBytesWithLength(w, f.token);
      return;
    case 'STREAM':
      if (!f.hasOffset && f.offset !== 0) throw new RangeError('a STREAM frame without OFF has offset 0');
      writeVarint(w, f.streamId);
      if (f.hasOffset) writeVarint(w, f.offset);
      if (f.hasLength) writeVarint(w, f.data.length);
      w.bytes(f.data);
      return;
    case 'MAX_DATA':
    case 'DATA_BLOCKED':
      writeVarint(w, f.maximumData);
      return;
    case 'MAX_STREAM_DATA':
    case 'STREAM_DATA_BLOCKED':
      writeVarint(w, f.streamId);
      writeVarint(w, f.maximumStreamData);
      return;
    case 'MAX_STREAMS':
    case 'STREAMS_BLOCKED':
      if (f.maximumStreams > MAX_STREAMS_LIMIT)
        throw new RangeError('Maximum Streams exceeds 2^60 (RFC 9000 §19.11)');
      writeVarint(w, f.maximumStreams);
      return;
    case 'NEW_CONNECTION_ID':
      if (f.connectionId.length < 1 || f.connectionId.length > 20)
        throw new RangeError('connection ID must be 1..20 bytes');
      checkFixed(f.statelessResetToken, STATELESS_RESET_TOKEN_LENGTH, 'statelessResetToken');
      writeVarint(w, f.sequenceNumber);
      writeVarint(w, f.retirePriorTo);
      w.u8(f.connectionId.length).bytes(f.connectionId);
      w.bytes(f.statelessResetToken);
      return;
    case 'RETIRE_CONNECTION_ID':
      writeVarint(w, f.sequenceNumber);
      return;
    case 'PATH_CHALLENGE':
    case 'PATH_RESPONSE':
      checkFixed(f.data, PATH_DATA_LENGTH, 'data');
      w.bytes(f.data);
      return;
    case 'CONNECTION_CLOSE':
      writeVarint(w, f.errorCode);
      writeVarint(w, f.frameType);
      writeBytesWithLength(w, f.reasonPhrase);
      return;
    case 'CONNECTION_CLOSE_APPLICATION':
      writeVarint(w, f.errorCode);
      writeBytesWithLength(w, f.reasonPhrase);
      return;
    case 'DATAGRAM':
      if (f.hasLength) writeVarint(w, f.data.length);
      w.bytes(f.data);
      return;
  }
}

export function encodeFrame(f: Frame): Uint8Array {
  const w = new ByteWriter(32);
  writeFrame(w, f);
  return w.finish().slice();
}

/**
 * A packet payload. A frame that runs to the end of the packet (STREAM or DATAGRAM without
 * Length) can only be last: anything after it would be read as its data.
 */
export function encodeFrames(frames: readonly Frame[]): Uint8Array {
  // Sized up front so a full packet is written without the writer growing (each growth
  // copies): the bulk of a payload is STREAM/CRYPTO/DATAGRAM data and PADDING, known exactly;
  // every frame's fields take a few varints more.
  let size = 0;
  for (const f of frames) {
    size += 24;
    if (f.type === 'STREAM' || f.type === 'CRYPTO' || f.type === 'DATAGRAM') size += f.data.length;
    else if (f.type === 'PADDING') size += f.length;
    else if (f.type === 'ACK') size += 16 * f.ackRanges.length;
  }
  const w = new ByteWriter(size);
  frames.forEach((f, i) => {
    if (i < frames.length - 1 && (f.type === 'STREAM' || f.type === 'DATAGRAM') && !f.hasLength) {
      throw new RangeError(`a ${f.type} frame without Length must be the last frame of a packet`);
    }
    if (f.type === 'PADDING' && frames[i + 1]?.type === 'PADDING') {
      throw new RangeError('adjacent PADDING frames are one run of padding');
    }
    writeFrame(w, f);
  });
  // The writer's buffer is ours alone: its view is the payload, no copy (a few spare bytes
  // of estimate ride along unseen).
  return w.finish();
}

// ---- decoding ----

function readBytesWithLength(r: ByteReader, lengthField: string, field: string, view = false): Uint8Array {
  const at = r.offset;
  const n = readVarint(r, lengthField);
  if (n > r.remaining) r.fail(lengthField, `length ${n} exceeds the ${r.remaining} byte(s) left`, at);
  return view ? r.bytesView(n, field) : r.copy(n, field);
}

/** RFC 9000 §19.8 and §19.6: offset + length may not exceed 2^62-1. */
function checkEndOffset(r: ByteReader, offset: number, length: number, field: string, at: number): void {
  if (offset + length > VARINT_MAX) r.fail(field, 'offset + length exceeds 2^62-1', at);
}

/**
 * Reads one frame at the reader's position. With `view`, the data of STREAM, CRYPTO and
 * DATAGRAM frames is a view into the reader's bytes rather than a copy (see decodeFrames).
 */
export function readFrame(r: ByteReader, view = false): Frame {
  const start = r.offset;
  const { value: type, length: typeLength } = readVarintWithLength(r, 'frameType');
  if (type === FrameType.PADDING) {
    // §19.1: consecutive PADDING bytes are one value here.
    let length = 1;
    while (!r.atEnd && r.bytes[r.offset] === 0) {
      r.skip(1, 'padding');
      length++;
    }
    return { type: 'PADDING', length };
  }
  // RFC 9000 §12.4: "a frame type MUST use the shortest possible encoding".
  if (typeLength !== varintLength(type)) {
    r.fail('frameType', `frame type 0x${type.toString(16)} not minimally encoded (RFC 9000 §12.4)`, start);
  }
  switch (type) {
    case FrameType.PING:
      return { type: 'PING' };
    case FrameType.HANDSHAKE_DONE:
      return { type: 'HANDSHAKE_DONE' };
    case FrameType.ACK:
    case FrameType.ACK_ECN: {
      const largestAcknowledged = readVarint(r, 'largestAcknowledged');
      const ackDelay = readVarintLimit(r, 'ackDelay');
      const countAt = r.offset;
      const ackRangeCount = readVarint(r, 'ackRangeCount');
      // Each range takes at least two bytes: a count beyond that is a lie, rejected before looping.
      if (ackRangeCount > r.remaining / 2)
        r.fail('ackRangeCount', `${ackRangeCount} ranges cannot fit`, countAt);
      const firstAt = r.offset;
      const firstAckRange = readVarint(r, 'firstAckRange');
      // §19.3.1: a computed packet number below zero is a FRAME_ENCODING_ERROR.
      let smallest = largestAcknowledged - firstAckRange;
      if (smallest < 0) r.fail('firstAckRange', 'acknowledges a packet number below 0', firstAt);
      const ackRanges: AckRange[] = [];
      for (let i = 0; i < ackRangeCount; i++) {
        const at = r.offset;
        const gap = readVarint(r, 'gap');
        const ackRangeLength = readVarint(r, 'ackRangeLength');
        const largest = smallest - gap - 2;
        smallest = largest - ackRangeLength;
        if (smallest < 0) r.fail('ackRange', 'acknowledges a packet number below 0', at);
        ackRanges.push({ gap, ackRangeLength });
      }
      let ecnCounts: EcnCounts | undefined;
      if (type === FrameType.ACK_ECN) {
        ecnCounts = {
          ect0: readVarint(r, 'ect0Count'),
          ect1: readVarint(r, 'ect1Count'),
          ecnCe: readVarint(r, 'ecnCeCount'),
        };
      }
      return { type: 'ACK', largestAcknowledged, ackDelay, firstAckRange, ackRanges, ecnCounts };
    }
    case FrameType.RESET_STREAM:
      return {
        type: 'RESET_STREAM',
        streamId: readVarint(r, 'streamId'),
        applicationProtocolErrorCode: readVarint(r, 'applicationProtocolErrorCode'),
        finalSize: readVarint(r, 'finalSize'),
      };
    case FrameType.STOP_SENDING:
      return {
        type: 'STOP_SENDING',
        streamId: readVarint(r, 'streamId'),
        applicationProtocolErrorCode: readVarint(r, 'applicationProtocolErrorCode'),
      };
    case FrameType.CRYPTO: {
      const at = r.offset;
      const offset = readVarint(r, 'offset');
      const data = readBytesWithLength(r, 'length', 'cryptoData', view);
      checkEndOffset(r, offset, data.length, 'offset', at);
      return { type: 'CRYPTO', offset, data };
    }
    case FrameType.NEW_TOKEN: {
      const at = r.offset;
      const token = readBytesWithLength(r, 'tokenLength', 'token');
      // §19.7: an empty token is a FRAME_ENCODING_ERROR.
      if (token.length === 0) r.fail('tokenLength', 'NEW_TOKEN with an empty token (RFC 9000 §19.7)', at);
      return { type: 'NEW_TOKEN', token };
    }
    case FrameType.MAX_DATA:
      return { type: 'MAX_DATA', maximumData: readVarintLimit(r, 'maximumData') };
    case FrameType.MAX_STREAM_DATA:
      return {
        type: 'MAX_STREAM_DATA',
        streamId: readVarint(r, 'streamId'),
        maximumStreamData: readVarintLimit(r, 'maximumStreamData'),
      };
    case FrameType.MAX_STREAMS_BIDI:
    case FrameType.MAX_STREAMS_UNI:
    case FrameType.STREAMS_BLOCKED_BIDI:
    case FrameType.STREAMS_BLOCKED_UNI: {
      const at = r.offset;
      const maximumStreams = readVarintLimitAtMostPow2(r, 'maximumStreams', 60);
      // §19.11, §19.14: a value above 2^60 is a FRAME_ENCODING_ERROR.
      if (maximumStreams === undefined) return r.fail('maximumStreams', 'exceeds 2^60 (RFC 9000 §19.11)', at);
      const bidirectional = type === FrameType.MAX_STREAMS_BIDI || type === FrameType.STREAMS_BLOCKED_BIDI;
      const name = type <= FrameType.MAX_STREAMS_UNI ? 'MAX_STREAMS' : 'STREAMS_BLOCKED';
      return { type: name, bidirectional, maximumStreams };
    }
    case FrameType.DATA_BLOCKED:
      return { type: 'DATA_BLOCKED', maximumData: readVarintLimit(r, 'maximumData') };
    case FrameType.STREAM_DATA_BLOCKED:
      return {
        type: 'STREAM_DATA_BLOCKED',
        streamId: readVarint(r, 'streamId'),
        maximumStreamData: readVarintLimit(r, 'maximumStreamData'),
      };
    case FrameType.NEW_CONNECTION_ID: {
      const sequenceNumber = readVarint(r, 'sequenceNumber');
      const rptAt = r.offset;
      const retirePriorTo = readVarint(r, 'retirePriorTo');
      // §19.15: Retire Prior To greater than Sequence Number is a FRAME_ENCODING_ERROR.
      if (retirePriorTo > sequenceNumber)
        r.fail('retirePriorTo', 'exceeds Sequence Number (RFC 9000 §19.15)', rptAt);
      const lenAt = r.offset;
      const len = r.u8('length');
      // §19.15: a length below 1 or above 20 is a FRAME_ENCODING_ERROR.
      if (len < 1 || len > 20)
        r.fail('length', `connection ID length ${len} is not 1..20 (RFC 9000 §19.15)`, lenAt);
      const connectionId = r.copy(len, 'connectionId');
      const statelessResetToken = r.copy(STATELESS_RESET_TOKEN_LENGTH, 'statelessResetToken');
      return { type: 'NEW_CONNECTION_ID', sequenceNumber, retirePriorTo, connectionId, statelessResetToken };
    }
    case FrameType.RETIRE_CONNECTION_ID:
      return { type: 'RETIRE_CONNECTION_ID', sequenceNumber: readVarint(r, 'sequenceNumber') };
    case FrameType.PATH_CHALLENGE:
      return { type: 'PATH_CHALLENGE', data: r.copy(PATH_DATA_LENGTH, 'data') };
    case FrameType.PATH_RESPONSE:
      return { type: 'PATH_RESPONSE', data: r.copy(PATH_DATA_LENGTH, 'data') };
    case FrameType.CONNECTION_CLOSE:
      return {
        type: 'CONNECTION_CLOSE',
        errorCode: readVarint(r, 'errorCode'),
        frameType: readVarint(r, 'frameType'),
        reasonPhrase: readBytesWithLength(r, 'reasonPhraseLength', 'reasonPhrase'),
      };
    case FrameType.CONNECTION_CLOSE_APPLICATION:
      return {
        type: 'CONNECTION_CLOSE_APPLICATION',
        errorCode: readVarint(r, 'errorCode'),
        reasonPhrase: readBytesWithLength(r, 'reasonPhraseLength', 'reasonPhrase'),
      };
    case FrameType.DATAGRAM:
      return {
        type: 'DATAGRAM',
        hasLength: false,
        data: view ? r.rest('datagramData') : r.copy(r.remaining, 'datagramData'),
      };
    case FrameType.DATAGRAM | DATAGRAM_LEN_BIT:
      return {
        type: 'DATAGRAM',
        hasLength: true,
        data: readBytesWithLength(r, 'length', 'datagramData', view),
      };
  }
  if (type >= FrameType.STREAM && type <= (FrameType.STREAM | 0x07)) {
    const streamId = readVarint(r, 'streamId');
    const hasOffset = (type & STREAM_OFF_BIT) !== 0;
    const hasLength = (type & STREAM_LEN_BIT) !== 0;
    const at = r.offset;
    const offset = hasOffset ? readVarint(r, 'offset') : 0;
    const data = hasLength
      ? readBytesWithLength(r, 'length', 'streamData', view)
      : view
        ? r.rest('streamData')
        : r.copy(r.remaining, 'streamData');
    checkEndOffset(r, offset, data.length, 'offset', at);
    return {
      type: 'STREAM',
      streamId,
      offset,
      hasOffset,
      hasLength,
      fin: (type & STREAM_FIN_BIT) !== 0,
      data,
    };
  }
  // §12.4: an unknown frame type is a FRAME_ENCODING_ERROR.
  return r.fail('frameType', `unknown frame type 0x${type.toString(16)}`, start);
}

export function decodeFrame(bytes: Uint8Array): Frame {
  const r = new ByteReader(bytes, LAYER);
  const f = readFrame(r);
  r.end('frame');
  return f;
}

/**
 * The frames of a packet payload. RFC 9000 §12.4: "The payload of a packet that contains
 * frames MUST contain at least one frame"; an empty payload is a PROTOCOL_VIOLATION.
 *
 * With `view`, STREAM, CRYPTO and DATAGRAM data are views into `payload`, not copies: for a
 * caller that owns the payload and never reuses it (a freshly decrypted packet), which saves
 * a copy of every byte received. Without it every field is a copy, safe to keep whatever
 * happens to `payload`.
 */
export function decodeFrames(payload: Uint8Array, base = 0, view = false): Frame[] {
  const r = new ByteReader(payload, LAYER, base);
  if (r.atEnd)
    throw new ParseError(LAYER, 'payload', base, 'a packet contains at least one frame (RFC 9000 §12.4)');
  const out: Frame[] = [];
  while (!r.atEnd) out.push(readFrame(r, view));
  return out;
}
