import { EventEmitter } from 'node:events';
import { formatIp, tryParseIp } from '@stepwire/ip';
import type { TcpConnectionOptions } from './connection/index.ts';
import type { TcpListener, TcpListenerStats } from './endpoint/listener.ts';
import { codeError, type TcpSystemError } from './errors.ts';
import { type TcpAddressInfo, TcpSocket } from './socket.ts';
import type { TcpServerHost } from './types.ts';

export interface TcpServerOptions {
  /** Keep the writable side open after the peer's FIN (net's allowHalfOpen). Default false. */
  allowHalfOpen?: boolean;
  /** Hand sockets over paused (net's pauseOnConnect). */
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** SYN cookies when the SYN queue is full (RFC 4987 §3.6). Default true. */
  synCookies?: boolean;
  /** Accept TCP Fast Open (RFC 7413). Default false. */
  fastOpen?: boolean;
  /** TcpConnection options for accepted connections (buffers, congestion control, ...). */
  connection?: Partial<TcpConnectionOptions>;
}

export interface TcpListenArgs {
  port?: number;
  host?: string;
  backlog?: number;
  ipv6Only?: boolean;
}

type ServerEvents = {
  listening: [];
  connection: [socket: TcpSocket];
  close: [];
  error: [err: Error];
  drop: [
    data: {
      localAddress: string;
      localPort: number;
      localFamily: 'IPv4' | 'IPv6';
      remoteAddress: string;
      remotePort: number;
      remoteFamily: 'IPv4' | 'IPv6';
    },
  ];
};

/**
 * A listening TCP server shaped like net.Server: listen(port, host?, backlog?, cb?),
 * 'listening', 'connection', 'close' (after close() once every connection has ended),
 * 'error' (EADDRINUSE, EADDRNOTAVAIL), address(), close(cb), getConnections(cb),
 * maxConnections ('drop' for connections refused by it).
 *
 * Host '::' (the default) listens on both families, as Node does without ipv6Only.
 *
 * Extensions for watching the queues: `queues` (the listener's SYN and accept queues and
 * their counters) and pauseAccepting()/resumeAccepting(), which stop taking connections
 * out of the accept queue, the way a busy application does.
 */
export class TcpServer extends EventEmitter<ServerEvents> {
  maxConnections: number | undefined;
  private listener: TcpListener | undefined;
  private readonly sockets = new Set<TcpSocket>();
  private acceptPaused = false;
  private closing = false;

  /** @internal Use Tcp.createServer. */
  constructor(
    private readonly tcp: TcpServerHost,
    private readonly options: TcpServerOptions,
    onConnection?: (s: TcpSocket) => void,
  ) {
    super();
    if (onConnection) this.on('connection', onConnection);
  }

  get listening(): boolean {
    return this.listener !== undefined;
  }

