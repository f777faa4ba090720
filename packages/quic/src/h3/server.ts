import { Duplex } from 'node:stream';
import { IncomingMessage, type ResponseChannel, ServerResponse } from '@stepwire/http';
import type { Field } from '../qpack/decoder.ts';
import {
  type H3Event,
  type H3Transport,
  type H3TransportEvent,
  Http3Connection,
  type Http3ConnectionOptions,
} from './connection.ts';
import { H3ErrorCode } from './errors.ts';

/**
 * HTTP/3 request streams as node:http-style (req, res) pairs, so the handler the HTTP/1.1
 * and HTTP/2 servers run answers HTTP/3 too: packages/http's IncomingMessage and
 * ServerResponse write through a ResponseChannel, which here is one request stream.
 *
 *   const server = new Http3Server((req, res) => res.end('hi'));
 *   const conn = server.accept(quicConnectionAsH3Transport);
 *   quic.on('event', (e) => conn.handle(e));
 */
export type H3RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export type Http3ServerOptions = Omit<Http3ConnectionOptions, 'role'>;

/** RFC 9114 §4.2: connection-specific fields are not sent in HTTP/3. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Request fields as node:http shows them: :authority becomes Host (RFC 9114 §4.3.1), other pseudo-fields go. */
function requestFields(fields: readonly Field[]): Field[] {
  const out: Field[] = [];
  const hasHost = fields.some(([n]) => n === 'host');
  for (const [n, v] of fields) {
    if (n === ':authority') {
      if (!hasHost) out.push(['host', v]);
      continue;
    }
    if (n.startsWith(':')) continue;
    out.push([n, v]);
  }
  return out;
}

function lowerFields(fields: readonly Field[]): Field[] {
  const out: Field[] = [];
  for (const [n, v] of fields) {
    const name = n.toLowerCase();
    if (!HOP_BY_HOP.has(name)) out.push([name, v]);
  }
  return out;
}

/** The `socket` a request shows: a placeholder Duplex standing for the QUIC connection. */
class H3ConnectionSocket extends Duplex {
  override _read(): void {}
  override _write(_chunk: unknown, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    cb(new Error('an HTTP/3 request socket is not writable; use the response'));
  }
}

export class Http3Server {
  readonly connections = new Set<Http3ServerConnection>();
  constructor(
    readonly listener: H3RequestListener,
    readonly options: Http3ServerOptions = {},
  ) {}

  /** A new QUIC connection whose ALPN is h3: feed its events to the returned connection's handle(). */
  accept(transport: H3Transport): Http3ServerConnection {
    const c = new Http3ServerConnection(this, transport);
    this.connections.add(c);
    return c;
  }

  /** GOAWAY on every connection (RFC 9114 §5.2); each closes once its requests finish. */
  shutdown(): void {
    for (const c of this.connections) c.h3.shutdown();
  }

  /** Call when the transport has sent data: response writes held by backpressure go on. */
  drain(): void {
    for (const c of this.connections) c.drain();
  }
}

/**
 * A response write completes only while its stream holds fewer unsent bytes than this, so
 * a handler writing a large body (or a client that stops reading) cannot make the server
 * buffer without bound: the Writable's own backpressure then holds the handler.
 */
export const H3_WRITE_HIGH_WATER = 256 * 1024;

interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
}

export class Http3ServerConnection {
  readonly h3: Http3Connection;
  readonly socket = new H3ConnectionSocket();
  private readonly exchanges = new Map<number, Exchange>();
  /** Writes whose completion waits for their stream's unsent bytes to go below the high water mark. */
  private held: { id: number; done: (err?: Error | null) => void }[] = [];

  constructor(
    private readonly server: Http3Server,
    private readonly transport: H3Transport,
  ) {
    this.h3 = new Http3Connection(transport, { ...server.options, role: 'server' });
  }

  /** Completes held writes whose stream has room again, or that have nowhere to go. */
  drain(): void {
    if (this.held.length === 0) return;
    const still: typeof this.held = [];
    const ready: typeof this.held = [];
    for (const w of this.held) {
      const room = !this.h3.canSend(w.id) || (this.transport.buffered?.(w.id) ?? 0) < H3_WRITE_HIGH_WATER;
      (room ? ready : still).push(w);
    }
    this.held = still;
    for (const w of ready) w.done(null);
  }

