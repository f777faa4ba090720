import {
  finishChecksum,
  ParseError,
  readU16,
  readU32,
  sum16,
  truncated,
  writeU16,
  writeU32,
} from '@stepwire/wire';
import { pseudoHeaderSum } from './checksum.ts';
import { IPPROTO_ICMPV6 } from './types.ts';

/**
 * ICMP for IPv4 (RFC 792) and IPv6 (RFC 4443). Both share one message shape; the
 * type numbers differ. Types this codec does not know decode as { kind: 'unknown' }
 * with the bytes after the checksum, so a strange message is shown rather than refused.
 *
 * A message whose checksum does not verify is a ParseError with field 'checksum'.
 */
export type IcmpMessage =
  | {
      kind: 'echo-request' | 'echo-reply';
      code: number;
      identifier: number;
      sequence: number;
      data: Uint8Array;
    }
  | {
      kind: 'destination-unreachable';
      code: number;
      /**
       * ICMPv4 only: the Next-Hop MTU of code 4 "fragmentation needed and DF set" (RFC 1191 §4),
       * the low 16 bits of the otherwise unused word. Zero from old routers and other codes.
       */
      nextHopMtu?: number;
      original: Uint8Array;
    }
  | { kind: 'packet-too-big'; code: number; mtu: number; original: Uint8Array }
  | { kind: 'time-exceeded'; code: number; original: Uint8Array }
  | { kind: 'parameter-problem'; code: number; pointer: number; original: Uint8Array }
  | { kind: 'unknown'; type: number; code: number; body: Uint8Array };

export type IcmpKind = IcmpMessage['kind'];

// RFC 792 type numbers.
export const ICMPV4_ECHO_REPLY = 0;
export const ICMPV4_DEST_UNREACHABLE = 3;
export const ICMPV4_SOURCE_QUENCH = 4;
export const ICMPV4_REDIRECT = 5;
export const ICMPV4_ECHO_REQUEST = 8;
export const ICMPV4_TIME_EXCEEDED = 11;
export const ICMPV4_PARAMETER_PROBLEM = 12;

/** RFC 792 / RFC 1812 §5.2.7.1 destination-unreachable codes. */
export const ICMPV4_UNREACH = {
  net: 0,
  host: 1,
  protocol: 2,
  port: 3,
  fragmentationNeeded: 4,
  sourceRouteFailed: 5,
  adminProhibited: 13,
} as const;

// RFC 4443 type numbers.
export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAMETER_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

/** RFC 4443 §3.1 codes. */
export const ICMPV6_UNREACH = {
  noRoute: 0,
  adminProhibited: 1,
  beyondScope: 2,
  address: 3,
  port: 4,
} as const;
/** RFC 4443 §3.4 codes. */
export const ICMPV6_PARAM = { header: 0, nextHeader: 1, option: 2 } as const;

/** RFC 1122 §3.2.2: types 3, 4, 5, 11, 12 are errors; the rest are queries/replies. */
export const isIcmpv4ErrorType = (t: number): boolean =>
  t === ICMPV4_DEST_UNREACHABLE ||
  t === ICMPV4_SOURCE_QUENCH ||
  t === ICMPV4_REDIRECT ||
  t === ICMPV4_TIME_EXCEEDED ||
  t === ICMPV4_PARAMETER_PROBLEM;
/** RFC 4443 §2.1: types 0-127 are errors. */
export const isIcmpv6ErrorType = (t: number): boolean => t < 128;

const V4_TYPES: Record<string, number> = {
  'echo-request': ICMPV4_ECHO_REQUEST,
  'echo-reply': ICMPV4_ECHO_REPLY,
  'destination-unreachable': ICMPV4_DEST_UNREACHABLE,
  'time-exceeded': ICMPV4_TIME_EXCEEDED,
  'parameter-problem': ICMPV4_PARAMETER_PROBLEM,
};
const V6_TYPES: Record<string, number> = {
  'echo-request': ICMPV6_ECHO_REQUEST,
  'echo-reply': ICMPV6_ECHO_REPLY,
  'destination-unreachable': ICMPV6_DEST_UNREACHABLE,
  'packet-too-big': ICMPV6_PACKET_TOO_BIG,
  'time-exceeded': ICMPV6_TIME_EXCEEDED,
  'parameter-problem': ICMPV6_PARAMETER_PROBLEM,
};

