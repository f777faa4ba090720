import { allocBytes, ByteReader, finishChecksum, ParseError, readU16, sum16 } from '@stepwire/wire';
import { cachedAddressBytes, formatIpv4 } from './address.ts';

/**
 * The IPv4 header (RFC 791 §3.1).
 *
 * Derived fields are not part of the value: IHL and Total Length follow from the options
 * and payload, the Header Checksum is verified on decode and computed on encode.
 * A header whose checksum does not verify is a ParseError with field 'checksum'
 * (pass { verifyChecksum: false } to look at it anyway).
 */
export interface Ipv4Option {
  /** The whole option-type octet (copied flag, class, number). 1 = No Operation, which has no length octet. */
  type: number;
  /** The option's data after the type and length octets (empty for No Operation). */
  data: Uint8Array;
}

export interface Ipv4Packet {
  /** Differentiated Services Code Point, upper six bits of the old Type of Service (RFC 2474). */
  dscp: number;
  /** Explicit Congestion Notification, lower two bits (RFC 3168). */
  ecn: number;
  identification: number;
  /** Bit 0 of the flags, reserved, must be zero (RFC 791); kept so a decoder shows what arrived. */
  reservedFlag: boolean;
  /** DF */
  dontFragment: boolean;
  /** MF */
  moreFragments: boolean;
  /** In units of 8 octets, as on the wire (RFC 791). */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  src: string;
  dst: string;
  /** Options in order; End of Option List ends parsing and is not listed. */
  options: Ipv4Option[];
  /** The bytes after the header up to Total Length (a view into the input on decode). */
  payload: Uint8Array;
}

export interface Ipv4DecodeOptions {
  /** Default true: a bad header checksum is a ParseError. */
  verifyChecksum?: boolean;
  /**
   * For the datagram quoted inside an ICMP error: accept a buffer shorter than Total
   * Length and return whatever payload is present.
   */
  truncated?: boolean;
}

/** Wire facts a decoder learns that are not part of the packet value. */
export interface Ipv4DecodeInfo {
  headerLength: number;
  totalLength: number;
  headerChecksum: number;
  checksumOk: boolean;
}

export const IPV4_OPTION_EOL = 0;
export const IPV4_OPTION_NOP = 1;
export const IPV4_MIN_HEADER = 20;
export const IPV4_MAX_HEADER = 60;

const LAYER = 'ipv4';

/**
 * The options of every decoded header that has none: one frozen array shared by all of
 * them rather than a fresh [] per packet (most packets carry no options, RFC 791 §3.1).
 */
const NO_OPTIONS = Object.freeze([]) as readonly Ipv4Option[] as Ipv4Option[];

export function decodeIpv4(bytes: Uint8Array, opts?: Ipv4DecodeOptions, info?: Ipv4DecodeInfo): Ipv4Packet {
  // The common packet (no options, whole) straight from its named offsets; anything else,
  // and every malformed packet, through the field-by-field reader below.
  if (bytes.length >= IPV4_MIN_HEADER && bytes[IPV4.versionIhl] === 0x45) {
    const totalLength = readU16(bytes, IPV4.totalLength);
    if (totalLength >= IPV4_MIN_HEADER && (totalLength <= bytes.length || opts?.truncated)) {
      return decodeIpv4Plain(bytes, totalLength, opts, info);
    }
  }
  const r = new ByteReader(bytes, LAYER);
  const vihl = r.u8('version');
  const version = vihl >> 4;
  if (version !== 4) r.fail('version', `version ${version}, expected 4`, IPV4.versionIhl);
  const headerLength = (vihl & 0x0f) * 4;
  if (headerLength < IPV4_MIN_HEADER) r.fail('ihl', `IHL ${headerLength / 4} < 5`, IPV4.versionIhl);
  const tos = r.u8('tos');
  const totalLength = r.u16('totalLength');
  if (totalLength < headerLength) {
    r.fail('totalLength', `${totalLength} < header length ${headerLength}`, IPV4.totalLength);
  }
  if (!opts?.truncated && totalLength > bytes.length) {
    r.fail('totalLength', `${totalLength} > ${bytes.length} bytes received`, IPV4.totalLength);
  }
  const identification = r.u16('identification');
  const flagsFrag = r.u16('flags');
  const ttl = r.u8('ttl');
  const protocol = r.u8('protocol');
  const headerChecksum = r.u16('checksum');
  r.skip(4, 'src');
  r.skip(4, 'dst');
  const optionBytes = r.bytesView(headerLength - IPV4_MIN_HEADER, 'options');
  const checksumOk = finishChecksum(sum16(bytes.subarray(0, headerLength))) === 0;
  if (!checksumOk && opts?.verifyChecksum !== false) {
    throw new ParseError(
      LAYER,
      'checksum',
      IPV4.checksum,
      `header checksum 0x${headerChecksum.toString(16)} does not verify`,
    );
  }
  const options = optionBytes.length === 0 ? NO_OPTIONS : decodeIpv4Options(optionBytes);
  if (info) {
    info.headerLength = headerLength;
    info.totalLength = totalLength;
    info.headerChecksum = headerChecksum;
    info.checksumOk = checksumOk;
  }
  return {
    dscp: tos >> 2,
    ecn: tos & 3,
    identification,
    reservedFlag: (flagsFrag & 0x8000) !== 0,
    dontFragment: (flagsFrag & 0x4000) !== 0,
    moreFragments: (flagsFrag & 0x2000) !== 0,
    fragmentOffset: flagsFrag & 0x1fff,
    ttl,
    protocol,
    src: formatIpv4(bytes, IPV4.src),
    dst: formatIpv4(bytes, IPV4.dst),
    options,
    payload: bytes.subarray(headerLength, Math.min(totalLength, bytes.length)),
  };
}

