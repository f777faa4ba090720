/**
 * How streams and the connection end: a stream reset by us (RFC 9114 §4.1.1) or by the peer,
 * STOP_SENDING answered (RFC 9000 §3.5), stream errors (§8) and connection errors with their
 * HTTP/3 and QPACK codes (§8.1, RFC 9204 §6), closing, and retiring ended request streams.
 */
import { ParseError } from '@stepwire/wire';
import { QpackError } from '../qpack/instructions.ts';
import { maybeFinishShutdown } from './control.ts';
import { type H3Core, isServerInitiated, type RequestStream } from './core.ts';
import { H3ConnectionError, H3ErrorCode, type H3ErrorName, type H3StreamError } from './errors.ts';
import { onUniEnd } from './uni-streams.ts';

/** Abandons a request stream in both directions (RFC 9114 §4.1.1: H3_REQUEST_CANCELLED and friends). */
export function resetStream(c: H3Core, id: number, code: number = H3ErrorCode.H3_REQUEST_CANCELLED): void {
  const s = c.streams.get(id);
  if (!s) return;
  abandon(c, s, code);
}

/** Closes the connection at once with an HTTP/3 error code (§5.4). */
export function close(c: H3Core, code: number = H3ErrorCode.H3_NO_ERROR, reason = ''): void {
  if (c.closed) return;
  c.closed = true;
  c.closeInfo = { code, reason, local: true };
  c.transport.close(code, reason);
  c.events.push({ type: 'closed', code, reason, local: true });
}

export function onStreamReset(c: H3Core, id: number, code: number): void {
  const u = c.uni.get(id);
  if (u) {
    onUniEnd(c, id, u);
    return;
  }
  const s = c.streams.get(id);
  if (!s) return;
  // RFC 9204 §4.4.2: a section we will never decode is cancelled.
  if (s.blocked || s.recv === 'HEADERS') c.decoder.cancelStream(id);
  // RFC 9114 §4.1.1: the exchange is over; our side is abandoned too, so neither the
  // stream nor its QUIC state outlives it.
  if (s.send !== 'done') c.transport.resetStream(id, H3ErrorCode.H3_REQUEST_CANCELLED);
  c.streams.delete(id);
  retire(c, id);
  c.events.push({ type: 'stream-reset', streamId: id, code });
  maybeFinishShutdown(c);
}

export function onStopSending(c: H3Core, id: number, code: number): void {
  const s = c.streams.get(id);
  if (!s) return;
  // RFC 9000 §3.5: STOP_SENDING is answered with RESET_STREAM.
  if (s.send !== 'done') c.transport.resetStream(id, code);
  s.send = 'done';
  c.events.push({ type: 'stop-sending', streamId: id, code });
  maybeRetire(c, s);
}

export function streamError(c: H3Core, s: RequestStream, e: H3StreamError): void {
  const code = H3ErrorCode[e.code];
  c.counters.inc(`h3.stream-error.${e.code}`);
  if (c.trace.enabled)
    c.trace.emit({
      t: c.now,
      host: c.host,
      layer: 'h3',
      dir: 'drop',
      summary: `stream ${s.id} reset: ${e.message}`,
      reason: `h3.stream-error.${e.code}`,
    });
  abandon(c, s, code);
  c.events.push({ type: 'stream-error', streamId: s.id, code, reason: e.reason });
}

export function abandon(c: H3Core, s: RequestStream, code: number): void {
  if (s.recv !== 'DONE') {
    c.transport.stopSending(s.id, code);
    if (s.blocked || s.recv === 'HEADERS') c.decoder.cancelStream(s.id);
  }
  if (s.send !== 'done') c.transport.resetStream(s.id, code);
  s.send = 'done';
  s.discard = true;
  c.streams.delete(s.id);
  retire(c, s.id);
  maybeFinishShutdown(c);
}

export function fail(c: H3Core, err: unknown): void {
  let name: H3ErrorName;
  let reason: string;
  if (err instanceof H3ConnectionError) {
    name = err.code;
    reason = err.reason;
  } else if (err instanceof QpackError) {
    // RFC 9204 §6: QPACK errors are connection errors with the QPACK codes.
    name = err.code;
    reason = err.message;
  } else if (err instanceof ParseError) {
    // RFC 9114 §7.1: a frame that does not parse is H3_FRAME_ERROR.
    name = 'H3_FRAME_ERROR';
    reason = err.message;
  } else {
    throw err;
  }
  c.counters.inc(`h3.connection-error.${name}`);
  if (c.trace.enabled)
    c.trace.emit({
      t: c.now,
      host: c.host,
      layer: 'h3',
      dir: 'drop',
      summary: `connection error ${name}: ${reason}`,
      reason: `h3.connection-error.${name}`,
    });
  close(c, H3ErrorCode[name], reason);
}

export function maybeRetire(c: H3Core, s: RequestStream): void {
  if (s.send === 'done' && s.recv === 'DONE') {
    c.streams.delete(s.id);
    retire(c, s.id);
    maybeFinishShutdown(c);
  }
}

export function retire(c: H3Core, id: number): void {
  if (c.role === 'client' || isServerInitiated(id)) return;
  c.retired.add(id);
  // Bounded: the oldest are forgotten (QUIC itself drops data for streams long closed).
  if (c.retired.size > 4096) {
    const first = c.retired.values().next();
    if (!first.done) c.retired.delete(first.value);
  }
}

export function closeInfoFrom(error: unknown): { code?: number; reason?: string } {
  if (error === undefined || error === null) return {};
  if (typeof error === 'object') {
    const e = error as { code?: unknown; reason?: unknown; message?: unknown };
    const out: { code?: number; reason?: string } = {};
    if (typeof e.code === 'number') out.code = e.code;
    if (typeof e.reason === 'string') out.reason = e.reason;
    else if (typeof e.message === 'string') out.reason = e.message;
    return out;
  }
  return { reason: String(error) };
}
