import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { Agent, Http2Mode } from './agent.ts';
import type { ClientResponse } from './connection.ts';
import { ClientRequest } from './request.ts';

export interface FetchInit {
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit | null;
  redirect?: 'follow' | 'manual' | 'error';
  signal?: AbortSignal | null;
  /** The pool to use; default the global agent. */
  agent?: Agent;
  /** HTTP/2 for this fetch (default: the agent's, which offers h2 to https origins). */
  http2?: Http2Mode;
  /** Required by WHATWG fetch for stream bodies; accepted and ignored. */
  duplex?: 'half';
}

type HeadersInit = ConstructorParameters<typeof Headers>[0];
type BodyInit = NonNullable<ConstructorParameters<typeof Response>[0]>;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** Turn a BodyInit into bytes or a stream, and the Content-Type it implies (Fetch §5 "extract a body"). */
async function extractBody(
  body: BodyInit,
): Promise<{ source: Uint8Array | Readable; type?: string; length?: number }> {
  if (typeof body === 'string') {
    const b = Buffer.from(body);
    return { source: b, type: 'text/plain;charset=UTF-8', length: b.length };
  }
  if (body instanceof URLSearchParams) {
    const b = Buffer.from(body.toString());
    return { source: b, type: 'application/x-www-form-urlencoded;charset=UTF-8', length: b.length };
  }
  if (body instanceof ArrayBuffer) return { source: new Uint8Array(body), length: body.byteLength };
  if (ArrayBuffer.isView(body)) {
    const b = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    return { source: b, length: b.length };
  }
  if (body instanceof Blob) {
    const b = new Uint8Array(await body.arrayBuffer());
    return { source: b, length: b.length, ...(body.type ? { type: body.type } : {}) };
  }
  if (body instanceof ReadableStream)
    return { source: Readable.fromWeb(body as import('node:stream/web').ReadableStream) };
  if (body instanceof FormData) {
    // Let the platform serialize multipart/form-data with its boundary.
    const r = new Response(body);
    const b = new Uint8Array(await r.arrayBuffer());
    return { source: b, length: b.length, type: r.headers.get('content-type') ?? undefined };
  }
  throw new TypeError('unsupported body type');
}

/** Undo Content-Encoding as fetch does (Fetch §4.6 via "handle content codings"). */
function decode(res: ClientResponse): Readable {
  const enc = String(res.headers['content-encoding'] ?? '')
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'identity');
  let stream: Readable = res;
  for (const coding of enc.reverse()) {
    const d =
      coding === 'gzip' || coding === 'x-gzip'
        ? zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH })
        : coding === 'deflate'
          ? zlib.createInflate()
          : coding === 'br'
            ? zlib.createBrotliDecompress()
            : undefined;
    if (!d) return res; // unknown coding: hand the bytes over as they are
    stream.on('error', (e) => d.destroy(e));
    stream = stream.pipe(d);
  }
  return stream;
}

/**
 * A Node Readable as a WHATWG ReadableStream that hands over every byte that arrived before
 * an error, then the error (Readable.toWeb drops queued chunks when the source errors,
 * which would lose the last events of an event stream cut mid-way). High-water mark 0: a
 * chunk is pulled from the socket only when the reader asks, so backpressure reaches TCP.
 */
