import { ByteReader, ByteWriter, ParseError } from '@stepwire/wire';
import type { PacketNumberLength } from './number.ts';
import { readVarint, varintLength, writeVarint } from './varint.ts';

/**
 * QUIC v1 packet headers (RFC 9000 §17) and the version-independent invariants (RFC 8999).
 *
 * Long header (RFC 9000 §17.2):          Short header (RFC 9000 §17.3.1):
 *   Header Form (1) = 1                    Header Form (1) = 0
 *   Fixed Bit (1) = 1                      Fixed Bit (1) = 1
 *   Long Packet Type (2)                   Spin Bit (1)
 *   Type-Specific Bits (4)                 Reserved Bits (2)
 *   Version (32)                           Key Phase (1)
 *   DCID Length (8), DCID (0..160)         Packet Number Length (2)
 *   SCID Length (8), SCID (0..160)         DCID (0..160)
 *   Type-Specific Payload (..)             Packet Number (8..32), Packet Payload (..)
 *
 * The codecs here work on *unprotected* headers: the low bits of the first byte and the
 * packet number are covered by header protection (RFC 9001 §5.4), which crypto/ removes
 * first. `parseProtectedHeader` reads only what header protection leaves in the clear, so
 * a receiver can find the packet number offset and the packet's end before any key is used.
 */

const LAYER = 'quic';

export const QUIC_VERSION_1 = 0x00000001;
/** Version 0 marks a Version Negotiation packet (RFC 9000 §17.2.1). */
export const VERSION_NEGOTIATION = 0x00000000;
/** RFC 9000 §17.2: in version 1, connection IDs are at most 20 bytes. */
export const MAX_CID_LENGTH = 20;
/** RFC 8999 §5.1: version-independent long headers allow connection IDs up to 255 bytes. */
export const MAX_INVARIANT_CID_LENGTH = 255;

/** First-byte bits (RFC 9000 §17.2, §17.3.1). */
export const HEADER_FORM_BIT = 0x80;
export const FIXED_BIT = 0x40;
export const LONG_PACKET_TYPE_MASK = 0x30;
export const LONG_RESERVED_BITS_MASK = 0x0c;
export const SHORT_SPIN_BIT = 0x20;
export const SHORT_RESERVED_BITS_MASK = 0x18;
export const SHORT_KEY_PHASE_BIT = 0x04;
export const PACKET_NUMBER_LENGTH_MASK = 0x03;

/** Named field offsets of the long header; fields after the DCID move with its length. */
export const LONG_FIELD = { FIRST_BYTE: 0, VERSION: 1, DCID_LENGTH: 5, DCID: 6 } as const;
/** Named field offsets of the short header. */
export const SHORT_FIELD = { FIRST_BYTE: 0, DCID: 1 } as const;

export type LongPacketType = 'Initial' | '0-RTT' | 'Handshake' | 'Retry';
/** The two-bit Long Packet Type of version 1 (RFC 9000 §17.2, Table 5). */
export const LONG_PACKET_TYPE_CODE: Record<LongPacketType, number> = {
  Initial: 0x0,
  '0-RTT': 0x1,
  Handshake: 0x2,
  Retry: 0x3,
};
const LONG_PACKET_TYPE_BY_CODE: readonly LongPacketType[] = ['Initial', '0-RTT', 'Handshake', 'Retry'];

/** Fields shared by the long-header packets that carry a packet number. */
interface NumberedLongHeader {
  version: number;
  dcid: Uint8Array;
  scid: Uint8Array;
  /** Reserved Bits (two bits); MUST be zero once protection is removed (RFC 9000 §17.2). */
  reservedBits: number;
  packetNumberLength: PacketNumberLength;
  /** The packet number as sent: its low 8*packetNumberLength bits (RFC 9000 §17.1). */
  truncatedPacketNumber: number;
}