/** decodeIpv4 of a 20-byte header (IHL 5) whose Total Length the caller checked. */
function decodeIpv4Plain(
  bytes: Uint8Array,
  totalLength: number,
  opts: Ipv4DecodeOptions | undefined,
  info: Ipv4DecodeInfo | undefined,
): Ipv4Packet {
  // RFC 791 §3.1: the one's complement sum of the header's ten 16-bit words, checksum
  // field included, is all ones when the checksum is right.
  let sum = 0;
  for (let i = 0; i < IPV4_MIN_HEADER; i += 2) sum += readU16(bytes, i);
  const headerChecksum = readU16(bytes, IPV4.checksum);
  const checksumOk = finishChecksum(sum) === 0;
  if (!checksumOk && opts?.verifyChecksum !== false) {
    throw new ParseError(
      LAYER,
      'checksum',
      IPV4.checksum,
      `header checksum 0x${headerChecksum.toString(16)} does not verify`,
    );
  }
  if (info) {
    info.headerLength = IPV4_MIN_HEADER;
    info.totalLength = totalLength;
    info.headerChecksum = headerChecksum;
    info.checksumOk = checksumOk;
  }
  const tos = bytes[IPV4.tos] as number;
  const flagsFrag = readU16(bytes, IPV4.flags);
  return {
    dscp: tos >> 2,
    ecn: tos & 3,
    identification: readU16(bytes, IPV4.identification),
    reservedFlag: (flagsFrag & 0x8000) !== 0,
    dontFragment: (flagsFrag & 0x4000) !== 0,
    moreFragments: (flagsFrag & 0x2000) !== 0,
    fragmentOffset: flagsFrag & 0x1fff,
    ttl: bytes[IPV4.ttl] as number,
    protocol: bytes[IPV4.protocol] as number,
    src: formatIpv4(bytes, IPV4.src),
    dst: formatIpv4(bytes, IPV4.dst),
    options: NO_OPTIONS,
    // A new view rather than subarray (which looks up the species constructor each time).
    payload: new Uint8Array(
      bytes.buffer,
      bytes.byteOffset + IPV4_MIN_HEADER,
      Math.min(totalLength, bytes.length) - IPV4_MIN_HEADER,
    ),
  };
}

/** RFC 791 §3.1 option format: type, or type-length-data; EOL ends the list. */
export function decodeIpv4Options(b: Uint8Array, base = IPV4_MIN_HEADER): Ipv4Option[] {
  const r = new ByteReader(b, LAYER, base);
  const out: Ipv4Option[] = [];
  while (!r.atEnd) {
    const type = r.u8('options');
    if (type === IPV4_OPTION_EOL) break;
    if (type === IPV4_OPTION_NOP) {
      out.push({ type, data: new Uint8Array(0) });
      continue;
    }
    const at = r.offset;
    const len = r.u8('options.length');
    if (len < 2) r.fail('options.length', `option ${type} length ${len} < 2`, at);
    out.push({ type, data: r.copy(len - 2, 'options.data') });
  }
  return out;
}

