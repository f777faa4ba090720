import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectOptions as TlsConnectOptions, connect as tlsConnect } from '@stepwire/tls';
import { type Clock, RealClock, type Timer, TimerGroup, type TraceBus } from '@stepwire/wire';
import { CloseCode, WebSocketConnection, type WebSocketEvent, type WebSocketStats } from './connection.ts';
import {
  checkDeflateResponse,
  offerDeflate,
  PERMESSAGE_DEFLATE,
  PerMessageDeflate,
  type PerMessageDeflateOptions,
} from './deflate.ts';
import {
  checkServerHandshake,
  decodeHandshakeResponse,
  encodeClientHandshake,
  formatExtensions,
  generateKey,
  type HandshakeResponse,
  type HeaderList,
} from './handshake.ts';

/** A WebSocket failure: `closeCode` is the code sent (or 1006 when none could be). */
export class WebSocketError extends Error {
  override readonly name = 'WebSocketError';
  constructor(
    message: string,
    readonly closeCode: number,
    /** Set for a refused opening handshake: the server's status. */
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

export interface WebSocketDriverOptions {
  /** How long (ms) to wait for the peer's Close after ours before dropping the transport. Default 30 s, like ws. */
  closeTimeout?: number;
  clock?: Clock;
  /** Frames and closing-handshake steps as trace events (layer 'websocket'). */
  trace?: TraceBus;
  /** Host name in trace events. */
  traceHost?: string;
}

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * A WebSocket over any Duplex, shaped like the ws package's: 'open', 'message' (data,
 * isBinary), 'ping', 'pong', 'close' (code, reason), 'error'; send, ping, pong, close,
 * terminate, readyState. The protocol is the sans-I/O WebSocketConnection; this class only
 * moves bytes and arms the close timer.
 */
export class WebSocket extends EventEmitter {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;

  /** The subprotocol the server selected ('' when none). */
  protocol = '';
  /** The agreed extensions, as the Sec-WebSocket-Extensions value ('' when none). */
  extensions = '';
  /** The opening handshake's HTTP response, on the client. */
  response?: HandshakeResponse;
  private core: WebSocketConnection | undefined;
  private transport: Duplex | undefined;
  private closed = false;
  private closeInfo = { code: CloseCode.Abnormal as number, reason: '' };
  private closeTimer: Timer | undefined;
  private readonly timers: TimerGroup;
  private readonly closeTimeout: number;
  /** Set when close() is called while CONNECTING: abort the handshake. */
  private abortConnect = false;
  /** Set by connectWebSocket while the opening handshake runs. */
  onAbortHandshake: (() => void) | undefined;
  /** The URL a client connected to ('' on the server side). */
  url = '';
  /** How binary messages are delivered to 'message' listeners, as in ws. */
  binaryType: 'nodebuffer' | 'arraybuffer' = 'nodebuffer';
  private readonly trace: TraceBus | undefined;
  private readonly traceHost: string;

  constructor(o: WebSocketDriverOptions = {}) {
    super();
    this.trace = o.trace;
    this.traceHost = o.traceHost ?? 'websocket';
    this.timers = new TimerGroup(o.clock ?? new RealClock());
    this.closeTimeout = o.closeTimeout ?? 30_000;
  }

  get readyState(): 0 | 1 | 2 | 3 {
    if (this.closed) return 3;
    if (!this.core) return this.abortConnect ? 2 : 0;
    const s = this.core.state;
    return s === 'OPEN' ? 1 : s === 'CLOSING' ? 2 : this.transport && !this.transport.destroyed ? 2 : 3;
  }

  /** Bytes written but not yet handed to the kernel (or the next layer). */
  get bufferedAmount(): number {
    return this.transport?.writableLength ?? 0;
  }

  get stats(): (WebSocketStats & { timersArmed: number }) | undefined {
    return this.core ? { ...this.core.stats, timersArmed: this.timers.armed } : undefined;
  }

  /**
   * Start speaking WebSocket on `transport` with the agreed parameters; `head` holds bytes
   * that arrived after the handshake. Used by the server helper and the client.
   */
  attach(transport: Duplex, core: WebSocketConnection, head?: Uint8Array): void {
    this.transport = transport;
    this.core = core;
    transport.on('data', (b: Buffer) => this.onData(b));
    transport.on('end', () => {
      this.apply(core.transportClosed());
      transport.end();
    });
    transport.on('error', (e) => {
      this.emit('error', e);
      this.apply(core.transportClosed());
      transport.destroy();
    });
    transport.on('close', () => {
      this.apply(core.transportClosed());
      this.finish();
    });
    // Nagle would hold small frames back behind an unacknowledged one; ws disables it too.
    (transport as Partial<net.Socket>).setNoDelay?.(true);
    this.emit('open');
    if (head && head.length > 0) this.onData(head);
  }