/** RFC 9000 §17.2.2. */
export interface InitialHeader extends NumberedLongHeader {
  type: 'Initial';
  token: Uint8Array;
}
/** RFC 9000 §17.2.3. */
export interface ZeroRttHeader extends NumberedLongHeader {
  type: '0-RTT';
}
/** RFC 9000 §17.2.4. */
export interface HandshakeHeader extends NumberedLongHeader {
  type: 'Handshake';
}
/** RFC 9000 §17.3.1: the 1-RTT packet. */
export interface ShortHeader {
  type: '1-RTT';
  dcid: Uint8Array;
  spinBit: boolean;
  reservedBits: number;
  keyPhase: boolean;
  packetNumberLength: PacketNumberLength;
  truncatedPacketNumber: number;
}
export type LongHeader = InitialHeader | ZeroRttHeader | HandshakeHeader;
/** A header of a packet that has a packet number and protected payload. */
export type PacketHeader = LongHeader | ShortHeader;
export type PacketType = PacketHeader['type'];

/** RFC 9000 §17.2.5. Not protected; its integrity tag is checked by crypto/retry.ts. */
export interface RetryPacket {
  type: 'Retry';
  version: number;
  /** The four Unused bits of the first byte: the server sets them randomly. */
  unusedBits: number;
  dcid: Uint8Array;
  scid: Uint8Array;
  retryToken: Uint8Array;
  retryIntegrityTag: Uint8Array;
}

/** RFC 9000 §17.2.1 (and RFC 8999 §6). */
export interface VersionNegotiationPacket {
  type: 'VersionNegotiation';
  /** The seven Unused bits after the header form bit: set to arbitrary values by the server. */
  unusedBits: number;
  dcid: Uint8Array;
  scid: Uint8Array;
  supportedVersions: number[];
}

export const RETRY_INTEGRITY_TAG_LENGTH = 16;

/** An unprotected packet as plain data: its header and the bytes after the packet number. */
export interface PlainPacket {
  header: PacketHeader;
  /** The packet payload after the packet number (plaintext frames, or ciphertext plus tag). */
  payload: Uint8Array;
}

function checkCid(cid: Uint8Array, name: string, max = MAX_CID_LENGTH): void {
  if (cid.length > max) throw new RangeError(`${name} of ${cid.length} bytes exceeds ${max}`);
}

function checkPnFields(h: {
  packetNumberLength: number;
  truncatedPacketNumber: number;
  reservedBits: number;
}) {
  if (![1, 2, 3, 4].includes(h.packetNumberLength)) throw new RangeError('packetNumberLength must be 1..4');
  const limit = 2 ** (8 * h.packetNumberLength);
  if (
    !Number.isInteger(h.truncatedPacketNumber) ||
    h.truncatedPacketNumber < 0 ||
    h.truncatedPacketNumber >= limit
  ) {
    throw new RangeError(
      `truncated packet number ${h.truncatedPacketNumber} does not fit ${h.packetNumberLength} byte(s)`,
    );
  }
  if (h.reservedBits < 0 || h.reservedBits > 3) throw new RangeError('reservedBits is a two-bit field');
}

function writePacketNumber(w: ByteWriter, pn: number, length: PacketNumberLength): void {
  for (let i = length - 1; i >= 0; i--) w.u8(Math.floor(pn / 2 ** (8 * i)) & 0xff);
}

/**
 * The first byte of a header, where the low bits hold the fields header protection covers.
 */
export function firstByte(h: PacketHeader): number {
  if (h.type === '1-RTT') {
    return (
      FIXED_BIT |
      (h.spinBit ? SHORT_SPIN_BIT : 0) |
      (h.reservedBits << 3) |
      (h.keyPhase ? SHORT_KEY_PHASE_BIT : 0) |
      (h.packetNumberLength - 1)
    );
  }
  return (
    HEADER_FORM_BIT |
    FIXED_BIT |
    (LONG_PACKET_TYPE_CODE[h.type] << 4) |
    (h.reservedBits << 2) |
    (h.packetNumberLength - 1)
  );
}

