import type { Field } from '../qpack/decoder.ts';
import {
  type H3Event,
  type H3Transport,
  type H3TransportEvent,
  Http3Connection,
  type Http3ConnectionOptions,
} from './connection.ts';
import { H3ErrorCode, h3ErrorName } from './errors.ts';

/**
 * An HTTP/3 client over one QUIC connection: `request(headers, body)` resolves with the
 * whole response. Requests run concurrently, one bidirectional stream each (RFC 9114 §4.1).
 */
export interface Http3ClientOptions extends Omit<Http3ConnectionOptions, 'role'> {
  /** :authority when a request gives none. */
  authority?: string;
  /** :scheme when a request gives none (default https, RFC 9114 §3.1). */
  scheme?: string;
  /** A response body larger than this is refused (the stream is cancelled). Default 64 MiB. */
  maxResponseBody?: number;
}

export interface H3Response {
  status: number;
  /** The response's fields, :status first, in the order received. */
  headers: Field[];
  body: Uint8Array;
  trailers: Field[];
  /** 1xx interim responses that came first (RFC 9114 §4.1). */
  informational: Field[][];
  streamId: number;
}

/** A request failed: the stream was reset (with the peer's or our code) or the connection closed. */
export class H3RequestError extends Error {
  override readonly name = 'H3RequestError';
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(`${h3ErrorName(code)}: ${reason}`);
  }
  /** RFC 9114 §4.1.1 / §5.2: the server did not process the request; it may be retried. */
  get retryable(): boolean {
    return this.code === H3ErrorCode.H3_REQUEST_REJECTED;
  }
}

export type H3RequestHeaders = readonly Field[] | Readonly<Record<string, string | readonly string[]>>;

/**
 * Streaming a response instead of collecting it: `onResponse` gets the final response head
 * as soon as it arrives (body still empty), `onData` each chunk of the body as it arrives.
 * With `onData` the body is not kept (the resolved response's body is empty) and
 * maxResponseBody does not apply: memory stays bounded by what the caller does with a chunk.
 */
export interface H3StreamHandlers {
  onResponse?: (response: H3Response) => void;
  onData?: (chunk: Uint8Array) => void;
}

interface Waiting {
  fields: Field[];
  body: Uint8Array | undefined;
  trailers: readonly Field[];
  handlers: H3StreamHandlers;
  resolve: (r: H3Response) => void;
  reject: (e: Error) => void;
}

interface Pending {
  resolve: (r: H3Response) => void;
  reject: (e: Error) => void;
  handlers: H3StreamHandlers;
  response: H3Response;
  chunks: Uint8Array[];
  size: number;
}

export class Http3Client {
  readonly h3: Http3Connection;
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: Waiting[] = [];
  private readonly opts: Http3ClientOptions;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private isReady = false;

  constructor(transport: H3Transport, opts: Http3ClientOptions = {}) {
    this.opts = opts;
    this.h3 = new Http3Connection(transport, { ...opts, role: 'client' });
  }

  handle(e: H3TransportEvent, now?: number): void {
    this.dispatch(this.h3.handle(e, now));
  }

