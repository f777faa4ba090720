import type { Duplex } from 'node:stream';
import { type Field, listTokens, type ResponseHead, sameName, writeResponseHead } from '../codec.ts';
import type { Http1Connection } from '../connection.ts';
import type { ResponseChannel } from '../messages.ts';
import type { HttpServer } from './server.ts';

const HTTP11 = { major: 1, minor: 1 };
const EMPTY = new Uint8Array(0);

const NO_TOKENS: readonly string[] = [];
const CONNECTION_CLOSE: Field = ['Connection', 'close'];
const CONNECTION_KEEP_ALIVE: Field = ['Connection', 'keep-alive'];
let keepAliveCache: { ms: number; field: Field } | undefined;

/** `Keep-Alive: timeout=N` (the same for every response of a server): made once. */
function keepAliveField(ms: number): Field {
  if (keepAliveCache?.ms !== ms)
    keepAliveCache = { ms, field: ['Keep-Alive', `timeout=${Math.floor(ms / 1000)}`] };
  return keepAliveCache.field;
}

function staleError(): Error {
  return Object.assign(new Error('the response is over: its exchange ended'), {
    code: 'ERR_STREAM_WRITE_AFTER_END',
  });
}

function flushPending(ch: H1ResponseChannel): void {
  ch.flushHead();
}

/** One response's way to the wire over an HTTP/1.1 connection (see ResponseChannel). */
export class H1ResponseChannel implements ResponseChannel {
  /** The head waits for the first body bytes (or the next tick): a small response leaves in one write, as node:http's does. */
  private pendingHead: ResponseHead | undefined;
  /** Its size in bytes. */
  private pendingSize = 0;
  /**
   * The generation of this exchange: the connection's completed cycles when it began. Once
   * the connection has moved on (the cycle ended), whatever still holds this response — a
   * handler that kept `res` — is refused: its interim responses, data or abort must not land
   * in a later request's exchange on the same connection.
   */
  private readonly cycle: number;

  constructor(
    private readonly conn: Http1Connection,
    private readonly socket: Duplex,
    private readonly server: HttpServer,
    private readonly id: number,
    private readonly owner: { readonly isClosed: boolean },
    private readonly method: string,
    private readonly requestMinor: number,
  ) {
    this.cycle = conn.cycles;
  }

  /** This exchange is over and the connection carries (or waits for) another. */
  private get stale(): boolean {
    return this.conn.cycles !== this.cycle;
  }

  /** A call through a response whose exchange is over: counted and traced, nothing sent. */
  private refuseStale(what: string): void {
    this.server.counters.inc('stale-response-calls');
    if (this.server.tracing)
      this.server.trace(
        this.id,
        'drop',
        `${what} on a response whose exchange is over: ignored`,
        undefined,
        undefined,
        'stale-response-calls',
      );
  }

  sendHead(
    status: number,
    reason: string,
    fields: Field[],
    knownLength: number | undefined,
    followed = false,
  ): void {
    if (this.stale) {
      this.refuseStale('head');
      return;
    }
    const conn = this.conn;
    const s = this.server;
    const bodiless = this.method === 'HEAD' || status === 204 || status === 304;
    // One look at the application's fields for the framing and connection fields we may add.
    let framed = false;
    let hasConnection = false;
    let hasKeepAlive = false;
    for (const [n] of fields) {
      const l = n.length;
      if (l === 14 || l === 17) {
        if (sameName(n, 'content-length') || sameName(n, 'transfer-encoding')) framed = true;
      } else if (l === 10) {
        // 'connection' and 'keep-alive' are both ten letters
        if (sameName(n, 'connection')) hasConnection = true;
        else if (sameName(n, 'keep-alive')) hasKeepAlive = true;
      }
    }
    if (!framed && status !== 204 && status !== 304) {
      if (knownLength !== undefined) fields.push(['Content-Length', String(knownLength)]);
      else if (bodiless) {
        // a HEAD response that does not know the GET's length says nothing about it
      } else if (this.requestMinor >= 1) fields.push(['Transfer-Encoding', 'chunked']);
      else conn.state.noKeepAlive(); // HTTP/1.0: the body ends with the connection
    }
    // a server that is closing ends each connection after the response in progress
    if (s.isClosing) conn.state.noKeepAlive();
    const connTokens = hasConnection ? listTokens(fields, 'connection') : NO_TOKENS;
    if (!connTokens.includes('close')) {
      if (!conn.keepAlive) fields.push(CONNECTION_CLOSE);
      else if (!connTokens.includes('keep-alive')) {
        fields.push(CONNECTION_KEEP_ALIVE);
        const ka = conn.timeouts.keepAliveTimeout;
        if (ka > 0 && !hasKeepAlive) fields.push(keepAliveField(ka));
      }
    }
    try {
      // checked now; write() writes it with the first body bytes into one buffer
      const head: ResponseHead = { version: HTTP11, status, reason, fields };
      this.pendingSize = conn.sendResponseSized(head);
      this.pendingHead = head;
    } catch (err) {
      this.localError(err as Error);
      return;
    }
    // flushHeaders(): the head goes out on the next tick unless body bytes join it first
    if (!followed) process.nextTick(flushPending, this);
    (s.hot.responses ??= s.counters.counter('responses')).value++;
    if (s.tracing)
      s.trace(
        this.id,
        'out',
        `respond ${status} ${reason}`,
        { status, fields: fields.length },
        'RFC 9112 §4',
      );
  }

