/**
 * Software GSO (generic segmentation offload) for TCP: a super-segment — one IP header, one
 * TCP header and up to 64 KB of data, as TCP builds it for a link with TSO — cut into
 * packets of `size` data bytes each, just before the link, for a link that cannot cut it.
 *
 * This is what Linux does for every device without TSO (net/core/gso.c skb_gso_segment,
 * net/ipv4/tcp_offload.c tcp_gso_segment, net/ipv4/af_inet.c inet_gso_segment,
 * net/ipv6/ip6_offload.c ipv6_gso_segment) and what gVisor calls software GSO: TCP pays
 * its per-segment cost (send queue, congestion control, timers, encoding) once per
 * super-segment, and only the header copy and the checksum are paid per packet.
 *
 * Each cut packet is a valid datagram on its own:
 *  - IPv4 (RFC 791 §3.1): Total Length of that packet, Identification incremented per
 *    packet from the super-segment's (as inet_gso_segment does), header checksum recomputed;
 *  - IPv6 (RFC 8200 §3): Payload Length of that packet;
 *  - TCP (RFC 9293 §3.1): Sequence Number advanced by the data before it; CWR only on the
 *    first packet (RFC 3168 §6.1.2: it marks the first new data after a window cut), FIN
 *    and PSH only on the last (FIN takes the sequence number after the last data octet;
 *    PSH ends what was pushed); the urgent pointer, an offset from each packet's sequence
 *    number (RFC 9293 §3.8.5), shifted and URG cleared once the urgent data lies behind;
 *    the checksum computed per packet over its own pseudo-header, or left as the folded
 *    pseudo-header sum for a link that completes it (PacketInfo.csum 'partial').
 *
 * The data is copied once, into its cut packet; every packet lives in one buffer, so a
 * super-segment costs one allocation rather than one per packet.
 */
import type { PacketInfo } from '@stepwire/link';
import {
  finishChecksum,
  foldSum,
  ParseError,
  readU16,
  readU32,
  subview,
  sum16,
  writeU16,
  writeU32,
} from '@stepwire/wire';
import { IPV4, IPV4_MIN_HEADER } from './ipv4.ts';
import { IPV6, IPV6_HEADER_LENGTH, NH_DESTINATION, NH_FRAGMENT, NH_HOP_BY_HOP, NH_ROUTING } from './ipv6.ts';
import { IPPROTO_TCP } from './types.ts';

/** What a link is told of a super-segment, and what this cut takes: PacketInfo.gso. */
export type GsoSpec = NonNullable<PacketInfo['gso']>;

/** The TCP header fields a cut rewrites (RFC 9293 §3.1), as offsets into the TCP header. */
export const TCP_GSO_FIELD = Object.freeze({
  seq: 4,
  dataOffset: 12,
  flags: 13,
  checksum: 16,
  urgentPointer: 18,
} as const);

const TCP_MIN_HEADER = 20;
// RFC 9293 §3.1 control bits in the flags byte (RFC 3168 §6.1 for CWR).
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const URG = 0x20;
const CWR = 0x80;

/** The largest super-segment software GSO takes: an IPv4 datagram's limit, as Linux's GSO_LEGACY_MAX_SIZE. */
export const GSO_MAX_SIZE = 65535;

export interface GsoSegments {
  /** The cut packets, in sequence order. */
  packets: Uint8Array[];
  /**
   * Where the TCP header starts in every packet (after the IP header and any IPv6
   * extension headers): PacketInfo.csum's `start` when the checksum is left partial.
   */
  transportOffset: number;
}

/**
 * Cut `packet`, an IPv4 or IPv6 datagram carrying a TCP super-segment, into packets of
 * `gso.size` data bytes (the last one shorter). `checksum` 'full' computes each TCP
 * checksum; 'partial' leaves the folded pseudo-header sum for the link to complete.
 * Whatever the super-segment's own TCP checksum field holds is ignored.
 *
 * Throws ParseError when the bytes are not such a datagram or disagree with `gso`: not
 * TCP, a fragment, a header length other than `gso.hdrLen`, SYN or RST set (a SYN takes a
 * sequence number and a RST ends the connection: neither can be repeated on every piece).
 */
