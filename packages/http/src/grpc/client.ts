/**
 * A gRPC client on our HTTP/2 session API (PROTOCOL-HTTP2.md), one HTTP/2 stream per call,
 * many calls multiplexed on one connection:
 *
 *   const client = connectGrpc('http://127.0.0.1:50051');
 *   const reply = await client.unary(echo.Unary, { message: 'hi' }, { timeout: 1000 });
 *   for await (const m of client.serverStream(echo.ServerStream, { message: 'x', n: 3 })) ...
 *
 * A call fails with a GrpcError carrying the status. A deadline is sent as grpc-timeout;
 * when it passes the client resets the stream with CANCEL (PROTOCOL-HTTP2.md "Errors") and
 * the call ends DEADLINE_EXCEEDED. Cancelling (cancel() or the signal) resets it too and
 * the call ends CANCELLED.
 */
import type { Timer, TraceBus } from '@stepwire/wire';
import { ErrorCode } from '../h2/errors.ts';
import type { IncomingHeaders, OutgoingHeaders } from '../h2/message.ts';
import { type ConnectOptions, connect, type Http2Session, type Http2Stream } from '../h2/session.ts';
import {
  GRPC_ACCEPT_ENCODING,
  type GrpcEncoding,
  grpcCompress,
  grpcDecompress,
  isGrpcEncoding,
} from './compression.ts';
import { DEFAULT_MAX_MESSAGE_SIZE, encodeGrpcMessage, GrpcMessageReader } from './framing.ts';
import {
  decodeGrpcMessageText,
  encodeGrpcTimeout,
  type GrpcMetadata,
  grpcTimeoutFromMillis,
  metadataFromHeaders,
  metadataToHeaders,
} from './headers.ts';
import { MessageQueue } from './queue.ts';
import { type GrpcMethod, type GrpcMethodKind, grpcRawMethod } from './service.ts';
import {
  GrpcError,
  GrpcStatus,
  grpcStatusFromHttp,
  grpcStatusFromRstStream,
  grpcStatusName,
} from './status.ts';
import { type GrpcTracer, traceGrpc } from './trace.ts';

export interface GrpcCallOptions {
  /** Custom metadata sent with the request headers. */
  metadata?: GrpcMetadata;
  /** Milliseconds the call may take; sent as grpc-timeout. */
  timeout?: number;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
}

export interface GrpcClientOptions {
  maxReceiveMessageSize?: number;
  maxSendMessageSize?: number;
  /** Where calls, messages and statuses are traced (layer 'grpc'); connectGrpc's h2 trace by default. */
  trace?: TraceBus;
  /** Host name in trace events. */
  hostName?: string;
  /** Compress request messages with this grpc-encoding (identity by default). */
  compression?: GrpcEncoding;
  /** content-type of requests; "application/grpc+proto" by default. */
  contentType?: string;
}

/** The final outcome of a call as the trailers (or the transport) told it. */
export interface GrpcCallStatus {
  code: number;
  details: string;
  trailers: GrpcMetadata;
}

type Many<T> = Iterable<T> | AsyncIterable<T>;
type MethodOrPath<I, O, K extends GrpcMethodKind> = GrpcMethod<I, O, K> | string;

/** The response side of a call: an async iterable of messages, then its status. */
export class GrpcClientCall<O> implements AsyncIterable<O> {
  /** Response headers' metadata (empty for a Trailers-Only response). */
  readonly headers: Promise<GrpcMetadata>;
  /** Resolves with the status, OK or not, once the call has ended. */
  readonly status: Promise<GrpcCallStatus>;
  private readonly resolveHeaders: (m: GrpcMetadata) => void;
  private readonly resolveStatus: (s: GrpcCallStatus) => void;
  private readonly queue: MessageQueue<O>;
  private readonly reader: GrpcMessageReader;
  private outcome: GrpcCallStatus | undefined;
  private trailerStatus: GrpcCallStatus | undefined;
  private httpStatus = 0;
  private responseEncoding: GrpcEncoding = 'identity';
  private deadlineTimer: Timer | undefined;
  private localEnd: GrpcError | undefined;
  readonly stream: Http2Stream | undefined;

