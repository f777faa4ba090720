/**
 * Request streams, receiving side (RFC 9114 §4.1, §6.1): accepting a peer's stream (or
 * rejecting it, §4.1.1, §5.2), its frames in order, each input checked against the message
 * table in state.ts, and the decoded field sections as events.
 */
import type { Field, FieldSectionResult } from '../qpack/decoder.ts';
import { maybeRetire, retire, streamError } from './close.ts';
import { maybeFinishShutdown } from './control.ts';
import { type H3Core, isServerInitiated, onUnknownFrame, type RequestStream, traceFrame } from './core.ts';
import { H3ConnectionError, H3ErrorCode, H3StreamError } from './errors.ts';
import { H3FrameReader, H3FrameTooLarge, type H3StreamItem } from './frames.ts';
import { h3ContentLengthOf, h3MalformedReason, h3StatusOf } from './message.ts';
import { holdBehindBlocked } from './qpack-streams.ts';
import { sendHeaders } from './request-send.ts';
import { FRAME_ON_STREAM, MESSAGE_TRANSITIONS, type MessageInput } from './state.ts';
import type { H3SectionEventKind } from './types.ts';

export function newStream(c: H3Core, id: number): RequestStream {
  const s: RequestStream = {
    id,
    reader: new H3FrameReader(c.limits.maxFramePayload),
    recv: 'HEADERS',
    blocked: undefined,
    contentLength: undefined,
    received: 0,
    head: false,
    send: 'idle',
    discard: false,
  };
  c.streams.set(id, s);
  return s;
}

/** A peer-initiated bidirectional stream: a request, if this is a server and there is room. */
export function acceptRequestStream(c: H3Core, id: number): RequestStream | undefined {
  const existing = c.streams.get(id);
  if (existing) return existing;
  if (c.retired.has(id)) return undefined;
  // RFC 9114 §6.1: servers do not open bidirectional streams.
  if (isServerInitiated(id))
    throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', `server-initiated bidirectional stream ${id}`);
  // A client's own request stream that it has finished with: late bytes are dropped.
  if (c.role === 'client') return undefined;
  // §5.2: after our GOAWAY, requests at or above its ID are not processed.
  if (c.goawaySent !== undefined && id >= c.goawaySent) {
    reject(c, id, 'goaway');
    return undefined;
  }
  if (c.streams.size >= c.limits.maxConcurrentRequests) {
    reject(c, id, 'limit');
    return undefined;
  }
  c.largestAccepted = Math.max(c.largestAccepted, id);
  return newStream(c, id);
}

/** RFC 9114 §4.1.1: H3_REQUEST_REJECTED tells the client the request was not processed and may be retried. */
export function reject(c: H3Core, id: number, why: 'goaway' | 'limit'): void {
  c.counters.inc(`h3.request-rejected.${why}`);
  const code = H3ErrorCode.H3_REQUEST_REJECTED;
  c.transport.stopSending(id, code);
  c.transport.resetStream(id, code);
  const s = c.streams.get(id);
  if (s) {
    if (s.blocked) c.decoder.cancelStream(id);
    c.streams.delete(id);
    c.events.push({ type: 'stream-error', streamId: id, code, reason: `rejected (${why})` });
  }
  retire(c, id);
}

/** Bytes on a request stream: its frames, in order, then its end (RFC 9114 §4.1). */
export function onRequestData(c: H3Core, id: number, data: Uint8Array, fin: boolean): void {
  const s = acceptRequestStream(c, id);
  if (!s || s.discard) return;
  try {
    let items: H3StreamItem[];
    try {
      items = s.reader.push(data);
    } catch (e) {
      // §7.1: a frame whose payload does not parse is H3_FRAME_ERROR; one too large to
      // hold is refused for this stream only.
      if (e instanceof H3FrameTooLarge) {
        c.counters.inc('h3.limit.frame-size');
        throw new H3StreamError('H3_EXCESSIVE_LOAD', e.message);
      }
      throw e;
    }
    for (const item of items) {
      onRequestItem(c, s, item);
      if (s.discard || !c.streams.has(id)) return;
    }
    if (fin) {
      // §7.1: a stream that ends inside a frame is H3_FRAME_ERROR.
      if (!s.reader.atFrameBoundary)
        throw new H3ConnectionError('H3_FRAME_ERROR', `stream ${id} ended inside a frame`);
      onRequestItem(c, s, { kind: 'fin' });
    }
  } catch (e) {
    if (e instanceof H3StreamError) streamError(c, s, e);
    else throw e;
  }
}

