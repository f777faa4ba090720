import { ParseError } from '@stepwire/wire';

/**
 * The WebSocket base framing protocol (RFC 6455 §5.2):
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-------+-+-------------+-------------------------------+
 *     |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *     |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *     |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 *     | |1|2|3|       |K|             |                               |
 *     +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *     |     Extended payload length continued, if payload len == 127  |
 *     + - - - - - - - - - - - - - - - +-------------------------------+
 *     |                               |Masking-key, if MASK set to 1  |
 *     +-------------------------------+-------------------------------+
 *     | Masking-key (continued)       |          Payload Data         |
 *     +-------------------------------- - - - - - - - - - - - - - - - +
 *
 * The plain value holds the *unmasked* payload and the masking key (when MASK is 1): the
 * encoder masks, the decoder unmasks, so decode(encode(x)) equals x and a reader of the
 * value sees the application data. Whether an opcode is defined, whether a control frame
 * is short and final, whether masking is right for the sender's role: those are rules of
 * the connection (RFC 6455 §5.1, §5.5), checked there and answered with a close code.
 */
export interface WebSocketFrame {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  /** 4 bits (RFC 6455 §5.2); see `Opcode` for the defined ones. */
  opcode: number;
  /** 4 bytes when the frame is masked (every client-to-server frame, RFC 6455 §5.3). */
  maskingKey?: Uint8Array | undefined;
  /** Application data, unmasked. */
  payload: Uint8Array;
}

/** RFC 6455 §5.2 and §11.8 (the opcode registry). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

export const OPCODE_NAMES: Record<number, string> = {
  0: 'CONT',
  1: 'TEXT',
  2: 'BINARY',
  8: 'CLOSE',
  9: 'PING',
  10: 'PONG',
};

/** Opcodes 0x8..0xF are control frames (RFC 6455 §5.5). */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** Defined opcodes; 0x3-0x7 and 0xB-0xF are reserved (RFC 6455 §5.2). */
export function isDefinedOpcode(opcode: number): boolean {
  return opcode in OPCODE_NAMES;
}

/** Control frames carry at most 125 bytes of payload (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/** The 64-bit length's most significant bit MUST be 0 (RFC 6455 §5.2); we also stop at 2^53. */
const MAX_ENCODABLE = Number.MAX_SAFE_INTEGER;

/** Field offsets of the fixed header (RFC 6455 §5.2). */
const field = {
  FLAGS_OPCODE: 0,
  MASK_LEN: 1,
  EXTENDED_LEN: 2,
} as const;

const LAYER = 'websocket';

/** The header of a frame as read off the wire, before its payload arrives. */
export interface WebSocketFrameHeader {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  opcode: number;
  maskingKey: Uint8Array | undefined;
  payloadLength: number;
  /** Bytes of header (2 to 14) before the payload starts. */
  headerLength: number;
}

/**
 * XOR `data` with the masking key, in place, as if `data` started `offset` bytes into the
 * payload (RFC 6455 §5.3: octet i is XORed with key[i mod 4]). Masking is its own inverse.
 */
export function applyMask(data: Uint8Array, key: Uint8Array, offset = 0): Uint8Array {
  const k0 = key[offset & 3] ?? 0;
  const k1 = key[(offset + 1) & 3] ?? 0;
  const k2 = key[(offset + 2) & 3] ?? 0;
  const k3 = key[(offset + 3) & 3] ?? 0;
  const n = data.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    data[i] = (data[i] as number) ^ k0;
    data[i + 1] = (data[i + 1] as number) ^ k1;
    data[i + 2] = (data[i + 2] as number) ^ k2;
    data[i + 3] = (data[i + 3] as number) ^ k3;
  }
  const tail = [k0, k1, k2, k3];
  for (let j = 0; i < n; i++, j++) data[i] = (data[i] as number) ^ (tail[j] as number);
  return data;
}

/**
 * Read a frame header from the start of `bytes`. Returns undefined while the header is
 * still incomplete (a stream parser waits for more bytes), throws ParseError when the
 * bytes can never be a header.
 */
