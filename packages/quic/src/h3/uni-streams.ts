/**
 * The peer's unidirectional streams (RFC 9114 §6.2): the stream type that opens each one
 * decides what it is — the control stream, QPACK's encoder and decoder streams (each once,
 * §6.2.1, RFC 9204 §4.2), push streams (never allowed here) or an unknown type, which is
 * STOP_SENDING'd and counted against maxIgnoredStreams.
 */
import { ByteReader, concatBytes } from '@stepwire/wire';
import { readVarintLimit } from '../packet/varint.ts';
import { onControlItem } from './control.ts';
import type { H3Core, UniStream } from './core.ts';
import { H3ConnectionError, H3ErrorCode } from './errors.ts';
import { H3FrameReader, H3FrameTooLarge, type H3StreamItem, H3StreamType } from './frames.ts';
import { onUnblocked } from './qpack-streams.ts';

/** A new peer stream: its type comes with its first bytes. */
export function onUniOpened(c: H3Core, id: number): void {
  if (!c.uni.has(id)) c.uni.set(id, { kind: 'pending', buffer: new Uint8Array(0) });
}

export function onUniData(c: H3Core, id: number, data: Uint8Array, fin: boolean): void {
  let u = c.uni.get(id);
  if (!u) {
    u = { kind: 'pending', buffer: new Uint8Array(0) };
    c.uni.set(id, u);
  }
  if (u.kind === 'pending') {
    const buf = u.buffer.length === 0 ? data : concatBytes(u.buffer, data);
    const r = new ByteReader(buf, 'h3');
    let type: number;
    try {
      // §6.2: the stream type; reserved types may be any 62-bit value.
      type = readVarintLimit(r, 'Stream Type');
    } catch {
      if (fin) {
        // A stream that ends before its type is ignored (§6.2: an unknown stream).
        c.uni.delete(id);
        return;
      }
      c.uni.set(id, { kind: 'pending', buffer: buf });
      return;
    }
    u = openUni(c, id, type);
    c.uni.set(id, u);
    data = buf.subarray(r.offset);
  }
  switch (u.kind) {
    case 'control': {
      let items: H3StreamItem[];
      try {
        items = u.reader.push(data);
      } catch (e) {
        if (e instanceof H3FrameTooLarge) throw new H3ConnectionError('H3_EXCESSIVE_LOAD', e.message);
        throw e;
      }
      for (const item of items) onControlItem(c, id, u, item);
      break;
    }
    case 'encoder':
      for (const { streamId, result } of c.decoder.onEncoderStream(data)) onUnblocked(c, streamId, result);
      break;
    case 'decoder':
      c.encoder.onDecoderStream(data);
      break;
    case 'ignored':
    case 'pending':
      break;
  }
  if (fin) onUniEnd(c, id, u);
}

/** §6.2: the stream type decides what the stream is; critical streams exist once each. */
export function openUni(c: H3Core, id: number, type: number): UniStream {
  switch (type) {
    case H3StreamType.CONTROL:
      // §6.2.1: only one control stream per peer.
      if (c.peerCritical.control)
        throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', 'a second control stream');
      c.peerCritical.control = true;
      return {
        kind: 'control',
        reader: new H3FrameReader(c.limits.maxFramePayload),
        settingsSeen: false,
      };
    case H3StreamType.QPACK_ENCODER:
      // RFC 9204 §4.2: one encoder and one decoder stream per peer.
      if (c.peerCritical.encoder)
        throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', 'a second QPACK encoder stream');
      c.peerCritical.encoder = true;
      return { kind: 'encoder' };
    case H3StreamType.QPACK_DECODER:
      if (c.peerCritical.decoder)
        throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', 'a second QPACK decoder stream');
      c.peerCritical.decoder = true;
      return { kind: 'decoder' };
    case H3StreamType.PUSH:
      // §6.2.2: only servers push; a client that sent no MAX_PUSH_ID allowed no push ID (§4.6).
      if (c.role === 'server')
        throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', 'push stream from a client');
      throw new H3ConnectionError('H3_ID_ERROR', 'push stream without MAX_PUSH_ID');
    default:
      // §6.2: unknown and reserved types: abort reading with H3_STREAM_CREATION_ERROR.
      c.counters.inc('h3.streams.unknown-type');
      c.ignoredStreams++;
      if (c.ignoredStreams > c.limits.maxIgnoredStreams) {
        throw new H3ConnectionError(
          'H3_EXCESSIVE_LOAD',
          `more than ${c.limits.maxIgnoredStreams} unknown unidirectional streams open at once`,
        );
      }
      c.transport.stopSending(id, H3ErrorCode.H3_STREAM_CREATION_ERROR);
      return { kind: 'ignored' };
  }
}

export function onUniEnd(c: H3Core, id: number, u: UniStream): void {
  if (u.kind === 'control' || u.kind === 'encoder' || u.kind === 'decoder')
    // RFC 9114 §6.2.1, RFC 9204 §4.2: closing a critical stream is a connection error.
    throw new H3ConnectionError('H3_CLOSED_CRITICAL_STREAM', `the peer's ${u.kind} stream ended`);
  if (u.kind === 'ignored') c.ignoredStreams--;
  c.uni.delete(id);
}
