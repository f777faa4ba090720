import { TransportErrorCode, type TransportErrorName } from '../errors.ts';
import { encodeFrame, type Frame } from '../frames/frame.ts';
import { varintLength } from '../packet/varint.ts';
import type { PacketNumberSpace } from '../recovery/loss.ts';

/**
 * What the connection's parts share to build and account for frames: the record kept per
 * sent packet, the transport error thrown while processing a frame, and frame sizes.
 */

/** What a sent packet carried that must be resent (or noted) when it is lost or acknowledged (RFC 9000 §13.3). */
export type SentItem =
  | { k: 'crypto'; space: PacketNumberSpace; offset: number; length: number }
  | { k: 'stream'; id: number; offset: number; length: number; fin: boolean }
  | { k: 'reset'; id: number }
  | { k: 'stop'; id: number }
  | { k: 'max-data' }
  | { k: 'max-stream-data'; id: number }
  | { k: 'max-streams'; bidi: boolean }
  | { k: 'data-blocked' }
  | { k: 'stream-data-blocked'; id: number }
  | { k: 'streams-blocked'; bidi: boolean }
  | { k: 'handshake-done' }
  | { k: 'new-cid'; seq: number }
  | { k: 'retire-cid'; seq: number }
  | { k: 'ack'; largest: number }
  | { k: 'path-challenge' }
  | { k: 'new-token'; token: Uint8Array }
  | { k: 'ping' }
  /** A path MTU probe (RFC 9000 §14.4): acknowledged, it raises the datagram size; lost, it is not sent again. */
  | { k: 'pmtu-probe'; id: number; size: number };

/** Adds a frame to the packet being built if it fits; returns whether it did. */
export type AddFrame = (frame: Frame, item: SentItem | undefined) => boolean;

/** A transport error raised while processing a packet (RFC 9000 §11, §20.1): the connection closes with it. */
export class TransportError extends Error {
  constructor(
    readonly code: number,
    reason: string,
    readonly frameType = 0,
  ) {
    super(reason);
  }
}

export function transportError(name: TransportErrorName, reason: string, frameType = 0): TransportError {
  return new TransportError(TransportErrorCode[name], reason, frameType);
}

/** Encoded length of a frame (STREAM and CRYPTO computed without copying their data). */
export function frameLength(f: Frame): number {
  switch (f.type) {
    case 'PADDING':
      return f.length;
    case 'STREAM':
      return (
        1 +
        varintLength(f.streamId) +
        (f.hasOffset ? varintLength(f.offset) : 0) +
        (f.hasLength ? varintLength(f.data.length) : 0) +
        f.data.length
      );
    case 'CRYPTO':
      return 1 + varintLength(f.offset) + varintLength(f.data.length) + f.data.length;
    default:
      return encodeFrame(f).length;
  }
}

/** PADDING bytes at the end of a payload; one run, merged with a PADDING frame already last (RFC 9000 §19.1). */
export function addPadding(frames: Frame[], n: number): void {
  const last = frames[frames.length - 1];
  if (last?.type === 'PADDING') last.length += n;
  else frames.push({ type: 'PADDING', length: n });
}
