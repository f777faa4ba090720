/**
 * A gRPC server on our HTTP/2 session API (PROTOCOL-HTTP2.md). Each call is one HTTP/2
 * stream: request headers, length-prefixed messages, then the response headers, messages
 * and trailers carrying grpc-status (or one HEADERS frame with all of it, "Trailers-Only").
 *
 *   const server = new GrpcServer();
 *   server.addService(echoDefinition, { Unary: (req) => req, ... });
 *   net.createServer((socket) => server.handle(socket)).listen(50051);
 *
 * Handlers are plain functions: unary and client-streaming ones return the response,
 * server-streaming and bidirectional ones return an (async) iterable of responses. The
 * request stream of client-streaming and bidi calls is an async iterable.
 */
import type { Duplex } from 'node:stream';
import type { Timer, TraceBus } from '@stepwire/wire';
import { ErrorCode } from '../h2/errors.ts';
import type { IncomingHeaders, OutgoingHeaders } from '../h2/message.ts';
import {
  createServer,
  type Http2Server,
  type Http2Session,
  type Http2Stream,
  type SessionOptions,
} from '../h2/session.ts';
import { GRPC_ACCEPT_ENCODING, type GrpcEncoding, grpcDecompress, isGrpcEncoding } from './compression.ts';
import { DEFAULT_MAX_MESSAGE_SIZE, encodeGrpcMessage, GrpcMessageReader } from './framing.ts';
import {
  decodeGrpcTimeout,
  encodeGrpcMessageText,
  type GrpcMetadata,
  grpcTimeoutToMillis,
  metadataFromHeaders,
  metadataToHeaders,
} from './headers.ts';
import { MessageQueue } from './queue.ts';
import type { AnyGrpcMethod, GrpcMethod, GrpcMethodKind, GrpcServiceDefinition } from './service.ts';
import { GrpcError, GrpcStatus, grpcStatusName } from './status.ts';
import { type GrpcTracer, traceGrpc } from './trace.ts';

/** What a handler knows about its call. */
export interface GrpcServerCall {
  readonly path: string;
  /** The client's custom metadata. */
  readonly metadata: GrpcMetadata;
  /** Milliseconds left when the call arrived (from grpc-timeout), or undefined. */
  readonly timeout: number | undefined;
  /** Aborted when the call ends early: deadline passed, client cancelled, connection lost. */
  readonly signal: AbortSignal;
  /** Response headers' metadata; sent with the first message (or with the status). */
  readonly responseMetadata: GrpcMetadata;
  /** Trailers' metadata, sent with grpc-status. */
  readonly trailers: GrpcMetadata;
  /** Send the response headers now (before any message). */
  sendMetadata(): void;
}

type Awaitable<T> = T | Promise<T>;
type Many<T> = Iterable<T> | AsyncIterable<T>;

export type GrpcHandler<M> =
  M extends GrpcMethod<infer I, infer O, infer K>
    ? K extends 'unary'
      ? (request: I, call: GrpcServerCall) => Awaitable<O>
      : K extends 'server_streaming'
        ? (request: I, call: GrpcServerCall) => Many<O>
        : K extends 'client_streaming'
          ? (requests: AsyncIterable<I>, call: GrpcServerCall) => Awaitable<O>
          : (requests: AsyncIterable<I>, call: GrpcServerCall) => Many<O>
    : never;

export type GrpcImplementation<D extends GrpcServiceDefinition> = { [K in keyof D]: GrpcHandler<D[K]> };

export interface GrpcServerOptions {
  /** Largest request message accepted; larger ones end the call RESOURCE_EXHAUSTED. */
  maxReceiveMessageSize?: number;
  /** Largest response message sent; a larger one ends the call RESOURCE_EXHAUSTED. */
  maxSendMessageSize?: number;
  /** Options of the HTTP/2 sessions `handle()` makes. */
  http2?: SessionOptions;
  /** Where calls, messages and statuses are traced (layer 'grpc'); the h2 trace by default. */
  trace?: TraceBus;
  /** Host name in trace events. */
  hostName?: string;
}