export function ipv4OptionsLength(options: readonly Ipv4Option[]): number {
  let n = 0;
  for (const o of options)
    n += o.type === IPV4_OPTION_NOP || o.type === IPV4_OPTION_EOL ? 1 : 2 + o.data.length;
  return (n + 3) & ~3;
}

export interface Ipv4EncodeOptions {
  /** Write this header checksum instead of computing it (to craft bad packets in tests). */
  checksum?: number;
  /** Write this Total Length instead of header + payload (for quoting a truncated datagram). */
  totalLength?: number;
  /**
   * p.src and p.dst as 4 bytes each, when the caller holds them (the send path does): they
   * are written instead of parsing the text, which must name the same addresses.
   */
  srcBytes?: Uint8Array;
  dstBytes?: Uint8Array;
}

/** Header length of `p` on the wire: 20 bytes and its options padded to 32 bits (RFC 791 §3.1 IHL). */
export function ipv4HeaderLength(p: Pick<Ipv4Packet, 'options'>): number {
  return IPV4_MIN_HEADER + (p.options.length === 0 ? 0 : ipv4OptionsLength(p.options));
}

/** Encode header and payload; throws RangeError for values that cannot be put on the wire. */
export function encodeIpv4(p: Ipv4Packet, opts?: Ipv4EncodeOptions): Uint8Array {
  const out = allocBytes(ipv4HeaderLength(p) + p.payload.length);
  encodeIpv4Into(p, out, 0, opts);
  return out;
}

/**
 * Encode `p` into `out` at `offset` (header, then payload) and return the bytes written;
 * the same bytes as encodeIpv4. A payload that already sits in `out` right after where the
 * header goes is left in place: the send path writes a transport segment with room in
 * front of it, and IP fills the room (Linux's skb headroom) instead of copying the segment.
 */
export function encodeIpv4Into(
  p: Ipv4Packet,
  out: Uint8Array,
  offset: number,
  opts?: Ipv4EncodeOptions,
): number {
  const headerLength = ipv4HeaderLength(p);
  if (headerLength > IPV4_MAX_HEADER)
    throw new RangeError(`IPv4 options take ${headerLength - IPV4_MIN_HEADER} bytes, at most 40 fit`);
  const total = headerLength + p.payload.length;
  if (total > 0xffff) throw new RangeError(`IPv4 datagram of ${total} bytes exceeds 65535`);
  if (offset < 0 || offset + total > out.length)
    throw new RangeError(`IPv4 datagram of ${total} bytes does not fit at ${offset} in ${out.length}`);
  const src = opts?.srcBytes ?? cachedAddressBytes(p.src);
  const dst = opts?.dstBytes ?? cachedAddressBytes(p.dst);
  if (src?.length !== 4 || dst?.length !== 4) throw new RangeError(`not IPv4 addresses: ${p.src} ${p.dst}`);
  const o = offset;
  const ff =
    (p.reservedFlag ? 0x8000 : 0) |
    (p.dontFragment ? 0x4000 : 0) |
    (p.moreFragments ? 0x2000 : 0) |
    (p.fragmentOffset & 0x1fff);
  writeIpv4Fixed(
    out,
    o,
    headerLength,
    ((p.dscp & 0x3f) << 2) | (p.ecn & 3),
    opts?.totalLength ?? total,
    p.identification,
    ff,
    p.ttl,
    p.protocol,
    src,
    dst,
  );
  let at = o + IPV4_MIN_HEADER;
  for (const opt of p.options) {
    out[at++] = opt.type;
    if (opt.type === IPV4_OPTION_NOP || opt.type === IPV4_OPTION_EOL) continue;
    if (opt.data.length > 38)
      throw new RangeError(`IPv4 option ${opt.type} data of ${opt.data.length} bytes`);
    out[at++] = opt.data.length + 2;
    out.set(opt.data, at);
    at += opt.data.length;
  }
  // The rest of the option area is zero: End of Option List, then padding (RFC 791).
  if (at < o + headerLength) out.fill(0, at, o + headerLength);
  placePayload(out, o + headerLength, p.payload);
  let ck = opts?.checksum;
  if (ck === undefined) {
    // RFC 791 §3.1: the one's complement of the one's complement sum of the header's
    // 16-bit words (the checksum field zero), summed in place.
    let sum = 0;
    for (let i = o; i < o + headerLength; i += 2) sum += readU16(out, i);
    ck = finishChecksum(sum);
  }
  out[o + IPV4.checksum] = ck >> 8;
  out[o + IPV4.checksum + 1] = ck & 0xff;
  return total;
}

