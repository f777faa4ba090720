import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { Readable, Writable } from 'node:stream';
import { type Field, isFieldText, isFieldValue, isToken, STATUS_TEXT } from './codec.ts';

/**
 * The server's request and response objects, shaped like node:http's IncomingMessage and
 * ServerResponse, and independent of the protocol under them: an HTTP/1.1 connection
 * (server.ts) or an HTTP/2 stream feeds an IncomingMessage and gives a ServerResponse a
 * ResponseChannel to write through.
 */

/** How a response reaches the wire: one HTTP/1.1 exchange, or one HTTP/2 stream. */
export interface ResponseChannel {
  /**
   * Send the response head. `knownLength` is the body's length when the whole body was
   * given to end() before the head went out; the channel adds the framing fields its
   * protocol needs (Content-Length, Transfer-Encoding, Connection, Date).
   */
  sendHead(
    status: number,
    reason: string,
    fields: Field[],
    knownLength: number | undefined,
    /** Body bytes or the end follow in this same call stack: the head may wait for them. */
    followed?: boolean,
  ): void;
  /** A 1xx interim response (100 Continue, 103 Early Hints). */
  sendInformational(status: number, reason: string, fields: Field[]): void;
  /** Body bytes; `done` runs when more may be written (backpressure). */
  sendData(chunk: Uint8Array, done: (err?: Error | null) => void): void;
  /** End of the body, with trailers when the framing carries them. */
  sendEnd(trailers: Field[], done: (err?: Error | null) => void): void;
  /** Abandon the exchange (the connection or stream is reset). */
  abort(err?: Error): void;
}