export function gsoSegment(
  packet: Uint8Array,
  gso: GsoSpec,
  checksum: 'full' | 'partial' = 'full',
): GsoSegments {
  const v4 = gso.type === 'tcpv4';
  const { end, l4 } = v4 ? ipv4Bounds(packet) : ipv6Bounds(packet);
  // RFC 9293 §3.1: Data Offset counts the TCP header in 32-bit words, at least five.
  if (l4 + TCP_MIN_HEADER > end) throw new ParseError('tcp', 'dataOffset', l4, 'no room for a TCP header');
  const doff = ((packet[l4 + TCP_GSO_FIELD.dataOffset] ?? 0) >> 4) * 4;
  if (doff < TCP_MIN_HEADER || l4 + doff > end) {
    throw new ParseError('tcp', 'dataOffset', l4 + TCP_GSO_FIELD.dataOffset, `data offset of ${doff} bytes`);
  }
  const hdrLen = l4 + doff;
  if (gso.hdrLen !== hdrLen) {
    throw new ParseError('gso', 'hdrLen', 0, `headers end at ${hdrLen}, gso says ${gso.hdrLen}`);
  }
  if (!Number.isInteger(gso.size) || gso.size < 1 || gso.size > 0xffff) {
    throw new ParseError('gso', 'size', 0, `segment size ${gso.size}`);
  }
  const flags = packet[l4 + TCP_GSO_FIELD.flags] ?? 0;
  if (flags & (SYN | RST)) {
    throw new ParseError('tcp', 'flags', l4 + TCP_GSO_FIELD.flags, 'SYN or RST on a super-segment');
  }

  const size = gso.size;
  const dataLen = end - hdrLen;
  const n = Math.max(1, Math.ceil(dataLen / size));
  const seq0 = readU32(packet, l4 + TCP_GSO_FIELD.seq);
  const urgent = flags & URG ? readU16(packet, l4 + TCP_GSO_FIELD.urgentPointer) : 0;
  const id0 = v4 ? readU16(packet, IPV4.identification) : 0;
  const ihl = v4 ? l4 : 0;
  // The pseudo-header's address part (RFC 9293 §3.1; RFC 8200 §8.1), the same for every
  // piece: each adds its own TCP length, which is below 2^16 either way.
  const pseudo = pseudoSum(packet, v4);

  const head = packet.subarray(0, hdrLen);
  const buf = new Uint8Array(n * hdrLen + dataLen);
  const packets: Uint8Array[] = new Array(n);
  let at = 0;
  for (let k = 0; k < n; k++) {
    const from = hdrLen + k * size;
    const segLen = Math.min(size, end - from);
    const len = hdrLen + segLen;
    buf.set(head, at);
    if (segLen > 0) buf.set(subview(packet, from, from + segLen), at + hdrLen);
    const out = new Uint8Array(buf.buffer, at, len);
    at += len;

    if (v4) {
      // RFC 791 §3.1: this packet's length and its own Identification (inet_gso_segment
      // numbers the pieces id, id+1, ...), then the header checksum over the new header.
      writeU16(out, IPV4.totalLength, len);
      writeU16(out, IPV4.identification, (id0 + k) & 0xffff);
      writeU16(out, IPV4.checksum, 0);
      writeU16(out, IPV4.checksum, finishChecksum(sumBytes(out, 0, ihl)));
    } else {
      // RFC 8200 §3: Payload Length counts extension headers and the upper layer.
      writeU16(out, IPV6.payloadLength, len - IPV6_HEADER_LENGTH);
    }

    // RFC 9293 §3.1 / §3.4: each piece's sequence number is that of its first data octet.
    writeU32(out, l4 + TCP_GSO_FIELD.seq, (seq0 + k * size) >>> 0);
    let f = flags;
    if (k > 0) f &= ~CWR; // RFC 3168 §6.1.2: CWR on the first new data only (tcp_gso_segment)
    if (k < n - 1) f &= ~(FIN | PSH); // FIN and PSH belong after the last octet (tcp_gso_segment)
    if (flags & URG) {
      // RFC 9293 §3.8.5: the urgent pointer is an offset from this segment's sequence
      // number; once the urgent point lies at or before it, this piece carries no URG.
      const up = urgent - k * size;
      if (up > 0) writeU16(out, l4 + TCP_GSO_FIELD.urgentPointer, up);
      else {
        f &= ~URG;
        writeU16(out, l4 + TCP_GSO_FIELD.urgentPointer, 0);
      }
    }
    out[l4 + TCP_GSO_FIELD.flags] = f;

    const tcpLen = doff + segLen;
    if (checksum === 'partial') {
      // The folded pseudo-header sum, not complemented: the link sums from l4 over it.
      writeU16(out, l4 + TCP_GSO_FIELD.checksum, foldSum(pseudo + tcpLen));
    } else {
      writeU16(out, l4 + TCP_GSO_FIELD.checksum, 0);
      const ck = finishChecksum(sum16(subview(out, l4, l4 + tcpLen), pseudo + tcpLen));
      writeU16(out, l4 + TCP_GSO_FIELD.checksum, ck);
    }
    packets[k] = out;
  }
  return { packets, transportOffset: l4 };
}

