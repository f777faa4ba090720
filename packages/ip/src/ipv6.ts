import { allocBytes, ByteReader } from '@stepwire/wire';
import { cachedAddressBytes, formatIpv6 } from './address.ts';
import { placePayload } from './ipv4.ts';

/**
 * The IPv6 header and its extension-header chain (RFC 8200 §3, §4).
 *
 * The chain is parsed through Hop-by-Hop Options (0), Routing (43), Fragment (44) and
 * Destination Options (60). It stops at the first other Next Header value (an upper-layer
 * protocol, No Next Header 59, or a header this codec does not know): that value is
 * `nextHeader` and everything after is `payload`. It also stops after a Fragment header,
 * because what follows it is a piece of the fragmentable part, not a header (RFC 8200 §4.5).
 *
 * Pad1 and PadN options are padding: decode drops them, encode adds them to reach the
 * 8-octet multiple (RFC 8200 §4.2).
 */
export interface Ipv6Option {
  /** Option Type octet; its top two bits say what to do when unrecognized (RFC 8200 §4.2). */
  type: number;
  data: Uint8Array;
}

export type Ipv6ExtensionHeader =
  | { kind: 'hop-by-hop'; options: Ipv6Option[] }
  | { kind: 'destination'; options: Ipv6Option[] }
  | {
      kind: 'routing';
      routingType: number;
      segmentsLeft: number;
      /** Type-specific data after the first four octets; its length is 4 + a multiple of 8. */
      data: Uint8Array;
    }
  | {
      kind: 'fragment';
      /** In 8-octet units (RFC 8200 §4.5). */
      fragmentOffset: number;
      moreFragments: boolean;
      identification: number;
    };

export interface Ipv6Packet {
  trafficClass: number;
  flowLabel: number;
  hopLimit: number;
  src: string;
  dst: string;
  extensionHeaders: Ipv6ExtensionHeader[];
  /** The Next Header value after the last extension header: the upper-layer protocol. */
  nextHeader: number;
  /** Bytes after the last parsed header up to Payload Length (a view into the input). */
  payload: Uint8Array;
}

export interface Ipv6DecodeOptions {
  /** For a datagram quoted in an ICMPv6 error: accept fewer bytes than Payload Length. */
  truncated?: boolean;
}

/** Wire facts a decoder learns that are not part of the packet value. */
export interface Ipv6DecodeInfo {
  payloadLength: number;
  /** Offset of the payload within the packet (40 + extension headers). */
  headerLength: number;
  /** Offset of the Next Header field that names `nextHeader` (for Parameter Problem code 1). */
  lastNextHeaderOffset: number;
  /** Offset of each extension header within the packet, parallel to extensionHeaders. */
  extOffsets: number[];
}

export const IPV6_HEADER_LENGTH = 40;
export const NH_HOP_BY_HOP = 0;
export const NH_ROUTING = 43;
export const NH_FRAGMENT = 44;
export const NH_NO_NEXT_HEADER = 59;
export const NH_DESTINATION = 60;
export const IPV6_OPTION_PAD1 = 0;
export const IPV6_OPTION_PADN = 1;

const LAYER = 'ipv6';