/** The `headers` object the way node:http builds it (lower-case names, duplicates folded). */
export function headersObject(fields: readonly Field[]): IncomingHttpHeaders {
  const h: Record<string, string | string[]> = Object.create(null);
  for (const [rawName, value] of fields) {
    const name = rawName.toLowerCase();
    const prev = h[name];
    if (name === 'set-cookie') {
      if (Array.isArray(prev)) prev.push(value);
      else h[name] = [value];
    } else if (prev === undefined) {
      h[name] = value;
    } else if (DROP_DUPLICATES.has(name)) {
      // node:http keeps the first of these single-valued fields
    } else {
      h[name] = `${prev}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
  return h as IncomingHttpHeaders;
}

const DROP_DUPLICATES = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

export interface IncomingInit {
  method: string;
  url: string;
  httpVersionMajor: number;
  httpVersionMinor: number;
  fields: readonly Field[];
  /** Called when the reader wants more (resume the source). */
  onRead?: () => void;
}

/** A request as node:http's IncomingMessage: a Readable of the body. */
export class IncomingMessage extends Readable {
  method: string;
  url: string;
  httpVersion: string;
  httpVersionMajor: number;
  httpVersionMinor: number;
  trailers: Record<string, string | undefined> = {};
  rawTrailers: string[] = [];
  /** The whole body arrived. */
  complete = false;
  aborted = false;
  readonly socket: Duplex;
  private readonly onRead: (() => void) | undefined;

  constructor(socket: Duplex, init: IncomingInit) {
    super();
    this.socket = socket;
    this.method = init.method;
    this.url = init.url;
    this.httpVersionMajor = init.httpVersionMajor;
    this.httpVersionMinor = init.httpVersionMinor;
    // the usual version without a string made per request
    this.httpVersion =
      init.httpVersionMajor === 1 && init.httpVersionMinor === 1
        ? '1.1'
        : `${init.httpVersionMajor}.${init.httpVersionMinor}`;
    this.fields = init.fields;
    this.onRead = init.onRead;
  }

  // headers and rawHeaders are built on first use, as node:http does: many handlers never
  // look at most of them.
  private readonly fields: readonly Field[];
  private headersCache: IncomingHttpHeaders | undefined;
  private rawCache: string[] | undefined;

  get headers(): IncomingHttpHeaders {
    this.headersCache ??= headersObject(this.fields);
    return this.headersCache;
  }

  set headers(h: IncomingHttpHeaders) {
    this.headersCache = h;
  }

  get rawHeaders(): string[] {
    this.rawCache ??= this.fields.flat();
    return this.rawCache;
  }

  set rawHeaders(r: string[]) {
    this.rawCache = r;
  }

  get connection(): Duplex {
    return this.socket;
  }

  get headersDistinct(): Record<string, string[]> {
    return distinct(this.rawHeaders);
  }

  get trailersDistinct(): Record<string, string[]> {
    return distinct(this.rawTrailers);
  }

  setTimeout(_ms: number, cb?: () => void): this {
    if (cb) this.on('timeout', cb);
    return this;
  }

  override _read(): void {
    this.onRead?.();
  }

  /** @internal The transport's trailer section. */
  setTrailers(fields: readonly Field[]): void {
    this.rawTrailers = fields.flat();
    this.trailers = headersObject(fields) as Record<string, string | undefined>;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.complete) {
      this.aborted = true;
      this.emit('aborted');
    }
    // As node:http: an error reaches 'error' only when someone listens for it.
    cb(err && this.listenerCount('error') > 0 ? err : null);
  }
}

function distinct(raw: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = (raw[i] ?? '').toLowerCase();
    const list = out[n] ?? [];
    list.push(raw[i + 1] ?? '');
    out[n] = list;
  }
  return out;
}

/**
 * Two field names equal ASCII case-insensitively, both as given (they are tokens: ASCII);
 * no lower-cased copy of either.
 */
function sameNameAnyCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    const t = b.charCodeAt(i);
    if (c === t) continue;
    // only a letter matches its other case (0x20 apart)
    const lc = c | 0x20;
    if (lc !== (t | 0x20) || lc < 0x61 || lc > 0x7a) return false;
  }
  return true;
}

const NO_HEADERS: readonly HeaderValue[] = [];

let dateText = '';
let dateSecond = -1;

/** IMF-fixdate of now (RFC 9110 §5.6.7), made once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

type HeaderValue = number | string | readonly string[];

function fieldsOf(name: string, value: HeaderValue): Field[] {
  const values = Array.isArray(value) ? value.map(String) : [String(value)];
  return values.map((v) => [name, v] as Field);
}

function checkHeader(name: string, value: HeaderValue | undefined): void {
  if (!isToken(name))
    throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), {
      code: 'ERR_INVALID_HTTP_TOKEN',
    });
  if (value === undefined)
    throw Object.assign(new TypeError(`Invalid value "undefined" for header "${name}"`), {
      code: 'ERR_HTTP_INVALID_HEADER_VALUE',
    });
  // the usual one string of plain text: one scan, no list and no trimmed copy
  if (typeof value === 'string' && isFieldText(value)) return;
  for (const v of Array.isArray(value) ? value : [value])
    if (!isFieldValue(String(v).trim()) || /[\r\n\0]/.test(String(v)))
      throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), {
        code: 'ERR_INVALID_CHAR',
      });
}

/**
 * The length of a body given whole to `end(body)` with nothing written before: what lets a
 * message carry Content-Length instead of chunked framing (RFC 9112 §6.2, §6.3). Undefined
 * for chunk types whose length only the stream's encoding would tell.
 */
export function wholeBodyLength(chunk: unknown, encoding: unknown): number | undefined {
  if (chunk === undefined || chunk === null) return 0;
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, (encoding as BufferEncoding) ?? 'utf8');
  if (chunk instanceof Uint8Array) return chunk.length;
  return undefined;
}

/** A response as node:http's ServerResponse: a Writable of the body. */
export class ServerResponse extends Writable {
  statusCode = 200;
  statusMessage = '';
  sendDate = true;
  readonly req: IncomingMessage;
  /**
   * The headers set so far, flat — name as given (the last spelling kept), value, name,
   * value, ... in order — found by a case-insensitive scan, as a response has a handful.
   * A Map keyed by a lower-cased copy of each name, with an entry object per header, was
   * ~0.5 KB of garbage per response; one list made on the first setHeader is a fraction.
   */
  private headerList: HeaderValue[] | undefined;
  private readonly channel: ResponseChannel;
  /** writeHead() ran or the head went out: headers can no longer change. */
  private headSent = false;
  /** The head went to the channel. */
  private flushed = false;
  private wroteBody = false;
  private trailerFields: Field[] = [];
  private knownLength: number | undefined;

  constructor(req: IncomingMessage, channel: ResponseChannel) {
    super();
    this.req = req;
    this.channel = channel;
  }

  get socket(): Duplex {
    return this.req.socket;
  }

  get connection(): Duplex {
    return this.req.socket;
  }

  get headersSent(): boolean {
    return this.headSent;
  }

  get finished(): boolean {
    return this.writableEnded;
  }

  setHeader(name: string, value: HeaderValue): this {
    if (this.headSent)
      throw Object.assign(new Error('Cannot set headers after they are sent to the client'), {
        code: 'ERR_HTTP_HEADERS_SENT',
      });
    checkHeader(name, value);
    const list = this.headerList;
    if (list === undefined) {
      this.headerList = [name, value];
      return this;
    }
    const i = this.headerIndex(name);
    if (i < 0) list.push(name, value);
    else {
      list[i] = name;
      list[i + 1] = value;
    }
    return this;
  }

  /**
   * Where `name` is in the header list (field names are case-insensitive, RFC 9110 §5.1):
   * the index of the name, its value next; -1 when it is not set.
   */
  private headerIndex(name: string): number {
    const list = this.headerList;
    if (list === undefined) return -1;
    for (let i = 0; i < list.length; i += 2) if (sameNameAnyCase(list[i] as string, name)) return i;
    return -1;
  }

  appendHeader(name: string, value: HeaderValue): this {
    const i = this.headerIndex(name);
    if (i < 0) return this.setHeader(name, value);
    const list = this.headerList as HeaderValue[];
    const prev = list[i + 1] as HeaderValue;
    const values = [
      ...(Array.isArray(prev) ? prev : [String(prev)]),
      ...(Array.isArray(value) ? value : [String(value)]),
    ];
    return this.setHeader(list[i] as string, values);
  }

  getHeader(name: string): HeaderValue | undefined {
    const i = this.headerIndex(name);
    return i < 0 ? undefined : this.headerList?.[i + 1];
  }

  getHeaders(): OutgoingHttpHeaders {
    const o: OutgoingHttpHeaders = Object.create(null);
    const list = this.headerList ?? [];
    for (let i = 0; i < list.length; i += 2)
      o[(list[i] as string).toLowerCase()] = list[i + 1] as string | number | string[];
    return o;
  }

  getHeaderNames(): string[] {
    const names: string[] = [];
    const list = this.headerList ?? [];
    for (let i = 0; i < list.length; i += 2) names.push((list[i] as string).toLowerCase());
    return names;
  }

  hasHeader(name: string): boolean {
    return this.headerIndex(name) >= 0;
  }

  removeHeader(name: string): void {
    if (this.headSent)
      throw Object.assign(new Error('Cannot remove headers after they are sent to the client'), {
        code: 'ERR_HTTP_HEADERS_SENT',
      });
    const i = this.headerIndex(name);
    if (i >= 0) this.headerList?.splice(i, 2);
  }

  writeHead(
    statusCode: number,
    reason?: string | OutgoingHttpHeaders | readonly string[],
    headers?: OutgoingHttpHeaders | readonly string[],
  ): this {
    if (this.headSent)
      throw Object.assign(new Error('Cannot write headers after they are sent to the client'), {
        code: 'ERR_HTTP_HEADERS_SENT',
      });
    if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999)
      throw Object.assign(new RangeError(`Invalid status code: ${statusCode}`), {
        code: 'ERR_HTTP_INVALID_STATUS_CODE',
      });
    this.statusCode = statusCode;
    let h = headers;
    if (typeof reason === 'string') this.statusMessage = reason;
    else if (reason) h = reason;
    if (Array.isArray(h)) {
      for (let i = 0; i + 1 < h.length; i += 2) this.appendHeader(String(h[i]), String(h[i + 1]));
    } else if (h) {
      for (const [k, v] of Object.entries(h)) if (v !== undefined) this.setHeader(k, v as HeaderValue);
    }
    // Like node:http, the head waits for the first write or end() (one packet for small
    // responses); unlike it, end(body) after writeHead() still gets a Content-Length.
    this.headSent = true;
    return this;
  }

  /** Send the head now, without waiting for the body. */
  flushHeaders(): void {
    if (!this.flushed) this.sendHeadNow(false);
  }

  /** RFC 9110 §15.2.1: tell a client that sent Expect: 100-continue to go on. */
  writeContinue(cb?: () => void): void {
    this.channel.sendInformational(100, 'Continue', []);
    if (cb) process.nextTick(cb);
  }

  /** RFC 9110 §15.2.3. */
  writeProcessing(cb?: () => void): void {
    this.channel.sendInformational(102, 'Processing', []);
    if (cb) process.nextTick(cb);
  }

  /** RFC 8297: 103 Early Hints. */
  writeEarlyHints(hints: Record<string, string | string[]>, cb?: () => void): void {
    const fields: Field[] = [];
    for (const [k, v] of Object.entries(hints)) fields.push(...fieldsOf(k, v));
    this.channel.sendInformational(103, 'Early Hints', fields);
    if (cb) process.nextTick(cb);
  }

  addTrailers(headers: Record<string, string> | readonly [string, string][]): void {
    const entries = Array.isArray(headers) ? headers : Object.entries(headers);
    for (const [k, v] of entries) {
      checkHeader(k, v);
      this.trailerFields.push([k, String(v)]);
    }
  }

  setTimeout(_ms: number, cb?: () => void): this {
    if (cb) this.on('timeout', cb);
    return this;
  }

  // Writable's end() runs _write for the last chunk before _final: to send a Content-Length
  // for `res.end(body)`, the length is taken here, before the chunk goes in.
  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    if (typeof chunk === 'function') return this.end(undefined, undefined, chunk);
    if (typeof encoding === 'function') return this.end(chunk, undefined, encoding);
    if (!this.flushed && !this.wroteBody && !this.writableEnded) {
      this.knownLength = wholeBodyLength(chunk, encoding) ?? this.knownLength;
      // The usual `res.end(body)` with nothing written before: head and body go to the
      // channel now (one write on HTTP/1.1), and Writable only runs its end (_final,
      // 'finish'), as node:http's end() writes without a stream queue in between. 'finish'
      // still means "handed to the transport", as in node:http.
      const bytes =
        typeof chunk === 'string'
          ? encoding === undefined || encoding === 'utf8'
            ? Buffer.from(chunk, 'utf8')
            : undefined
          : chunk instanceof Uint8Array
            ? chunk
            : undefined;
      if (bytes !== undefined && this.writableLength === 0 && !this.writableCorked && !this.destroyed) {
        this.wroteBody = true;
        this.sendHeadNow();
        if (bytes.length > 0)
          this.channel.sendData(bytes, (err) => {
            if (err) this.destroy(err);
          });
        super.end(cb as () => void);
        return this;
      }
    }
    if (chunk === undefined || chunk === null) super.end(cb as () => void);
    else super.end(chunk, encoding as BufferEncoding, cb as () => void);
    return this;
  }

  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (chunk !== undefined && chunk !== null && !this.writableEnded) this.wroteBody = true;
    return super.write(chunk, encoding as BufferEncoding, cb as (e?: Error | null) => void);
  }

  private sendHeadNow(followed = true): void {
    this.headSent = true;
    this.flushed = true;
    const fields: Field[] = [];
    const list = this.headerList ?? NO_HEADERS;
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i] as string;
      const value = list[i + 1] as HeaderValue;
      if (typeof value === 'string') fields.push([name, value]);
      else if (typeof value === 'number') fields.push([name, String(value)]);
      else for (const v of value) fields.push([name, String(v)]);
    }
    const reason = this.statusMessage || STATUS_TEXT[this.statusCode] || 'Unknown';
    this.statusMessage = reason;
    if (this.sendDate && this.headerIndex('date') < 0) fields.push(['Date', httpDate()]);
    this.channel.sendHead(this.statusCode, reason, fields, this.knownLength, followed);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.flushed) this.sendHeadNow();
    this.channel.sendData(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.flushed) this.sendHeadNow();
    this.channel.sendEnd(this.trailerFields, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.writableFinished) this.channel.abort(err ?? undefined);
    cb(err && this.listenerCount('error') > 0 ? err : null);
  }
}