export function onRequestItem(c: H3Core, s: RequestStream, item: H3StreamItem | { kind: 'fin' }): void {
  if (s.blocked) {
    holdBehindBlocked(c, s.blocked, item);
    return;
  }
  switch (item.kind) {
    case 'fin': {
      step(s, 'fin');
      // §4.1.2: content-length must match the content received.
      if (s.contentLength !== undefined && s.received !== s.contentLength)
        throw new H3StreamError(
          'H3_MESSAGE_ERROR',
          `content-length ${s.contentLength} but ${s.received} byte(s) received`,
        );
      c.events.push({ type: 'end', streamId: s.id });
      maybeRetire(c, s);
      return;
    }
    case 'data': {
      if (s.recv !== 'DATA') step(s, 'data');
      s.received += item.data.length;
      if (c.trace.enabled && item.data.length > 0)
        c.trace.emit({
          t: c.now,
          host: c.host,
          layer: 'h3',
          dir: 'in',
          summary: `DATA len=${item.data.length}${item.last ? '' : '…'} stream=${s.id}`,
          fields: { streamId: s.id, frame: 'DATA' },
          rfc: 'RFC 9114 §7.2.1',
        });
      if (s.contentLength !== undefined && s.received > s.contentLength)
        throw new H3StreamError('H3_MESSAGE_ERROR', `more than content-length ${s.contentLength} byte(s)`);
      if (item.data.length > 0) c.events.push({ type: 'data', streamId: s.id, data: item.data });
      return;
    }
    case 'skipped':
      onUnknownFrame(c, item.frameType);
      return;
    case 'frame':
      break;
  }
  const f = item.frame;
  if (c.trace.enabled) traceFrame(c, 'in', s.id, f);
  if (f.type === 'unknown') return;
  // §7.2.5: "A server MUST treat the receipt of a PUSH_PROMISE frame as a connection error of type H3_FRAME_UNEXPECTED."
  if (f.type === 'PUSH_PROMISE' && c.role === 'server')
    throw new H3ConnectionError('H3_FRAME_UNEXPECTED', 'PUSH_PROMISE from a client');
  if (f.type === 'PUSH_PROMISE' && c.role === 'client')
    // §7.2.5: a push ID above the maximum (we never sent MAX_PUSH_ID) is H3_ID_ERROR.
    throw new H3ConnectionError('H3_ID_ERROR', 'PUSH_PROMISE without MAX_PUSH_ID');
  const rule = FRAME_ON_STREAM[f.type]?.request;
  if (rule && 'error' in rule)
    throw new H3ConnectionError(rule.error, `${f.type} on a request stream (${rule.rfc})`);
  if (f.type !== 'HEADERS') return;
  const result = decodeSection(c, s, f.fieldSection);
  if (result.status === 'blocked') {
    c.counters.inc('h3.qpack.blocked');
    s.blocked = { queue: [], bytes: 0 };
    return;
  }
  onSection(c, s, result);
}

export function decodeSection(c: H3Core, s: RequestStream, section: Uint8Array): FieldSectionResult {
  return c.decoder.decodeFieldSection(s.id, section);
}

/** A decoded field section on a request stream. */
export function onSection(c: H3Core, s: RequestStream, result: FieldSectionResult): void {
  if (result.status === 'blocked') return;
  if (result.status === 'too-large') {
    c.counters.inc('h3.limit.field-section');
    // RFC 9114 §4.2.2: a request whose header section is too large may get 431; a
    // response (or trailers) that is too large cannot be used.
    if (c.role === 'server' && s.recv === 'HEADERS' && s.send === 'idle') {
      sendHeaders(c, s.id, [[':status', '431']], true);
      // §4.1.1: a complete response before the complete request: STOP_SENDING with H3_NO_ERROR.
      c.transport.stopSending(s.id, H3ErrorCode.H3_NO_ERROR);
      s.discard = true;
      c.events.push({
        type: 'stream-error',
        streamId: s.id,
        code: H3ErrorCode.H3_NO_ERROR,
        reason: `request header section of ${result.size} bytes answered with 431`,
      });
      c.streams.delete(s.id);
      retire(c, s.id);
      maybeFinishShutdown(c);
      return;
    }
    throw new H3StreamError('H3_EXCESSIVE_LOAD', `field section of ${result.size} bytes exceeds our limit`);
  }
  const fields = result.fields;
  const status = h3StatusOf(fields);
  const kind: H3SectionEventKind =
    s.recv !== 'HEADERS'
      ? 'trailers'
      : c.role === 'server'
        ? 'request'
        : status >= 100 && status < 200
          ? 'informational'
          : 'response';
  step(s, kind === 'informational' ? 'informational' : 'headers');
  const why = h3MalformedReason(fields, kind, c.settings.enableConnectProtocol);
  if (why !== undefined) throw new H3StreamError('H3_MESSAGE_ERROR', why);
  if (kind === 'request' || kind === 'response') {
    const cl = h3ContentLengthOf(fields);
    if (Number.isNaN(cl)) throw new H3StreamError('H3_MESSAGE_ERROR', 'malformed content-length');
    // RFC 9110 §9.3.2, §15.4.5: a response to HEAD, or a 304, carries no content.
    const bodiless = kind === 'response' && (s.head || status === 304 || status === 204);
    s.contentLength = bodiless ? 0 : cl;
    if (kind === 'request') s.head = fields.some(([n, v]) => n === ':method' && v === 'HEAD');
  }
  if (c.trace.enabled) traceSection(c, s.id, kind, fields);
  c.events.push({ type: 'headers', streamId: s.id, kind, fields });
}

/** The decoded section as a ladder line: "request GET /path", "response 200", "trailers 2 fields". */
export function traceSection(
  c: H3Core,
  id: number,
  kind: H3SectionEventKind,
  fields: readonly Field[],
): void {
  const get = (n: string) => fields.find(([k]) => k === n)?.[1] ?? '';
  const what =
    kind === 'request'
      ? `${get(':method')} ${get(':path') || get(':authority')}`
      : kind === 'trailers'
        ? `${fields.length} field(s)`
        : get(':status');
  c.trace.emit({
    t: c.now,
    host: c.host,
    layer: 'h3',
    dir: 'in',
    summary: `${kind} ${what} stream=${id}`,
    fields: { streamId: id, kind, fields: fields.map(([n, v]) => `${n}: ${v}`) },
    rfc: 'RFC 9114 §4.1',
  });
}

/** Applies one input to the stream's receive state by the table in state.ts. */
export function step(s: RequestStream, input: MessageInput): void {
  const o = MESSAGE_TRANSITIONS[s.recv][input];
  if ('error' in o) {
    const reason = `${input} in state ${s.recv} (${o.rfc})`;
    if (o.scope === 'connection') throw new H3ConnectionError(o.error, reason);
    throw new H3StreamError(o.error, reason);
  }
  s.recv = o.next;
}