  private onData(b: Uint8Array): void {
    const core = this.core;
    if (!core) return;
    const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    // One message at a time, so handlers run (and may answer) before later frames are judged.
    this.apply(core.receive(bytes, { untilMessage: true }));
    while (core.bufferedBytes > 0 && core.state !== 'CLOSED' && !this.closed) {
      const before = core.bufferedBytes;
      this.apply(core.receive(new Uint8Array(0), { untilMessage: true }));
      // A frame still incomplete: wait for more bytes.
      if (core.bufferedBytes === before) break;
    }
  }

  private apply(events: WebSocketEvent[]): void {
    const core = this.core;
    const t = this.transport;
    if (!core || !t) return;
    this.flush();
    for (const e of events) {
      switch (e.type) {
        case 'message':
          this.emit(
            'message',
            e.binary && this.binaryType === 'arraybuffer'
              ? e.data.buffer.slice(e.data.byteOffset, e.data.byteOffset + e.data.byteLength)
              : toBuffer(e.data),
            e.binary,
          );
          break;
        case 'ping':
          this.emit('ping', toBuffer(e.data));
          break;
        case 'pong':
          this.emit('pong', toBuffer(e.data));
          break;
        case 'error':
          this.emit('error', new WebSocketError(e.reason, e.code));
          break;
        case 'close':
          this.closeInfo = { code: e.code, reason: e.reason };
          if (this.trace?.enabled) {
            this.trace.emit({
              t: this.timers.now(),
              host: this.traceHost,
              layer: 'websocket',
              dir: 'local',
              summary: `closed ${e.code}${e.reason ? ` ${e.reason}` : ''}${e.wasClean ? '' : ' (not clean)'}`,
              state: { from: 'OPEN', to: 'CLOSED' },
              rfc: e.wasClean ? 'RFC 6455 §7.1.3' : e.code === 1006 ? 'RFC 6455 §7.1.5' : 'RFC 6455 §7.1.7',
            });
          }
          break;
        case 'frame':
          this.traceFrame(e);
          break;
      }
    }
    if (core.closeTransport && !t.writableEnded) {
      // RFC 6455 §7.1.1: once both Close frames have crossed (or we failed), the TCP connection closes.
      t.end();
      this.armCloseTimer();
    }
  }

  private traceFrame(e: Extract<WebSocketEvent, { type: 'frame' }>): void {
    if (!this.trace?.enabled) return;
    this.trace.emit({
      t: this.timers.now(),
      host: this.traceHost,
      layer: 'websocket',
      dir: e.dir,
      summary: e.summary,
      rfc: 'RFC 6455 §5.2',
    });
  }

  /** Trace the frames that send/ping/pong/close produced. */
  private traceSent(): void {
    for (const e of this.core?.takeEvents() ?? []) if (e.type === 'frame') this.traceFrame(e);
  }

  private flush(): void {
    const t = this.transport;
    if (!t || !this.core || t.writableEnded || t.destroyed) return;
    const out = this.core.takeOutput();
    if (out.length === 1) t.write(out[0]);
    else if (out.length > 1) {
      // One write per batch: fewer syscalls and TCP segments than a write per header/payload.
      t.write(Buffer.concat(out));
    }
  }

  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = this.timers.setTimer(this.timers.now() + this.closeTimeout, () => {
      this.closeTimer = undefined;
      this.transport?.destroy();
    });
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeTimer?.cancel();
    this.closeTimer = undefined;
    this.emit('close', this.closeInfo.code, Buffer.from(this.closeInfo.reason));
  }

