import { ParseError } from '@stepwire/wire';
import { decodeFrames, type Frame } from '../frames/frame.ts';
import { firstIllegalFrame } from '../frames/legality.ts';
import {
  decodeRetry,
  decodeVersionNegotiation,
  HEADER_FORM_BIT,
  LONG_RESERVED_BITS_MASK,
  type PacketType,
  parseProtectedHeader,
  type RetryPacket,
  SHORT_KEY_PHASE_BIT,
  SHORT_RESERVED_BITS_MASK,
  SHORT_SPIN_BIT,
  splitCoalescedPackets,
  type VersionNegotiationPacket,
} from '../packet/header.ts';
import { decodePacketNumber } from '../packet/number.ts';
import type { KeyPhaseState } from './key-update.ts';
import type { PacketKeys } from './keys.ts';
import { decryptPayload, removeHeaderProtection } from './protect.ts';

/**
 * The receive path below a connection: one UDP datagram in, its packets out, each split
 * (RFC 9000 §12.2), unprotected with the keys of its level (RFC 9001 §5), its frames
 * decoded and checked against Table 3 (RFC 9000 §12.4). Nothing here throws on hostile
 * input: every packet yields an event saying what it was or why it was dropped, so the
 * connection can count, trace and answer as the RFC says.
 */

export interface ReceiveKeys {
  Initial?: PacketKeys;
  Handshake?: PacketKeys;
  '0-RTT'?: PacketKeys;
  '1-RTT'?: KeyPhaseState;
}

export interface OpenedPacketInfo {
  type: PacketType;
  version: number | undefined;
  dcid: Uint8Array;
  scid: Uint8Array;
  token: Uint8Array;
  packetNumber: number;
  keyPhase: boolean;
  spinBit: boolean;
  frames: Frame[];
  /** Bytes of this packet in the datagram (for anti-amplification and congestion accounting). */
  size: number;
}

export type DatagramEvent =
  | { kind: 'packet'; packet: OpenedPacketInfo }
  | { kind: 'retry'; retry: RetryPacket; bytes: Uint8Array }
  | { kind: 'version-negotiation'; packet: VersionNegotiationPacket }
  /** No keys for this level yet: RFC 9001 §5.7 lets the receiver buffer it (bounded) or drop it. */
  | { kind: 'no-keys'; type: PacketType; bytes: Uint8Array }
  /** Dropped silently as the RFC asks (undecodable header, short sample, failed authentication §9.5 of RFC 9001). */
  | { kind: 'dropped'; reason: string; type?: PacketType; offset: number }
  /** Authenticated but breaking a rule: the connection closes with PROTOCOL_VIOLATION or FRAME_ENCODING_ERROR. */
  | {
      kind: 'violation';
      error: 'PROTOCOL_VIOLATION' | 'FRAME_ENCODING_ERROR';
      reason: string;
      type: PacketType;
      frameType?: string;
    };

export interface OpenDatagramOptions {
  /** Length of the connection IDs we issued (RFC 9000 §17.3.1: short headers do not carry it). */
  shortDcidLength: number;
  keys: ReceiveKeys;
  /** We sent grease_quic_bit (RFC 9287): accept packets whose fixed bit is 0. */
  greaseQuicBit?: boolean;
  /** Largest packet number processed in a space, -1 if none (RFC 9000 Appendix A.3). */
  largestPn: (space: 'Initial' | 'Handshake' | 'ApplicationData') => number;
}

function spaceOf(t: PacketType): 'Initial' | 'Handshake' | 'ApplicationData' {
  return t === 'Initial' ? 'Initial' : t === 'Handshake' ? 'Handshake' : 'ApplicationData';
}

export function openDatagram(datagram: Uint8Array, opts: OpenDatagramOptions): DatagramEvent[] {
  const events: DatagramEvent[] = [];
  const { packets, error } = splitCoalescedPackets(datagram, opts.shortDcidLength, opts);
  let offset = 0;
  for (const bytes of packets) {
    events.push(openOne(bytes, offset, opts));
    offset += bytes.length;
  }
  if (error) events.push({ kind: 'dropped', reason: error.message, offset: error.offset });
  return events;
}

