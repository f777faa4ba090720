/**
 * Where an HTTP/2 session starts: connect() opens a client session to an authority over any
 * transport (node:http2's createConnection), and Http2Server hands every Duplex it is given
 * (after TLS with ALPN 'h2', h2c prior knowledge, or an h2c upgrade, RFC 7540 §3.2) a server
 * session. The session itself, and its streams, are session.ts.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { Http2Connection } from './connection.ts';
import { type IncomingHeaders, type OutgoingHeaders, toHeaderList } from './message.ts';
import { Http2Session, type Http2Stream, type SessionOptions, type StreamFlags } from './session.ts';

export interface ConnectOptions extends SessionOptions {
  /** Returns the transport (node:http2's createConnection): a node:net/tls socket, our TLS socket, any Duplex. */
  createConnection?: (authority: URL, options: ConnectOptions) => Duplex;
}

/** node:http2's connect(): a client session to `authority` ('http://host:port' or a URL). */
export function connect(
  authority: string | URL,
  options: ConnectOptions = {},
  listener?: (s: Http2Session) => void,
): Http2Session {
  const url = typeof authority === 'string' ? new URL(authority) : authority;
  const socket =
    options.createConnection?.(url, options) ??
    net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    });
  const session = new Http2Session(socket, 'client', options);
  session.authority = url.host;
  session.scheme = url.protocol === 'https:' ? 'https' : 'http';
  if (listener) session.once('connect', listener);
  return session;
}

/** A server: hand it any Duplex (a socket after TLS with ALPN 'h2', or h2c prior knowledge). */
export class Http2Server extends EventEmitter {
  readonly sessions = new Set<Http2Session>();
  constructor(readonly options: SessionOptions = {}) {
    super();
  }

  handle(socket: Duplex): Http2Session {
    const session = new Http2Session(socket, 'server', this.options);
    this.sessions.add(session);
    session.on('stream', (stream: Http2Stream, headers: IncomingHeaders, flags: StreamFlags) =>
      this.emit('stream', stream, headers, flags),
    );
    session.on('error', (e) => this.emit('sessionError', e, session));
    session.on('close', () => this.sessions.delete(session));
    this.emit('session', session);
    return session;
  }

  /**
   * An h2c upgrade (RFC 7540 §3.2): the HTTP/1.1 side has read the request and written
   * `101 Switching Protocols`; `socket` now speaks h2 (with any octets read past the request
   * put back first). `settingsPayload` is the HTTP2-Settings field decoded from base64url,
   * `request` the request as h2 header fields (:method, :scheme, :authority, :path first).
   * The request arrives as stream 1 through 'stream', like any other. Throws Http2Error for
   * a malformed payload, before anything is written.
   */
  handleUpgrade(
    socket: Duplex,
    settingsPayload: Uint8Array,
    request: OutgoingHeaders,
    /** Written first once the payload is known good: the 101 response, for instance. */
    preamble?: string | Uint8Array,
  ): Http2Session {
    // Checked on a scratch connection first, so a bad field is refused before any octet.
    new Http2Connection({ role: 'server' }).acceptUpgrade(settingsPayload, toHeaderList(request));
    if (preamble !== undefined) socket.write(preamble);
    const session = this.handle(socket);
    session.acceptUpgrade(settingsPayload, toHeaderList(request));
    return session;
  }

  /** Graceful shutdown of every session (GOAWAY NO_ERROR, in-flight streams finish). */
  close(cb?: () => void): void {
    let n = this.sessions.size;
    if (n === 0) {
      cb?.();
      return;
    }
    for (const s of this.sessions)
      s.close(() => {
        if (--n === 0) cb?.();
      });
  }
}

export function createServer(
  options: SessionOptions = {},
  onStream?: (stream: Http2Stream, headers: IncomingHeaders, flags: StreamFlags) => void,
): Http2Server {
  const s = new Http2Server(options);
  if (onStream) s.on('stream', onStream);
  return s;
}
