import { ByteReader, finishChecksum, ParseError, sum16 } from '@stepwire/wire';
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

function decodeBody(r: ByteReader, version: 4 | 6, type: number, code: number): IcmpMessage {
  const v4 = version === 4;
  if ((v4 && type === ICMPV4_ECHO_REQUEST) || (!v4 && type === ICMPV6_ECHO_REQUEST)) {
    return {
      kind: 'echo-request',
      code,
      identifier: r.u16('identifier'),
      sequence: r.u16('sequence'),
      data: r.rest('data'),
    };
  }
  if ((v4 && type === ICMPV4_ECHO_REPLY) || (!v4 && type === ICMPV6_ECHO_REPLY)) {
    return {
      kind: 'echo-reply',
      code,
      identifier: r.u16('identifier'),
      sequence: r.u16('sequence'),
      data: r.rest('data'),
    };
  }
  if ((v4 && type === ICMPV4_DEST_UNREACHABLE) || (!v4 && type === ICMPV6_DEST_UNREACHABLE)) {
    if (v4) {
      r.skip(2, 'unused');
      const nextHopMtu = r.u16('nextHopMtu');
      return { kind: 'destination-unreachable', code, nextHopMtu, original: r.rest('original') };
    }
    r.skip(4, 'unused');
    return { kind: 'destination-unreachable', code, original: r.rest('original') };
  }
  if ((v4 && type === ICMPV4_TIME_EXCEEDED) || (!v4 && type === ICMPV6_TIME_EXCEEDED)) {
    r.skip(4, 'unused');
    return { kind: 'time-exceeded', code, original: r.rest('original') };
  }
  if ((v4 && type === ICMPV4_PARAMETER_PROBLEM) || (!v4 && type === ICMPV6_PARAMETER_PROBLEM)) {
    let pointer: number;
    if (v4) {
      pointer = r.u8('pointer');
      r.skip(3, 'unused');
    } else {
      pointer = r.u32('pointer');
    }
    return { kind: 'parameter-problem', code, pointer, original: r.rest('original') };
  }
  if (!v4 && type === ICMPV6_PACKET_TOO_BIG) {
    return { kind: 'packet-too-big', code, mtu: r.u32('mtu'), original: r.rest('original') };
  }
  return { kind: 'unknown', type, code, body: r.rest('body') };
}

/** ICMPv4 (RFC 792): the checksum covers the ICMP message only. */
export function decodeIcmpv4(bytes: Uint8Array, opts?: IcmpDecodeOptions): IcmpMessage {
  const r = new ByteReader(bytes, 'icmpv4');
  const type = r.u8('type');
  const code = r.u8('code');
  r.u16('checksum');
  if (opts?.verifyChecksum !== false && finishChecksum(sum16(bytes)) !== 0) {
    throw new ParseError('icmpv4', 'checksum', 2, 'ICMP checksum does not verify');
  }
  return decodeBody(r, 4, type, code);
}

/** ICMPv6 (RFC 4443 §2.3): the checksum also covers the IPv6 pseudo-header (RFC 8200 §8.1). */
export function decodeIcmpv6(
  bytes: Uint8Array,
  src: string | Uint8Array,
  dst: string | Uint8Array,
  opts?: IcmpDecodeOptions,
): IcmpMessage {
  const r = new ByteReader(bytes, 'icmpv6');
  const type = r.u8('type');
  const code = r.u8('code');
  r.u16('checksum');
  if (opts?.verifyChecksum !== false) {
    const sum = sum16(bytes, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, bytes.length));
    if (finishChecksum(sum) !== 0)
      throw new ParseError('icmpv6', 'checksum', 2, 'ICMPv6 checksum does not verify');
  }
  return decodeBody(r, 6, type, code);
}