export function icmpTypeOf(m: IcmpMessage, version: 4 | 6): number {
  if (m.kind === 'unknown') return m.type;
  const t = (version === 4 ? V4_TYPES : V6_TYPES)[m.kind];
  if (t === undefined) throw new RangeError(`ICMPv${version} has no '${m.kind}' message`);
  return t;
}

export interface IcmpDecodeOptions {
  /** Default true: a bad checksum is a ParseError. */
  verifyChecksum?: boolean;
}

/**
 * Field offsets, one layout per message shape, each in wire order (ParseError's
 * `truncated` relies on that). Every message starts with Type, Code and Checksum
 * (RFC 792; RFC 4443 §2.1); the second 32-bit word is the message's own; the last field
 * (echo data, the invoking packet, an unknown body) runs to the end.
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |     Type      |     Code      |          Checksum             |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                    (depends on the type)                      |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  data / as much of the invoking packet as fits ...
 */
export const ICMP_HEADER = Object.freeze({ type: 0, code: 1, checksum: 2, body: 4 } as const);
const HEAD = { type: ICMP_HEADER.type, code: ICMP_HEADER.code, checksum: ICMP_HEADER.checksum } as const;
/** Echo and Echo Reply (RFC 792; RFC 4443 §4.1, §4.2). */
export const ICMP_ECHO = Object.freeze({ ...HEAD, identifier: 4, sequence: 6, data: 8 } as const);
/** Time Exceeded (RFC 792; RFC 4443 §3.3) and ICMPv6 Destination Unreachable (RFC 4443 §3.1). */
export const ICMP_ERROR = Object.freeze({ ...HEAD, unused: 4, original: 8 } as const);
/** ICMPv4 Destination Unreachable: the low half of the unused word is the Next-Hop MTU (RFC 1191 §4). */
export const ICMPV4_UNREACH_LAYOUT = Object.freeze({
  ...HEAD,
  unused: 4,
  nextHopMtu: 6,
  original: 8,
} as const);
/** ICMPv6 Packet Too Big (RFC 4443 §3.2). */
export const ICMPV6_PACKET_TOO_BIG_LAYOUT = Object.freeze({ ...HEAD, mtu: 4, original: 8 } as const);
/** ICMPv4 Parameter Problem: an 8-bit pointer, then 24 unused bits (RFC 792). */
export const ICMPV4_PARAM_LAYOUT = Object.freeze({ ...HEAD, pointer: 4, unused: 5, original: 8 } as const);
/** ICMPv6 Parameter Problem: a 32-bit pointer (RFC 4443 §3.4). */
export const ICMPV6_PARAM_LAYOUT = Object.freeze({ ...HEAD, pointer: 4, original: 8 } as const);

/** Throws the truncation error unless the fixed fields before `last` are all present. */
function need(
  layer: string,
  layout: Readonly<Record<string, number>>,
  bytes: Uint8Array,
  last: number,
): void {
  if (bytes.length < last) throw truncated(layer, layout, bytes.length, last);
}