  sendInformational(status: number, reason: string, fields: Field[]): void {
    if (this.stale) {
      this.refuseStale(`${status} interim response`);
      return;
    }
    if (this.conn.ourState !== 'SEND_RESPONSE') return;
    let bytes: Uint8Array;
    try {
      bytes = this.conn.send({ type: 'informational', head: { version: HTTP11, status, reason, fields } });
    } catch (err) {
      this.localError(err as Error);
      return;
    }
    this.write(bytes);
    if (this.server.tracing)
      this.server.trace(this.id, 'out', `respond ${status} ${reason}`, { status }, 'RFC 9110 §15.2');
  }

  sendData(chunk: Uint8Array, done: (err?: Error | null) => void): void {
    if (this.owner.isClosed) {
      done();
      return;
    }
    if (this.stale) {
      this.refuseStale('data');
      done(staleError());
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = this.conn.send({ type: 'data', data: chunk });
    } catch (err) {
      this.localError(err as Error);
      done(err as Error);
      return;
    }
    this.write(bytes, done);
  }

  sendEnd(trailers: Field[], done: (err?: Error | null) => void): void {
    if (this.owner.isClosed) {
      done();
      return;
    }
    if (this.stale) {
      this.refuseStale('end');
      done(staleError());
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = this.conn.send({ type: 'end', trailers }, this.server.timers.now());
    } catch (err) {
      this.localError(err as Error);
      done(err as Error);
      return;
    }
    this.write(bytes, done);
  }

  abort(): void {
    // a response destroyed after its exchange is over must not cut the connection from
    // under the exchange that now uses it
    if (this.stale) {
      this.refuseStale('abort');
      return;
    }
    if (!this.owner.isClosed) this.socket.destroy();
  }

  /**
   * The application broke the framing (more bytes than its Content-Length, a response after
   * the response, ...): what the client has seen can no longer be trusted to end where it
   * should, so the connection goes. Counted and traced; the server carries on.
   */
  private localError(err: Error): void {
    this.server.counters.inc('local-protocol-errors');
    if (this.server.tracing)
      this.server.trace(
        this.id,
        'drop',
        `application error: ${err.message}`,
        undefined,
        'RFC 9112 §6.3',
        'local-protocol-errors',
      );
    this.pendingHead = undefined;
    this.socket.destroy();
  }

  flushHead(): void {
    if (this.pendingHead !== undefined) this.write(EMPTY);
  }

  private write(data: Uint8Array, done?: (err?: Error | null) => void): void {
    let bytes = data;
    const head = this.pendingHead;
    if (head !== undefined) {
      this.pendingHead = undefined;
      // head and body in one buffer, one socket write (a small response is one segment)
      const n = this.pendingSize;
      const joined = Buffer.allocUnsafe(n + data.length);
      writeResponseHead(head, joined, 0);
      if (data.length > 0) joined.set(data, n);
      bytes = joined;
    }
    const socket = this.socket;
    if (bytes.length === 0 || socket.destroyed || !socket.writable) {
      done?.();
      return;
    }
    if (socket.write(bytes) || !done) done?.();
    else socket.once('drain', () => done());
  }
}
