import type { OutgoingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import type { Field, RequestHead, ResponseHead } from '../h1/codec.ts';
import { wholeBodyLength } from '../h1/messages.ts';
import type { IncomingHeaders, OutgoingHeaders } from '../h2/message.ts';
import type { Http2Session, Http2Stream } from '../h2/session.ts';
import { type Agent, globalAgent, type Http2Mode, type Origin } from './agent.ts';
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
  /**
   * Emit 'timeout' when the connection stays quiet this many ms, as node:http's: waiting for
   * a connection, for the response head after the request went out, or between body bytes
   * (the HTTP/1.1 core's deadlines). The request is not aborted; destroy it to give up.
   */
  timeout?: number;
  signal?: AbortSignal;
  /** Add a Host field (default true). */
  setHost?: boolean;
  /** HTTP/2 for this request (default: the agent's; see AgentOptions.http2). */
  http2?: Http2Mode;
}

/**
 * RFC 9113 §8.2.2: connection-specific fields are not sent over HTTP/2 (Host becomes
 * :authority, §8.3.1; TE is allowed only as "trailers").
 */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** An h2 header block as the fields of a ResponseHead (pseudo-headers left out, names lower-case). */
function h2Fields(h: IncomingHeaders): Field[] {
  const out: Field[] = [];
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(':') || v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) out.push([k, x]);
  }
  return out;
}

