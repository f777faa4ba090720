/**
 * Request streams, sending side (RFC 9114 §4.1): a client's request, header sections (with
 * the QPACK inserts they reference sent first, RFC 9204 §2.1.1), DATA and the end of our side.
 */
import type { Field } from '../qpack/decoder.ts';
import { maybeRetire } from './close.ts';
import { type H3Core, type RequestStream, writeFrame } from './core.ts';
import { H3SettingId } from './frames.ts';
import { fieldSectionSize } from './message.ts';
import { flushQpack } from './qpack-streams.ts';
import { newStream } from './request-receive.ts';

/** A client's new request: opens a stream and sends its header section. Returns the stream ID. */
export function sendRequest(c: H3Core, fields: readonly Field[], end = false): number {
  if (c.role !== 'client') throw new Error('only a client sends requests');
  if (c.closed) throw new Error('connection closed');
  // RFC 9114 §5.2: no new request on a connection that received GOAWAY.
  if (c.goawayReceived !== undefined) throw new Error('the server sent GOAWAY: open a new connection');
  if (c.own.control === undefined) throw new Error('not started: wait for the transport to connect');
  checkPeerFieldSectionSize(c, fields);
  const id = c.transport.openStream('bidi');
  const s = newStream(c, id);
  s.head = fields.some(([n, v]) => n === ':method' && v === 'HEAD');
  sendHeaders(c, id, fields, end);
  return id;
}

/** A header section (response, interim, or trailers when the body has begun) on a request stream. */
export function sendHeaders(c: H3Core, id: number, fields: readonly Field[], end = false): void {
  const s = sendable(c, id);
  checkPeerFieldSectionSize(c, fields);
  const section = c.encoder.encodeFieldSection(id, fields);
  // The inserts this section references go out first; QUIC may still deliver them later
  // than the HEADERS (the peer's decoder then blocks the stream, RFC 9204 §2.2.1).
  flushQpack(c);
  writeFrame(c, id, { type: 'HEADERS', fieldSection: section }, end);
  s.send = end ? 'done' : 'open';
  if (end) maybeRetire(c, s);
}

/** RFC 9114 §4.2.2: a section larger than the peer's limit would be refused: it is not sent. */
export function checkPeerFieldSectionSize(c: H3Core, fields: readonly Field[]): void {
  const peerMax = c.peerSettings?.get(H3SettingId.MAX_FIELD_SECTION_SIZE);
  const size = fieldSectionSize(fields);
  if (peerMax !== undefined && size > peerMax)
    throw new RangeError(
      `field section of ${size} bytes exceeds the peer's SETTINGS_MAX_FIELD_SECTION_SIZE ${peerMax}`,
    );
}

export function sendData(c: H3Core, id: number, data: Uint8Array, end = false): void {
  const s = sendable(c, id);
  if (s.send !== 'open') throw new Error(`stream ${id}: DATA before HEADERS`);
  if (data.length > 0) writeFrame(c, id, { type: 'DATA', data }, end);
  else if (end) c.transport.write(id, new Uint8Array(0), true);
  if (end) {
    s.send = 'done';
    maybeRetire(c, s);
  }
}

/** Ends our side of the stream (after the body or trailers). */
export function endStream(c: H3Core, id: number): void {
  const s = sendable(c, id);
  c.transport.write(id, new Uint8Array(0), true);
  s.send = 'done';
  maybeRetire(c, s);
}

/** Whether our side of request stream `id` is open (not ended, reset, rejected or closed). */
export function canSend(c: H3Core, id: number): boolean {
  const s = c.streams.get(id);
  return s !== undefined && !c.closed && s.send !== 'done';
}

export function sendable(c: H3Core, id: number): RequestStream {
  const s = c.streams.get(id);
  if (!s || c.closed) throw new Error(`stream ${id} is not open`);
  if (s.send === 'done') throw new Error(`stream ${id}: our side has ended`);
  return s;
}