function toWebStream(r: Readable): ReadableStream<Uint8Array> {
  let done = false;
  let failure: unknown;
  const finish = (c: ReadableStreamDefaultController<Uint8Array>) => {
    if (done) return;
    done = true;
    if (failure !== undefined) c.error(failure);
    else c.close();
  };
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        r.pause();
        r.on('data', (chunk: Buffer) => {
          if (done) return;
          c.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((c.desiredSize ?? 0) <= 0) r.pause();
        });
        r.on('end', () => finish(c));
        r.on('error', (e) => {
          failure = e;
          // Deliver what is queued first: error only once the reader has drained it.
          if ((c.desiredSize ?? 0) >= 0) finish(c);
        });
        r.on('close', () => {
          if (!done && !r.readableEnded && failure === undefined) failure = new Error('terminated');
          if ((c.desiredSize ?? 0) >= 0) finish(c);
        });
      },
      pull(c) {
        if (failure !== undefined || r.readableEnded) finish(c);
        else r.resume();
      },
      cancel() {
        done = true;
        r.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

function send(
  url: URL,
  method: string,
  headers: Headers,
  body: Uint8Array | Readable | undefined,
  init: FetchInit,
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const fields: [string, string][] = [];
    headers.forEach((v, k) => {
      fields.push([k, v]);
    });
    const req = new ClientRequest(url, {
      method,
      headers: fields,
      ...(init.agent ? { agent: init.agent } : {}),
      ...(init.http2 !== undefined ? { http2: init.http2 } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    req.once('response', resolve);
    req.once('error', reject);
    if (body instanceof Readable) {
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    } else req.end(body);
  });
}

/**
 * fetch over our HTTP/1.1 client and pool: a WHATWG Response, redirects followed (Fetch
 * §4.4 "HTTP-redirect fetch": 303 and a POST's 301/302 become GET without a body),
 * Content-Encoding undone, abort through the signal.
 */
export async function fetch(input: string | URL | Request, init: FetchInit = {}): Promise<Response> {
  let url = new URL(input instanceof Request ? input.url : input);
  let method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  let bodyInit: BodyInit | null | undefined =
    init.body ?? (input instanceof Request ? input.body : undefined);
  if (bodyInit != null && (method === 'GET' || method === 'HEAD'))
    throw new TypeError('Request with GET/HEAD method cannot have body.');
  if (!headers.has('accept')) headers.set('accept', '*/*');
  if (!headers.has('accept-encoding')) headers.set('accept-encoding', 'gzip, deflate, br');
  const signal = init.signal ?? undefined;
  signal?.throwIfAborted();
  const redirectMode = init.redirect ?? 'follow';
  let redirected = false;
  for (let hops = 0; ; hops++) {
    let body: Uint8Array | Readable | undefined;
    if (bodyInit != null) {
      const x = await extractBody(bodyInit);
      body = x.source;
      if (x.type && !headers.has('content-type')) headers.set('content-type', x.type);
      if (x.length !== undefined) headers.set('content-length', String(x.length));
    }
    let res: ClientResponse;
    try {
      res = await send(url, method, headers, body, init);
    } catch (e) {
      if (signal?.aborted) throw signal.reason ?? e;
      throw new TypeError('fetch failed', { cause: e });
    }
    const status = res.statusCode;
    const location = res.headers.location;
    if (REDIRECTS.has(status) && location && redirectMode !== 'manual') {
      res.resume();
      if (redirectMode === 'error')
        throw new TypeError('fetch failed', { cause: new Error(`redirect to ${location}`) });
      if (hops >= MAX_REDIRECTS)
        throw new TypeError('fetch failed', { cause: new Error('redirect count exceeded') });
      const next = new URL(location, url);
      // Fetch §4.4 step 12: 303, or 301/302 after POST, turn into GET without a body.
      if (status === 303 ? method !== 'HEAD' : (status === 301 || status === 302) && method === 'POST') {
        method = 'GET';
        bodyInit = null;
        for (const h of [
          'content-type',
          'content-length',
          'content-encoding',
          'content-language',
          'content-location',
        ])
          headers.delete(h);
      } else if (bodyInit instanceof ReadableStream) {
        throw new TypeError('fetch failed', { cause: new Error('cannot replay a stream body on redirect') });
      }
      // Fetch §4.4 step 13: a redirect to another origin drops Authorization.
      if (next.origin !== url.origin) headers.delete('authorization');
      url = next;
      redirected = true;
      continue;
    }
    const responseHeaders = new Headers();
    for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
      const k = res.rawHeaders[i] as string;
      try {
        responseHeaders.append(k, res.rawHeaders[i + 1] as string);
      } catch {
        // A value the Headers class refuses is dropped, as undici does.
      }
    }
    const nullBody = NULL_BODY.has(status) || method === 'HEAD';
    let stream: ReadableStream<Uint8Array> | null = null;
    if (nullBody) res.resume();
    else {
      const decoded = decode(res);
      if (decoded !== res) {
        responseHeaders.delete('content-encoding');
        responseHeaders.delete('content-length');
      }
      stream = toWebStream(decoded);
    }
    if (signal) {
      signal.addEventListener(
        'abort',
        () => res.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted')),
        {
          once: true,
        },
      );
    }
    const response = new Response(stream, {
      status: Math.max(status, 200),
      statusText: res.statusMessage,
      headers: responseHeaders,
    });
    Object.defineProperty(response, 'url', { value: url.href });
    Object.defineProperty(response, 'redirected', { value: redirected });
    if (status < 200) Object.defineProperty(response, 'status', { value: status });
    return response;
  }
}