/** An IPv4 datagram's end and the start of its TCP header (RFC 791 §3.1). */
function ipv4Bounds(b: Uint8Array): { end: number; l4: number } {
  if (b.length < IPV4_MIN_HEADER) throw new ParseError('ipv4', 'versionIhl', 0, `${b.length} bytes`);
  const first = b[IPV4.versionIhl] ?? 0;
  if (first >> 4 !== 4) throw new ParseError('ipv4', 'version', IPV4.versionIhl, `version ${first >> 4}`);
  const ihl = (first & 0x0f) * 4;
  if (ihl < IPV4_MIN_HEADER || ihl > b.length)
    throw new ParseError('ipv4', 'ihl', IPV4.versionIhl, `header of ${ihl} bytes`);
  const end = readU16(b, IPV4.totalLength);
  if (end < ihl || end > b.length)
    throw new ParseError('ipv4', 'totalLength', IPV4.totalLength, `total length ${end} of ${b.length}`);
  // A fragment (MF or an offset) is no super-segment: GSO packets go whole, with DF.
  if (readU16(b, IPV4.flags) & 0x3fff) throw new ParseError('ipv4', 'flags', IPV4.flags, 'a fragment');
  const protocol = b[IPV4.protocol] ?? 0;
  if (protocol !== IPPROTO_TCP)
    throw new ParseError('ipv4', 'protocol', IPV4.protocol, `protocol ${protocol}`);
  return { end, l4: ihl };
}

/**
 * An IPv6 datagram's end and the start of its TCP header, past Hop-by-Hop, Routing and
 * Destination Options headers (RFC 8200 §4), which every piece repeats as ipv6_gso_segment
 * does. A Fragment header means a fragment, no super-segment.
 */
function ipv6Bounds(b: Uint8Array): { end: number; l4: number } {
  if (b.length < IPV6_HEADER_LENGTH) throw new ParseError('ipv6', 'versionClassFlow', 0, `${b.length} bytes`);
  const version = (b[IPV6.versionClassFlow] ?? 0) >> 4;
  if (version !== 6) throw new ParseError('ipv6', 'version', IPV6.versionClassFlow, `version ${version}`);
  const end = IPV6_HEADER_LENGTH + readU16(b, IPV6.payloadLength);
  if (end > b.length)
    throw new ParseError('ipv6', 'payloadLength', IPV6.payloadLength, `ends at ${end} of ${b.length}`);
  let nh = b[IPV6.nextHeader] ?? 0;
  let at = IPV6_HEADER_LENGTH;
  let nhAt: number = IPV6.nextHeader;
  // Each extension header is at least 8 bytes (RFC 8200 §4.3-4.6), so this ends.
  while (nh === NH_HOP_BY_HOP || nh === NH_ROUTING || nh === NH_DESTINATION) {
    if (at + 8 > end) throw new ParseError('ipv6', 'extension', at, 'extension header past the payload');
    nhAt = at;
    nh = b[at] ?? 0;
    at += ((b[at + 1] ?? 0) + 1) * 8;
  }
  if (nh === NH_FRAGMENT) throw new ParseError('ipv6', 'nextHeader', nhAt, 'a fragment');
  if (nh !== IPPROTO_TCP) throw new ParseError('ipv6', 'nextHeader', nhAt, `next header ${nh}`);
  return { end, l4: at };
}

/**
 * The address part of the TCP pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1: source,
 * destination and the protocol; each piece adds its own length), read in place.
 */
export function pseudoSum(b: Uint8Array, v4: boolean): number {
  return v4
    ? sumBytes(b, IPV4.src, IPV4.dst + 4) + IPPROTO_TCP
    : sumBytes(b, IPV6.src, IPV6.dst + 16) + IPPROTO_TCP;
}

/** The unfolded RFC 1071 sum of the 16-bit words in b[from, to) (an even span of a header). */
export function sumBytes(b: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i += 2) sum += ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
  return sum;
}