  /** Send a message; strings go as text, bytes as binary unless `binary: false`. */
  send(
    data: string | Uint8Array | ArrayBuffer,
    options?: { binary?: boolean; fin?: boolean; compress?: boolean } | ((err?: Error) => void),
    cb?: (err?: Error) => void,
  ): void {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    }
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    if (!this.core || this.readyState !== 1) {
      const err = new Error(`WebSocket is not open: readyState ${this.readyState}`);
      if (cb) queueMicrotask(() => cb?.(err));
      else if (!this.core) throw err;
      return;
    }
    this.core.send(bytes, options ?? {});
    this.flushWithCallback(cb);
  }

  private flushWithCallback(cb?: (err?: Error) => void): void {
    this.traceSent();
    const t = this.transport;
    const out = this.core?.takeOutput() ?? [];
    if (!t || t.writableEnded) {
      cb?.(new Error('WebSocket transport is closed'));
      return;
    }
    t.write(out.length === 1 ? (out[0] as Uint8Array) : Buffer.concat(out), (e) => cb?.(e ?? undefined));
  }

  ping(data?: string | Uint8Array, _mask?: boolean, cb?: (err?: Error) => void): void {
    if (!this.core || this.readyState !== 1) throw new Error('WebSocket is not open');
    this.core.ping(typeof data === 'string' ? Buffer.from(data) : data);
    this.flushWithCallback(cb);
  }

  pong(data?: string | Uint8Array, _mask?: boolean, cb?: (err?: Error) => void): void {
    if (!this.core || this.readyState !== 1) throw new Error('WebSocket is not open');
    this.core.pong(typeof data === 'string' ? Buffer.from(data) : data);
    this.flushWithCallback(cb);
  }

  /** Start the closing handshake (RFC 6455 §7.1.2); 'close' fires once the transport is closed. */
  close(code?: number, reason?: string): void {
    if (this.closed) return;
    if (!this.core) {
      // Closed while CONNECTING: abandon the opening handshake (ws and WHATWG do the same).
      this.abortConnect = true;
      this.onAbortHandshake?.();
      return;
    }
    if (this.core.state !== 'OPEN') return;
    this.core.close(code, reason ?? '');
    this.traceSent();
    this.flush();
    this.armCloseTimer();
  }

  /** Drop the transport at once (ws's terminate): 'close' with 1006. */
  terminate(): void {
    if (this.core) this.core.transportClosed();
    this.transport?.destroy();
    // Asynchronously, as after a transport close, so 'error' listeners can await 'close'.
    if (!this.transport) setImmediate(() => this.finish());
  }
}

// --- The client ----------------------------------------------------------------------

export interface ConnectWebSocketOptions extends WebSocketDriverOptions {
  /** ws:// or wss:// URL; host, port and path are taken from it. */
  url?: string | URL;
  host?: string;
  port?: number;
  path?: string;
  /** Subprotocols to offer (Sec-WebSocket-Protocol). */
  protocols?: readonly string[];
  origin?: string;
  headers?: HeaderList | Record<string, string>;
  /** Offer permessage-deflate (RFC 7692); true for defaults. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  maxPayload?: number;
  /** A connected byte stream to speak on (our TCP socket, a TLS socket, a pipe...). */
  socket?: Duplex;
  /** Opens the byte stream; default node:net.connect (through the loopback safety guard). */
  connect?: (host: string, port: number) => Duplex;
  /** For wss:// without `socket`: options for @stepwire/tls over the connected stream. */
  tls?: Omit<TlsConnectOptions, 'socket'>;
  /** Give up on the opening handshake after this many ms (default 30 s). */
  handshakeTimeout?: number;
  /** Masking keys (tests pass a seeded source). */
  maskingKey?: () => Uint8Array;
  /** Random bytes for Sec-WebSocket-Key. */
  randomBytes?: (n: number) => Uint8Array;
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return b;
}

/**
 * Open a WebSocket: connect (or use the given stream), send the opening handshake
 * (RFC 6455 §4.1), check the answer, then speak frames. Returns at once in CONNECTING;
 * listen for 'open' or 'error'.
 */
