import type { Counters } from '@stepwire/wire';
import type { Field, QpackDecoder } from '../qpack/decoder.ts';
import type { QpackEncoder } from '../qpack/encoder.ts';
import { close, closeInfoFrom, fail, onStopSending, onStreamReset, resetStream } from './close.ts';
import { shutdown, start } from './control.ts';
import { H3Core, isUni } from './core.ts';
import { H3ErrorCode } from './errors.ts';
import { flushQpack } from './qpack-streams.ts';
import { acceptRequestStream, onRequestData } from './request-receive.ts';
import { canSend, endStream, sendData, sendHeaders, sendRequest } from './request-send.ts';
import type { H3Event, H3Limits, H3Transport, H3TransportEvent, Http3ConnectionOptions } from './types.ts';
import { onUniData, onUniOpened } from './uni-streams.ts';

export { H3_GOAWAY_MAX_ID } from './control.ts';
export * from './types.ts';

/**
 * A sans-I/O HTTP/3 connection (RFC 9114), client or server, over any H3Transport.
 * Feed it the transport's events with handle(); it writes frames through the transport
 * and returns what the application should see. It owns no timer: HTTP/3 has none.
 *
 * What lives where (this folder): the connection's variables are grouped in core.ts (with
 * the frames we write and their trace lines); the functions acting on them are filed by
 * concern — control.ts (our control stream and SETTINGS, the peer's control stream,
 * GOAWAY and shutdown, §5.2, §6.2.1, §7.2.4), request-send.ts and request-receive.ts
 * (request streams, §4.1, with the message table in state.ts), uni-streams.ts (the peer's
 * unidirectional streams by type, §6.2), qpack-streams.ts (QPACK's encoder and decoder
 * streams and blocked streams, RFC 9204 §2.2.1, §4.2) and close.ts (resets, stream and
 * connection errors, §8). The limits a peer can reach are H3Limits in types.ts.
 */
export class Http3Connection {
  /** The connection's variables; the functions of this folder act on it. */
  private readonly c: H3Core;

  constructor(transport: H3Transport, opts: Http3ConnectionOptions) {
    this.c = new H3Core(transport, opts);
  }

  get role(): 'client' | 'server' {
    return this.c.role;
  }
  get counters(): Counters {
    return this.c.counters;
  }
  get limits(): H3Limits {
    return this.c.limits;
  }
  /** The peer's SETTINGS, once its control stream delivered them. */
  get peerSettings(): Map<number, number> | undefined {
    return this.c.peerSettings;
  }
  /** The GOAWAY ID we received (RFC 9114 §5.2), if any. */
  get goawayReceived(): number | undefined {
    return this.c.goawayReceived;
  }
  /** The GOAWAY ID we sent, if any. */
  get goawaySent(): number | undefined {
    return this.c.goawaySent;
  }
  get closed(): boolean {
    return this.c.closed;
  }
  /** How the connection ended: our close (local) or the transport's report. */
  get closeInfo(): { code?: number; reason?: string; local: boolean } | undefined {
    return this.c.closeInfo;
  }
  get decoder(): QpackDecoder {
    return this.c.decoder;
  }
  /** Our QPACK encoder: replaced once the peer's SETTINGS allow a dynamic table (RFC 9204 §3.2.3). */
  get encoder(): QpackEncoder {
    return this.c.encoder;
  }

  /** Request streams open in either direction. */
  get activeStreams(): number {
    return this.c.streams.size;
  }

  /** Events produced by calls other than handle(); clears them. */
  takeEvents(): H3Event[] {
    const e = this.c.events;
    this.c.events = [];
    return e;
  }

  /** One transport event in; the application's events out. */
  handle(e: H3TransportEvent, now = this.c.now): H3Event[] {
    const c = this.c;
    c.now = now;
    if (c.closed) return this.takeEvents();
    try {
      switch (e.type) {
        case 'connected':
          start(c);
          break;
        // RFC 9114 §6.1, §6.2: bidirectional streams carry requests, unidirectional ones
        // announce their type first.
        case 'stream-opened':
          if (isUni(e.id)) onUniOpened(c, e.id);
          else acceptRequestStream(c, e.id);
          break;
        case 'stream-data':
          if (isUni(e.id)) onUniData(c, e.id, e.data, e.fin);
          else onRequestData(c, e.id, e.data, e.fin);
          break;
        case 'stream-reset':
          onStreamReset(c, e.id, e.code);
          break;
        case 'stop-sending':
          onStopSending(c, e.id, e.code);
          break;
        case 'closed':
          c.closed = true;
          c.closeInfo = { local: false, ...closeInfoFrom(e.error) };
          c.events.push({ type: 'closed', ...c.closeInfo });
          break;
        case 'streams-available':
          if (e.direction === 'bidi') c.events.push({ type: 'streams-available' });
          break;
      }
      flushQpack(c);
    } catch (err) {
      fail(c, err);
    }
    return this.takeEvents();
  }

  /** Opens the control stream with our SETTINGS and the QPACK streams (RFC 9114 §6.2). */
  start(): void {
    start(this.c);
  }

  /** A client's new request: opens a stream and sends its header section. Returns the stream ID. */
  sendRequest(fields: readonly Field[], end = false): number {
    return sendRequest(this.c, fields, end);
  }

  /** Whether sendRequest can open a stream now (false while the peer's MAX_STREAMS is used up). */
  canOpenRequest(): boolean {
    return this.c.transport.canOpenStream?.('bidi') ?? true;
  }

  /** A header section (response, interim, or trailers when the body has begun) on a request stream. */
  sendHeaders(id: number, fields: readonly Field[], end = false): void {
    sendHeaders(this.c, id, fields, end);
  }

  sendData(id: number, data: Uint8Array, end = false): void {
    sendData(this.c, id, data, end);
  }

  /** Ends our side of the stream (after the body or trailers). */
  endStream(id: number): void {
    endStream(this.c, id);
  }

  /** Abandons a request stream in both directions (RFC 9114 §4.1.1: H3_REQUEST_CANCELLED and friends). */
  resetStream(id: number, code: number = H3ErrorCode.H3_REQUEST_CANCELLED): void {
    resetStream(this.c, id, code);
  }

  /**
   * Graceful shutdown (RFC 9114 §5.2): a server names the first request it will not
   * process, a client the first push (we allow none: 0). The connection closes with
   * H3_NO_ERROR once the requests in flight are done. `id` overrides the computed ID
   * (H3_GOAWAY_MAX_ID for the first step of a two-phase shutdown).
   */
  shutdown(id?: number): void {
    shutdown(this.c, id);
  }

  /** Closes the connection at once with an HTTP/3 error code (§5.4). */
  close(code: number = H3ErrorCode.H3_NO_ERROR, reason = ''): void {
    close(this.c, code, reason);
  }

  /** Whether our side of request stream `id` is open (not ended, reset, rejected or closed). */
  canSend(id: number): boolean {
    return canSend(this.c, id);
  }
}