export interface GrpcServerStats {
  calls: number;
  /** Calls by the status they ended with. */
  statuses: Record<number, number>;
  /** Streams answered with HTTP 415 / 405 because they were not gRPC requests. */
  rejected: number;
}

interface Registered {
  method: AnyGrpcMethod;
  // biome-ignore lint/suspicious/noExplicitAny: handlers of differing message types share a table.
  handler: (...args: any[]) => any;
}

/**
 * Whether an HTTP/2 request is a gRPC call (POST with content-type application/grpc,
 * +proto, +json, ...): a server that mounts gRPC beside other routes dispatches on it.
 */
export function isGrpcRequest(headers: IncomingHeaders): boolean {
  return (
    headers[':method'] === 'POST' && /^application\/grpc($|[+;])/.test(String(headers['content-type'] ?? ''))
  );
}

export class GrpcServer implements GrpcTracer {
  readonly http2: Http2Server;
  readonly trace: TraceBus | undefined;
  readonly host: string;
  readonly stats: GrpcServerStats = { calls: 0, statuses: {}, rejected: 0 };
  private readonly methods = new Map<string, Registered>();
  private readonly maxReceive: number;
  private readonly maxSend: number;

  constructor(readonly options: GrpcServerOptions = {}) {
    this.maxReceive = options.maxReceiveMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.maxSend = options.maxSendMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.trace = options.trace ?? options.http2?.trace;
    this.host = options.hostName ?? options.http2?.hostName ?? 'server';
    this.http2 = createServer(options.http2 ?? {}, (stream, headers) => this.handleStream(stream, headers));
  }

  addService<D extends GrpcServiceDefinition>(definition: D, implementation: GrpcImplementation<D>): this {
    for (const [name, method] of Object.entries(definition)) {
      const handler = (implementation as Record<string, Registered['handler'] | undefined>)[name];
      if (!handler) continue; // left out: calls to it are UNIMPLEMENTED
      if (this.methods.has(method.path)) throw new Error(`method ${method.path} added twice`);
      this.methods.set(method.path, { method, handler });
    }
    return this;
  }

  /** Serve HTTP/2 (h2c prior knowledge, or after TLS with ALPN h2) on this transport. */
  handle(socket: Duplex): Http2Session {
    return this.http2.handle(socket);
  }

  /** Graceful close of every session: in-flight calls finish. */
  close(cb?: () => void): void {
    this.http2.close(cb);
  }

  /**
   * Answers one HTTP/2 stream; usable from any h2 server's 'stream' event to mount gRPC
   * beside other routes (see isGrpcRequest). A request that is not gRPC is answered 415 (or
   * 405 for a method other than POST) and false returned.
   */
  handleStream(stream: Http2Stream, headers: IncomingHeaders): boolean {
    // PROTOCOL-HTTP2.md "Content-Type": anything not application/grpc[+...|;...] SHOULD get HTTP 415.
    if (!isGrpcRequest(headers)) {
      this.stats.rejected++;
      stream.on('error', () => {});
      stream.respond(
        {
          ':status': headers[':method'] !== 'POST' ? 405 : 415,
          'content-type': 'text/plain',
        },
        { endStream: false },
      );
      stream.end('not a gRPC request\n');
      return false;
    }
    // run() answers every failure with a status; anything that escapes it only ends the stream.
    new ServerCall(this, stream, headers, this.methods, this.maxReceive, this.maxSend)
      .run()
      .catch(() => stream.destroy());
    return true;
  }

  /** @internal */
  count(status: number): void {
    this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1;
  }
}

class ServerCall implements GrpcServerCall {
  readonly path: string;
  readonly metadata: GrpcMetadata;
  readonly responseMetadata: GrpcMetadata = {};
  readonly trailers: GrpcMetadata = {};
  timeout: number | undefined;
  private readonly abort = new AbortController();
  private headersSent = false;
  private finished = false;
  private encoding: GrpcEncoding = 'identity';
  private deadlineTimer: Timer | undefined;
  private readonly contentType: string;