  /** Resolves once the connection can carry requests; rejects if it closes first. */
  ready(): Promise<void> {
    if (this.isReady) return Promise.resolve();
    if (this.h3.closed)
      return Promise.reject(new H3RequestError(H3ErrorCode.H3_NO_ERROR, 'connection closed'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Sends a request and resolves with the response once it has ended. Pseudo-header fields
   * default to GET, the client's scheme and authority, and '/'. `handlers` stream the
   * response instead of collecting its body.
   */
  request(
    headers: H3RequestHeaders,
    body?: Uint8Array | string,
    trailers: readonly Field[] = [],
    handlers: H3StreamHandlers = {},
  ): Promise<H3Response> {
    const fields = this.requestFields(headers);
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    return new Promise<H3Response>((resolve, reject) => {
      const job: Waiting = { fields, body: bytes, trailers, handlers, resolve, reject };
      // RFC 9000 §4.6: with the peer's stream limit used up, requests wait for MAX_STREAMS.
      if (this.waiting.length > 0 || !this.h3.canOpenRequest()) {
        this.waiting.push(job);
        return;
      }
      this.start(job);
    });
  }

  /** Requests waiting for the peer to allow another stream. */
  get queued(): number {
    return this.waiting.length;
  }

  private start(job: Waiting): void {
    const { fields, body, trailers, handlers, resolve, reject } = job;
    try {
      const hasBody = body !== undefined && body.length > 0;
      const id = this.h3.sendRequest(fields, !hasBody && trailers.length === 0);
      this.pending.set(id, {
        resolve,
        reject,
        handlers,
        response: {
          status: 0,
          headers: [],
          body: new Uint8Array(0),
          trailers: [],
          informational: [],
          streamId: id,
        },
        chunks: [],
        size: 0,
      });
      if (hasBody) this.h3.sendData(id, body, trailers.length === 0);
      if (trailers.length > 0) this.h3.sendHeaders(id, trailers, true);
    } catch (e) {
      reject(e as Error);
      return;
    }
    this.dispatch(this.h3.takeEvents());
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.h3.canOpenRequest() && !this.h3.closed) {
      const job = this.waiting.shift();
      if (!job) break;
      this.start(job);
    }
  }

  /** GOAWAY (RFC 9114 §5.2); the connection closes when the requests in flight are answered. */
  shutdown(): void {
    this.h3.shutdown();
    this.dispatch(this.h3.takeEvents());
  }

  close(): void {
    this.h3.close();
    this.dispatch(this.h3.takeEvents());
  }

  private requestFields(headers: H3RequestHeaders): Field[] {
    const list: Field[] = [];
    if (Array.isArray(headers))
      for (const [n, v] of headers as readonly Field[]) list.push([n.toLowerCase(), v]);
    else
      for (const [n, v] of Object.entries(headers as Record<string, string | readonly string[]>))
        for (const one of typeof v === 'string' ? [v] : v) list.push([n.toLowerCase(), one]);
    const has = (n: string) => list.some(([k]) => k === n);
    const pseudo: Field[] = [];
    if (!has(':method')) pseudo.push([':method', 'GET']);
    const method = list.find(([k]) => k === ':method')?.[1] ?? 'GET';
    if (method !== 'CONNECT') {
      if (!has(':scheme')) pseudo.push([':scheme', this.opts.scheme ?? 'https']);
      if (!has(':path')) pseudo.push([':path', '/']);
    }
    if (!has(':authority') && this.opts.authority !== undefined)
      pseudo.push([':authority', this.opts.authority]);
    // RFC 9114 §4.3: pseudo-header fields precede regular ones.
    const given = list.filter(([n]) => n.startsWith(':'));
    const regular = list.filter(([n]) => !n.startsWith(':'));
    return [...given, ...pseudo, ...regular];
  }

  private dispatch(events: H3Event[]): void {
    for (const e of events) this.onEvent(e);
  }

  private onEvent(e: H3Event): void {
    switch (e.type) {
      case 'ready':
        this.isReady = true;
        for (const w of this.readyWaiters.splice(0)) w.resolve();
        return;
      case 'headers': {
        const p = this.pending.get(e.streamId);
        if (!p) return;
        if (e.kind === 'informational') p.response.informational.push(e.fields);
        else if (e.kind === 'trailers') p.response.trailers = e.fields;
        else {
          p.response.headers = e.fields;
          p.response.status = Number(e.fields.find(([n]) => n === ':status')?.[1] ?? 0);
          p.handlers.onResponse?.(p.response);
        }
        return;
      }
      case 'data': {
        const p = this.pending.get(e.streamId);
        if (!p) return;
        if (p.handlers.onData) {
          p.handlers.onData(e.data);
          return;
        }
        p.size += e.data.length;
        const max = this.opts.maxResponseBody ?? 64 * 1024 * 1024;
        if (p.size > max) {
          this.h3.resetStream(e.streamId, H3ErrorCode.H3_REQUEST_CANCELLED);
          this.fail(e.streamId, H3ErrorCode.H3_EXCESSIVE_LOAD, `response body exceeds ${max} bytes`);
          return;
        }
        p.chunks.push(e.data);
        return;
      }
      case 'end': {
        const p = this.pending.get(e.streamId);
        if (!p) return;
        this.pending.delete(e.streamId);
        const body = new Uint8Array(p.size);
        let at = 0;
        for (const c of p.chunks) {
          body.set(c, at);
          at += c.length;
        }
        p.response.body = body;
        p.resolve(p.response);
        this.drain();
        return;
      }
      case 'stream-reset':
      case 'stream-error':
        this.fail(e.streamId, e.code, e.type === 'stream-error' ? e.reason : 'reset by the server');
        this.drain();
        return;
      case 'streams-available':
        this.drain();
        return;
      case 'goaway':
        // RFC 9114 §5.2: requests not yet sent will not be; they may go on a new connection.
        for (const w of this.waiting.splice(0))
          w.reject(new H3RequestError(H3ErrorCode.H3_REQUEST_REJECTED, 'GOAWAY before the request was sent'));
        return;
      case 'closed':
        for (const w of this.readyWaiters.splice(0))
          w.reject(
            new H3RequestError(
              e.code ?? H3ErrorCode.H3_NO_ERROR,
              `connection closed${e.reason ? `: ${e.reason}` : ''}`,
            ),
          );
        for (const w of this.waiting.splice(0))
          w.reject(
            new H3RequestError(
              e.code ?? H3ErrorCode.H3_NO_ERROR,
              'connection closed before the request was sent',
            ),
          );
        for (const id of [...this.pending.keys()])
          this.fail(
            id,
            e.code ?? H3ErrorCode.H3_NO_ERROR,
            `connection closed${e.reason ? `: ${e.reason}` : ''}`,
          );
        return;
      default:
        return;
    }
  }

  private fail(id: number, code: number, reason: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.reject(new H3RequestError(code, reason));
  }
}