/**
 * Encodes a header up to and including the packet number, unprotected. `payloadLength` is
 * the number of bytes that will follow the packet number (for a protected packet this
 * includes the AEAD tag); long headers carry it in their Length field together with the
 * packet number length (RFC 9000 §17.2). `lengthFieldWidth` fixes the Length varint's
 * size, e.g. 2 so the field can be patched after padding.
 */
export function encodePacketHeader(
  h: PacketHeader,
  payloadLength: number,
  lengthFieldWidth?: 1 | 2 | 4 | 8,
): Uint8Array {
  checkCid(h.dcid, 'dcid');
  checkPnFields(h);
  if (h.type === '1-RTT') {
    // The per-packet path of 1-RTT traffic: first byte, DCID, packet number, written in place.
    const out = new Uint8Array(1 + h.dcid.length + h.packetNumberLength);
    out[0] = firstByte(h);
    out.set(h.dcid, 1);
    for (let i = 0, pn = h.truncatedPacketNumber; i < h.packetNumberLength; i++, pn = Math.floor(pn / 256)) {
      out[out.length - 1 - i] = pn & 0xff;
    }
    return out;
  }
  const w = new ByteWriter(64);
  w.u8(firstByte(h));
  checkCid(h.scid, 'scid');
  w.u32(h.version);
  w.u8(h.dcid.length).bytes(h.dcid);
  w.u8(h.scid.length).bytes(h.scid);
  if (h.type === 'Initial') {
    writeVarint(w, h.token.length);
    w.bytes(h.token);
  }
  writeVarint(w, h.packetNumberLength + payloadLength, lengthFieldWidth);
  writePacketNumber(w, h.truncatedPacketNumber, h.packetNumberLength);
  return w.finish().slice();
}

export function encodePlainPacket(p: PlainPacket): Uint8Array {
  const head = encodePacketHeader(p.header, p.payload.length);
  const out = new Uint8Array(head.length + p.payload.length);
  out.set(head, 0);
  out.set(p.payload, head.length);
  return out;
}

/** What header protection leaves readable in a packet that has a packet number. */
export interface ProtectedHeaderInfo {
  type: PacketType;
  /** Undefined for 1-RTT packets. */
  version: number | undefined;
  dcid: Uint8Array;
  scid: Uint8Array;
  token: Uint8Array;
  /** Offset of the (protected) Packet Number field; the header protection sample starts 4 bytes later. */
  pnOffset: number;
  /** Offset just past this packet: the next coalesced packet starts here (RFC 9000 §12.2). */
  end: number;
}

function readCid(r: ByteReader, field: string, max: number): Uint8Array {
  const at = r.offset;
  const len = r.u8(`${field}Length`);
  if (len > max)
    r.fail(`${field}Length`, `connection ID of ${len} bytes exceeds ${max} (RFC 9000 §17.2)`, at);
  return r.copy(len, field);
}

/**
 * Reads the parts of a packet that are not header-protected: the type, version,
 * connection IDs, token, Length, and so the packet number offset and the packet's end.
 * For short headers the receiver supplies the DCID length it chose (RFC 9000 §17.3.1).
 * Retry and Version Negotiation packets have their own decoders; this throws for them.
 */
/**
 * RFC 9287: an endpoint that sent the grease_quic_bit transport parameter accepts packets
 * whose fixed bit is 0 (its peer may set it to anything); otherwise such packets are not
 * QUIC v1 packets and are discarded (RFC 9000 §17.2, §17.3.1).
 */
export interface HeaderOptions {
  greaseQuicBit?: boolean;
}

