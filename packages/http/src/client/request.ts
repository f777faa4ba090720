import type { OutgoingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import type { Field, RequestHead, ResponseHead } from '../h1/codec.ts';
import { type Agent, globalAgent, type Origin } from './agent.ts';
import { type ClientConnection, ClientResponse } from './connection.ts';

export interface RequestOptions {
  protocol?: string;
  host?: string;
  hostname?: string;
  port?: number | string;
  /** Path and query (request-target in origin form, RFC 9112 §3.2.1). */
  path?: string;
  method?: string;
  headers?: OutgoingHttpHeaders | readonly (readonly [string, string])[];
  /** The pool to use; default the global agent. */
  agent?: Agent;
  /** Emit 'timeout' when the response head has not arrived within this many ms. */
  timeout?: number;
  signal?: AbortSignal;
  /** Add a Host field (default true). */
  setHost?: boolean;
}

/** RFC 9110 §9.2.2: methods whose repetition has the effect of one request. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Methods that carry no body unless the caller writes one (node:http's useChunkedEncodingByDefault). */
const BODYLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

function errorWithCode(message: string, code: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

export function normalizeRequest(
  input: string | URL | RequestOptions,
  options?: RequestOptions,
): { origin: Origin; method: string; path: string; options: RequestOptions } {
  let o: RequestOptions;
  if (typeof input === 'string' || input instanceof URL) {
    const u = new URL(input);
    o = {
      protocol: u.protocol,
      hostname: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port,
      path: `${u.pathname}${u.search}`,
      ...options,
    };
  } else o = { ...input, ...options };
  const protocol = (o.protocol ?? 'http:') as string;
  if (protocol !== 'http:' && protocol !== 'https:')
    throw errorWithCode(`Protocol "${protocol}" not supported`, 'ERR_INVALID_PROTOCOL');
  const hostname = o.hostname ?? (o.host ?? 'localhost').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const port = o.port !== undefined && o.port !== '' ? Number(o.port) : protocol === 'https:' ? 443 : 80;
  const path = o.path ?? '/';
  if (/[\s]/.test(path))
    throw errorWithCode('Request path contains unescaped characters', 'ERR_UNESCAPED_CHARACTERS');
  return {
    origin: { protocol, hostname, port },
    method: (o.method ?? 'GET').toUpperCase(),
    path,
    options: o,
  };
}

/**
 * A request as node:http's ClientRequest: a Writable of the body, 'response' with a
 * ClientResponse, 'socket', 'information' (1xx), 'continue', 'upgrade', 'timeout', 'error'.
 * The head goes out with the first write or end(): end(body) alone gets a Content-Length,
 * writes before end() get chunked framing (RFC 9112 §6.1, §7.1) unless the caller set one.
 */
export class ClientRequest extends Writable {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly protocol: string;
  readonly origin: Origin;
  readonly agent: Agent;
  private readonly fields = new Map<string, { name: string; values: string[] }>();
  private conn: ClientConnection | undefined;
  private waiting: (() => void)[] = [];
  private headSent = false;
  private wroteBody = false;
  private knownLength: number | undefined;
  private res: ClientResponse | undefined;
  private trailerFields: Field[] = [];
  private failed = false;
  /** Set when the response has been handed out and finished. */
  finishedResponse = false;
  reusedSocket = false;

  constructor(
    input: string | URL | RequestOptions,
    options?: RequestOptions,
    cb?: (res: ClientResponse) => void,
  ) {
    // Not destroyed when the body is written: the exchange lives until the response ends.
    super({ autoDestroy: false });
    const n = normalizeRequest(input, options);
    this.origin = n.origin;
    this.method = n.method;
    this.path = n.path;
    this.host = n.origin.hostname;
    this.protocol = n.origin.protocol;
    this.agent = n.options.agent ?? globalAgent();
    const h = n.options.headers;
    if (h) {
      const entries: [string, string | number | readonly string[] | undefined][] = Array.isArray(h)
        ? (h as [string, string][])
        : Object.entries(h as OutgoingHttpHeaders);
      for (const [k, v] of entries) if (v !== undefined) this.appendHeader(k, v);
    }
    if (n.options.setHost !== false && !this.fields.has('host')) {
      const o = n.origin;
      const dflt = o.protocol === 'https:' ? 443 : 80;
      const host = o.hostname.includes(':') ? `[${o.hostname}]` : o.hostname;
      this.fields.set('host', { name: 'Host', values: [o.port === dflt ? host : `${host}:${o.port}`] });
    }
    if (cb) this.once('response', cb);
    const signal = n.options.signal;
    if (signal) {
      if (signal.aborted) queueMicrotask(() => this.destroy(abortError(signal)));
      else signal.addEventListener('abort', () => this.destroy(abortError(signal)), { once: true });
    }
    if (n.options.timeout) this.setTimeout(n.options.timeout);
    this.agent.acquire(this.origin).then(
      (c) => this.onConnection(c),
      (e: Error) => this.fail(e),
    );
  }

  setHeader(name: string, value: string | number | readonly string[]): this {
    if (this.headSent) throw errorWithCode('Cannot set headers after they are sent', 'ERR_HTTP_HEADERS_SENT');
    const values = Array.isArray(value) ? value.map(String) : [String(value)];
    for (const v of values)
      if (/[\r\n\0]/.test(v))
        throw errorWithCode(`Invalid character in header content ["${name}"]`, 'ERR_INVALID_CHAR');
    this.fields.set(name.toLowerCase(), { name, values });
    return this;
  }

  appendHeader(name: string, value: string | number | readonly string[]): this {
    const prev = this.fields.get(name.toLowerCase());
    const values = Array.isArray(value) ? value.map(String) : [String(value)];
    return this.setHeader(prev?.name ?? name, [...(prev?.values ?? []), ...values]);
  }

  getHeader(name: string): string | string[] | undefined {
    const f = this.fields.get(name.toLowerCase());
    if (!f) return undefined;
    return f.values.length === 1 ? f.values[0] : f.values;
  }

  removeHeader(name: string): void {
    if (this.headSent)
      throw errorWithCode('Cannot remove headers after they are sent', 'ERR_HTTP_HEADERS_SENT');
    this.fields.delete(name.toLowerCase());
  }

  get headersSent(): boolean {
    return this.headSent;
  }

  get socket() {
    return this.conn?.socket;
  }

  addTrailers(t: Record<string, string> | readonly [string, string][]): void {
    for (const [k, v] of Array.isArray(t) ? t : Object.entries(t)) this.trailerFields.push([k, String(v)]);
  }

  setTimeout(ms: number, cb?: () => void): this {
    if (cb) this.once('timeout', cb);
    // On the agent's clock (a TimerGroup), so a virtual clock drives it and stats count it.
    const timer = this.agent.setTimer(ms, () => {
      if (!this.res && !this.destroyed) this.emit('timeout');
    });
    this.once('response', () => timer.cancel());
    this.once('close', () => timer.cancel());
    return this;
  }

  /** Send the head now (node:http's flushHeaders): chunked framing unless a length is set. */
  flushHeaders(): void {
    this.whenConnected(() => this.sendHead());
  }

  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    if (typeof chunk === 'function') return this.end(undefined, undefined, chunk);
    if (typeof encoding === 'function') return this.end(chunk, undefined, encoding);
    if (!this.headSent && !this.wroteBody && !this.writableEnded) {
      if (chunk === undefined || chunk === null) this.knownLength = 0;
      else if (typeof chunk === 'string')
        this.knownLength = Buffer.byteLength(chunk, (encoding as BufferEncoding) ?? 'utf8');
      else if (chunk instanceof Uint8Array) this.knownLength = chunk.length;
    }
    if (chunk === undefined || chunk === null) super.end(cb as () => void);
    else super.end(chunk, encoding as BufferEncoding, cb as () => void);
    return this;
  }

  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (chunk !== undefined && chunk !== null && !this.writableEnded) this.wroteBody = true;
    return super.write(chunk, encoding as BufferEncoding, cb as (e?: Error | null) => void);
  }

  private whenConnected(fn: () => void): void {
    if (this.conn) fn();
    else this.waiting.push(fn);
  }

  private onConnection(c: ClientConnection): void {
    if (this.destroyed || this.failed) {
      // We no longer need it: give it back by closing (its exchange never started).
      c.close();
      return;
    }
    this.conn = c;
    this.reusedSocket = c.requests > 0;
    this.emit('socket', c.socket);
    for (const fn of this.waiting.splice(0)) fn();
  }

  private sendHead(): void {
    if (this.headSent || !this.conn) return;
    this.headSent = true;
    const fields: Field[] = [];
    const has = (n: string) => this.fields.has(n);
    const host = this.fields.get('host');
    if (host) for (const v of host.values) fields.push([host.name, v]);
    for (const [k, f] of this.fields) if (k !== 'host') for (const v of f.values) fields.push([f.name, v]);
    if (!has('content-length') && !has('transfer-encoding')) {
      if (this.knownLength !== undefined && this.writableEnded) {
        if (this.knownLength > 0 || !BODYLESS.has(this.method))
          fields.push(['Content-Length', String(this.knownLength)]);
      } else fields.push(['Transfer-Encoding', 'chunked']);
    }
    if (!has('connection')) fields.push(['Connection', this.agent.keepAlive ? 'keep-alive' : 'close']);
    const head: RequestHead = {
      method: this.method,
      target: this.path,
      version: { major: 1, minor: 1 },
      fields,
    };
    const framing = fields.find(([n]) => /^(content-length|transfer-encoding)$/i.test(n));
    this.agent.traceEvent(
      'out',
      `${this.method} ${this.path} HTTP/1.1${framing ? ` ${framing[0]}: ${framing[1]}` : ''} on #${this.conn.id}`,
      { method: this.method, target: this.path, fields: fields.length, connection: this.conn.id },
      'RFC 9112 §3',
    );
    try {
      this.conn.begin(head, {
        onInformational: (h) => this.onInformational(h),
        onResponse: (h) => this.onResponse(h),
        onData: (d) => this.res?.push(d) ?? true,
        onEnd: (t) => this.onEnd(t),
        onUpgrade: (h, rest) => this.onUpgrade(h, rest),
        onError: (e) => this.fail(e),
      });
    } catch (e) {
      this.fail(e as Error);
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.whenConnected(() => {
      this.sendHead();
      if (this.failed || !this.conn) return cb(new Error('request failed'));
      try {
        this.conn.writeData(chunk, cb);
      } catch (e) {
        cb(e as Error);
      }
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.whenConnected(() => {
      this.sendHead();
      if (this.failed || !this.conn) return cb();
      try {
        this.conn.writeEnd(this.trailerFields, (e) => cb(e ?? undefined));
      } catch (e) {
        cb(e as Error);
      }
    });
  }

  private onInformational(h: ResponseHead): void {
    const info = {
      statusCode: h.status,
      statusMessage: h.reason,
      httpVersion: `${h.version.major}.${h.version.minor}`,
      headers: Object.fromEntries(h.fields.map(([k, v]) => [k.toLowerCase(), v])),
      rawHeaders: h.fields.flat(),
    };
    this.emit('information', info);
    if (h.status === 100) this.emit('continue');
  }

  private onResponse(h: ResponseHead): void {
    const c = this.conn;
    if (!c) return;
    this.agent.traceEvent(
      'in',
      `HTTP/${h.version.major}.${h.version.minor} ${h.status} ${h.reason} on #${c.id}`,
      { status: h.status, fields: h.fields.length, connection: c.id },
      'RFC 9112 §4',
    );
    const res = new ClientResponse(c.socket, h);
    res.onRead = () => c.resume();
    // A response dropped before its end leaves the connection mid-message: it cannot be reused.
    res.on('close', () => {
      if (!res.complete) c.close();
    });
    this.res = res;
    this.emit('response', res);
  }

  private onEnd(trailers: readonly Field[]): void {
    const res = this.res;
    if (!res) return;
    res.setTrailers(trailers);
    res.complete = true;
    this.finishedResponse = true;
    res.push(null);
    res.once('end', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  private onUpgrade(h: ResponseHead, rest: Uint8Array): void {
    const c = this.conn;
    if (!c) return;
    const res = new ClientResponse(c.socket, h);
    const event = h.status === 101 ? 'upgrade' : 'connect';
    if (this.listenerCount(event) === 0) {
      c.socket.destroy();
      this.fail(
        errorWithCode(
          `server switched protocols (${h.status}) and no '${event}' listener took the socket`,
          'ECONNRESET',
        ),
      );
      return;
    }
    this.emit(event, res, c.socket, Buffer.from(rest));
  }

  /**
   * A kept-alive connection can die just as we reuse it (the server's idle timeout raced our
   * request; RFC 9112 §9.3.1 lets a client retry a request that is idempotent when the
   * connection closed before any response). We retry once, on a new connection, when no
   * response byte came and the request had no body to replay.
   */
  private retryable(): boolean {
    return (
      !this.retried &&
      this.reusedSocket &&
      !this.res &&
      !this.wroteBody &&
      (this.knownLength ?? 0) === 0 &&
      this.writableEnded &&
      IDEMPOTENT.has(this.method)
    );
  }

  private retried = false;

  private fail(e: Error): void {
    if (this.failed) return;
    if (this.retryable()) {
      this.retried = true;
      this.conn = undefined;
      this.headSent = false;
      this.emit('retry', e);
      this.agent.acquire(this.origin, { fresh: true }).then(
        (c) => {
          this.onConnection(c);
          this.sendHead();
          this.conn?.writeEnd(this.trailerFields, () => {});
        },
        (err: Error) => this.fail(err),
      );
      return;
    }
    this.failed = true;
    const res = this.res;
    if (res && !res.complete) res.failAfterDrain(e);
    if (!res) this.destroy(e);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // An exchange cut short: its connection cannot be reused.
    if (!this.finishedResponse) this.conn?.close();
    if (this.res && !this.res.complete && !this.res.destroyed) this.res.destroy(err ?? undefined);
    this.failed = true;
    cb(err);
  }

  abort(): void {
    this.destroy();
  }
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason as unknown;
  if (reason instanceof Error) return reason;
  return new DOMException('This operation was aborted', 'AbortError');
}

/** node:http's request(): url or options, optional options, optional response callback. */
export function request(
  input: string | URL | RequestOptions,
  options?: RequestOptions | ((res: ClientResponse) => void),
  cb?: (res: ClientResponse) => void,
): ClientRequest {
  if (typeof options === 'function') return new ClientRequest(input, undefined, options);
  return new ClientRequest(input, options, cb);
}

/** request() with GET and end() called. */
export function get(
  input: string | URL | RequestOptions,
  options?: RequestOptions | ((res: ClientResponse) => void),
  cb?: (res: ClientResponse) => void,
): ClientRequest {
  const req = request(input, options, cb);
  req.end();
  return req;
}