  listen(port?: number, host?: string, backlog?: number, cb?: () => void): this;
  listen(port: number, host: string, cb?: () => void): this;
  listen(port: number, cb?: () => void): this;
  listen(options: TcpListenArgs, cb?: () => void): this;
  listen(cb?: () => void): this;
  listen(...args: unknown[]): this {
    const cbAt = args.findIndex((a) => typeof a === 'function');
    const cb = cbAt >= 0 ? (args[cbAt] as () => void) : undefined;
    const rest = cbAt >= 0 ? args.slice(0, cbAt) : args;
    let a: TcpListenArgs;
    if (typeof rest[0] === 'object' && rest[0] !== null) a = rest[0] as TcpListenArgs;
    else
      a = {
        port: rest[0] as number | undefined,
        host: rest[1] as string | undefined,
        backlog: rest[2] as number | undefined,
      };
    const port = a.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw codeError(
        RangeError,
        'ERR_SOCKET_BAD_PORT',
        `options.port should be >= 0 and < 65536. Received ${String(port)}.`,
      );
    }
    if (this.listener)
      throw codeError(
        Error,
        'ERR_SERVER_ALREADY_LISTEN',
        'Listen method has been called more than once without closing.',
      );
    if (cb) this.once('listening', cb);
    let host = a.host ?? '::';
    if (host === 'localhost') host = '127.0.0.1';
    const parsed = tryParseIp(host);
    if (!parsed)
      throw codeError(
        TypeError,
        'ERR_INVALID_ARG_VALUE',
        `The argument 'host' must be an IP address. Received '${host}'`,
      );
    host = formatIp(parsed);
    const o = this.options;
    const connection: Partial<TcpConnectionOptions> = { ...o.connection };
    if (o.noDelay !== undefined) connection.noDelay = o.noDelay;
    if (o.keepAlive) connection.keepalive = o.keepAliveInitialDelay ? { idle: o.keepAliveInitialDelay } : {};
    const r = this.tcp.listen({
      address: host,
      port,
      backlog: a.backlog ?? 511,
      ipv6Only: a.ipv6Only,
      synCookies: o.synCookies,
      fastOpen: o.fastOpen,
      connection,
    });
    if (!('acceptQueue' in r)) {
      const err: TcpSystemError = r;
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    this.closing = false;
    this.listener = r;
    r.onAcceptable = () => this.drainAcceptQueue();
    process.nextTick(() => {
      if (this.listener === r) this.emit('listening');
    });
    return this;
  }

  address(): TcpAddressInfo | null {
    const l = this.listener;
    if (!l) return null;
    return { address: l.address, family: l.family, port: l.port };
  }

  /** The listener's queues and counters (a stepwire extension). */
  get queues(): TcpListenerStats | undefined {
    return this.listener?.stats;
  }

  /** Stop taking connections from the accept queue (it fills, then overflows, as on Linux). */
  pauseAccepting(): this {
    this.acceptPaused = true;
    return this;
  }

  resumeAccepting(): this {
    this.acceptPaused = false;
    this.drainAcceptQueue();
    return this;
  }

  private drainAcceptQueue(): void {
    const l = this.listener;
    if (!l) return;
    while (!this.acceptPaused && this.listener === l) {
      const tcb = this.tcp.accept(l);
      if (!tcb) break;
      const socket = new TcpSocket(this.tcp, { allowHalfOpen: this.options.allowHalfOpen ?? false });
      // A dual-stack listener reports its IPv4 peers as ::ffff:a.b.c.d, as node:net does.
      const v4Mapped = l.address === '::' && !l.ipv6Only && tcb.version === 4;
      if (this.maxConnections !== undefined && this.sockets.size >= this.maxConnections) {
        // net.Server closes connections beyond maxConnections right away.
        socket.attach(tcb, v4Mapped);
        this.emit('drop', {
          localAddress: socket.localAddress ?? tcb.local.addr,
          localPort: tcb.local.port,
          localFamily: socket.localFamily ?? 'IPv4',
          remoteAddress: socket.remoteAddress ?? tcb.remote.addr,
          remotePort: tcb.remote.port,
          remoteFamily: socket.remoteFamily ?? 'IPv4',
        });
        socket.destroy();
        continue;
      }
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.maybeEmitClose();
      });
      socket.attach(tcb, v4Mapped);
      if (this.options.pauseOnConnect) socket.pause();
      this.emit('connection', socket);
    }
  }

  /** Stop listening; 'close' follows once every accepted connection has ended. */
  close(cb?: (err?: Error) => void): this {
    if (cb) {
      if (!this.listener) {
        process.nextTick(() => cb(codeError(Error, 'ERR_SERVER_NOT_RUNNING', 'Server is not running.')));
      } else {
        this.once('close', () => cb());
      }
    }
    const l = this.listener;
    if (l) {
      this.listener = undefined;
      this.closing = true;
      this.tcp.unlisten(l);
      this.maybeEmitClose();
    }
    return this;
  }

  private maybeEmitClose(): void {
    if (!this.closing || this.sockets.size > 0) return;
    this.closing = false;
    process.nextTick(() => this.emit('close'));
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    const n = this.sockets.size;
    process.nextTick(() => cb(null, n));
    return this;
  }

  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