export function parseProtectedHeader(
  bytes: Uint8Array,
  shortDcidLength: number,
  opts?: HeaderOptions,
): ProtectedHeaderInfo {
  const fixedBitRequired = !opts?.greaseQuicBit;
  const r = new ByteReader(bytes, LAYER);
  const first = r.u8('firstByte');
  if ((first & HEADER_FORM_BIT) === 0) {
    // RFC 9000 §17.3.1: the fixed bit is 1; packets with it 0 are not valid in this version.
    if (fixedBitRequired && (first & FIXED_BIT) === 0)
      r.fail('fixedBit', 'fixed bit is 0 (RFC 9000 §17.3.1)', 0);
    const dcid = r.copy(shortDcidLength, 'dcid');
    return {
      type: '1-RTT',
      version: undefined,
      dcid,
      scid: new Uint8Array(0),
      token: new Uint8Array(0),
      pnOffset: r.offset,
      end: bytes.length,
    };
  }
  const version = r.u32('version');
  if (version === VERSION_NEGOTIATION)
    r.fail('version', 'a Version Negotiation packet has no packet number', 1);
  if (version !== QUIC_VERSION_1)
    r.fail('version', `unsupported version 0x${version.toString(16).padStart(8, '0')}`, 1);
  if (fixedBitRequired && (first & FIXED_BIT) === 0) r.fail('fixedBit', 'fixed bit is 0 (RFC 9000 §17.2)', 0);
  const longType = LONG_PACKET_TYPE_BY_CODE[(first & LONG_PACKET_TYPE_MASK) >> 4]!;
  if (longType === 'Retry') r.fail('longPacketType', 'a Retry packet has no packet number', 0);
  const type = longType as LongHeader['type'];
  const dcid = readCid(r, 'dcid', MAX_CID_LENGTH);
  const scid = readCid(r, 'scid', MAX_CID_LENGTH);
  let token: Uint8Array = new Uint8Array(0);
  if (type === 'Initial') {
    const tokenLength = readVarint(r, 'tokenLength');
    token = r.copy(tokenLength, 'token');
  }
  const lengthAt = r.offset;
  const length = readVarint(r, 'length');
  const pnOffset = r.offset;
  // RFC 9000 §17.2: Length covers the packet number and the payload. The smallest
  // protected packet has a 1-byte packet number; anything shorter cannot be real.
  if (length < 1) r.fail('length', 'Length is smaller than any packet number', lengthAt);
  if (length > r.remaining)
    r.fail('length', `Length ${length} exceeds the ${r.remaining} byte(s) present`, lengthAt);
  return { type, version, dcid, scid, token, pnOffset, end: pnOffset + length };
}

function readPacketNumber(r: ByteReader, length: PacketNumberLength): number {
  let pn = 0;
  for (let i = 0; i < length; i++) pn = pn * 256 + r.u8('packetNumber');
  return pn;
}

/**
 * Decodes an unprotected packet (header protection already removed). For long headers the
 * payload is what Length says; for a short header it runs to the end of `bytes`.
 * Returns the packet and the offset where it ended (for coalesced packets, RFC 9000 §12.2).
 */
export function decodePlainPacketAt(
  bytes: Uint8Array,
  shortDcidLength: number,
): { packet: PlainPacket; end: number } {
  const info = parseProtectedHeader(bytes, shortDcidLength);
  const first = bytes[0]!;
  const packetNumberLength = ((first & PACKET_NUMBER_LENGTH_MASK) + 1) as PacketNumberLength;
  const r = new ByteReader(bytes.subarray(0, info.end), LAYER);
  r.skip(info.pnOffset, 'header');
  const truncatedPacketNumber = readPacketNumber(r, packetNumberLength);
  const payload = r.rest('payload').slice();
  let header: PacketHeader;
  if (info.type === '1-RTT') {
    header = {
      type: '1-RTT',
      dcid: info.dcid,
      spinBit: (first & SHORT_SPIN_BIT) !== 0,
      reservedBits: (first & SHORT_RESERVED_BITS_MASK) >> 3,
      keyPhase: (first & SHORT_KEY_PHASE_BIT) !== 0,
      packetNumberLength,
      truncatedPacketNumber,
    };
  } else {
    const common = {
      version: info.version ?? QUIC_VERSION_1,
      dcid: info.dcid,
      scid: info.scid,
      reservedBits: (first & LONG_RESERVED_BITS_MASK) >> 2,
      packetNumberLength,
      truncatedPacketNumber,
    };
    header =
      info.type === 'Initial'
        ? { type: 'Initial', ...common, token: info.token }
        : info.type === '0-RTT'
          ? { type: '0-RTT', ...common }
          : { type: 'Handshake', ...common };
  }
  return { packet: { header, payload }, end: info.end };
}