function h2Head(h: IncomingHeaders): ResponseHead {
  // HTTP/2 has no reason phrase (RFC 9113 §8.3.2); node:http2 and undici give ''.
  return { status: Number(h[':status']), reason: '', version: { major: 2, minor: 0 }, fields: h2Fields(h) };
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
  /** The HTTP/2 session and this request's stream on it, when the origin speaks h2. */
  private h2: Http2Session | undefined;
  private stream: Http2Stream | undefined;
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
    this.agent.carrier(this.origin, n.options.http2).then(
      (c) => (c.kind === 'h1' ? this.onConnection(c.conn) : this.onSession(c.session)),
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
    return this.conn?.socket ?? this.h2?.socket;
  }

  addTrailers(t: Record<string, string> | readonly [string, string][]): void {
    for (const [k, v] of Array.isArray(t) ? t : Object.entries(t)) this.trailerFields.push([k, String(v)]);
  }

  /** ms of quiet before 'timeout' (0: none). */
  private timeoutMs = 0;
  /** The timer that runs until an HTTP/1.1 exchange starts (then the core's deadlines take over). */
  private waitTimer: { cancel(): void } | undefined;
  /** 'timeout' events emitted, by what was late. */
  readonly timeouts = { connect: 0, response: 0, body: 0 };

  setTimeout(ms: number, cb?: () => void): this {
    if (cb) this.once('timeout', cb);
    this.timeoutMs = ms;
    this.waitTimer?.cancel();
    this.waitTimer = undefined;
    if (this.conn && this.headSent && !this.finishedResponse) {
      // an HTTP/1.1 exchange runs: its connection watches the core's deadlines
      this.watchDeadlines(this.conn);
      this.conn.setExchangeTimeouts({ responseTimeout: ms, bodyTimeout: ms });
      return this;
    }
    if (ms <= 0) return this;
    // Until then (a connection awaited, or an h2 stream): on the agent's clock (a
    // TimerGroup), so a virtual clock drives it and stats count it.
    const timer = this.agent.setTimer(ms, () => {
      if (this.waitTimer !== timer) return;
      this.waitTimer = undefined;
      if (!this.res && !this.destroyed) {
        this.timeouts.connect++;
        this.emit('timeout');
      }
    });
    this.waitTimer = timer;
    if (!this.timerHooks) {
      this.timerHooks = true;
      this.once('response', () => this.waitTimer?.cancel());
      this.once('close', () => this.waitTimer?.cancel());
    }
    return this;
  }

  private timerHooks = false;

  /** The connection arms its deadlines on the agent's clock (counted in the agent's stats). */
  private watchDeadlines(c: ClientConnection): void {
    const agent = this.agent;
    c.useTimers((at, fn) => agent.setTimer(Math.max(0, at - agent.now()), fn));
  }

  /** The core said the response head or the next body bytes are late. */
  private onExchangeTimeout(kind: 'response' | 'body'): void {
    if (this.destroyed) return;
    this.timeouts[kind]++;
    this.agent.traceEvent(
      'local',
      `timeout: ${kind === 'response' ? 'no response head' : 'response body quiet'} for ${this.timeoutMs} ms`,
      { kind, ms: this.timeoutMs },
      'RFC 9112 §9.5',
    );
    this.emit('timeout');
  }

  /** Send the head now (node:http's flushHeaders): chunked framing unless a length is set. */
  flushHeaders(): void {
    this.whenConnected(() => this.sendHead());
  }

  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    if (typeof chunk === 'function') return this.end(undefined, undefined, chunk);
    if (typeof encoding === 'function') return this.end(chunk, undefined, encoding);
    if (!this.headSent && !this.wroteBody && !this.writableEnded)
      this.knownLength = wholeBodyLength(chunk, encoding) ?? this.knownLength;
    if (chunk === undefined || chunk === null) super.end(cb as () => void);
    else super.end(chunk, encoding as BufferEncoding, cb as () => void);
    return this;
  }

  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (chunk !== undefined && chunk !== null && !this.writableEnded) this.wroteBody = true;
    return super.write(chunk, encoding as BufferEncoding, cb as (e?: Error | null) => void);
  }

  private whenConnected(fn: () => void): void {
    if (this.conn || this.h2) fn();
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

  private onSession(s: Http2Session): void {
    if (this.destroyed || this.failed) return;
    this.h2 = s;
    this.emit('socket', s.socket);
    for (const fn of this.waiting.splice(0)) fn();
  }

  /** The request as an HTTP/2 stream: pseudo-headers first (RFC 9113 §8.3.1), then the fields. */
  private sendHead2(s: Http2Session): void {
    this.headSent = true;
    const host = this.fields.get('host')?.values[0];
    const h: OutgoingHeaders = {
      ':method': this.method,
      ':scheme': this.protocol === 'https:' ? 'https' : 'http',
      ...(host !== undefined ? { ':authority': host } : {}),
      ':path': this.path,
    };
    // Fields the Connection field names are connection-specific too (RFC 9110 §7.6.1).
    const named = new Set(
      (this.fields.get('connection')?.values ?? []).flatMap((v) =>
        v.split(',').map((x) => x.trim().toLowerCase()),
      ),
    );
    for (const [k, f] of this.fields) {
      if (CONNECTION_SPECIFIC.has(k) || named.has(k)) continue;
      if (k === 'te') {
        if (f.values.some((v) => v.trim().toLowerCase() === 'trailers')) h.te = 'trailers';
        continue;
      }
      h[k] = f.values.length === 1 ? f.values[0] : f.values;
    }
    const complete = this.knownLength !== undefined && this.writableEnded;
    if (
      complete &&
      h['content-length'] === undefined &&
      (this.knownLength !== 0 || !BODYLESS.has(this.method))
    )
      h['content-length'] = String(this.knownLength);
    // No body: END_STREAM on the HEADERS frame (RFC 9113 §8.1).
    const endStream = complete && this.knownLength === 0 && this.trailerFields.length === 0;
    let stream: Http2Stream;
    try {
      stream = s.request(h, { endStream });
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    this.stream = stream;
    this.agent.sessionUse(s, 1);
    stream.once('close', () => this.agent.sessionUse(s, -1));
    this.agent.traceEvent(
      'out',
      `${this.method} ${this.path} HTTP/2 on stream ${stream.id}`,
      { method: this.method, target: this.path, stream: stream.id },
      'RFC 9113 §8.3.1',
    );
    let trailers: Field[] = [];
    stream.on('headers', (x: IncomingHeaders) => this.onInformational(h2Head(x)));
    stream.on('response', (x: IncomingHeaders) => this.onResponse2(stream, h2Head(x)));
    stream.on('data', (d: Buffer) => {
      if (this.res && !this.res.push(d)) stream.pause();
    });
    stream.on('trailers', (x: IncomingHeaders) => {
      trailers = h2Fields(x);
    });
    stream.on('end', () => this.onEnd(trailers));
    stream.on('error', (e: Error) => this.fail(e));
    stream.on('close', () => {
      if (!this.finishedResponse)
        this.fail(
          errorWithCode(
            `HTTP/2 stream closed before the response ended${stream.rstCode !== undefined ? ` (RST_STREAM ${stream.rstCode})` : ''}`,
            'ECONNRESET',
          ),
        );
    });
  }

  private onResponse2(stream: Http2Stream, h: ResponseHead): void {
    const session = this.h2;
    if (!session) return;
    this.agent.traceEvent(
      'in',
      `HTTP/2 ${h.status} on stream ${stream.id}`,
      { status: h.status, fields: h.fields.length, stream: stream.id },
      'RFC 9113 §8.3.2',
    );
    const res = new ClientResponse(session.socket, h);
    res.onRead = () => stream.resume();
    // A response dropped before its end cancels its stream only (RST_STREAM CANCEL); the session stays.
    res.on('close', () => {
      if (!res.complete) stream.destroy();
    });
    this.res = res;
    this.emit('response', res);
  }

  private sendHead(): void {
    if (this.headSent) return;
    if (this.h2) {
      this.sendHead2(this.h2);
      return;
    }
    if (!this.conn) return;
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
    // From here the connection's core watches the exchange's deadlines: the wait timer goes.
    const ms = this.timeoutMs;
    if (ms > 0) {
      this.waitTimer?.cancel();
      this.waitTimer = undefined;
      this.watchDeadlines(this.conn);
    }
    try {
      this.conn.begin(
        head,
        {
          onInformational: (h) => this.onInformational(h),
          onResponse: (h) => this.onResponse(h),
          onData: (d) => this.res?.push(d) ?? true,
          onEnd: (t) => this.onEnd(t),
          onUpgrade: (h, rest) => this.onUpgrade(h, rest),
          onError: (e) => this.fail(e),
          onTimeout: (kind) => this.onExchangeTimeout(kind),
        },
        ms > 0 ? { responseTimeout: ms, bodyTimeout: ms } : {},
      );
    } catch (e) {
      this.fail(e as Error);
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.whenConnected(() => {
      this.sendHead();
      if (this.h2) {
        if (this.failed || !this.stream) return cb(new Error('request failed'));
        this.stream.write(chunk, cb);
        return;
      }
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
      if (this.h2) {
        const stream = this.stream;
        if (this.failed || !stream || stream.writableEnded) return cb();
        // Trailers end the stream in a HEADERS frame (RFC 9113 §8.1).
        if (this.trailerFields.length > 0) {
          const t: OutgoingHeaders = {};
          for (const [k, v] of this.trailerFields) t[k.toLowerCase()] = v;
          stream.sendTrailers(t);
        }
        stream.end(() => cb());
        return;
      }
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
    if (!this.finishedResponse) {
      this.conn?.close();
      this.stream?.destroy();
    }
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
