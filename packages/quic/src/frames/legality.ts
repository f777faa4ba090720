import type { PacketType } from '../packet/header.ts';
import { type Frame, type FrameName, FrameType } from './frame.ts';

/**
 * RFC 9000 §12.4, Table 3 (and RFC 9221 §4 for DATAGRAM), as data: in which packet types
 * each frame may appear, and its special properties.
 *
 * Pkts: I = Initial, H = Handshake, 0 = 0-RTT, 1 = 1-RTT.
 * Spec: N = not ack-eliciting (§13.2), C = does not count toward bytes in flight
 *       (RFC 9002 §2), P = may be sent on a probing packet (§9.1), F = flow controlled (§4).
 */
export interface FrameRule {
  /** Table 3's "Type Value" column: the first code of the frame type. */
  code: number;
  packets: readonly PacketType[];
  ackEliciting: boolean;
  countsInFlight: boolean;
  probing: boolean;
  flowControlled: boolean;
  /** Where the rule comes from. */
  rfc: string;
}

const I = 'Initial' as const;
const H = 'Handshake' as const;
const Z = '0-RTT' as const;
const O = '1-RTT' as const;

function rule(code: number, packets: PacketType[], spec: string, rfc = 'RFC 9000 §12.4 Table 3'): FrameRule {
  return {
    code,
    packets,
    ackEliciting: !spec.includes('N'),
    countsInFlight: !spec.includes('C'),
    probing: spec.includes('P'),
    flowControlled: spec.includes('F'),
    rfc,
  };
}

/**
 * The table. CONNECTION_CLOSE is split by type: 0x1c may appear in every packet type,
 * 0x1d (application errors) only in 0-RTT and 1-RTT (Table 3's lowercase "ih01", §12.5).
 */
export const FRAME_RULES: Readonly<Record<FrameName, FrameRule>> = {
  PADDING: rule(FrameType.PADDING, [I, H, Z, O], 'NP'),
  PING: rule(FrameType.PING, [I, H, Z, O], ''),
  ACK: rule(FrameType.ACK, [I, H, O], 'NC'),
  RESET_STREAM: rule(FrameType.RESET_STREAM, [Z, O], ''),
  STOP_SENDING: rule(FrameType.STOP_SENDING, [Z, O], ''),
  CRYPTO: rule(FrameType.CRYPTO, [I, H, O], ''),
  NEW_TOKEN: rule(FrameType.NEW_TOKEN, [O], ''),
  STREAM: rule(FrameType.STREAM, [Z, O], 'F'),
  MAX_DATA: rule(FrameType.MAX_DATA, [Z, O], ''),
  MAX_STREAM_DATA: rule(FrameType.MAX_STREAM_DATA, [Z, O], ''),
  MAX_STREAMS: rule(FrameType.MAX_STREAMS_BIDI, [Z, O], ''),
  DATA_BLOCKED: rule(FrameType.DATA_BLOCKED, [Z, O], ''),
  STREAM_DATA_BLOCKED: rule(FrameType.STREAM_DATA_BLOCKED, [Z, O], ''),
  STREAMS_BLOCKED: rule(FrameType.STREAMS_BLOCKED_BIDI, [Z, O], ''),
  NEW_CONNECTION_ID: rule(FrameType.NEW_CONNECTION_ID, [Z, O], 'P'),
  RETIRE_CONNECTION_ID: rule(FrameType.RETIRE_CONNECTION_ID, [Z, O], ''),
  PATH_CHALLENGE: rule(FrameType.PATH_CHALLENGE, [Z, O], 'P'),
  PATH_RESPONSE: rule(FrameType.PATH_RESPONSE, [O], 'P'),
  CONNECTION_CLOSE: rule(FrameType.CONNECTION_CLOSE, [I, H, Z, O], 'N'),
  CONNECTION_CLOSE_APPLICATION: rule(FrameType.CONNECTION_CLOSE_APPLICATION, [Z, O], 'N'),
  HANDSHAKE_DONE: rule(FrameType.HANDSHAKE_DONE, [O], ''),
  // RFC 9221 §4: DATAGRAM frames are ack-eliciting and congestion controlled, not flow
  // controlled, and "MUST NOT be sent in Initial or Handshake packets" (§5, 0-RTT is allowed).
  DATAGRAM: rule(FrameType.DATAGRAM, [Z, O], '', 'RFC 9221 §4'),
};

/**
 * RFC 9000 §12.4: "An endpoint MUST treat receipt of a frame in a packet type that is not
 * permitted as a connection error of type PROTOCOL_VIOLATION."
 */
export function frameAllowedIn(frame: Frame | FrameName, packet: PacketType): boolean {
  const name = typeof frame === 'string' ? frame : frame.type;
  return FRAME_RULES[name].packets.includes(packet);
}

/** RFC 9000 §13.2: a packet is ack-eliciting when it holds any frame other than ACK, PADDING, CONNECTION_CLOSE. */
export function isAckEliciting(frames: readonly Frame[]): boolean {
  return frames.some((f) => FRAME_RULES[f.type].ackEliciting);
}

/**
 * RFC 9002 §2: "Packets are considered in flight when they are ack-eliciting or contain a
 * PADDING frame". (Table 3's C flag marks ACK alone; a packet of only CONNECTION_CLOSE is
 * neither ack-eliciting nor padded, so it is not in flight either.)
 */
export function countsInFlight(frames: readonly Frame[]): boolean {
  return frames.some((f) => f.type === 'PADDING' || FRAME_RULES[f.type].ackEliciting);
}

/** RFC 9000 §9.1: a probing packet holds only PATH_CHALLENGE, PATH_RESPONSE, NEW_CONNECTION_ID and PADDING. */
export function isProbingPacket(frames: readonly Frame[]): boolean {
  return frames.every((f) => FRAME_RULES[f.type].probing);
}

/** The first frame of a payload that its packet type does not permit, if any. */
export function firstIllegalFrame(frames: readonly Frame[], packet: PacketType): Frame | undefined {
  return frames.find((f) => !frameAllowedIn(f, packet));
}
