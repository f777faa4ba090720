import { ParseError } from '@stepwire/wire';
import type { PacketInfo } from './link.ts';

/**
 * The virtio-net header (virtio 1.2 §5.1.6 "Device Operation", struct virtio_net_hdr) that
 * a TUN device opened with IFF_VNET_HDR puts in front of every packet, both ways:
 *
 *     byte 0   flags        NEEDS_CSUM (1), DATA_VALID (2), RSC_INFO (4)
 *     byte 1   gso_type     NONE (0), TCPV4 (1), UDP (3), TCPV6 (4), UDP_L4 (5); | ECN (0x80)
 *     bytes 2  hdr_len      le16: bytes of headers before the payload of a GSO packet
 *     bytes 4  gso_size     le16: payload bytes per segment (the MSS for TCP)
 *     bytes 6  csum_start   le16: where the checksummed bytes begin (from the packet start)
 *     bytes 8  csum_offset  le16: where, counted from csum_start, the checksum goes
 *
 * This is the 10-byte header without virtio_net_hdr_v1's num_buffers: num_buffers only
 * means something for virtio's mergeable receive buffers, which TUN does not have; 10 is
 * TUN's default size and what gVisor and wireguard-go use. Fields are little-endian: the
 * device is told so with TUNSETVNETLE (virtio 1.x is little-endian; the legacy header is
 * in the host's order, and setting LE makes the two agree on every architecture).
 */
export interface VirtioNetHdr {
  /** VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at csumStart + csumOffset is partial. */
  needsCsum: boolean;
  /** VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified (receive only). */
  dataValid: boolean;
  /** VIRTIO_NET_HDR_F_RSC_INFO: receive segment coalescing info (csum fields reused). */
  rscInfo: boolean;
  gsoType: VnetGsoType;
  /** VIRTIO_NET_HDR_GSO_ECN: the segments carry ECN (CWR set on the first only). */
  gsoEcn: boolean;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export type VnetGsoType = 'none' | 'tcpv4' | 'udp' | 'tcpv6' | 'udp_l4';

export const VNET_HDR_LEN = 10;

/** Byte offsets of the fields (virtio 1.2 §5.1.6): the one place the layout is written. */
export const VNET_HDR = Object.freeze({
  flags: 0,
  gsoType: 1,
  hdrLen: 2,
  gsoSize: 4,
  csumStart: 6,
  csumOffset: 8,
} as const);

export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_F_RSC_INFO = 4;
const KNOWN_FLAGS = VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID | VIRTIO_NET_HDR_F_RSC_INFO;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

const GSO_CODES: Readonly<Record<VnetGsoType, number>> = Object.freeze({
  none: 0,
  tcpv4: 1,
  udp: 3,
  tcpv6: 4,
  udp_l4: 5,
});
const GSO_TYPES: readonly (VnetGsoType | undefined)[] = [
  'none',
  'tcpv4',
  undefined,
  'udp',
  'tcpv6',
  'udp_l4',
];

const LAYER = 'virtio-net';

const le16 = (b: Uint8Array, at: number): number => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);

/**
 * Read the header at the start of `bytes` (the packet follows it). Throws ParseError when
 * fewer than 10 bytes arrived, a flag bit or GSO type is one the virtio spec does not
 * define, or ECN is set on a packet that is not GSO.
 */
export function decodeVnetHdr(bytes: Uint8Array): VirtioNetHdr {
  if (bytes.length < VNET_HDR_LEN) {
    // The field the input ended in: the last one starting at or before its end.
    const field = Object.entries(VNET_HDR).findLast(([, at]) => at <= bytes.length)?.[0] ?? 'flags';
    throw new ParseError(
      LAYER,
      field,
      bytes.length,
      `header cut short: ${bytes.length} of ${VNET_HDR_LEN} bytes`,
    );
  }
  const flags = bytes[VNET_HDR.flags] ?? 0;
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new ParseError(LAYER, 'flags', VNET_HDR.flags, `unknown flag bits 0x${flags.toString(16)}`);
  }
  const g = bytes[VNET_HDR.gsoType] ?? 0;
  const gsoType = GSO_TYPES[g & ~VIRTIO_NET_HDR_GSO_ECN];
  if (gsoType === undefined) {
    throw new ParseError(LAYER, 'gso_type', VNET_HDR.gsoType, `unknown GSO type ${g}`);
  }
  const gsoEcn = (g & VIRTIO_NET_HDR_GSO_ECN) !== 0;
  if (gsoEcn && gsoType === 'none') {
    throw new ParseError(LAYER, 'gso_type', VNET_HDR.gsoType, 'ECN bit on a packet that is not GSO');
  }
  return {
    needsCsum: (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0,
    dataValid: (flags & VIRTIO_NET_HDR_F_DATA_VALID) !== 0,
    rscInfo: (flags & VIRTIO_NET_HDR_F_RSC_INFO) !== 0,
    gsoType,
    gsoEcn,
    hdrLen: le16(bytes, VNET_HDR.hdrLen),
    gsoSize: le16(bytes, VNET_HDR.gsoSize),
    csumStart: le16(bytes, VNET_HDR.csumStart),
    csumOffset: le16(bytes, VNET_HDR.csumOffset),
  };
}

function checkU16(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff)
    throw new RangeError(`virtio-net ${name} must be 0..65535, got ${v}`);
}