/** One whole unprotected packet; trailing bytes after a long header's Length are an error here. */
export function decodePlainPacket(bytes: Uint8Array, shortDcidLength: number): PlainPacket {
  const { packet, end } = decodePlainPacketAt(bytes, shortDcidLength);
  if (end !== bytes.length)
    throw new ParseError(LAYER, 'length', end, `${bytes.length - end} byte(s) after the packet`);
  return packet;
}

/** RFC 9000 §17.2.5. */
export function encodeRetry(p: RetryPacket): Uint8Array {
  checkCid(p.dcid, 'dcid');
  checkCid(p.scid, 'scid');
  if (p.retryIntegrityTag.length !== RETRY_INTEGRITY_TAG_LENGTH)
    throw new RangeError('retryIntegrityTag is 16 bytes');
  if (p.unusedBits < 0 || p.unusedBits > 15) throw new RangeError('unusedBits is a four-bit field');
  const w = new ByteWriter(64 + p.retryToken.length);
  w.u8(HEADER_FORM_BIT | FIXED_BIT | (LONG_PACKET_TYPE_CODE.Retry << 4) | p.unusedBits);
  w.u32(p.version);
  w.u8(p.dcid.length).bytes(p.dcid);
  w.u8(p.scid.length).bytes(p.scid);
  w.bytes(p.retryToken).bytes(p.retryIntegrityTag);
  return w.finish().slice();
}

export function decodeRetry(bytes: Uint8Array, opts?: HeaderOptions): RetryPacket {
  const r = new ByteReader(bytes, LAYER);
  const first = r.u8('firstByte');
  if ((first & HEADER_FORM_BIT) === 0) r.fail('headerForm', 'a Retry packet has a long header', 0);
  // RFC 9287 lets a server that saw the client's grease_quic_bit clear this bit too.
  if (!opts?.greaseQuicBit && (first & FIXED_BIT) === 0)
    r.fail('fixedBit', 'fixed bit is 0 (RFC 9000 §17.2)', 0);
  if ((first & LONG_PACKET_TYPE_MASK) >> 4 !== LONG_PACKET_TYPE_CODE.Retry)
    r.fail('longPacketType', 'not a Retry packet', 0);
  const version = r.u32('version');
  if (version !== QUIC_VERSION_1) r.fail('version', `unsupported version 0x${version.toString(16)}`, 1);
  const dcid = readCid(r, 'dcid', MAX_CID_LENGTH);
  const scid = readCid(r, 'scid', MAX_CID_LENGTH);
  if (r.remaining < RETRY_INTEGRITY_TAG_LENGTH) r.fail('retryIntegrityTag', 'needs 16 bytes');
  const retryToken = r.copy(r.remaining - RETRY_INTEGRITY_TAG_LENGTH, 'retryToken');
  const retryIntegrityTag = r.copy(RETRY_INTEGRITY_TAG_LENGTH, 'retryIntegrityTag');
  return { type: 'Retry', version, unusedBits: first & 0x0f, dcid, scid, retryToken, retryIntegrityTag };
}

/** RFC 9000 §17.2.1: Version = 0, then the versions the server supports, 32 bits each. */
export function encodeVersionNegotiation(p: VersionNegotiationPacket): Uint8Array {
  checkCid(p.dcid, 'dcid', MAX_INVARIANT_CID_LENGTH);
  checkCid(p.scid, 'scid', MAX_INVARIANT_CID_LENGTH);
  if (p.unusedBits < 0 || p.unusedBits > 0x7f) throw new RangeError('unusedBits is a seven-bit field');
  const w = new ByteWriter(16 + p.dcid.length + p.scid.length + 4 * p.supportedVersions.length);
  w.u8(HEADER_FORM_BIT | p.unusedBits).u32(VERSION_NEGOTIATION);
  w.u8(p.dcid.length).bytes(p.dcid);
  w.u8(p.scid.length).bytes(p.scid);
  for (const v of p.supportedVersions) w.u32(v);
  return w.finish().slice();
}

