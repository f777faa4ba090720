import { allocBytes, ParseError } from '@stepwire/wire';
import {
  encodePacketHeader,
  HEADER_FORM_BIT,
  PACKET_NUMBER_LENGTH_MASK,
  type PacketHeader,
} from '../packet/header.ts';
import { decodePacketNumber, type PacketNumberLength } from '../packet/number.ts';
import { HP_SAMPLE_LENGTH } from './hp.ts';
import type { PacketKeys } from './keys.ts';

/**
 * Packet protection (RFC 9001 §5.3, §5.4): AEAD over the payload with the header as
 * associated data, then header protection over the first byte's low bits and the packet
 * number, keyed by a sample of the ciphertext.
 */

export const AEAD_TAG_LENGTH = 16;
/** §5.4.2: the sample starts 4 bytes after the start of the Packet Number field. */
export const SAMPLE_OFFSET_FROM_PN = 4;
/** The smallest pn_length + payload (incl. tag) that leaves room for a sample (§5.4.2). */
export const MIN_PROTECTED_LENGTH_AFTER_PN = SAMPLE_OFFSET_FROM_PN + HP_SAMPLE_LENGTH;

const LAYER = 'quic-protection';
const EMPTY = new Uint8Array(0);

/**
 * RFC 9001 §5.3: the nonce is the IV XORed with the packet number, left-padded to the IV's
 * length. Packet numbers reach 2^62, so the high and low 32 bits are handled apart.
 */
export function packetNonce(iv: Uint8Array, packetNumber: number): Uint8Array {
  const nonce = iv.slice();
  const n = nonce.length;
  let lo = packetNumber >>> 0;
  let hi = Math.floor(packetNumber / 2 ** 32);
  for (let i = 0; i < 4; i++) {
    nonce[n - 1 - i] = nonce[n - 1 - i]! ^ (lo & 0xff);
    lo >>>= 8;
    nonce[n - 5 - i] = nonce[n - 5 - i]! ^ (hi & 0xff);
    hi = Math.floor(hi / 256);
  }
  return nonce;
}

/** §5.4.1: four bits of the first byte are protected in long headers, five in short headers. */
function firstByteMask(first: number): number {
  return (first & HEADER_FORM_BIT) !== 0 ? 0x0f : 0x1f;
}

/**
 * Protects a packet. `header` is the unprotected header ending with the packet number
 * (whose length is in its first byte); its Length field, if any, must already count the
 * AEAD tag. Returns header || ciphertext || tag with header protection applied.
 */
export function protectPacket(
  keys: PacketKeys,
  header: Uint8Array,
  packetNumber: number,
  payload: Uint8Array,
): Uint8Array {
  const pnLength = (header[0]! & PACKET_NUMBER_LENGTH_MASK) + 1;
  const pnOffset = header.length - pnLength;
  if (pnLength + payload.length + AEAD_TAG_LENGTH < MIN_PROTECTED_LENGTH_AFTER_PN) {
    // §5.4.2: the sender pads short packets so that a sample always exists.
    throw new RangeError(
      `packet number and payload of ${pnLength + payload.length} bytes leave no room for the header protection sample`,
    );
  }
  // Every byte is written below: no need to zero a fresh buffer per packet.
  const out = allocBytes(header.length + payload.length + AEAD_TAG_LENGTH);
  out.set(header, 0);
  const nonce = packetNonce(keys.iv, packetNumber);
  // Sealed straight into the packet when the AEAD can (one copy of the ciphertext, not two).
  if (keys.aead.sealInto) keys.aead.sealInto(nonce, header, payload, EMPTY, out, header.length);
  else out.set(keys.aead.seal(nonce, header, payload), header.length);
  const sampleAt = pnOffset + SAMPLE_OFFSET_FROM_PN;
  const mask = keys.hpMask(out.subarray(sampleAt, sampleAt + HP_SAMPLE_LENGTH));
  out[0] = out[0]! ^ (mask[0]! & firstByteMask(out[0]!));
  for (let i = 0; i < pnLength; i++) out[pnOffset + i] = out[pnOffset + i]! ^ mask[1 + i]!;
  return out;
}

