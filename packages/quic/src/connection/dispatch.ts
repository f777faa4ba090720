/**
 * Frames in (RFC 9000 §19): each frame to the concern that owns it.
 */
import { type Frame, FrameType, frameTypeCode } from '../frames/frame.ts';
import { onAck } from './acks.ts';
import { onConnectionClose } from './close.ts';
import type { ConnectionCore, Space } from './core.ts';
import { frameLength, transportError } from './frames.ts';
import { confirmHandshake, onTls } from './handshake.ts';
import { onPathChallenge, onPathResponse } from './path.ts';

export function onFrame(c: ConnectionCore, f: Frame, space: Space, now: number): void {
  switch (f.type) {
    case 'PADDING':
    case 'PING':
      return;
    case 'ACK':
      onAck(c, f, space, now);
      return;
    case 'CRYPTO':
      onCrypto(c, f.offset, f.data, space, now);
      return;
    case 'HANDSHAKE_DONE':
      // RFC 9000 §19.20: a server receiving HANDSHAKE_DONE closes with PROTOCOL_VIOLATION.
      if (c.role === 'server')
        throw transportError('PROTOCOL_VIOLATION', 'HANDSHAKE_DONE from a client', FrameType.HANDSHAKE_DONE);
      if (!c.hs.confirmed) confirmHandshake(c, now);
      return;
    case 'NEW_TOKEN':
      if (c.role === 'client') {
        // Kept for the application to read (a property, not an event: HTTP/3 enumerates events).
        c.tokens.received = f.token;
        return;
      }
      if (c.role === 'server')
        throw transportError(
          'PROTOCOL_VIOLATION',
          'NEW_TOKEN from a client (RFC 9000 §19.7)',
          FrameType.NEW_TOKEN,
        );
      return;
    case 'CONNECTION_CLOSE':
    case 'CONNECTION_CLOSE_APPLICATION':
      onConnectionClose(c, f, now);
      return;
    case 'STREAM':
    case 'RESET_STREAM':
    case 'STOP_SENDING':
    case 'MAX_DATA':
    case 'MAX_STREAM_DATA':
    case 'MAX_STREAMS':
    case 'DATA_BLOCKED':
    case 'STREAM_DATA_BLOCKED':
    case 'STREAMS_BLOCKED':
      c.streamSet.onFrame(f);
      return;
    case 'NEW_CONNECTION_ID':
      c.cids.onNewConnectionId(f.sequenceNumber, f.retirePriorTo, f.connectionId, f.statelessResetToken);
      return;
    case 'RETIRE_CONNECTION_ID':
      c.cids.onRetireConnectionId(f.sequenceNumber, c.peerCidLimit);
      return;
    case 'PATH_CHALLENGE':
      onPathChallenge(c, f.data);
      return;
    case 'PATH_RESPONSE':
      onPathResponse(c, f.data, now);
      return;
    case 'DATAGRAM':
      onDatagramFrame(c, f, now);
      return;
  }
}

export function onDatagramFrame(
  c: ConnectionCore,
  f: Extract<Frame, { type: 'DATAGRAM' }>,
  now: number,
): void {
  const ourMax = c.config.maxDatagramFrameSize ?? 0;
  // RFC 9221 §3: a DATAGRAM frame when we did not advertise max_datagram_frame_size, or one
  // larger than we advertised, is a PROTOCOL_VIOLATION.
  if (ourMax === 0)
    throw transportError(
      'PROTOCOL_VIOLATION',
      'DATAGRAM frame not negotiated (RFC 9221 §3)',
      frameTypeCode(f),
    );
  if (frameLength(f) > ourMax)
    throw transportError(
      'PROTOCOL_VIOLATION',
      `DATAGRAM frame larger than max_datagram_frame_size ${ourMax} (RFC 9221 §3)`,
      frameTypeCode(f),
    );
  // RFC 9221 §5: the receiver may drop DATAGRAM frames it has no room for; the oldest goes.
  if (c.dgram.unpolled >= c.dgram.limit) {
    const i = c.events.findIndex((e) => e.type === 'datagram');
    if (i >= 0) {
      c.events.splice(i, 1);
      c.dgram.unpolled--;
    }
    c.counters.inc('quic.rx.datagram.dropped');
    c.trace1(now, 'local', 'DATAGRAM dropped: receive queue full', 'RFC 9221 §5');
  }
  c.counters.inc('quic.rx.datagram');
  c.events.push({ type: 'datagram', data: f.data });
  c.dgram.unpolled++;
}

export function onCrypto(
  c: ConnectionCore,
  offset: number,
  data: Uint8Array,
  space: Space,
  now: number,
): void {
  const buf = space.cryptoRecv;
  const err = buf.receive(offset, data);
  // RFC 9000 §7.5: more than we buffer is CRYPTO_BUFFER_EXCEEDED.
  if (err) throw transportError('CRYPTO_BUFFER_EXCEEDED', `CRYPTO data: ${err}`, FrameType.CRYPTO);
  const chunk = buf.read();
  if (chunk.length === 0) return;
  buf.raiseLimit(buf.bytesRead + c.config.cryptoBufferSize);
  onTls(c, c.tls.receive(space.level, chunk, now + c.tlsEpoch), now);
}
