/**
 * The node:http-shaped HTTP/1.1 server, by concern:
 * - server.ts: the server object (listen, close, stats, trace) and createServer;
 * - connection.ts: the driver of one connection's sans-I/O Http1Connection over a Duplex;
 * - response.ts: one response's way to the wire (head, body, framing fields);
 * - h2.ts: the hand-off to HTTP/2 (ALPN h2, the cleartext preface).
 * The request and response objects (IncomingMessage, ServerResponse) are ../messages.ts,
 * shared with HTTP/2.
 */
export {
  createHttpServer,
  createServer,
  type HttpClientError,
  type HttpConnectionSource,
  HttpServer,
  type HttpServerOptions,
  type HttpServerStats,
  type RequestListener,
} from './server.ts';
