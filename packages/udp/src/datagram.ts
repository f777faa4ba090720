import { IPPROTO_UDP, isIpv6PseudoHeader, type PseudoHeader, pseudoHeaderSum } from '@stepwire/ip';
import { allocBytes, finishChecksum, ParseError, readU16, sum16, truncated, writeU16 } from '@stepwire/wire';

/**
 * The UDP datagram (RFC 768):
 *
 *     0      7 8     15 16    23 24    31
 *    +--------+--------+--------+--------+
 *    |     Source      |   Destination   |
 *    |      Port       |      Port       |
 *    +--------+--------+--------+--------+
 *    |     Length      |    Checksum     |
 *    +--------+--------+--------+--------+
 *    |          data octets ...
 *
 * Length and Checksum are not part of the plain value: the encoder derives them, the
 * decoder checks them. That keeps decode(encode(x)) equal to x.
 */
export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/** The header as it sits on the wire, for traces and for datagrams quoted in ICMP errors. */
export interface UdpHeader {
  srcPort: number;
  dstPort: number;
  length: number;
  checksum: number;
}

// The addresses the checksum covers through the pseudo-header (RFC 768; RFC 8200 §8.1):
// one type for every transport, from ip, as bytes (a receive path's IpDelivery.srcBytes,
// a socket's parsed addresses) or text. Re-exported so callers of this codec need not
// import ip for it.
export type { PseudoHeader };

export interface DecodeUdpOptions {
  /**
   * Verify the checksum (and reject a zero checksum over IPv6). Default true. false only
   * for bytes whose checksum is known to be unfinished or already checked, e.g. captures
   * taken on a host with checksum offload. Never for datagrams taken off a network.
   */
  verifyChecksum?: boolean;
}

/**
 * Byte offsets of the header's fields, as in the diagram above (RFC 768): the one place
 * the layout is written; the encoder, the decoders and error offsets use these names.
 */
export const UDP = Object.freeze({ srcPort: 0, dstPort: 2, length: 4, checksum: 6 } as const);
export const UDP_HEADER_LENGTH = 8;
/** The Length field is 16 bits and counts the header (RFC 768). */
export const UDP_MAX_PAYLOAD = 0xffff - UDP_HEADER_LENGTH;
const LAYER = 'udp';

/**
 * The unfolded sum of the pseudo-header: src, dst, protocol and the UDP Length, which is
 * also the IPv6 upper-layer length (RFC 8200 §8.1: "the Length field in the UDP header").
 */
function pseudoSum(pseudo: PseudoHeader, length: number): number {
  return pseudoHeaderSum(pseudo.src, pseudo.dst, IPPROTO_UDP, length);
}

/**
 * Encode a datagram with its checksum. Throws RangeError for a value that has no wire
 * form (ports outside 0..65535, a payload longer than 65527 bytes, pseudo-header addresses
 * that are not an IPv4 or IPv6 pair); these are caller errors, never consequences of
 * received bytes.
 */
export function encodeUdp(d: UdpDatagram, pseudo: PseudoHeader): Uint8Array {
  const out = allocBytes(udpLength(d));
  encodeUdpInto(d, pseudo, out, 0);
  return out;
}

/** Header and payload length of `d` (RFC 768 Length); RangeError when it does not fit 16 bits. */
function udpLength(d: UdpDatagram): number {
  const length = UDP_HEADER_LENGTH + d.payload.length;
  if (length > 0xffff) {
    throw new RangeError(
      `UDP payload of ${d.payload.length} bytes exceeds ${UDP_MAX_PAYLOAD} (RFC 768 Length)`,
    );
  }
  return length;
}

/**
 * encodeUdp into `out` at `offset`, returning the bytes written (the same bytes). A sender
 * that leaves room before `offset` lets IP write its header there (SendOptions.headroom)
 * instead of copying the datagram into a new packet.
 */