/** Write the header into `out` at `offset` (10 bytes). RangeError for a value with no wire form. */
export function encodeVnetHdrInto(h: VirtioNetHdr, out: Uint8Array, offset = 0): void {
  checkU16(h.hdrLen, 'hdr_len');
  checkU16(h.gsoSize, 'gso_size');
  checkU16(h.csumStart, 'csum_start');
  checkU16(h.csumOffset, 'csum_offset');
  if (h.gsoEcn && h.gsoType === 'none') throw new RangeError('virtio-net ECN needs a GSO type');
  if (out.length < offset + VNET_HDR_LEN) throw new RangeError('virtio-net header does not fit');
  out[offset + VNET_HDR.flags] =
    (h.needsCsum ? VIRTIO_NET_HDR_F_NEEDS_CSUM : 0) |
    (h.dataValid ? VIRTIO_NET_HDR_F_DATA_VALID : 0) |
    (h.rscInfo ? VIRTIO_NET_HDR_F_RSC_INFO : 0);
  out[offset + VNET_HDR.gsoType] = GSO_CODES[h.gsoType] | (h.gsoEcn ? VIRTIO_NET_HDR_GSO_ECN : 0);
  putLe16(out, offset + VNET_HDR.hdrLen, h.hdrLen);
  putLe16(out, offset + VNET_HDR.gsoSize, h.gsoSize);
  putLe16(out, offset + VNET_HDR.csumStart, h.csumStart);
  putLe16(out, offset + VNET_HDR.csumOffset, h.csumOffset);
}

// A module-level function, not a closure per call: this runs once per packet sent with an
// offload (every ACK of a download), and a closure cost an allocation and, under the
// workspace's TypeScript loader, a naming call each time (~2% of the main thread).
function putLe16(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = v >> 8;
}

export function encodeVnetHdr(h: VirtioNetHdr): Uint8Array {
  const out = new Uint8Array(VNET_HDR_LEN);
  encodeVnetHdrInto(h, out);
  return out;
}

/** The header of a plain packet: no checksum work, no segmentation. */
export const PLAIN_VNET_HDR: Readonly<VirtioNetHdr> = Object.freeze({
  needsCsum: false,
  dataValid: false,
  rscInfo: false,
  gsoType: 'none',
  gsoEcn: false,
  hdrLen: 0,
  gsoSize: 0,
  csumStart: 0,
  csumOffset: 0,
});

/** The header that asks the device for what `info` says (none: a plain packet). */
export function vnetHdrFromPacketInfo(info: PacketInfo | undefined): VirtioNetHdr {
  if (!info) return PLAIN_VNET_HDR;
  const partial = info.csum?.kind === 'partial' ? info.csum : undefined;
  return {
    needsCsum: partial !== undefined,
    // DATA_VALID is receive-only (virtio 1.2 §5.1.6.2.1: the driver MUST NOT set it).
    dataValid: false,
    rscInfo: false,
    gsoType: info.gso?.type ?? 'none',
    gsoEcn: false,
    hdrLen: info.gso?.hdrLen ?? 0,
    gsoSize: info.gso?.size ?? 0,
    csumStart: partial?.start ?? 0,
    csumOffset: partial?.offset ?? 0,
  };
}

/**
 * What a received header says about `packet` (the IP packet after it), or why the packet
 * cannot be taken: a GSO type other than TCP (UDP fragmentation offload and USO were not
 * offered to the kernel), or a GSO packet whose IP/TCP headers cannot be found.
 *
 * For GSO, hdrLen is computed from the packet's own IP and TCP headers: the kernel fills
 * hdr_len with the length of the skb's linear part (virtio_net_hdr_from_skb), a hint that
 * may include payload, while PacketInfo.hdrLen means exactly the headers.
 */
export function packetInfoFromVnetHdr(h: VirtioNetHdr, packet: Uint8Array): PacketInfo | undefined | string {
  const csum: PacketInfo['csum'] = h.needsCsum
    ? { kind: 'partial', start: h.csumStart, offset: h.csumOffset }
    : h.dataValid
      ? VALID
      : undefined;
  if (h.gsoType === 'none') return csum ? { csum } : undefined;
  if (h.gsoType !== 'tcpv4' && h.gsoType !== 'tcpv6') return `gso.${h.gsoType}`;
  if (h.gsoEcn) return 'gso.ecn';
  const hdrLen = tcpHeadersLength(packet, h.gsoType);
  if (hdrLen === undefined || h.gsoSize === 0) return 'gso.bad';
  // One object of one shape (no spread of a first one): this runs per super-segment.
  const gso = { type: h.gsoType, size: h.gsoSize, hdrLen } as const;
  return csum ? { csum, gso } : { gso };
}

/** The 'valid' checksum note carries no data: one shared, frozen object. */
const VALID: NonNullable<PacketInfo['csum']> = Object.freeze({ kind: 'valid' });

/** IP header plus TCP header length of a TCP packet (IPv6: TCP directly after the fixed header). */
function tcpHeadersLength(p: Uint8Array, type: 'tcpv4' | 'tcpv6'): number | undefined {
  const b0 = p[0] ?? 0;
  let ipLen: number;
  if (type === 'tcpv4') {
    // RFC 791 §3.1: IHL in 32-bit words; protocol 6 is TCP.
    if (b0 >> 4 !== 4 || p[9] !== 6) return undefined;
    ipLen = (b0 & 0xf) * 4;
  } else {
    // RFC 8200 §3: next header 6 right after the 40-byte header (the kernel's GSO packets
    // from TCP carry no extension headers).
    if (b0 >> 4 !== 6 || p[6] !== 6) return undefined;
    ipLen = 40;
  }
  // RFC 9293 §3.1: Data Offset, the TCP header length in 32-bit words.
  const doff = ((p[ipLen + 12] ?? 0) >> 4) * 4;
  if (ipLen < 20 || doff < 20 || ipLen + doff > p.length) return undefined;
  return ipLen + doff;
}
