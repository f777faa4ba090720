/**
 * The gRPC message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): every message
 * in the DATA of a call is
 *
 *   Compressed-Flag (1 byte, 0 or 1) | Message-Length (4 bytes, big-endian) | Message
 *
 * and messages are independent of DATA frame boundaries: one frame may carry several,
 * one message may span several frames. `GrpcMessageReader` reassembles them with a
 * size limit checked on the length prefix, before any of the message is buffered.
 */
import { ParseError } from '@stepwire/wire';
import { GrpcError, GrpcStatus } from './status.ts';

/** Field offsets of the 5-byte prefix. */
export const field = {
  COMPRESSED_FLAG: 0,
  MESSAGE_LENGTH: 1,
  MESSAGE: 5,
} as const;
export const GRPC_PREFIX_LENGTH = 5;

/** One length-prefixed message: the flag says the bytes are compressed by grpc-encoding. */
export interface GrpcMessage {
  compressed: boolean;
  data: Uint8Array;
}

/** Default limit on a received message, as grpc's 4 MiB default max receive size. */
export const DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024;

export function encodeGrpcMessage(m: GrpcMessage): Uint8Array {
  if (m.data.length > 0xffffffff) throw new RangeError('gRPC message longer than 2^32-1 bytes');
  const out = new Uint8Array(GRPC_PREFIX_LENGTH + m.data.length);
  out[field.COMPRESSED_FLAG] = m.compressed ? 1 : 0;
  new DataView(out.buffer).setUint32(field.MESSAGE_LENGTH, m.data.length);
  out.set(m.data, field.MESSAGE);
  return out;
}

function readPrefix(bytes: Uint8Array, at: number): { compressed: boolean; length: number } {
  const flag = bytes[at + field.COMPRESSED_FLAG] ?? 0;
  // PROTOCOL-HTTP2.md: Compressed-Flag is 0 or 1; anything else is not a gRPC message.
  if (flag > 1) throw new ParseError('grpc', 'Compressed-Flag', at, `flag ${flag} is neither 0 nor 1`);
  const length = new DataView(bytes.buffer, bytes.byteOffset + at + field.MESSAGE_LENGTH, 4).getUint32(0);
  return { compressed: flag === 1, length };
}

/** Decodes exactly one message that fills `bytes`; throws ParseError otherwise. */
export function decodeGrpcMessage(bytes: Uint8Array): GrpcMessage {
  if (bytes.length < GRPC_PREFIX_LENGTH)
    throw new ParseError('grpc', 'Length-Prefixed-Message', 0, `${bytes.length} bytes, prefix needs 5`);
  const { compressed, length } = readPrefix(bytes, 0);
  const have = bytes.length - GRPC_PREFIX_LENGTH;
  if (have < length)
    throw new ParseError('grpc', 'Message', GRPC_PREFIX_LENGTH, `length ${length} but ${have} bytes follow`);
  if (have > length)
    throw new ParseError(
      'grpc',
      'Message',
      GRPC_PREFIX_LENGTH + length,
      `${have - length} bytes after the message`,
    );
  return { compressed, data: bytes.slice(GRPC_PREFIX_LENGTH) };
}

/**
 * Reassembles messages from a call's DATA. A length prefix above `maxMessageSize` fails the
 * call with RESOURCE_EXHAUSTED (as grpc does for a message over its receive limit) before
 * any of it is held; a bad flag fails it with INTERNAL.
 */
export class GrpcMessageReader {
  /** Prefix bytes of the next message, until all 5 have come. */
  private head = new Uint8Array(GRPC_PREFIX_LENGTH);
  private headFilled = 0;
  /** The message being filled, allocated once at its announced size (no re-copying). */
  private body: { compressed: boolean; data: Uint8Array; filled: number } | undefined;
  constructor(readonly maxMessageSize: number = DEFAULT_MAX_MESSAGE_SIZE) {}

  /** Bytes held for a message not yet complete. */
  get pending(): number {
    return this.headFilled + (this.body?.filled ?? 0);
  }

  push(chunk: Uint8Array): GrpcMessage[] {
    const out: GrpcMessage[] = [];
    let at = 0;
    while (at < chunk.length || (this.body && this.body.filled === this.body.data.length)) {
      if (this.body) {
        const b = this.body;
        const n = Math.min(b.data.length - b.filled, chunk.length - at);
        b.data.set(chunk.subarray(at, at + n), b.filled);
        b.filled += n;
        at += n;
        if (b.filled < b.data.length) break;
        out.push({ compressed: b.compressed, data: b.data });
        this.body = undefined;
        continue;
      }
      const n = Math.min(GRPC_PREFIX_LENGTH - this.headFilled, chunk.length - at);
      this.head.set(chunk.subarray(at, at + n), this.headFilled);
      this.headFilled += n;
      at += n;
      if (this.headFilled < GRPC_PREFIX_LENGTH) break;
      this.headFilled = 0;
      let prefix: { compressed: boolean; length: number };
      try {
        prefix = readPrefix(this.head, 0);
      } catch (e) {
        throw new GrpcError(GrpcStatus.INTERNAL, (e as Error).message);
      }
      if (prefix.length > this.maxMessageSize)
        throw new GrpcError(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `received message larger than max (${prefix.length} vs. ${this.maxMessageSize})`,
        );
      this.body = { compressed: prefix.compressed, data: new Uint8Array(prefix.length), filled: 0 };
    }
    return out;
  }

  /** At the end of the stream: a partial message left over is a protocol error. */
  finish(): void {
    if (this.pending > 0 || this.body)
      throw new GrpcError(GrpcStatus.INTERNAL, `stream ended inside a message (${this.pending} bytes held)`);
  }
}