function decodeBody(
  bytes: Uint8Array,
  layer: string,
  version: 4 | 6,
  type: number,
  code: number,
): IcmpMessage {
  const v4 = version === 4;
  if ((v4 && type === ICMPV4_ECHO_REQUEST) || (!v4 && type === ICMPV6_ECHO_REQUEST)) {
    need(layer, ICMP_ECHO, bytes, ICMP_ECHO.data);
    return {
      kind: 'echo-request',
      code,
      identifier: readU16(bytes, ICMP_ECHO.identifier),
      sequence: readU16(bytes, ICMP_ECHO.sequence),
      data: bytes.subarray(ICMP_ECHO.data),
    };
  }
  if ((v4 && type === ICMPV4_ECHO_REPLY) || (!v4 && type === ICMPV6_ECHO_REPLY)) {
    need(layer, ICMP_ECHO, bytes, ICMP_ECHO.data);
    return {
      kind: 'echo-reply',
      code,
      identifier: readU16(bytes, ICMP_ECHO.identifier),
      sequence: readU16(bytes, ICMP_ECHO.sequence),
      data: bytes.subarray(ICMP_ECHO.data),
    };
  }
  if ((v4 && type === ICMPV4_DEST_UNREACHABLE) || (!v4 && type === ICMPV6_DEST_UNREACHABLE)) {
    if (v4) {
      const L = ICMPV4_UNREACH_LAYOUT;
      need(layer, L, bytes, L.original);
      const nextHopMtu = readU16(bytes, L.nextHopMtu);
      return { kind: 'destination-unreachable', code, nextHopMtu, original: bytes.subarray(L.original) };
    }
    need(layer, ICMP_ERROR, bytes, ICMP_ERROR.original);
    return { kind: 'destination-unreachable', code, original: bytes.subarray(ICMP_ERROR.original) };
  }
  if ((v4 && type === ICMPV4_TIME_EXCEEDED) || (!v4 && type === ICMPV6_TIME_EXCEEDED)) {
    need(layer, ICMP_ERROR, bytes, ICMP_ERROR.original);
    return { kind: 'time-exceeded', code, original: bytes.subarray(ICMP_ERROR.original) };
  }
  if (v4 && type === ICMPV4_PARAMETER_PROBLEM) {
    const L = ICMPV4_PARAM_LAYOUT;
    need(layer, L, bytes, L.original);
    return {
      kind: 'parameter-problem',
      code,
      pointer: bytes[L.pointer] as number,
      original: bytes.subarray(L.original),
    };
  }
  if (!v4 && type === ICMPV6_PARAMETER_PROBLEM) {
    const L = ICMPV6_PARAM_LAYOUT;
    need(layer, L, bytes, L.original);
    return {
      kind: 'parameter-problem',
      code,
      pointer: readU32(bytes, L.pointer),
      original: bytes.subarray(L.original),
    };
  }
  if (!v4 && type === ICMPV6_PACKET_TOO_BIG) {
    const L = ICMPV6_PACKET_TOO_BIG_LAYOUT;
    need(layer, L, bytes, L.original);
    return { kind: 'packet-too-big', code, mtu: readU32(bytes, L.mtu), original: bytes.subarray(L.original) };
  }
  return { kind: 'unknown', type, code, body: bytes.subarray(ICMP_HEADER.body) };
}

/** ICMPv4 (RFC 792): the checksum covers the ICMP message only. */
export function decodeIcmpv4(bytes: Uint8Array, opts?: IcmpDecodeOptions): IcmpMessage {
  need('icmpv4', ICMP_HEADER, bytes, ICMP_HEADER.body);
  if (opts?.verifyChecksum !== false && finishChecksum(sum16(bytes)) !== 0) {
    throw new ParseError('icmpv4', 'checksum', ICMP_HEADER.checksum, 'ICMP checksum does not verify');
  }
  return decodeBody(bytes, 'icmpv4', 4, bytes[ICMP_HEADER.type] as number, bytes[ICMP_HEADER.code] as number);
}

/** ICMPv6 (RFC 4443 §2.3): the checksum also covers the IPv6 pseudo-header (RFC 8200 §8.1). */
export function decodeIcmpv6(
  bytes: Uint8Array,
  src: string | Uint8Array,
  dst: string | Uint8Array,
  opts?: IcmpDecodeOptions,
): IcmpMessage {
  need('icmpv6', ICMP_HEADER, bytes, ICMP_HEADER.body);
  if (opts?.verifyChecksum !== false) {
    const sum = sum16(bytes, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, bytes.length));
    if (finishChecksum(sum) !== 0)
      throw new ParseError('icmpv6', 'checksum', ICMP_HEADER.checksum, 'ICMPv6 checksum does not verify');
  }
  return decodeBody(bytes, 'icmpv6', 6, bytes[ICMP_HEADER.type] as number, bytes[ICMP_HEADER.code] as number);
}

/** A zeroed message: `fixed` header bytes, then `tail` (zero also means Checksum zero while summing). */
function withTail(fixed: number, tail: Uint8Array): Uint8Array {
  const out = new Uint8Array(fixed + tail.length);
  out.set(tail, fixed);
  return out;
}