export function decodeIpv6(bytes: Uint8Array, opts?: Ipv6DecodeOptions, info?: Ipv6DecodeInfo): Ipv6Packet {
  const r = new ByteReader(bytes, LAYER);
  const w0 = r.u32('version');
  const version = w0 >>> 28;
  if (version !== 6) r.fail('version', `version ${version}, expected 6`, IPV6.versionClassFlow);
  const payloadLength = r.u16('payloadLength');
  const end = IPV6_HEADER_LENGTH + payloadLength;
  const first = r.u8('nextHeader');
  const hopLimit = r.u8('hopLimit');
  r.skip(16, 'src');
  r.skip(16, 'dst');
  if (!opts?.truncated && end > bytes.length) {
    r.fail(
      'payloadLength',
      `${payloadLength} > ${bytes.length - IPV6_HEADER_LENGTH} bytes received`,
      IPV6.payloadLength,
    );
  }
  const body = bytes.subarray(IPV6_HEADER_LENGTH, Math.min(end, bytes.length));
  const chain = decodeIpv6ExtensionChain(first, body, IPV6_HEADER_LENGTH, true, info?.extOffsets);
  if (info) {
    info.payloadLength = payloadLength;
    info.headerLength = IPV6_HEADER_LENGTH + chain.payloadOffset;
    info.lastNextHeaderOffset = chain.lastNextHeaderOffset < 0 ? IPV6.nextHeader : chain.lastNextHeaderOffset;
  }
  return {
    trafficClass: (w0 >>> 20) & 0xff,
    flowLabel: w0 & 0xfffff,
    hopLimit,
    src: formatIpv6(bytes, IPV6.src),
    dst: formatIpv6(bytes, IPV6.dst),
    extensionHeaders: chain.headers,
    nextHeader: chain.nextHeader,
    payload: body.subarray(chain.payloadOffset),
  };
}

export interface Ipv6Chain {
  headers: Ipv6ExtensionHeader[];
  nextHeader: number;
  /** Offset within `bytes` where the payload starts. */
  payloadOffset: number;
  /** Offset (with `base` added) of the Next Header field naming nextHeader; -1 when no header was parsed. */
  lastNextHeaderOffset: number;
}

/**
 * Parse extension headers starting with Next Header value `first` over `bytes`.
 * `base` is the offset of bytes[0] in the packet, for error offsets. Hop-by-Hop is
 * accepted only as the very first header (RFC 8200 §4.3) and only when `hopByHopAllowed`.
 * If `offsets` is given, each header's offset (with base) is pushed onto it.
 */
export function decodeIpv6ExtensionChain(
  first: number,
  bytes: Uint8Array,
  base = 0,
  hopByHopAllowed = false,
  offsets?: number[],
): Ipv6Chain {
  const r = new ByteReader(bytes, LAYER, base);
  const headers: Ipv6ExtensionHeader[] = [];
  let next = first;
  let lastNextHeaderOffset = -1;
  if (offsets) offsets.length = 0;
  for (;;) {
    const start = r.offset;
    if (next === NH_HOP_BY_HOP && !(hopByHopAllowed && headers.length === 0)) {
      r.fail('nextHeader', 'Hop-by-Hop Options header is allowed only right after the IPv6 header', start);
    }
    if (next !== NH_HOP_BY_HOP && next !== NH_ROUTING && next !== NH_FRAGMENT && next !== NH_DESTINATION)
      break;
    const kind = next;
    next = r.u8('ext.nextHeader');
    if (offsets) offsets.push(base + start);
    lastNextHeaderOffset = base + start;
    if (kind === NH_FRAGMENT) {
      r.u8('fragment.reserved');
      const off = r.u16('fragment.offset');
      const identification = r.u32('fragment.identification');
      headers.push({
        kind: 'fragment',
        fragmentOffset: off >> 3,
        moreFragments: (off & 1) !== 0,
        identification,
      });
      break;
    }
    const len = (r.u8('ext.hdrExtLen') + 1) * 8;
    const h = r.sub(len - 2, 'ext.body');
    if (kind === NH_ROUTING) {
      const routingType = h.u8('routing.type');
      const segmentsLeft = h.u8('routing.segmentsLeft');
      headers.push({ kind: 'routing', routingType, segmentsLeft, data: h.copy(h.remaining, 'routing.data') });
    } else {
      const options = decodeIpv6Options(h);
      headers.push({ kind: kind === NH_HOP_BY_HOP ? 'hop-by-hop' : 'destination', options });
    }
  }
  return { headers, nextHeader: next, payloadOffset: r.offset, lastNextHeaderOffset };
}