  constructor(
    private readonly server: GrpcServer,
    private readonly stream: Http2Stream,
    headers: IncomingHeaders,
    private readonly methods: Map<string, Registered>,
    private readonly maxReceive: number,
    private readonly maxSend: number,
  ) {
    this.path = String(headers[':path'] ?? '');
    this.metadata = metadataFromHeaders(headers);
    this.contentType = String(headers['content-type']);
    this.headers = headers;
    server.stats.calls++;
    traceGrpc(
      server,
      stream.session.timers.now(),
      'in',
      () =>
        `call ${this.path} (stream ${stream.id})${headers['grpc-timeout'] ? ` grpc-timeout=${String(headers['grpc-timeout'])}` : ''}`,
      () => ({ path: this.path, streamId: stream.id, metadata: this.metadata }),
    );
    // A reset or a lost connection: the handler learns it through its signal.
    stream.on('error', () => {});
    // Workaround: the h2 session emits 'streamClosed' for a stream the peer reset but not
    // the reset itself (its streamClosed event comes first and unmaps the stream), so the
    // Duplex is never destroyed; a stream closed before we finished is taken as cancelled.
    stream.on('streamClosed', () => {
      if (!this.finished) stream.destroy();
    });
    stream.on('close', () => {
      if (!this.finished) {
        this.finished = true;
        this.deadlineTimer?.cancel();
        this.server.count(GrpcStatus.CANCELLED);
        this.abort.abort(
          new GrpcError(GrpcStatus.CANCELLED, 'call cancelled (client reset or connection lost)'),
        );
      }
    });
  }
  private readonly headers: IncomingHeaders;

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  sendMetadata(): void {
    if (this.headersSent || this.finished) return;
    this.headersSent = true;
    // PROTOCOL-HTTP2.md "Response-Headers": :status 200, content-type, then custom metadata.
    this.stream.respond(
      {
        ':status': 200,
        'content-type': this.contentType.startsWith('application/grpc')
          ? this.contentType
          : 'application/grpc',
        'grpc-accept-encoding': GRPC_ACCEPT_ENCODING,
        ...metadataToHeaders(this.responseMetadata, false),
      },
      { waitForTrailers: true },
    );
  }

