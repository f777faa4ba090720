/**
 * Closing (RFC 9000 §10): immediate close, the closing and draining states, the idle
 * timeout and stateless reset.
 */
import { concatBytes, fromUtf8, utf8 } from '@stepwire/wire';
import { TransportErrorCode } from '../errors.ts';
import type { Frame } from '../frames/frame.ts';
import { isStatelessReset, MIN_STATELESS_RESET_LENGTH } from '../packet/stateless-reset.ts';
import { type ConnectionCore, MIN_INITIAL_DATAGRAM } from './core.ts';
import { addPadding, frameLength, type TransportError } from './frames.ts';
import { headerFor, seal } from './send.ts';
import type { QuicCloseError } from './types.ts';

export function closeWithError(c: ConnectionCore, now: number, e: TransportError): void {
  if (!c.isLive) return;
  c.counters.inc('quic.close.error');
  enterClosing(
    c,
    now,
    {
      type: 'CONNECTION_CLOSE',
      errorCode: e.code,
      frameType: e.frameType,
      reasonPhrase: utf8(e.message.slice(0, 100)),
    },
    { source: 'local', application: false, code: e.code, frameType: e.frameType, reason: e.message },
  );
}

export function enterClosing(
  c: ConnectionCore,
  now: number,
  frame: Frame,
  error: QuicCloseError | undefined,
): void {
  c.closing.frame = frame;
  c.closing.sendPending = true;
  c.closeError = error;
  c.transition('close-local', now);
  c.closing.deadline = now + 3 * c.ptoDuration();
  c.events.push(error ? { type: 'closed', error } : { type: 'closed' });
}

/** §10.2.3: before the handshake is confirmed, the close goes in every space with keys; an application close becomes APPLICATION_ERROR outside 1-RTT. */
export function closeDatagram(c: ConnectionCore, now: number): Uint8Array | undefined {
  if (!c.closing.sendPending || !c.closing.frame) return undefined;
  c.closing.sendPending = false;
  const parts: Uint8Array[] = [];
  let clientInitial = false;
  for (const name of ['Initial', 'Handshake', 'ApplicationData'] as const) {
    const space = c.spaces[name];
    if (space.discarded) continue;
    const keys = name === 'ApplicationData' ? c.keys.oneRtt?.tx : space.tx;
    if (!keys) continue;
    let frame = c.closing.frame;
    if (name !== 'ApplicationData' && frame.type === 'CONNECTION_CLOSE_APPLICATION')
      frame = {
        type: 'CONNECTION_CLOSE',
        errorCode: TransportErrorCode.APPLICATION_ERROR,
        frameType: 0,
        reasonPhrase: new Uint8Array(0),
      };
    const header = headerFor(c, space);
    const frames: Frame[] = [frame];
    if (name === 'Initial' && c.role === 'client') clientInitial = true;
    const payloadLength = frameLength(frame);
    if (payloadLength + header.packetNumberLength < 4) addPadding(frames, 4);
    parts.push(
      seal(c, { space, header, frames, items: [], size: 0, ackEliciting: false, padded: false }, now),
    );
  }
  if (clientInitial) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    if (total < MIN_INITIAL_DATAGRAM) parts.push(new Uint8Array(MIN_INITIAL_DATAGRAM - total));
  }
  if (parts.length === 0) return undefined;
  const d = concatBytes(...parts);
  c.bytesSent += d.length;
  return d;
}

export function onConnectionClose(
  c: ConnectionCore,
  f: Extract<Frame, { type: 'CONNECTION_CLOSE' | 'CONNECTION_CLOSE_APPLICATION' }>,
  now: number,
): void {
  const application = f.type === 'CONNECTION_CLOSE_APPLICATION';
  const reason = fromUtf8(f.reasonPhrase);
  const clean = !application && f.errorCode === TransportErrorCode.NO_ERROR;
  c.closeError = {
    source: 'peer',
    application,
    code: f.errorCode,
    ...(f.type === 'CONNECTION_CLOSE' ? { frameType: f.frameType } : {}),
    reason,
  };
  // §10.2.2: draining; nothing more is sent.
  c.transition('close-received', now);
  c.closing.deadline = now + 3 * c.ptoDuration();
  c.events.push(clean ? { type: 'closed' } : { type: 'closed', error: c.closeError });
}

/**
 * Closes the connection (RFC 9000 §10.2): CONNECTION_CLOSE of type 0x1d with an
 * application error code, or of type 0x1c with a transport code when `application` is false.
 */
export function close(
  c: ConnectionCore,
  now: number,
  code: number,
  reason: string,
  application: boolean,
): void {
  if (!c.isLive) return;
  enterClosing(
    c,
    now,
    application
      ? { type: 'CONNECTION_CLOSE_APPLICATION', errorCode: code, reasonPhrase: utf8(reason) }
      : { type: 'CONNECTION_CLOSE', errorCode: code, frameType: 0, reasonPhrase: utf8(reason) },
    code === 0 && !application ? undefined : { source: 'local', application, code, reason },
  );
}

/** RFC 9000 §10.3.1: a datagram that ends in a reset token the peer gave us ends the connection. */
export function isPeerStatelessReset(c: ConnectionCore, datagram: Uint8Array, now: number): boolean {
  if (datagram.length < MIN_STATELESS_RESET_LENGTH) return false;
  if (!isStatelessReset(datagram, c.cids.peerResetTokens)) return false;
  c.trace1(now, 'in', 'stateless reset', 'RFC 9000 §10.3.1');
  c.transition('stateless-reset', now);
  c.closeError = {
    source: 'stateless-reset',
    application: false,
    code: 0,
    reason: 'stateless reset',
  };
  c.events.push({ type: 'closed', error: c.closeError });
  c.closing.deadline = now + 3 * c.ptoDuration();
  return true;
}

/** RFC 9000 §10.1: silently closed when the idle timeout passes. */
export function onIdleTimeout(c: ConnectionCore, now: number): void {
  c.closeError = { source: 'idle-timeout', application: false, code: 0, reason: 'idle timeout' };
  c.transition('idle-timeout', now);
  c.events.push({ type: 'closed', error: c.closeError });
}

/** RFC 9000 §10.2: the closing or draining state ends after three PTOs. */
export function onClosingTimeout(c: ConnectionCore, now: number): void {
  if (c.closing.deadline !== undefined && now >= c.closing.deadline) {
    c.transition(c.state === 'closing' ? 'closing-timeout' : 'draining-timeout', now);
  }
}