/** Option TLVs of a Hop-by-Hop or Destination Options header (RFC 8200 §4.2). */
function decodeIpv6Options(r: ByteReader): Ipv6Option[] {
  const out: Ipv6Option[] = [];
  while (!r.atEnd) {
    const type = r.u8('option.type');
    if (type === IPV6_OPTION_PAD1) continue;
    const len = r.u8('option.length');
    const data = r.bytesView(len, 'option.data');
    if (type !== IPV6_OPTION_PADN) out.push({ type, data: data.slice() });
  }
  return out;
}

export const protocolOfExtension = (h: Ipv6ExtensionHeader): number =>
  h.kind === 'hop-by-hop'
    ? NH_HOP_BY_HOP
    : h.kind === 'routing'
      ? NH_ROUTING
      : h.kind === 'fragment'
        ? NH_FRAGMENT
        : NH_DESTINATION;

function optionsBodyLength(options: readonly Ipv6Option[]): number {
  let n = 2;
  for (const o of options) n += 2 + o.data.length;
  return (n + 7) & ~7;
}

/** Encoded length of one extension header. */
export function extensionHeaderLength(h: Ipv6ExtensionHeader): number {
  switch (h.kind) {
    case 'fragment':
      return 8;
    case 'routing':
      return 4 + h.data.length;
    default:
      return optionsBodyLength(h.options);
  }
}

/** Write the headers (each naming the next; the last names `nextHeader`) into out at `at`. */
export function writeIpv6ExtensionHeaders(
  headers: readonly Ipv6ExtensionHeader[],
  nextHeader: number,
  out: Uint8Array,
  at: number,
): number {
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const next = i + 1 < headers.length ? protocolOfExtension(headers[i + 1]!) : nextHeader;
    const len = extensionHeaderLength(h);
    out[at] = next;
    if (h.kind === 'fragment') {
      out[at + 1] = 0;
      const off = ((h.fragmentOffset & 0x1fff) << 3) | (h.moreFragments ? 1 : 0);
      out[at + 2] = off >> 8;
      out[at + 3] = off & 0xff;
      new DataView(out.buffer, out.byteOffset).setUint32(at + 4, h.identification >>> 0);
    } else if (h.kind === 'routing') {
      if (len % 8 !== 0 || len > 2048) throw new RangeError(`routing header data of ${h.data.length} bytes`);
      out[at + 1] = len / 8 - 1;
      out[at + 2] = h.routingType;
      out[at + 3] = h.segmentsLeft;
      out.set(h.data, at + 4);
    } else {
      if (len > 2048) throw new RangeError(`options header of ${len} bytes`);
      out[at + 1] = len / 8 - 1;
      let p = at + 2;
      for (const o of h.options) {
        if (o.data.length > 255) throw new RangeError(`option ${o.type} data of ${o.data.length} bytes`);
        if (o.type === IPV6_OPTION_PAD1) throw new RangeError('Pad1 is added by the encoder');
        out[p] = o.type;
        out[p + 1] = o.data.length;
        out.set(o.data, p + 2);
        p += 2 + o.data.length;
      }
      const pad = at + len - p;
      // RFC 8200 §4.2: Pad1 for one octet, PadN (type 1, length, zeros) for more.
      if (pad === 1) out[p] = IPV6_OPTION_PAD1;
      else if (pad > 1) {
        out[p] = IPV6_OPTION_PADN;
        out[p + 1] = pad - 2;
        out.fill(0, p + 2, at + len);
      }
    }
    at += len;
  }
  return at;
}

export function extensionHeadersLength(headers: readonly Ipv6ExtensionHeader[]): number {
  let n = 0;
  for (const h of headers) n += extensionHeaderLength(h);
  return n;
}