function openOne(bytes: Uint8Array, offset: number, opts: OpenDatagramOptions): DatagramEvent {
  const first = bytes[0]!;
  if (first & HEADER_FORM_BIT && bytes.length >= 5) {
    const version = ((bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!) >>> 0;
    try {
      if (version === 0) return { kind: 'version-negotiation', packet: decodeVersionNegotiation(bytes) };
      if (version === 1 && (first & 0x30) === 0x30)
        return { kind: 'retry', retry: decodeRetry(bytes, opts), bytes };
    } catch (e) {
      if (e instanceof ParseError) return { kind: 'dropped', reason: e.message, offset: offset + e.offset };
      throw e;
    }
  }
  let info: ReturnType<typeof parseProtectedHeader>;
  try {
    info = parseProtectedHeader(bytes, opts.shortDcidLength, opts);
  } catch (e) {
    if (e instanceof ParseError) return { kind: 'dropped', reason: e.message, offset: offset + e.offset };
    throw e;
  }
  const type = info.type;
  const keyPhases = type === '1-RTT' ? opts.keys['1-RTT'] : undefined;
  const hpKeys = type === '1-RTT' ? keyPhases?.rx : opts.keys[type];
  if (!hpKeys) return { kind: 'no-keys', type, bytes };
  let unmasked: ReturnType<typeof removeHeaderProtection>;
  try {
    unmasked = removeHeaderProtection(hpKeys.hpMask, bytes, info.pnOffset);
  } catch (e) {
    if (e instanceof ParseError)
      return { kind: 'dropped', reason: e.message, type, offset: offset + e.offset };
    throw e;
  }
  const space = spaceOf(type);
  const pn = decodePacketNumber(
    opts.largestPn(space),
    unmasked.truncatedPacketNumber,
    8 * unmasked.packetNumberLength,
  );
  const keyPhase = type === '1-RTT' && (unmasked.firstByte & SHORT_KEY_PHASE_BIT) !== 0;
  let payload: Uint8Array | undefined;
  if (keyPhases) {
    const { keys, choice } = keyPhases.keysFor(keyPhase, pn);
    payload = decryptPayload(keys, unmasked, pn, bytes);
    if (payload) keyPhases.onPacketAuthenticated(choice, pn);
  } else {
    payload = decryptPayload(hpKeys, unmasked, pn, bytes);
  }
  // RFC 9001 §5.5 (and §9.5): a packet that fails authentication is discarded, no answer.
  if (!payload) return { kind: 'dropped', reason: 'authentication failed', type, offset };
  // RFC 9000 §17.2, §17.3.1: non-zero reserved bits after removing protection are a PROTOCOL_VIOLATION.
  const reserved =
    unmasked.firstByte & (type === '1-RTT' ? SHORT_RESERVED_BITS_MASK : LONG_RESERVED_BITS_MASK);
  if (reserved !== 0)
    return { kind: 'violation', error: 'PROTOCOL_VIOLATION', reason: 'reserved bits set', type };
  let frames: Frame[];
  try {
    // The payload is the AEAD's fresh output, ours alone: frame data may view it (no copy).
    frames = decodeFrames(payload, 0, true);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    // §12.4: an empty payload is a PROTOCOL_VIOLATION; a badly formed frame a FRAME_ENCODING_ERROR.
    const error = e.field === 'payload' ? 'PROTOCOL_VIOLATION' : 'FRAME_ENCODING_ERROR';
    return { kind: 'violation', error, reason: e.message, type };
  }
  const illegal = firstIllegalFrame(frames, type);
  if (illegal) {
    return {
      kind: 'violation',
      error: 'PROTOCOL_VIOLATION',
      reason: `${illegal.type} in a ${type} packet (RFC 9000 §12.4)`,
      type,
      frameType: illegal.type,
    };
  }
  return {
    kind: 'packet',
    packet: {
      type,
      version: info.version,
      dcid: info.dcid,
      scid: info.scid,
      token: info.token,
      packetNumber: pn,
      keyPhase,
      spinBit: type === '1-RTT' && (unmasked.firstByte & SHORT_SPIN_BIT) !== 0,
      frames,
      size: bytes.length,
    },
  };
}