  async run(): Promise<void> {
    try {
      const reg = this.methods.get(this.path);
      if (!reg) throw new GrpcError(GrpcStatus.UNIMPLEMENTED, `unknown method ${this.path}`);
      const encoding = this.headers['grpc-encoding'] ?? 'identity';
      // compression.md: an encoding we cannot read is UNIMPLEMENTED, with our
      // grpc-accept-encoding in the answer so the client can pick another.
      if (!isGrpcEncoding(encoding))
        throw new GrpcError(GrpcStatus.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported`);
      this.encoding = encoding;
      const t = this.headers['grpc-timeout'];
      if (t !== undefined) {
        try {
          this.timeout = grpcTimeoutToMillis(decodeGrpcTimeout(String(t)));
        } catch (e) {
          throw new GrpcError(GrpcStatus.INTERNAL, `malformed grpc-timeout: ${(e as Error).message}`);
        }
        const timers = this.stream.session.timers;
        this.deadlineTimer = timers.setTimer(timers.now() + this.timeout, () => {
          this.deadlineTimer = undefined;
          this.finish(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'));
        });
      }
      const requests = this.requests(reg.method);
      const kind: GrpcMethodKind = reg.method.kind;
      if (kind === 'unary' || kind === 'server_streaming') {
        const request = await this.single(requests);
        const result = reg.handler(request, this);
        if (kind === 'unary') await this.send(reg.method, [await result]);
        else await this.send(reg.method, result);
      } else {
        const result = reg.handler(requests, this);
        if (kind === 'client_streaming') await this.send(reg.method, [await result]);
        else await this.send(reg.method, result);
      }
      this.finish(undefined);
    } catch (e) {
      this.finish(
        e instanceof GrpcError
          ? e
          : new GrpcError(GrpcStatus.UNKNOWN, e instanceof Error ? e.message : String(e)),
      );
    }
  }

  /** Unary and server-streaming calls carry exactly one request message. */
  private async single<T>(requests: AsyncIterable<T>): Promise<T> {
    let first: { v: T } | undefined;
    for await (const r of requests) {
      if (first)
        throw new GrpcError(GrpcStatus.INTERNAL, 'more than one request message for a unary request');
      first = { v: r };
    }
    if (!first) throw new GrpcError(GrpcStatus.INTERNAL, 'no request message for a unary request');
    return first.v;
  }

  private requests<I>(method: GrpcMethod<I, unknown>): AsyncIterable<I> {
    const reader = new GrpcMessageReader(this.maxReceive);
    const stream = this.stream;
    const queue = new MessageQueue<I>(
      () => stream.pause(),
      () => stream.resume(),
    );
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const m of reader.push(chunk)) {
          const data = grpcDecompress(this.encoding, m.compressed, m.data, this.maxReceive);
          let value: I;
          try {
            value = method.deserializeRequest(data);
          } catch (e) {
            throw new GrpcError(GrpcStatus.INTERNAL, `request does not parse: ${(e as Error).message}`);
          }
          traceGrpc(
            this.server,
            stream.session.timers.now(),
            'in',
            () => `message ${data.length} bytes${m.compressed ? ` (${this.encoding})` : ''} on ${this.path}`,
          );
          queue.push(value);
        }
      } catch (e) {
        queue.end(e);
        this.finish(e as GrpcError);
      }
    });
    stream.on('end', () => {
      try {
        reader.finish();
        queue.end();
      } catch (e) {
        queue.end(e);
      }
    });
    stream.on('close', () => queue.end(new GrpcError(GrpcStatus.CANCELLED, 'call ended')));
    return queue;
  }

  private async send<O>(method: GrpcMethod<unknown, O>, responses: Many<O>): Promise<void> {
    for await (const r of responses) {
      if (this.finished) return;
      const data = method.serializeResponse(r);
      if (data.length > this.maxSend)
        throw new GrpcError(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `response message larger than max (${data.length} vs. ${this.maxSend})`,
        );
      this.sendMetadata();
      traceGrpc(
        this.server,
        this.stream.session.timers.now(),
        'out',
        () => `message ${data.length} bytes on ${this.path}`,
      );
      await new Promise<void>((resolve, reject) =>
        this.stream.write(encodeGrpcMessage({ compressed: false, data }), (e) => (e ? reject(e) : resolve())),
      );
    }
  }

  /**
   * RFC 9113 §8.1: a server that answered before the request ended may reset the stream
   * with NO_ERROR so the client stops sending; called once the status is queued.
   */
  private stopRequest(): void {
    if (!this.stream.readableEnded && !this.stream.destroyed) this.stream.close(ErrorCode.NO_ERROR);
  }

  /** Ends the call with a status (undefined: OK), once. */
  private finish(error: GrpcError | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.deadlineTimer?.cancel();
    this.deadlineTimer = undefined;
    const code = error?.code ?? GrpcStatus.OK;
    this.server.count(code);
    traceGrpc(
      this.server,
      this.stream.session.timers.now(),
      'out',
      () =>
        `status ${grpcStatusName(code)}${error?.details ? ` "${error.details}"` : ''} on ${this.path}${this.headersSent ? '' : ' (Trailers-Only)'}`,
      () => ({ path: this.path, code, details: error?.details ?? '' }),
    );
    if (error) this.abort.abort(error);
    const status: OutgoingHeaders = {
      ...metadataToHeaders({ ...this.trailers, ...(error?.trailers ?? {}) }, false),
      'grpc-status': String(code),
    };
    if (error?.details) status['grpc-message'] = encodeGrpcMessageText(error.details);
    const stream = this.stream;
    if (stream.destroyed) return;
    if (!this.headersSent) {
      // PROTOCOL-HTTP2.md "Trailers-Only": one HEADERS frame with :status, content-type and the status.
      this.headersSent = true;
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-accept-encoding': GRPC_ACCEPT_ENCODING,
          ...metadataToHeaders(this.responseMetadata, false),
          ...status,
        },
        { endStream: true },
      );
    } else if (error) {
      // Ending early (deadline, error mid-stream): trailers now, behind the DATA already queued.
      stream.sendTrailers(status);
      stream.end();
    } else {
      stream.once('wantTrailers', () => {
        stream.sendTrailers(status);
        this.stopRequest();
      });
      stream.end();
      return;
    }
    setImmediate(() => this.stopRequest());
  }
}