export function decodeFrameHeader(bytes: Uint8Array, base = 0): WebSocketFrameHeader | undefined {
  if (bytes.length < 2) return undefined;
  const b0 = bytes[field.FLAGS_OPCODE] as number;
  const b1 = bytes[field.MASK_LEN] as number;
  const masked = (b1 & 0x80) !== 0;
  const len7 = b1 & 0x7f;
  let pos: number = field.EXTENDED_LEN;
  let payloadLength = len7;
  if (len7 === 126) {
    if (bytes.length < pos + 2) return undefined;
    payloadLength = ((bytes[pos] as number) << 8) | (bytes[pos + 1] as number);
    // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
    if (payloadLength < 126) {
      throw new ParseError(LAYER, 'payloadLength', base + pos, `${payloadLength} in a 16-bit length`);
    }
    pos += 2;
  } else if (len7 === 127) {
    if (bytes.length < pos + 8) return undefined;
    const hi =
      (((bytes[pos] as number) << 24) |
        ((bytes[pos + 1] as number) << 16) |
        ((bytes[pos + 2] as number) << 8) |
        (bytes[pos + 3] as number)) >>>
      0;
    const lo =
      (((bytes[pos + 4] as number) << 24) |
        ((bytes[pos + 5] as number) << 16) |
        ((bytes[pos + 6] as number) << 8) |
        (bytes[pos + 7] as number)) >>>
      0;
    // RFC 6455 §5.2: "the most significant bit MUST be 0".
    if (hi & 0x80000000) throw new ParseError(LAYER, 'payloadLength', base + pos, 'most significant bit set');
    if (hi > 0x1fffff) throw new ParseError(LAYER, 'payloadLength', base + pos, 'length past 2^53');
    payloadLength = hi * 0x100000000 + lo;
    if (payloadLength <= 0xffff) {
      throw new ParseError(LAYER, 'payloadLength', base + pos, `${payloadLength} in a 64-bit length`);
    }
    pos += 8;
  }
  let maskingKey: Uint8Array | undefined;
  if (masked) {
    if (bytes.length < pos + 4) return undefined;
    maskingKey = bytes.slice(pos, pos + 4);
    pos += 4;
  }
  return {
    fin: (b0 & 0x80) !== 0,
    rsv1: (b0 & 0x40) !== 0,
    rsv2: (b0 & 0x20) !== 0,
    rsv3: (b0 & 0x10) !== 0,
    opcode: b0 & 0x0f,
    maskingKey,
    payloadLength,
    headerLength: pos,
  };
}

/** Decode exactly one frame; trailing or missing bytes are a ParseError. */
export function decodeFrame(bytes: Uint8Array): WebSocketFrame {
  const h = decodeFrameHeader(bytes);
  if (!h) throw new ParseError(LAYER, 'header', bytes.length, 'truncated frame header');
  const end = h.headerLength + h.payloadLength;
  if (bytes.length < end) {
    throw new ParseError(LAYER, 'payload', bytes.length, `needs ${end - bytes.length} more byte(s)`);
  }
  if (bytes.length > end)
    throw new ParseError(LAYER, 'payload', end, `${bytes.length - end} trailing byte(s)`);
  const payload = bytes.slice(h.headerLength, end);
  if (h.maskingKey) applyMask(payload, h.maskingKey);
  return {
    fin: h.fin,
    rsv1: h.rsv1,
    rsv2: h.rsv2,
    rsv3: h.rsv3,
    opcode: h.opcode,
    maskingKey: h.maskingKey,
    payload,
  };
}

/** The header bytes of a frame whose payload is `payloadLength` bytes. */
export function encodeFrameHeader(f: Omit<WebSocketFrame, 'payload'>, payloadLength: number): Uint8Array {
  if (!Number.isInteger(f.opcode) || f.opcode < 0 || f.opcode > 0xf) {
    throw new RangeError(`opcode ${f.opcode} is not 4 bits (RFC 6455 §5.2)`);
  }
  if (f.maskingKey && f.maskingKey.length !== 4) {
    throw new RangeError('a masking key is 4 bytes (RFC 6455 §5.3)');
  }
  if (payloadLength > MAX_ENCODABLE) throw new RangeError('payload too long');
  const ext = payloadLength < 126 ? 0 : payloadLength <= 0xffff ? 2 : 8;
  const out = new Uint8Array(2 + ext + (f.maskingKey ? 4 : 0));
  out[0] = (f.fin ? 0x80 : 0) | (f.rsv1 ? 0x40 : 0) | (f.rsv2 ? 0x20 : 0) | (f.rsv3 ? 0x10 : 0) | f.opcode;
  const maskBit = f.maskingKey ? 0x80 : 0;
  if (ext === 0) {
    out[1] = maskBit | payloadLength;
  } else if (ext === 2) {
    out[1] = maskBit | 126;
    out[2] = payloadLength >>> 8;
    out[3] = payloadLength & 0xff;
  } else {
    out[1] = maskBit | 127;
    const hi = Math.floor(payloadLength / 0x100000000);
    const lo = payloadLength >>> 0;
    new DataView(out.buffer).setUint32(2, hi);
    new DataView(out.buffer).setUint32(6, lo);
  }
  if (f.maskingKey) out.set(f.maskingKey, 2 + ext);
  return out;
}

/** Encode a frame: header, then the payload masked with `maskingKey` when one is given. */
export function encodeFrame(f: WebSocketFrame): Uint8Array {
  const header = encodeFrameHeader(f, f.payload.length);
  const out = new Uint8Array(header.length + f.payload.length);
  out.set(header);
  out.set(f.payload, header.length);
  if (f.maskingKey) applyMask(out.subarray(header.length), f.maskingKey);
  return out;
}

/** A one-line summary for traces, e.g. 'TEXT fin len=5 masked'. */
export function summarizeFrame(
  f: Pick<WebSocketFrame, 'fin' | 'rsv1' | 'opcode' | 'maskingKey'>,
  len: number,
): string {
  const name = OPCODE_NAMES[f.opcode] ?? `0x${f.opcode.toString(16)}`;
  return `${name}${f.fin ? ' fin' : ''}${f.rsv1 ? ' rsv1' : ''} len=${len}${f.maskingKey ? ' masked' : ''}`;
}