/**
 * The 20 fixed header bytes at `o` from field values as they go on the wire (tos = DSCP and
 * ECN, flagsFrag = flags and Fragment Offset), the checksum field zero — it is computed over
 * the header with this field zero (RFC 791 §3.1), options included, by the caller.
 */
function writeIpv4Fixed(
  out: Uint8Array,
  o: number,
  headerLength: number,
  tos: number,
  totalLength: number,
  identification: number,
  flagsFrag: number,
  ttl: number,
  protocol: number,
  src: Uint8Array,
  dst: Uint8Array,
): void {
  out[o + IPV4.versionIhl] = 0x40 | (headerLength >> 2);
  out[o + IPV4.tos] = tos;
  out[o + IPV4.totalLength] = totalLength >> 8;
  out[o + IPV4.totalLength + 1] = totalLength & 0xff;
  out[o + IPV4.identification] = identification >> 8;
  out[o + IPV4.identification + 1] = identification & 0xff;
  out[o + IPV4.flags] = flagsFrag >> 8;
  out[o + IPV4.flags + 1] = flagsFrag & 0xff;
  out[o + IPV4.ttl] = ttl;
  out[o + IPV4.protocol] = protocol;
  out[o + IPV4.checksum] = 0;
  out[o + IPV4.checksum + 1] = 0;
  // Byte by byte: four stores cost less than a call of TypedArray set (twice per packet).
  const s = o + IPV4.src;
  out[s] = src[0] as number;
  out[s + 1] = src[1] as number;
  out[s + 2] = src[2] as number;
  out[s + 3] = src[3] as number;
  const d = o + IPV4.dst;
  out[d] = dst[0] as number;
  out[d + 1] = dst[1] as number;
  out[d + 2] = dst[2] as number;
  out[d + 3] = dst[3] as number;
}

/**
 * The header of a datagram without options whose payload already sits in `out` right after
 * it (a segment written with header room): what encodeIpv4Into writes for such a packet,
 * from the fields themselves rather than an Ipv4Packet — the send path's common case, per
 * segment, builds no packet value unless the ladder wants one. The values must fit their
 * fields (TTL and protocol 0..255, identification 0..65535, ecn 0..3).
 */
export function writeIpv4HeaderBefore(
  out: Uint8Array,
  o: number,
  payloadLength: number,
  ecn: number,
  identification: number,
  dontFragment: boolean,
  ttl: number,
  protocol: number,
  src: Uint8Array,
  dst: Uint8Array,
): void {
  const total = IPV4_MIN_HEADER + payloadLength;
  if (total > 0xffff) throw new RangeError(`IPv4 datagram of ${total} bytes exceeds 65535`);
  if (o < 0 || o + total > out.length)
    throw new RangeError(`IPv4 datagram of ${total} bytes does not fit at ${o} in ${out.length}`);
  if (src.length !== 4 || dst.length !== 4) throw new RangeError('not IPv4 addresses');
  writeIpv4Fixed(
    out,
    o,
    IPV4_MIN_HEADER,
    ecn & 3,
    total,
    identification,
    dontFragment ? 0x4000 : 0,
    ttl,
    protocol,
    src,
    dst,
  );
  // RFC 791 §3.1: the one's complement of the one's complement sum of the header's words.
  let sum = 0;
  for (let i = o; i < o + IPV4_MIN_HEADER; i += 2) sum += readU16(out, i);
  const ck = finishChecksum(sum);
  out[o + IPV4.checksum] = ck >> 8;
  out[o + IPV4.checksum + 1] = ck & 0xff;
}

/** Byte offsets of the fixed header's fields (RFC 791 §3.1). */
export const IPV4 = Object.freeze({
  versionIhl: 0,
  tos: 1,
  totalLength: 2,
  identification: 4,
  flags: 6,
  ttl: 8,
  protocol: 9,
  checksum: 10,
  src: 12,
  dst: 16,
} as const);

/**
 * Put `payload` at `at` in `out`, unless it is already there (a view of those very bytes,
 * as a segment written with header room is): then nothing moves.
 */
export function placePayload(out: Uint8Array, at: number, payload: Uint8Array): void {
  if (payload.length === 0) return;
  if (payload.buffer === out.buffer && payload.byteOffset === out.byteOffset + at) return;
  out.set(payload, at);
}

/** Option type octet bit 0: copied into every fragment (RFC 791 §3.1). */
export const ipv4OptionCopied = (type: number): boolean => (type & 0x80) !== 0;