export function encodeUdpInto(d: UdpDatagram, pseudo: PseudoHeader, out: Uint8Array, offset: number): number {
  checkPort(d.srcPort, 'srcPort');
  checkPort(d.dstPort, 'dstPort');
  const length = udpLength(d);
  if (offset < 0 || offset + length > out.length)
    throw new RangeError(`UDP datagram of ${length} bytes does not fit at ${offset} in ${out.length}`);
  const o = offset;
  writeU16(out, o + UDP.srcPort, d.srcPort);
  writeU16(out, o + UDP.dstPort, d.dstPort);
  writeU16(out, o + UDP.length, length);
  // The checksum field is zero while summing (RFC 768).
  writeU16(out, o + UDP.checksum, 0);
  out.set(d.payload, o + UDP_HEADER_LENGTH);
  const datagram = new Uint8Array(out.buffer, out.byteOffset + o, length);
  let checksum = finishChecksum(sum16(datagram, pseudoSum(pseudo, length)));
  // RFC 768: "If the computed checksum is zero, it is transmitted as all ones"; zero on the
  // wire means "no checksum" (IPv4) or is invalid (IPv6, RFC 8200 §8.1).
  if (checksum === 0) checksum = 0xffff;
  writeU16(out, o + UDP.checksum, checksum);
  return length;
}

/** The eight header bytes without any check beyond their presence (for traces and ICMP quotes). */
export function decodeUdpHeader(bytes: Uint8Array): UdpHeader {
  if (bytes.length < UDP_HEADER_LENGTH) throw truncated(LAYER, UDP, bytes.length, UDP_HEADER_LENGTH);
  return {
    srcPort: readU16(bytes, UDP.srcPort),
    dstPort: readU16(bytes, UDP.dstPort),
    length: readU16(bytes, UDP.length),
    checksum: readU16(bytes, UDP.checksum),
  };
}

/**
 * Decode a datagram carried in an IP payload. The returned payload is a view into
 * `bytes`, not a copy.
 *
 * Length (RFC 768): must be at least 8 and at most the bytes present. Bytes after Length
 * are not part of the datagram and are ignored, as the BSD and Linux stacks do (they trim
 * the IP payload to the UDP Length); the checksum covers only the Length bytes.
 *
 * Checksum: over IPv4 a zero checksum means the sender computed none and is accepted
 * (RFC 768); over IPv6 zero is rejected (RFC 8200 §8.1). A wrong checksum throws
 * ParseError with field 'checksum'.
 */
export function decodeUdp(bytes: Uint8Array, pseudo: PseudoHeader, opts?: DecodeUdpOptions): UdpDatagram {
  if (bytes.length < UDP_HEADER_LENGTH) throw truncated(LAYER, UDP, bytes.length, UDP_HEADER_LENGTH);
  const srcPort = readU16(bytes, UDP.srcPort);
  const dstPort = readU16(bytes, UDP.dstPort);
  const length = readU16(bytes, UDP.length);
  const checksum = readU16(bytes, UDP.checksum);
  if (length < UDP_HEADER_LENGTH) {
    throw new ParseError(
      LAYER,
      'length',
      UDP.length,
      `length ${length} is below the 8-byte header (RFC 768)`,
    );
  }
  if (length > bytes.length) {
    throw new ParseError(
      LAYER,
      'length',
      UDP.length,
      `length ${length} exceeds the ${bytes.length} bytes present`,
    );
  }
  const datagram = length === bytes.length ? bytes : bytes.subarray(0, length);
  if (opts?.verifyChecksum !== false) {
    if (checksum === 0) {
      if (isIpv6PseudoHeader(pseudo)) {
        throw new ParseError(
          LAYER,
          'checksum',
          UDP.checksum,
          'zero checksum is not allowed over IPv6 (RFC 8200 §8.1)',
        );
      }
      // RFC 768: an all-zero checksum means the transmitter generated none.
    } else if (finishChecksum(sum16(datagram, pseudoSum(pseudo, length))) !== 0) {
      throw new ParseError(
        LAYER,
        'checksum',
        UDP.checksum,
        `checksum 0x${checksum.toString(16).padStart(4, '0')} does not verify over the pseudo-header`,
      );
    }
  }
  return { srcPort, dstPort, payload: datagram.subarray(UDP_HEADER_LENGTH) };
}

function checkPort(p: number, name: string): void {
  if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new RangeError(`${name} ${p} is not a 16-bit port`);
}