export function decodeVersionNegotiation(bytes: Uint8Array): VersionNegotiationPacket {
  const r = new ByteReader(bytes, LAYER);
  const first = r.u8('firstByte');
  if ((first & HEADER_FORM_BIT) === 0) r.fail('headerForm', 'Version Negotiation uses a long header', 0);
  if (r.u32('version') !== VERSION_NEGOTIATION) r.fail('version', 'Version Negotiation has version 0', 1);
  const dcid = readCid(r, 'dcid', MAX_INVARIANT_CID_LENGTH);
  const scid = readCid(r, 'scid', MAX_INVARIANT_CID_LENGTH);
  if (r.remaining % 4 !== 0)
    r.fail('supportedVersions', `${r.remaining} byte(s) is not a whole number of versions`);
  const supportedVersions: number[] = [];
  while (!r.atEnd) supportedVersions.push(r.u32('supportedVersion'));
  return { type: 'VersionNegotiation', unusedBits: first & 0x7f, dcid, scid, supportedVersions };
}

/** The version-independent view of any QUIC packet (RFC 8999 §5). */
export type InvariantHeader =
  | { form: 'long'; version: number; dcid: Uint8Array; scid: Uint8Array }
  | { form: 'short'; dcid: Uint8Array };

export function decodeInvariantHeader(bytes: Uint8Array, shortDcidLength: number): InvariantHeader {
  const r = new ByteReader(bytes, LAYER);
  const first = r.u8('firstByte');
  if ((first & HEADER_FORM_BIT) === 0) return { form: 'short', dcid: r.copy(shortDcidLength, 'dcid') };
  const version = r.u32('version');
  const dcid = readCid(r, 'dcid', MAX_INVARIANT_CID_LENGTH);
  const scid = readCid(r, 'scid', MAX_INVARIANT_CID_LENGTH);
  return { form: 'long', version, dcid, scid };
}

/**
 * Splits a UDP datagram into its coalesced packets (RFC 9000 §12.2) without removing any
 * protection: each long-header packet ends where its Length says; a short-header packet,
 * a Retry or a Version Negotiation packet takes the rest of the datagram. A malformed
 * packet ends the split: the packets before it are still returned, with `error` set.
 */
export function splitCoalescedPackets(
  datagram: Uint8Array,
  shortDcidLength: number,
  opts?: HeaderOptions,
): { packets: Uint8Array[]; error?: ParseError } {
  const packets: Uint8Array[] = [];
  let at = 0;
  while (at < datagram.length) {
    const rest = datagram.subarray(at);
    const first = rest[0]!;
    const longVersion =
      rest.length >= 5 ? ((rest[1]! << 24) | (rest[2]! << 16) | (rest[3]! << 8) | rest[4]!) >>> 0 : -1;
    const takesRest =
      (first & HEADER_FORM_BIT) === 0 ||
      longVersion === VERSION_NEGOTIATION ||
      (longVersion === QUIC_VERSION_1 &&
        (first & LONG_PACKET_TYPE_MASK) >> 4 === LONG_PACKET_TYPE_CODE.Retry);
    if (takesRest) {
      packets.push(rest);
      break;
    }
    try {
      const info = parseProtectedHeader(rest, shortDcidLength, opts);
      packets.push(rest.subarray(0, info.end));
      at += info.end;
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      return { packets, error: new ParseError(e.layer, e.field, e.offset + at, e.reason) };
    }
  }
  return { packets };
}

/** Length of a header's packet number field offset when encoded, for callers sizing packets. */
export function longHeaderOverhead(h: LongHeader, payloadLength: number): number {
  let n = 1 + 4 + 1 + h.dcid.length + 1 + h.scid.length;
  if (h.type === 'Initial') n += varintLength(h.token.length) + h.token.length;
  return n + varintLength(h.packetNumberLength + payloadLength) + h.packetNumberLength;
}