/** Encodes and protects a packet whose full packet number is `packetNumber`. */
export function sealPacket(
  keys: PacketKeys,
  header: PacketHeader,
  packetNumber: number,
  payload: Uint8Array,
): Uint8Array {
  return protectPacket(
    keys,
    encodePacketHeader(header, payload.length + AEAD_TAG_LENGTH),
    packetNumber,
    payload,
  );
}

/** The header after header protection is removed (RFC 9001 §5.4.1). */
export interface UnmaskedHeader {
  /** The unprotected header bytes, first byte through packet number: the AEAD's associated data. */
  header: Uint8Array;
  firstByte: number;
  packetNumberLength: PacketNumberLength;
  truncatedPacketNumber: number;
  /** Offset of the ciphertext in the packet. */
  payloadOffset: number;
}

/**
 * Removes header protection. `pnOffset` comes from parseProtectedHeader. Throws ParseError
 * when the packet is too short to hold a sample (§5.4.2): such a packet is dropped.
 */
export function removeHeaderProtection(
  hpMask: PacketKeys['hpMask'],
  packet: Uint8Array,
  pnOffset: number,
): UnmaskedHeader {
  const sampleAt = pnOffset + SAMPLE_OFFSET_FROM_PN;
  if (sampleAt + HP_SAMPLE_LENGTH > packet.length) {
    throw new ParseError(
      LAYER,
      'sample',
      sampleAt,
      'packet too short for a header protection sample (RFC 9001 §5.4.2)',
    );
  }
  const mask = hpMask(packet.subarray(sampleAt, sampleAt + HP_SAMPLE_LENGTH));
  const firstByte = packet[0]! ^ (mask[0]! & firstByteMask(packet[0]!));
  const packetNumberLength = ((firstByte & PACKET_NUMBER_LENGTH_MASK) + 1) as PacketNumberLength;
  const header = packet.slice(0, pnOffset + packetNumberLength);
  header[0] = firstByte;
  let truncatedPacketNumber = 0;
  for (let i = 0; i < packetNumberLength; i++) {
    const b = header[pnOffset + i]! ^ mask[1 + i]!;
    header[pnOffset + i] = b;
    truncatedPacketNumber = truncatedPacketNumber * 256 + b;
  }
  return {
    header,
    firstByte,
    packetNumberLength,
    truncatedPacketNumber,
    payloadOffset: pnOffset + packetNumberLength,
  };
}

/** The AEAD half of unprotection: the plaintext, or undefined when authentication fails. */
export function decryptPayload(
  keys: PacketKeys,
  unmasked: UnmaskedHeader,
  packetNumber: number,
  packet: Uint8Array,
): Uint8Array | undefined {
  const ciphertext = packet.subarray(unmasked.payloadOffset);
  const plain = keys.aead.open(packetNonce(keys.iv, packetNumber), unmasked.header, ciphertext);
  return plain ?? undefined;
}

export interface OpenedPacket extends UnmaskedHeader {
  packetNumber: number;
  payload: Uint8Array;
}

/**
 * Removes both protections from one packet (not a whole datagram: split coalesced packets
 * first). `largestPn` is the largest packet number processed in this space, -1 if none.
 * Returns undefined when the AEAD does not authenticate: per RFC 9001 §5.5 the packet is
 * then discarded, not answered.
 */
export function openPacket(
  keys: PacketKeys,
  packet: Uint8Array,
  pnOffset: number,
  largestPn: number,
): OpenedPacket | undefined {
  const unmasked = removeHeaderProtection(keys.hpMask, packet, pnOffset);
  const packetNumber = decodePacketNumber(
    largestPn,
    unmasked.truncatedPacketNumber,
    8 * unmasked.packetNumberLength,
  );
  const payload = decryptPayload(keys, unmasked, packetNumber, packet);
  if (payload === undefined) return undefined;
  return { ...unmasked, packetNumber, payload };
}