function encodeBody(m: IcmpMessage, version: 4 | 6): Uint8Array {
  const type = icmpTypeOf(m, version);
  let out: Uint8Array;
  switch (m.kind) {
    case 'echo-request':
    case 'echo-reply':
      out = new Uint8Array(8 + m.data.length);
      out[4] = m.identifier >> 8;
      out[5] = m.identifier & 0xff;
      out[6] = m.sequence >> 8;
      out[7] = m.sequence & 0xff;
      out.set(m.data, 8);
      break;
    case 'destination-unreachable':
      out = new Uint8Array(8 + m.original.length);
      if (version === 4) {
        const mtu = m.nextHopMtu ?? 0;
        out[6] = mtu >> 8;
        out[7] = mtu & 0xff;
      }
      out.set(m.original, 8);
      break;
    case 'packet-too-big':
      out = new Uint8Array(8 + m.original.length);
      new DataView(out.buffer).setUint32(4, m.mtu >>> 0);
      out.set(m.original, 8);
      break;
    case 'time-exceeded':
      out = new Uint8Array(8 + m.original.length);
      out.set(m.original, 8);
      break;
    case 'parameter-problem':
      out = new Uint8Array(8 + m.original.length);
      if (version === 4) out[4] = m.pointer;
      else new DataView(out.buffer).setUint32(4, m.pointer >>> 0);
      out.set(m.original, 8);
      break;
    case 'unknown':
      out = new Uint8Array(4 + m.body.length);
      out.set(m.body, 4);
      break;
  }
  out[0] = type;
  out[1] = m.code;
  return out;
}

export function encodeIcmpv4(m: IcmpMessage): Uint8Array {
  const out = encodeBody(m, 4);
  const ck = finishChecksum(sum16(out));
  out[2] = ck >> 8;
  out[3] = ck & 0xff;
  return out;
}

export function encodeIcmpv6(m: IcmpMessage, src: string | Uint8Array, dst: string | Uint8Array): Uint8Array {
  const out = encodeBody(m, 6);
  const ck = finishChecksum(sum16(out, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, out.length)));
  out[2] = ck >> 8;
  out[3] = ck & 0xff;
  return out;
}

/** A one-line description for traces, read straight from the bytes (no decode, no allocation but the string). */
export function describeIcmp(version: 4 | 6, b: Uint8Array): string {
  if (b.length < 4) return `ICMP${version === 6 ? 'v6' : ''} truncated`;
  const type = b[0]!;
  const code = b[1]!;
  const name = version === 4 ? 'ICMP' : 'ICMPv6';
  const idseq = b.length >= 8 ? ` id=${(b[4]! << 8) | b[5]!} seq=${(b[6]! << 8) | b[7]!}` : '';
  if (version === 4) {
    if (type === ICMPV4_ECHO_REQUEST) return `${name} echo${idseq}`;
    if (type === ICMPV4_ECHO_REPLY) return `${name} echo-reply${idseq}`;
    if (type === ICMPV4_DEST_UNREACHABLE) {
      const mtu = code === 4 && b.length >= 8 ? ` mtu=${(b[6]! << 8) | b[7]!}` : '';
      return `${name} unreachable code=${code}${mtu}`;
    }
    if (type === ICMPV4_TIME_EXCEEDED) return `${name} time-exceeded code=${code}`;
    if (type === ICMPV4_PARAMETER_PROBLEM)
      return `${name} parameter-problem ptr=${b.length > 4 ? b[4] : '?'}`;
  } else {
    if (type === ICMPV6_ECHO_REQUEST) return `${name} echo${idseq}`;
    if (type === ICMPV6_ECHO_REPLY) return `${name} echo-reply${idseq}`;
    if (type === ICMPV6_DEST_UNREACHABLE) return `${name} unreachable code=${code}`;
    if (type === ICMPV6_PACKET_TOO_BIG && b.length >= 8) {
      return `${name} packet-too-big mtu=${new DataView(b.buffer, b.byteOffset).getUint32(4)}`;
    }
    if (type === ICMPV6_TIME_EXCEEDED) return `${name} time-exceeded code=${code}`;
    if (type === ICMPV6_PARAMETER_PROBLEM && b.length >= 8) {
      return `${name} parameter-problem code=${code} ptr=${new DataView(b.buffer, b.byteOffset).getUint32(4)}`;
    }
  }
  return `${name} type=${type} code=${code}`;
}