  /** How many response writes wait for their stream to drain (for stats and tests). */
  get heldWrites(): number {
    return this.held.length;
  }

  handle(e: H3TransportEvent, now?: number): void {
    this.dispatch(this.h3.handle(e, now));
  }

  private dispatch(events: H3Event[]): void {
    for (const e of events) this.onEvent(e);
    const more = this.h3.takeEvents();
    if (more.length > 0) this.dispatch(more);
  }

  private onEvent(e: H3Event): void {
    switch (e.type) {
      case 'headers': {
        if (e.kind === 'request') this.onRequest(e.streamId, e.fields);
        else if (e.kind === 'trailers') this.exchanges.get(e.streamId)?.req.setTrailers(e.fields);
        return;
      }
      case 'data':
        this.exchanges
          .get(e.streamId)
          ?.req.push(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.length));
        return;
      case 'end': {
        const x = this.exchanges.get(e.streamId);
        if (x) {
          x.req.complete = true;
          x.req.push(null);
        }
        return;
      }
      case 'stream-reset':
      case 'stream-error':
      case 'stop-sending':
        this.abort(e.streamId, e.code);
        return;
      case 'closed':
        for (const id of [...this.exchanges.keys()]) this.abort(id, e.code ?? H3ErrorCode.H3_NO_ERROR);
        this.drain();
        this.server.connections.delete(this);
        this.socket.destroy();
        return;
      default:
        return;
    }
  }

  private abort(id: number, code: number): void {
    const x = this.exchanges.get(id);
    if (!x) return;
    this.exchanges.delete(id);
    const err = Object.assign(new Error(`HTTP/3 stream ${id} reset (0x${code.toString(16)})`), {
      code: 'ECONNRESET',
    });
    if (!x.req.complete) x.req.destroy(err);
    if (!x.res.writableFinished) x.res.destroy(err);
  }

  private onRequest(id: number, fields: Field[]): void {
    const one = (n: string) => fields.find(([k]) => k === n)?.[1] ?? '';
    const h3 = this.h3;
    const req = new IncomingMessage(this.socket, {
      method: one(':method'),
      url: one(':path') || one(':authority'),
      httpVersionMajor: 3,
      httpVersionMinor: 0,
      fields: requestFields(fields),
    });
    // Body bytes for a stream that is gone are dropped: the exchange was aborted already
    // (the request's 'aborted', the response destroyed), so a late write is not an error.
    const guard = (done: (err?: Error | null) => void, f: () => void) => {
      if (!h3.canSend(id)) return done(null);
      try {
        f();
      } catch (err) {
        return done(err as Error);
      }
      if ((this.transport.buffered?.(id) ?? 0) >= H3_WRITE_HIGH_WATER) this.held.push({ id, done });
      else done(null);
    };
    const channel: ResponseChannel = {
      sendHead(status, _reason, headFields, knownLength) {
        const out: Field[] = [[':status', String(status)], ...lowerFields(headFields)];
        if (knownLength !== undefined && !out.some(([n]) => n === 'content-length'))
          out.push(['content-length', String(knownLength)]);
        // The stream may be gone (reset, rejected by GOAWAY, connection closed) by the time a
        // handler answers: the exchange was already aborted, so there is nothing to send.
        if (!h3.canSend(id)) return;
        h3.sendHeaders(id, out, false);
      },
      sendInformational(status, _reason, infoFields) {
        if (h3.canSend(id))
          h3.sendHeaders(id, [[':status', String(status)], ...lowerFields(infoFields)], false);
      },
      sendData(chunk, done) {
        guard(done, () => h3.sendData(id, chunk, false));
      },
      sendEnd(trailers, done) {
        guard(done, () => {
          if (trailers.length > 0) h3.sendHeaders(id, lowerFields(trailers), true);
          else h3.endStream(id);
        });
      },
      abort() {
        h3.resetStream(id, H3ErrorCode.H3_INTERNAL_ERROR);
      },
    };
    const res = new ServerResponse(req, channel);
    this.exchanges.set(id, { req, res });
    res.once('finish', () => {
      if (req.complete) this.exchanges.delete(id);
    });
    req.once('end', () => {
      if (res.writableFinished) this.exchanges.delete(id);
    });
    this.server.listener(req, res);
  }
}