export interface Ipv6EncodeOptions {
  /** Write this Payload Length instead of the real one (for quoting a truncated datagram). */
  payloadLength?: number;
  /**
   * p.src and p.dst as 16 bytes each, when the caller holds them (the send path does): they
   * are written instead of parsing the text, which must name the same addresses.
   */
  srcBytes?: Uint8Array;
  dstBytes?: Uint8Array;
}

export function encodeIpv6(p: Ipv6Packet, opts?: Ipv6EncodeOptions): Uint8Array {
  const out = allocBytes(ipv6HeaderLength(p) + p.payload.length);
  encodeIpv6Into(p, out, 0, opts);
  return out;
}

/** Header length of `p` on the wire: 40 bytes and its extension headers (RFC 8200 §3, §4). */
export function ipv6HeaderLength(p: Pick<Ipv6Packet, 'extensionHeaders'>): number {
  return (
    IPV6_HEADER_LENGTH + (p.extensionHeaders.length === 0 ? 0 : extensionHeadersLength(p.extensionHeaders))
  );
}

/**
 * Encode `p` into `out` at `offset` and return the bytes written; the same bytes as
 * encodeIpv6. A payload already in place right after the headers is not copied (see
 * encodeIpv4Into: the transport wrote it with room in front for these headers).
 */
export function encodeIpv6Into(
  p: Ipv6Packet,
  out: Uint8Array,
  offset: number,
  opts?: Ipv6EncodeOptions,
): number {
  const extLen = p.extensionHeaders.length === 0 ? 0 : extensionHeadersLength(p.extensionHeaders);
  const payloadLength = extLen + p.payload.length;
  if (payloadLength > 0xffff)
    throw new RangeError(`IPv6 payload of ${payloadLength} bytes needs a jumbogram`);
  const total = IPV6_HEADER_LENGTH + payloadLength;
  if (offset < 0 || offset + total > out.length)
    throw new RangeError(`IPv6 packet of ${total} bytes does not fit at ${offset} in ${out.length}`);
  const src = opts?.srcBytes ?? cachedAddressBytes(p.src);
  const dst = opts?.dstBytes ?? cachedAddressBytes(p.dst);
  if (src?.length !== 16 || dst?.length !== 16) throw new RangeError(`not IPv6 addresses: ${p.src} ${p.dst}`);
  const o = offset;
  // Extension headers leave reserved fields and padding as zero bytes they do not write.
  if (extLen > 0) out.fill(0, o + IPV6_HEADER_LENGTH, o + IPV6_HEADER_LENGTH + extLen);
  const w0 = (6 << 28) | ((p.trafficClass & 0xff) << 20) | (p.flowLabel & 0xfffff);
  out[o + IPV6.versionClassFlow] = w0 >>> 24;
  out[o + IPV6.versionClassFlow + 1] = (w0 >>> 16) & 0xff;
  out[o + IPV6.versionClassFlow + 2] = (w0 >>> 8) & 0xff;
  out[o + IPV6.versionClassFlow + 3] = w0 & 0xff;
  const pl = opts?.payloadLength ?? payloadLength;
  out[o + IPV6.payloadLength] = pl >> 8;
  out[o + IPV6.payloadLength + 1] = pl & 0xff;
  out[o + IPV6.nextHeader] =
    p.extensionHeaders.length > 0 ? protocolOfExtension(p.extensionHeaders[0]!) : p.nextHeader;
  out[o + IPV6.hopLimit] = p.hopLimit;
  out.set(src, o + IPV6.src);
  out.set(dst, o + IPV6.dst);
  const at = writeIpv6ExtensionHeaders(p.extensionHeaders, p.nextHeader, out, o + IPV6_HEADER_LENGTH);
  placePayload(out, at, p.payload);
  return total;
}

/** Byte offsets of the fixed header's fields (RFC 8200 §3). */
export const IPV6 = Object.freeze({
  versionClassFlow: 0,
  payloadLength: 4,
  nextHeader: 6,
  hopLimit: 7,
  src: 8,
  dst: 24,
} as const);