export function connectWebSocket(
  target: string | URL | ConnectWebSocketOptions,
  more: ConnectWebSocketOptions = {},
): WebSocket {
  const o: ConnectWebSocketOptions =
    typeof target === 'string' || target instanceof URL ? { ...more, url: target } : { ...target, ...more };
  const url = o.url ? new URL(o.url) : undefined;
  const secure = url ? url.protocol === 'wss:' || url.protocol === 'https:' : !!o.tls;
  if (url && !['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) {
    throw new SyntaxError(`not a WebSocket URL: ${url.href}`);
  }
  const host = o.host ?? url?.hostname.replace(/^\[|\]$/g, '') ?? 'localhost';
  const port = o.port ?? (url?.port ? Number(url.port) : secure ? 443 : 80);
  const path = o.path ?? (url ? `${url.pathname || '/'}${url.search}` : '/');
  const defaultPort = secure ? 443 : 80;
  const hostHeader = `${host.includes(':') ? `[${host}]` : host}${port === defaultPort ? '' : `:${port}`}`;
  const ws = new WebSocket(o);
  ws.url = url?.href ?? `${secure ? 'wss' : 'ws'}://${hostHeader}${path}`;
  const deflateOptions = o.perMessageDeflate === true ? {} : o.perMessageDeflate || undefined;
  const key = generateKey((o.randomBytes ?? randomBytes)(16));
  const headers: HeaderList = Array.isArray(o.headers)
    ? o.headers
    : Object.entries((o.headers as Record<string, string> | undefined) ?? {});
  const request = encodeClientHandshake({
    host: hostHeader,
    path,
    key,
    protocols: o.protocols ?? [],
    ...(o.origin !== undefined ? { origin: o.origin } : {}),
    ...(deflateOptions ? { extensions: formatExtensions([offerDeflate(deflateOptions)]) } : {}),
    headers,
  });

  let raw = o.socket ?? (o.connect ? o.connect(host, port) : net.connect({ host, port }));
  if (!o.socket && secure) raw = tlsConnect({ ...(o.tls ?? {}), host, socket: raw });
  const socket = raw;
  const timers = new TimerGroup(o.clock ?? new RealClock());
  let received = new Uint8Array(0);
  let done = false;
  const fail = (message: string, status?: number) => {
    if (done) return;
    done = true;
    cleanup();
    socket.destroy();
    ws.emit('error', new WebSocketError(message, CloseCode.Abnormal, status));
    ws.terminate();
  };
  const timer = timers.setTimer(timers.now() + (o.handshakeTimeout ?? 30_000), () =>
    fail('opening handshake timed out'),
  );
  const onData = (b: Buffer) => {
    received = Buffer.concat([received, b]);
    let head: HandshakeResponse | undefined;
    try {
      head = decodeHandshakeResponse(received);
    } catch (e) {
      fail(`bad handshake response: ${(e as Error).message}`);
      return;
    }
    if (!head) return;
    const check = checkServerHandshake(head.status, head.headers, {
      key,
      protocols: o.protocols ?? [],
      extensionNames: deflateOptions ? [PERMESSAGE_DEFLATE] : [],
    });
    ws.response = head;
    if (!check.ok) {
      if (head.status !== 101) ws.emit('unexpected-response', head);
      fail(`opening handshake refused: ${check.reason}`, head.status);
      return;
    }
    let deflate: PerMessageDeflate | undefined;
    const agreed = check.extensions.find((e) => e.name === PERMESSAGE_DEFLATE);
    if (agreed && deflateOptions) {
      const params = checkDeflateResponse(agreed, deflateOptions);
      if (typeof params === 'string') {
        fail(`permessage-deflate: ${params}`);
        return;
      }
      deflate = new PerMessageDeflate(params, 'client', deflateOptions.threshold, deflateOptions.level);
      ws.extensions = formatExtensions([agreed]);
    }
    done = true;
    cleanup();
    ws.onAbortHandshake = undefined;
    ws.protocol = check.protocol ?? '';
    const core = new WebSocketConnection({
      role: 'client',
      traceFrames: !!o.trace,
      deflate,
      ...(o.maxPayload !== undefined ? { maxPayload: o.maxPayload } : {}),
      ...(o.maskingKey ? { maskingKey: o.maskingKey } : {}),
    });
    ws.emit('upgrade', head);
    if (ws.readyState === 2) {
      socket.destroy();
      ws.terminate();
      return;
    }
    ws.attach(socket, core, received.subarray(head.length));
  };
  const onEnd = () => fail('connection closed during the opening handshake');
  const onError = (e: Error) => fail(e.message);
  const cleanup = () => {
    timer.cancel();
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off('error', onError);
  };
  ws.onAbortHandshake = () => {
    if (done) return;
    done = true;
    cleanup();
    socket.destroy();
    // Later, as ws does, so the caller of close() can still attach its listeners.
    setImmediate(() => {
      ws.emit(
        'error',
        new WebSocketError('WebSocket was closed before the connection was established', CloseCode.Abnormal),
      );
      ws.terminate();
    });
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  socket.on('error', onError);
  socket.write(request);
  return ws;
}