  constructor(
    readonly client: GrpcClient,
    private readonly method: GrpcMethod<unknown, O>,
    requests: Many<unknown>,
    options: GrpcCallOptions,
  ) {
    const head = deferred<GrpcMetadata>();
    this.headers = head.promise;
    this.resolveHeaders = head.resolve;
    const status = deferred<GrpcCallStatus>();
    this.status = status.promise;
    this.resolveStatus = status.resolve;
    this.reader = new GrpcMessageReader(client.maxReceiveMessageSize);
    const session = client.session;
    this.queue = new MessageQueue<O>(
      () => this.stream?.pause(),
      () => this.stream?.resume(),
    );
    if (options.timeout !== undefined && options.timeout <= 0) {
      this.end(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded before the call started'));
      return;
    }
    if (options.signal?.aborted) {
      this.end(new GrpcError(GrpcStatus.CANCELLED, 'cancelled before the call started'));
      return;
    }
    // PROTOCOL-HTTP2.md "Request-Headers": :method POST, :scheme, :path, :authority, te,
    // content-type, then grpc-timeout, grpc-accept-encoding, user-agent and custom metadata.
    let metadata: Record<string, string>;
    try {
      metadata = metadataToHeaders(options.metadata);
    } catch (e) {
      this.end(new GrpcError(GrpcStatus.INTERNAL, (e as Error).message));
      return;
    }
    const headers: OutgoingHeaders = {
      ':method': 'POST',
      ':scheme': session.scheme,
      ':path': method.path,
      te: 'trailers',
      'content-type': client.contentType,
      'grpc-accept-encoding': GRPC_ACCEPT_ENCODING,
      'user-agent': 'stepwire-grpc/0.1',
      ...metadata,
    };
    if (client.compression !== 'identity') headers['grpc-encoding'] = client.compression;
    if (options.timeout !== undefined)
      headers['grpc-timeout'] = encodeGrpcTimeout(grpcTimeoutFromMillis(options.timeout));
    let stream: Http2Stream;
    try {
      stream = session.request(headers, { endStream: false });
      traceGrpc(
        client,
        session.timers.now(),
        'out',
        () =>
          `call ${method.path} (stream ${stream.id})${headers['grpc-timeout'] ? ` grpc-timeout=${String(headers['grpc-timeout'])}` : ''}`,
      );
    } catch (e) {
      this.end(new GrpcError(GrpcStatus.UNAVAILABLE, `cannot start the call: ${(e as Error).message}`));
      return;
    }
    this.stream = stream;
    if (options.timeout !== undefined) {
      const timers = session.timers;
      this.deadlineTimer = timers.setTimer(timers.now() + options.timeout, () => {
        this.deadlineTimer = undefined;
        this.cancelWith(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'));
      });
    }
    options.signal?.addEventListener('abort', () => this.cancel(), { once: true });
    stream.on('error', () => {});
    stream.on('response', (h: IncomingHeaders, flags: { endStream: boolean }) =>
      this.onResponse(h, flags.endStream),
    );
    stream.on('trailers', (t: IncomingHeaders) => {
      this.trailerStatus = statusOf(t);
    });
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.onEnd());
    stream.on('close', () => this.onClose());
    // Workaround: a stream the server reset reaches us only as 'streamClosed' (the h2
    // session drops the reset event itself, code included); without trailers it is a reset.
    stream.on('streamClosed', () => {
      if (this.outcome || this.trailerStatus) return;
      this.end(new GrpcError(GrpcStatus.INTERNAL, 'stream reset by the server'));
      stream.destroy();
    });
    this.pump(requests).catch(() => stream.destroy());
  }

  /** Cancel the call: RST_STREAM CANCEL, and the call ends CANCELLED. */
  cancel(): void {
    this.cancelWith(new GrpcError(GrpcStatus.CANCELLED, 'call cancelled'));
  }

  private cancelWith(e: GrpcError): void {
    if (this.outcome) return;
    this.localEnd = e;
    this.end(e);
    if (this.stream && !this.stream.destroyed) this.stream.close(ErrorCode.CANCEL);
  }

  private async pump(requests: Many<unknown>): Promise<void> {
    const stream = this.stream;
    if (!stream) return;
    try {
      for await (const r of requests) {
        if (this.outcome || stream.destroyed) return;
        const data = this.method.serializeRequest(r);
        if (data.length > this.client.maxSendMessageSize)
          throw new GrpcError(
            GrpcStatus.RESOURCE_EXHAUSTED,
            `request message larger than max (${data.length} vs. ${this.client.maxSendMessageSize})`,
          );
        traceGrpc(
          this.client,
          this.client.session.timers.now(),
          'out',
          () => `message ${data.length} bytes on ${this.method.path}`,
        );
        await new Promise<void>((resolve, reject) =>
          stream.write(encodeGrpcMessage(this.frame(data)), (e) => (e ? reject(e) : resolve())),
        );
      }
      if (!stream.destroyed) stream.end();
    } catch (e) {
      if (this.outcome) return;
      this.cancelWith(
        e instanceof GrpcError
          ? e
          : new GrpcError(GrpcStatus.CANCELLED, `request stream failed: ${(e as Error).message}`),
      );
    }
  }

  /** A message as sent: compressed with the client's encoding, if any. */
  private frame(data: Uint8Array): { compressed: boolean; data: Uint8Array } {
    const enc = this.client.compression;
    return enc === 'identity'
      ? { compressed: false, data }
      : { compressed: true, data: grpcCompress(enc, data) };
  }

  private onResponse(h: IncomingHeaders, endStream: boolean): void {
    this.httpStatus = Number(h[':status']);
    if (endStream) {
      // Trailers-Only: the status is in these headers.
      this.trailerStatus = statusOf(h);
      this.resolveHeaders({});
      return;
    }
    this.resolveHeaders(metadataFromHeaders(h));
    const enc = h['grpc-encoding'] ?? 'identity';
    if (isGrpcEncoding(enc)) this.responseEncoding = enc;
    else
      this.cancelWith(
        new GrpcError(GrpcStatus.INTERNAL, `response grpc-encoding ${String(enc)} is not supported`),
      );
    const ct = String(h['content-type'] ?? '');
    if (this.httpStatus !== 200)
      this.cancelWith(new GrpcError(grpcStatusFromHttp(this.httpStatus), `HTTP status ${this.httpStatus}`));
    else if (!ct.startsWith('application/grpc'))
      this.cancelWith(new GrpcError(GrpcStatus.UNKNOWN, `response content-type '${ct}' is not gRPC`));
  }

  private onData(chunk: Buffer): void {
    if (this.outcome) return;
    try {
      for (const m of this.reader.push(chunk)) {
        const data = grpcDecompress(
          this.responseEncoding,
          m.compressed,
          m.data,
          this.client.maxReceiveMessageSize,
        );
        let v: O;
        try {
          v = this.method.deserializeResponse(data);
        } catch (e) {
          throw new GrpcError(GrpcStatus.INTERNAL, `response does not parse: ${(e as Error).message}`);
        }
        traceGrpc(
          this.client,
          this.client.session.timers.now(),
          'in',
          () => `message ${data.length} bytes on ${this.method.path}`,
        );
        this.queue.push(v);
      }
    } catch (e) {
      this.cancelWith(e as GrpcError);
    }
  }

  private onEnd(): void {
    if (this.outcome) return;
    try {
      this.reader.finish();
    } catch (e) {
      this.end(e as GrpcError);
      return;
    }
    const s = this.trailerStatus;
    if (s) this.end(s.code === GrpcStatus.OK ? undefined : new GrpcError(s.code, s.details, s.trailers), s);
    else if (this.httpStatus !== 200 && this.httpStatus !== 0)
      this.end(new GrpcError(grpcStatusFromHttp(this.httpStatus), `HTTP status ${this.httpStatus}`));
    else this.end(new GrpcError(GrpcStatus.INTERNAL, 'stream ended without grpc-status'));
    // Our request side may still be open (the server answered early): stop it.
    if (this.stream && !this.stream.writableFinished && !this.stream.destroyed)
      this.stream.close(ErrorCode.CANCEL);
  }

  private onClose(): void {
    if (this.outcome) return;
    const rst = this.stream?.rstCode;
    if (this.trailerStatus) this.onEnd();
    else if (rst !== undefined)
      this.end(
        new GrpcError(grpcStatusFromRstStream(rst), `stream reset by the server (HTTP/2 error ${rst})`),
      );
    else this.end(new GrpcError(GrpcStatus.UNAVAILABLE, 'connection closed before the call ended'));
  }

  private end(error: GrpcError | undefined, status?: GrpcCallStatus): void {
    if (this.outcome) return;
    this.deadlineTimer?.cancel();
    this.deadlineTimer = undefined;
    this.outcome = status ?? {
      code: error?.code ?? GrpcStatus.OK,
      details: error?.details ?? '',
      trailers: error?.trailers ?? {},
    };
    this.resolveHeaders({});
    const o = this.outcome;
    traceGrpc(
      this.client,
      this.client.session.timers.now(),
      this.localEnd ? 'local' : 'in',
      () => `status ${grpcStatusName(o.code)}${o.details ? ` "${o.details}"` : ''} on ${this.method.path}`,
      () => ({ path: this.method.path, code: o.code, details: o.details }),
    );
    this.resolveStatus(this.outcome);
    this.queue.end(error);
  }

  /** True when the client ended the call itself (deadline or cancel). */
  get endedLocally(): boolean {
    return this.localEnd !== undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<O> {
    return this.queue[Symbol.asyncIterator]();
  }

  /** Exactly one response message (unary and client-streaming calls). */
  async response(): Promise<O> {
    let first: { v: O } | undefined;
    for await (const m of this) {
      if (first) {
        this.cancelWith(
          new GrpcError(GrpcStatus.INTERNAL, 'more than one response message for a unary call'),
        );
        continue;
      }
      first = { v: m };
    }
    if (!first) throw new GrpcError(GrpcStatus.INTERNAL, 'no response message for a unary call');
    return first.v;
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve: (v: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function statusOf(h: IncomingHeaders): GrpcCallStatus | undefined {
  const raw = h['grpc-status'];
  if (raw === undefined) return undefined;
  const code = /^[0-9]+$/.test(String(raw)) ? Number(raw) : GrpcStatus.UNKNOWN;
  const msg = h['grpc-message'];
  return {
    code,
    details: msg === undefined ? '' : decodeGrpcMessageText(String(msg)),
    trailers: metadataFromHeaders(h),
  };
}

/** A gRPC client over one HTTP/2 session (our h2 over any Duplex). */
export class GrpcClient implements GrpcTracer {
  readonly trace: TraceBus | undefined;
  readonly host: string;
  readonly maxReceiveMessageSize: number;
  readonly maxSendMessageSize: number;
  readonly contentType: string;
  readonly compression: GrpcEncoding;

  constructor(
    readonly session: Http2Session,
    options: GrpcClientOptions = {},
  ) {
    this.maxReceiveMessageSize = options.maxReceiveMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.maxSendMessageSize = options.maxSendMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.contentType = options.contentType ?? 'application/grpc+proto';
    this.compression = options.compression ?? 'identity';
    this.trace = options.trace;
    this.host = options.hostName ?? 'client';
    // A session-level failure ends every call UNAVAILABLE; it must not crash the process.
    session.on('error', () => {});
  }

  private resolve<I, O, K extends GrpcMethodKind>(m: MethodOrPath<I, O, K>, kind: K): GrpcMethod<I, O, K> {
    return typeof m === 'string' ? (grpcRawMethod(m, kind) as unknown as GrpcMethod<I, O, K>) : m;
  }

  /** The generic call: any kind, requests as an iterable, responses as the call's iterable. */
  call<I, O>(method: GrpcMethod<I, O>, requests: Many<I>, options: GrpcCallOptions = {}): GrpcClientCall<O> {
    return new GrpcClientCall<O>(this, method as GrpcMethod<unknown, O>, requests as Many<unknown>, options);
  }

  unary<I, O>(method: GrpcMethod<I, O, 'unary'>, request: I, options?: GrpcCallOptions): Promise<O>;
  unary(path: string, request: Uint8Array, options?: GrpcCallOptions): Promise<Uint8Array>;
  unary<I, O>(method: MethodOrPath<I, O, 'unary'>, request: I, options: GrpcCallOptions = {}): Promise<O> {
    return this.call(this.resolve(method, 'unary'), [request], options).response();
  }

  serverStream<I, O>(
    method: GrpcMethod<I, O, 'server_streaming'>,
    request: I,
    options?: GrpcCallOptions,
  ): GrpcClientCall<O>;
  serverStream(path: string, request: Uint8Array, options?: GrpcCallOptions): GrpcClientCall<Uint8Array>;
  serverStream<I, O>(
    method: MethodOrPath<I, O, 'server_streaming'>,
    request: I,
    options: GrpcCallOptions = {},
  ): GrpcClientCall<O> {
    return this.call(this.resolve(method, 'server_streaming'), [request], options);
  }

  clientStream<I, O>(
    method: GrpcMethod<I, O, 'client_streaming'>,
    requests: Many<I>,
    options?: GrpcCallOptions,
  ): Promise<O>;
  clientStream(path: string, requests: Many<Uint8Array>, options?: GrpcCallOptions): Promise<Uint8Array>;
  clientStream<I, O>(
    method: MethodOrPath<I, O, 'client_streaming'>,
    requests: Many<I>,
    options: GrpcCallOptions = {},
  ): Promise<O> {
    return this.call(this.resolve(method, 'client_streaming'), requests, options).response();
  }

  bidi<I, O>(
    method: GrpcMethod<I, O, 'bidi_streaming'>,
    requests: Many<I>,
    options?: GrpcCallOptions,
  ): GrpcClientCall<O>;
  bidi(path: string, requests: Many<Uint8Array>, options?: GrpcCallOptions): GrpcClientCall<Uint8Array>;
  bidi<I, O>(
    method: MethodOrPath<I, O, 'bidi_streaming'>,
    requests: Many<I>,
    options: GrpcCallOptions = {},
  ): GrpcClientCall<O> {
    return this.call(this.resolve(method, 'bidi_streaming'), requests, options);
  }

  /** Graceful close: GOAWAY, in-flight calls finish. */
  close(cb?: () => void): void {
    this.session.close(cb);
  }
}

/** A client on a new HTTP/2 connection to `authority` (h2c prior knowledge, or createConnection's transport). */
export function connectGrpc(
  authority: string | URL,
  options: ConnectOptions & GrpcClientOptions = {},
): GrpcClient {
  return new GrpcClient(connect(authority, options), options);
}