function encodeBody(m: IcmpMessage, version: 4 | 6): Uint8Array {
  const type = icmpTypeOf(m, version);
  let out: Uint8Array;
  switch (m.kind) {
    case 'echo-request':
    case 'echo-reply':
      out = withTail(ICMP_ECHO.data, m.data);
      writeU16(out, ICMP_ECHO.identifier, m.identifier);
      writeU16(out, ICMP_ECHO.sequence, m.sequence);
      break;
    case 'destination-unreachable':
      if (version === 4) {
        out = withTail(ICMPV4_UNREACH_LAYOUT.original, m.original);
        writeU16(out, ICMPV4_UNREACH_LAYOUT.nextHopMtu, m.nextHopMtu ?? 0);
      } else {
        out = withTail(ICMP_ERROR.original, m.original);
      }
      break;
    case 'packet-too-big':
      out = withTail(ICMPV6_PACKET_TOO_BIG_LAYOUT.original, m.original);
      writeU32(out, ICMPV6_PACKET_TOO_BIG_LAYOUT.mtu, m.mtu);
      break;
    case 'time-exceeded':
      out = withTail(ICMP_ERROR.original, m.original);
      break;
    case 'parameter-problem':
      if (version === 4) {
        out = withTail(ICMPV4_PARAM_LAYOUT.original, m.original);
        out[ICMPV4_PARAM_LAYOUT.pointer] = m.pointer;
      } else {
        out = withTail(ICMPV6_PARAM_LAYOUT.original, m.original);
        writeU32(out, ICMPV6_PARAM_LAYOUT.pointer, m.pointer);
      }
      break;
    case 'unknown':
      out = withTail(ICMP_HEADER.body, m.body);
      break;
  }
  out[ICMP_HEADER.type] = type;
  out[ICMP_HEADER.code] = m.code;
  return out;
}

export function encodeIcmpv4(m: IcmpMessage): Uint8Array {
  const out = encodeBody(m, 4);
  writeU16(out, ICMP_HEADER.checksum, finishChecksum(sum16(out)));
  return out;
}

export function encodeIcmpv6(m: IcmpMessage, src: string | Uint8Array, dst: string | Uint8Array): Uint8Array {
  const out = encodeBody(m, 6);
  writeU16(
    out,
    ICMP_HEADER.checksum,
    finishChecksum(sum16(out, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, out.length))),
  );
  return out;
}

/** A one-line description for traces, read straight from the bytes (no decode, no allocation but the string). */
export function describeIcmp(version: 4 | 6, b: Uint8Array): string {
  if (b.length < ICMP_HEADER.body) return `ICMP${version === 6 ? 'v6' : ''} truncated`;
  const type = b[ICMP_HEADER.type] as number;
  const code = b[ICMP_HEADER.code] as number;
  const name = version === 4 ? 'ICMP' : 'ICMPv6';
  // Every shape's second word ends where its data or quoted packet starts (all equal).
  const word2 = b.length >= ICMP_ERROR.original;
  const idseq = word2 ? ` id=${readU16(b, ICMP_ECHO.identifier)} seq=${readU16(b, ICMP_ECHO.sequence)}` : '';
  if (version === 4) {
    if (type === ICMPV4_ECHO_REQUEST) return `${name} echo${idseq}`;
    if (type === ICMPV4_ECHO_REPLY) return `${name} echo-reply${idseq}`;
    if (type === ICMPV4_DEST_UNREACHABLE) {
      const mtu =
        code === ICMPV4_UNREACH.fragmentationNeeded && word2
          ? ` mtu=${readU16(b, ICMPV4_UNREACH_LAYOUT.nextHopMtu)}`
          : '';
      return `${name} unreachable code=${code}${mtu}`;
    }
    if (type === ICMPV4_TIME_EXCEEDED) return `${name} time-exceeded code=${code}`;
    if (type === ICMPV4_PARAMETER_PROBLEM)
      return `${name} parameter-problem ptr=${b[ICMPV4_PARAM_LAYOUT.pointer] ?? '?'}`;
  } else {
    if (type === ICMPV6_ECHO_REQUEST) return `${name} echo${idseq}`;
    if (type === ICMPV6_ECHO_REPLY) return `${name} echo-reply${idseq}`;
    if (type === ICMPV6_DEST_UNREACHABLE) return `${name} unreachable code=${code}`;
    if (type === ICMPV6_PACKET_TOO_BIG && word2) {
      return `${name} packet-too-big mtu=${readU32(b, ICMPV6_PACKET_TOO_BIG_LAYOUT.mtu)}`;
    }
    if (type === ICMPV6_TIME_EXCEEDED) return `${name} time-exceeded code=${code}`;
    if (type === ICMPV6_PARAMETER_PROBLEM && word2) {
      return `${name} parameter-problem code=${code} ptr=${readU32(b, ICMPV6_PARAM_LAYOUT.pointer)}`;
    }
  }
  return `${name} type=${type} code=${code}`;
}
