import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import {
  addEchoService,
  createHttpServer,
  GrpcServer,
  type HttpServer,
  type HttpServerOptions,
  isGrpcRequest,
  lastEventIdOf,
  SseWriter,
} from '@stepwire/http';

/**
 * The HTTP routes `stepwire serve` and the demo offer on port 80 (and, over TLS, on 443).
 * Served by our HTTP/1.1 server (@stepwire/http) over any Duplex — our TCP and TLS sockets —
 * as plain request handlers that node:http's server can run too:
 *
 *   GET  /          a short text page
 *   GET  /bytes/N   N bytes (N ≤ 1 GiB) of a fixed pattern, streamed with backpressure
 *   POST /echo      the request body back
 *   POST /sha256    the hex SHA-256 of the request body
 *   gRPC            stepwire.Echo over h2 (Unary, ServerStream, ClientStream, Bidi)
 *   GET  /sse       Server-Sent Events: a `tick` a second (?every=MS, ?count=N to end after
 *                   N), numbered on from Last-Event-ID when a client resumes
 */
export const MAX_BYTES = 1 << 30;

/** What the routes need of a request: ours and node:http's IncomingMessage both fit. */
export interface AppRequest extends Readable {
  method?: string | undefined;
  url?: string | undefined;
  headers: IncomingHttpHeaders;
}

/** What the routes need of a response: ours and node:http's ServerResponse both fit. */
export interface AppResponse extends Writable {
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  setHeader(name: string, value: number | string | readonly string[]): unknown;
}

/** The /bytes pattern: byte i is i mod 251 (a prime, so it never lines up with 2^k chunks). */
export function patternChunk(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) % 251;
  return b;
}

const CHUNK = 64 * 1024;
/**
 * 251 * 1024 bytes: a whole number of pattern periods and more than CHUNK + 250, so a chunk at any
 * phase is a view of it (at 251 * 256, less than CHUNK, every chunk was built byte by byte).
 */
const PERIOD_BLOCK = patternChunk(0, 251 * 1024);

function streamPattern(res: AppResponse, total: number): void {
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent);
      const start = sent % 251;
      const chunk =
        n <= PERIOD_BLOCK.length - start ? PERIOD_BLOCK.subarray(start, start + n) : patternChunk(sent, n);
      sent += n;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

function text(res: AppResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function handleRequest(req: AppRequest, res: AppResponse): void {
  const url = new URL(req.url ?? '/', 'http://stepwire.test');
  const bytes = /^\/bytes\/(\d{1,10})$/.exec(url.pathname);
  const redirect = /^\/redirect\/(\d{1,2})$/.exec(url.pathname);
  // RFC 9110 §9.3.2: HEAD is GET without the content (the server drops the body).
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (get && url.pathname === '/') {
    text(res, 200, 'Hello from stepwire: this page crossed a TCP stack written in TypeScript.\n');
  } else if (get && bytes) {
    const n = Number(bytes[1]);
    if (n > MAX_BYTES) {
      text(res, 400, `at most ${MAX_BYTES} bytes\n`);
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      if (req.method === 'HEAD') res.end();
      else streamPattern(res, n);
    }
  } else if (get && redirect) {
    // httpbin's /redirect/N: N hops of 302 (RFC 9110 §15.4.3), a relative Location each, then '/'.
    const n = Number(redirect[1]);
    res.writeHead(302, { location: n > 1 ? `/redirect/${n - 1}` : '/', 'content-length': 0 });
    res.end();
  } else if (req.method === 'GET' && url.pathname === '/sse') {
    serveTicks(req, res, url);
  } else if (req.method === 'POST' && url.pathname === '/echo') {
    const type = req.headers['content-type'] ?? 'application/octet-stream';
    const length = req.headers['content-length'];
    res.writeHead(
      200,
      length ? { 'content-type': type, 'content-length': length } : { 'content-type': type },
    );
    // pipe() carries backpressure both ways: the response stalls the request body.
    req.pipe(res);
  } else if (req.method === 'POST' && url.pathname === '/sha256') {
    const h = createHash('sha256');
    req.on('data', (c: Buffer) => h.update(c));
    req.on('end', () => text(res, 200, `${h.digest('hex')}\n`));
  } else if (['/', '/echo', '/sha256'].includes(url.pathname) || bytes) {
    res.setHeader('allow', url.pathname.startsWith('/bytes') || url.pathname === '/' ? 'GET' : 'POST');
    text(res, 405, 'method not allowed\n');
  } else {
    text(res, 404, 'not found\n');
  }
}

function serveTicks(req: AppRequest, res: AppResponse, url: URL): void {
  const every = Math.max(10, Number(url.searchParams.get('every')) || 1000);
  const count = Number(url.searchParams.get('count')) || Number.POSITIVE_INFINITY;
  const sse = new SseWriter(res, { retry: every });
  let id = Number(lastEventIdOf(req)) || 0;
  let sent = 0;
  const tick = (): void => {
    sse.send({ event: 'tick', id: String(++id), data: new Date().toISOString() });
    if (++sent >= count) {
      clearInterval(timer);
      sse.end();
    }
  };
  const timer = setInterval(tick, every);
  // the stream alone does not keep a process alive, and it stops with its connection
  timer.unref();
  res.once('close', () => clearInterval(timer));
  tick();
}

/**
 * Our HTTP server with these routes, never bound to a kernel port: feed it sockets with
 * emit('connection'). Over h2 it also answers gRPC: the `stepwire.Echo` service (unary,
 * server-, client-streaming and bidi), on the same port as the web routes.
 */
export function createHttpApp(
  options: HttpServerOptions = {},
  handler: (req: AppRequest, res: AppResponse) => void = handleRequest,
): HttpServer {
  const grpc = addEchoService(new GrpcServer());
  return createHttpServer(
    {
      onHttp2Stream: (stream, headers) => isGrpcRequest(headers) && grpc.handleStream(stream, headers),
      ...options,
    },
    handler,
  );
}
