/**
 * The limits and deadlines of an HTTP/1.1 connection, with their defaults: what a peer may
 * make us buffer (each limit answered with its RFC 9112 status code) and how long a slow
 * peer may keep a connection (slowloris, RFC 9112 §9.5).
 */

export interface Http1Limits {
  /** request-line bytes (414 URI Too Long). nginx's default large header buffer is 8 KiB. */
  maxRequestLineSize: number;
  /** The whole head, start line included (431); Node's --max-http-header-size is 16 KiB. */
  maxHeaderSize: number;
  /** One field line (431). */
  maxFieldLineSize: number;
  /** Field lines in one section (431); Node's maxHeadersCount is 2000. */
  maxFieldCount: number;
  /** Body bytes of one message (413). Unlimited by default, as in Node. */
  maxBodySize: number;
  /** A chunk-size line with its extensions (400). */
  maxChunkLineSize: number;
}

export const DEFAULT_LIMITS: Http1Limits = {
  maxRequestLineSize: 8 * 1024,
  maxHeaderSize: 16 * 1024,
  maxFieldLineSize: 16 * 1024,
  maxFieldCount: 2000,
  maxBodySize: Number.POSITIVE_INFINITY,
  maxChunkLineSize: 4 * 1024,
};

/**
 * Deadlines in ms; 0 turns one off. The server's defend against slow clients (slowloris),
 * with Node's defaults; the client's against a server that goes quiet (off by default, as
 * in node:http, whose `timeout` option sets them).
 */
export interface Http1Timeouts {
  /** Server: from a request's first byte (or the connection's start) to the end of its head. */
  headersTimeout: number;
  /** Server: from a request's first byte to the end of its body. */
  requestTimeout: number;
  /**
   * Server: idle between a finished response and the next request's first byte. Client:
   * idle of a kept connection between exchanges (RFC 9112 §9.3; a pool closes it then).
   */
  keepAliveTimeout: number;
  /**
   * Server: how much longer than the advertised `keepAliveTimeout` (the `Keep-Alive: timeout=`
   * a response carries) an idle connection is kept before it is closed. A client may send its
   * next request just before the advertised time, and when our event loop was busy its timers
   * run before the read that holds that request: closing at exactly the advertised time
   * resets a connection whose request came in time (RFC 9112 §9.3 lets either side close an
   * idle connection, and a client cannot safely retry a non-idempotent one, §9.3.1).
   * node:http keeps the same 1,000 ms (server.keepAliveTimeoutBuffer, nodejs/node#59243).
   */
  keepAliveTimeoutBuffer: number;
  /** Client: from the end of the request (or the last 1xx) to the response head. */
  responseTimeout: number;
  /** Client: the longest silence inside a response body (from its head or last byte). */
  bodyTimeout: number;
}

export const DEFAULT_TIMEOUTS: Http1Timeouts = {
  headersTimeout: 60_000,
  requestTimeout: 300_000,
  keepAliveTimeout: 5_000,
  keepAliveTimeoutBuffer: 1_000,
  responseTimeout: 0,
  bodyTimeout: 0,
};

export type ServerTimeoutKind = 'headers' | 'request' | 'keep-alive';
export type ClientTimeoutKind = 'response' | 'body' | 'keep-alive';
export type TimeoutKind = ServerTimeoutKind | ClientTimeoutKind;
