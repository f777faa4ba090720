import { Duplex } from 'node:stream';
import { formatIp, tryParseIp } from '@stepwire/ip';
import type { Timer } from '@stepwire/wire';
import { writeCopy } from './buffers.ts';
import { type TcpConnectionOptions, type TcpEvent, USER_SEND_STATES } from './connection/index.ts';
import { codeError, systemError, type TcpSystemError } from './errors.ts';
import type { Tcb, TcbOwner, TcpSocketHost } from './types.ts';

export interface TcpConnectOptions {
  port: number;
  /** An IP literal or 'localhost'. Default 'localhost'. */
  host?: string;
  /** 4 or 6: which loopback 'localhost' means. Default 4. */
  family?: 4 | 6;
  localAddress?: string;
  localPort?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  /** Milliseconds of idle before the first keep-alive probe. */
  keepAliveInitialDelay?: number;
  /**
   * TCP Fast Open (RFC 7413): with a cookie cached for the server, what is written before
   * the SYN leaves rides in it; without one, the SYN asks for a cookie.
   */
  fastOpen?: boolean;
  /** Idle timeout in ms, as socket.setTimeout. */
  timeout?: number;
  allowHalfOpen?: boolean;
  /** TcpConnection options for this connection (buffers, congestion control, ...). */
  tcp?: Partial<TcpConnectionOptions>;
}

export interface TcpSocketOptions {
  allowHalfOpen?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

export interface TcpAddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** The most read from the connection per push; large enough to amortise, small enough to stream. */
const READ_CHUNK = 256 * 1024;
/** Bytes buffered in the connection that make a read happen at once rather than on the next tick. */
const READ_BATCH = 16 * 1024;

type Pending = { chunk: Uint8Array; cb: (err?: Error | null) => void; urgent?: boolean };

/**
 * A TCP connection as a `stream.Duplex`, shaped like `net.Socket`:
 *
 * - 'connect' and 'ready' when the handshake completes (client sockets), 'data', 'end' when
 *   the peer's FIN has been read, 'finish' after end(), 'close' when the socket is done,
 *   'error' with Node-shaped errors (code ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ...,
 *   errno, syscall, address and port for connect errors), 'timeout' after setTimeout's idle.
 * - Backpressure both ways: write() returns false once the connection holds more than its
 *   send high-water mark unacknowledged (and 'drain' follows when it falls to the low-water
 *   mark); a paused or full readable stops reading from the connection, whose receive
 *   buffer then fills and whose advertised window closes (RFC 9293 §3.8.6.2.2).
 * - end() half-closes (a FIN, RFC 9293 §3.10.4); with allowHalfOpen false (net's default)
 *   the socket ends its side when the peer's FIN is read.
 * - destroy() closes with a FIN, or aborts with a RST when received data is unread or on
 *   an error (as Linux's close(): RFC 2525 §2.17), like net.Socket over the kernel.
 *
 * Written buffers are copied (the connection keeps bytes until acknowledged and a caller may
 * reuse its buffer after the write callback, as with net).
 */
export class TcpSocket extends Duplex implements TcbOwner {
  connecting = false;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  remoteFamily: 'IPv4' | 'IPv6' | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  localFamily: 'IPv4' | 'IPv6' | undefined;
  bytesRead = 0;
  /** Bytes handed to the connection. */
  private written = 0;
  /** Idle timeout in ms (0: none), as net.Socket.timeout. */
  timeout: number | undefined;

  /** @internal */ tcb: Tcb | undefined;
  private wantRead = false;
  private pulling = false;
  private pullScheduled = false;
  private pushedEnd = false;
  private finQueued = false;
  private writeWaiting: ((err?: Error | null) => void) | undefined;
  private beforeConnect: Pending[] = [];
  private finalWaiting: ((err?: Error | null) => void) | undefined;
  private noDelay: boolean | undefined;
  private keepAlive: { enable: boolean; delay: number } | undefined;
  private idleTimer: Timer | undefined;
  private lastActivity = 0;
  private resetOnDestroy = false;
  /** Chunks given to writeUrgent, recognised when the stream hands them to _write. */
  private readonly urgentChunks = new WeakSet<Uint8Array>();

  /** @internal Use Tcp.connect, or a TcpServer's 'connection'. */
  constructor(
    private readonly tcp: TcpSocketHost,
    opts: TcpSocketOptions = {},
  ) {
    super({
      allowHalfOpen: opts.allowHalfOpen ?? false,
      // 'close' is emitted by _destroy with net's hadError argument.
      emitClose: false,
      autoDestroy: true,
      decodeStrings: true,
      ...(opts.readableHighWaterMark !== undefined
        ? { readableHighWaterMark: opts.readableHighWaterMark }
        : {}),
      ...(opts.writableHighWaterMark !== undefined
        ? { writableHighWaterMark: opts.writableHighWaterMark }
        : {}),
    });
  }

  /** Bytes written so far, those still buffered in the stream included (as net.Socket). */
  get bytesWritten(): number {
    return this.written + this.writableLength;
  }

  /** True until connected, as net.Socket.pending. */
  get pending(): boolean {
    return !this.tcb || this.connecting;
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The connection machine under this socket (for inspection: stats, state). */
  get connection() {
    return this.tcb?.conn;
  }

  // -------------------------------------------------------------------------------------
  // Connecting

  /** @internal Start an active open (Tcp.connect calls this). */
  connect(opts: TcpConnectOptions, onConnect?: () => void): this {
    const port = opts.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw codeError(
        RangeError,
        'ERR_SOCKET_BAD_PORT',
        `Port should be >= 0 and < 65536. Received ${String(port)}.`,
      );
    }
    if (this.connecting || this.tcb)
      throw codeError(Error, 'ERR_SOCKET_CONNECTING', 'Socket is already connecting');
    this.connecting = true;
    if (onConnect) this.once('connect', onConnect);
    if (opts.timeout) this.setTimeout(opts.timeout);
    if (opts.noDelay !== undefined) this.noDelay = opts.noDelay;
    if (opts.keepAlive) this.keepAlive = { enable: true, delay: opts.keepAliveInitialDelay ?? 0 };
    const host = opts.host ?? 'localhost';
    // As net.connect with an IP literal: the connection starts on the next tick, so that
    // listeners and writes made right after connect() are in place (and a Fast Open SYN can
    // carry what was written).
    process.nextTick(() => this.startConnect(host, port, opts));
    return this;
  }

  private startConnect(host: string, port: number, opts: TcpConnectOptions): void {
    if (this.destroyed) return;
    let addr: string;
    if (host === 'localhost') {
      addr = opts.family === 6 ? '::1' : '127.0.0.1';
    } else {
      const b = tryParseIp(host);
      if (!b) {
        // No resolver: any name but 'localhost' fails as getaddrinfo would.
        const err = systemError('getaddrinfo', 'ENOTFOUND', host);
        (err as TcpSystemError & { hostname: string }).hostname = host;
        this.destroy(err);
        return;
      }
      addr = formatIp(b);
    }
    this.remoteAddress = addr;
    this.remotePort = port;
    this.remoteFamily = addr.includes(':') ? 'IPv6' : 'IPv4';
    const connection: Partial<TcpConnectionOptions> = { ...opts.tcp };
    if (this.noDelay !== undefined) connection.noDelay = this.noDelay;
    if (this.keepAlive?.enable) {
      connection.keepalive = this.keepAlive.delay > 0 ? { idle: this.keepAlive.delay } : {};
    }
    const r = this.tcp.open(
      this,
      { addr, port },
      {
        localAddress: opts.localAddress,
        localPort: opts.localPort,
        connection,
        fastOpen: opts.fastOpen === true,
        takeSynData: () => this.takeBeforeConnect(),
      },
    );
    if (!('conn' in r)) {
      this.destroy(r);
      return;
    }
    this.tcb = r;
    this.setLocal();
  }

  /** Data written before the SYN left, for a Fast Open SYN; its callbacks complete now. */
  private takeBeforeConnect(): Uint8Array | undefined {
    if (this.beforeConnect.length === 0) return undefined;
    const pending = this.beforeConnect;
    this.beforeConnect = [];
    const data = pending.length === 1 ? pending[0]!.chunk : Buffer.concat(pending.map((p) => p.chunk));
    this.written += data.byteLength;
    process.nextTick(() => {
      for (const p of pending) p.cb();
    });
    return data;
  }

  private setLocal(v4Mapped = false): void {
    const t = this.tcb;
    if (!t) return;
    this.localAddress = v4Mapped ? `::ffff:${t.local.addr}` : t.local.addr;
    this.localPort = t.local.port;
    this.localFamily = v4Mapped || t.local.addr.includes(':') ? 'IPv6' : 'IPv4';
  }

  /**
   * @internal A server hands over an accepted connection. `v4Mapped`: an IPv4 peer of a
   * dual-stack listener on '::', whose addresses Node reports as IPv4-mapped IPv6
   * (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2), family 'IPv6', as an AF_INET6 socket sees them.
   */
  attach(tcb: Tcb, v4Mapped = false): void {
    this.tcb = tcb;
    tcb.owner = this;
    this.remoteAddress = v4Mapped ? `::ffff:${tcb.remote.addr}` : tcb.remote.addr;
    this.remotePort = tcb.remote.port;
    this.remoteFamily = v4Mapped || tcb.remote.addr.includes(':') ? 'IPv6' : 'IPv4';
    this.setLocal(v4Mapped);
    this.applyOptions();
    this.touch();
    // Whatever arrived while it sat in the accept queue (data, even a FIN) is there to read.
    if (tcb.closed && tcb.hardError) this.destroy(tcb.hardError);
    // Urgent data announced before there was a socket to hear it (RFC 9293 §3.8.5 MUST-32):
    // told once the 'connection' handler has had its chance to listen.
    const urgent = tcb.conn.urgentOffset;
    if (urgent !== undefined) {
      const mark = this.bytesRead + urgent;
      process.nextTick(() => this.emit('urgent', mark));
    }
  }

  private applyOptions(): void {
    const tcb = this.tcb;
    if (!tcb) return;
    if (this.noDelay !== undefined) tcb.conn.setNoDelay(this.noDelay);
    if (this.keepAlive) {
      const ka = this.keepAlive;
      tcb.conn.setKeepalive(
        ka.enable ? { idle: ka.delay > 0 ? ka.delay : 7_200_000, interval: 75_000, count: 9 } : false,
        this.tcp.now(),
      );
      this.tcp.arm(tcb);
    }
  }

  // -------------------------------------------------------------------------------------
  // Events from the connection

  /** @internal */
  onTcpEvent(e: TcpEvent, tcb: Tcb): void {
    switch (e.type) {
      case 'connected':
        if (this.connecting) {
          this.connecting = false;
          this.touch();
          this.flushBeforeConnect();
          this.emit('connect');
          this.emit('ready');
        }
        this.pull();
        break;
      case 'data-readable':
        // Enough for a worthwhile read: take it now and keep the window open; less waits
        // for the next tick, when more may have come.
        if (e.readable >= READ_BATCH) this.pull();
        else this.schedulePull();
        break;
      case 'peer-fin':
        this.schedulePull();
        break;
      case 'urgent':
        // RFC 9293 §3.8.5 MUST-32: the application hears of urgent data. The bytes stay in
        // the stream (inline, RFC 6093 §6); the argument is the stream offset just past the
        // last urgent byte, counted as bytesRead counts.
        this.emit('urgent', this.bytesRead + e.offset);
        break;
      case 'writable': {
        const cb = this.writeWaiting;
        this.writeWaiting = undefined;
        cb?.();
        break;
      }
      case 'error':
        this.destroy(this.errorFor(e.code, tcb));
        break;
      case 'closed':
        if (tcb.hardError) {
          this.destroy(tcb.hardError);
        } else if (!this.destroyed) {
          // A graceful end (both FINs): let any unread bytes and the EOF through first.
          this.pull();
        }
        break;
      default:
        break;
    }
  }

  private errorFor(code: 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT', tcb: Tcb): TcpSystemError {
    const addr = this.remoteAddress;
    const port = this.remotePort;
    if (this.connecting) {
      // A soft ICMP error explains a timeout better than the timeout (Linux: sk_err_soft).
      const c = code === 'ETIMEDOUT' && tcb.softError ? tcb.softError : code;
      return systemError('connect', c, addr, port);
    }
    if (code === 'ETIMEDOUT') return systemError('read', tcb.softError ?? 'ETIMEDOUT');
    // A reset after the peer's FIN was read answers what we wrote since: EPIPE on write.
    if (code === 'ECONNRESET' && this.pushedEnd) return systemError('write', 'EPIPE');
    return systemError('read', code);
  }

  // -------------------------------------------------------------------------------------
  // Readable side

  /**
   * Read on the next tick rather than per segment: segments that arrive together (a window's
   * worth on a fast path) become one read and one 'data' event, as a kernel socket hands
   * over what accumulated since the last read.
   */
  private schedulePull(): void {
    if (this.pullScheduled) return;
    this.pullScheduled = true;
    process.nextTick(this.pullTick);
  }

  private readonly pullTick = (): void => {
    this.pullScheduled = false;
    this.pull();
  };

  override _read(_size: number): void {
    this.wantRead = true;
    this.pull();
  }

  /** Move bytes from the connection into the stream while the stream wants them. */
  private pull(): void {
    if (this.pulling) return;
    const tcb = this.tcb;
    if (!tcb) return;
    this.pulling = true;
    try {
      const conn = tcb.conn;
      while (this.wantRead && !this.destroyed && this.tcb === tcb) {
        if (conn.readable > 0) {
          const now = this.tcp.now();
          const r = conn.read(now, READ_CHUNK);
          tcb.handle(r, now);
          const data = r.data;
          this.bytesRead += data.length;
          this.touch();
          if (!this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) this.wantRead = false;
        } else {
          if (!this.pushedEnd && (conn.readEnded || (tcb.closed && !tcb.hardError))) {
            this.pushedEnd = true;
            this.push(null);
          }
          break;
        }
      }
    } finally {
      this.pulling = false;
    }
  }

  // -------------------------------------------------------------------------------------
  // Writable side

  /**
   * Write `data` as urgent data (RFC 9293 §3.10.2 SEND with the URGENT flag, §3.8.5): in
   * order after what was written before, with the urgent pointer just past its last byte,
   * as the kernel's send(MSG_OOB) does. A kernel reader gets its last byte with
   * recv(MSG_OOB) (or inline with SO_OOBINLINE).
   */
  writeUrgent(data: Uint8Array | string, cb?: (err?: Error | null) => void): boolean {
    const chunk = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    this.urgentChunks.add(chunk);
    return cb ? this.write(chunk, cb) : this.write(chunk);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // A plain Uint8Array copy, not a Buffer: every segment is a view of it, and a Buffer's
    // subarray builds a Buffer through its species constructor, a cost paid per segment.
    // A large write's copy comes from a pool the send queue refills once it is acknowledged.
    this.send(writeCopy(chunk), cb, this.urgentChunks.has(chunk));
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    // An urgent chunk ends the urgent data: what follows it goes in a send of its own.
    let i = 0;
    while (i < chunks.length) {
      let j = i;
      while (j < chunks.length - 1 && !this.urgentChunks.has(chunks[j]!.chunk)) j++;
      const part = chunks.slice(i, j + 1).map((c) => c.chunk);
      const urgent = this.urgentChunks.has(chunks[j]!.chunk);
      const last = j === chunks.length - 1;
      this.send(Buffer.concat(part), last ? cb : () => {}, urgent);
      i = j + 1;
    }
  }

  /** `data` is ours (a copy). */
  private send(data: Uint8Array, cb: (err?: Error | null) => void, urgent = false): void {
    if (this.connecting || !this.tcb) {
      this.beforeConnect.push(urgent ? { chunk: data, cb, urgent } : { chunk: data, cb });
      return;
    }
    const tcb = this.tcb;
    if (tcb.closed || !USER_SEND_STATES.has(tcb.conn.state)) {
      cb(systemError('write', 'EPIPE'));
      return;
    }
    this.touch();
    this.written += data.byteLength;
    const now = this.tcp.now();
    tcb.handle(tcb.conn.send(data, now, urgent), now);
    // The connection sends 'writable' later exactly when it holds more than its high-water mark.
    if (tcb.conn.sendQueued > tcb.sendHighWater && !tcb.closed) this.writeWaiting = cb;
    else cb();
  }

  private flushBeforeConnect(): void {
    const pending = this.beforeConnect;
    this.beforeConnect = [];
    if (pending.length) {
      const join = (ps: Pending[]) =>
        ps.length === 1 ? ps[0]!.chunk : Buffer.concat(ps.map((p) => p.chunk));
      const done = (err?: Error | null) => {
        for (const p of pending) p.cb(err);
      };
      // Urgent data written while connecting: SND.UP goes just past the last urgent chunk.
      const lastUrgent = pending.findLastIndex((p) => p.urgent === true);
      if (lastUrgent < 0) {
        this.send(join(pending), done);
      } else {
        const rest = pending.slice(lastUrgent + 1);
        this.send(join(pending.slice(0, lastUrgent + 1)), rest.length ? () => {} : done, true);
        if (rest.length) this.send(join(rest), done);
      }
    }
    const fin = this.finalWaiting;
    if (fin) {
      this.finalWaiting = undefined;
      this._final(fin);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.connecting || !this.tcb) {
      this.finalWaiting = cb;
      return;
    }
    const tcb = this.tcb;
    this.finQueued = true;
    if (!tcb.closed) {
      const now = this.tcp.now();
      tcb.handle(tcb.conn.close(now), now);
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.cancelIdle();
    const tcb = this.tcb;
    this.connecting = false;
    this.writeWaiting = undefined;
    for (const p of this.beforeConnect)
      p.cb(err ?? codeError(Error, 'ERR_STREAM_DESTROYED', 'Cannot call write after a stream was destroyed'));
    this.beforeConnect = [];
    if (tcb && !tcb.closed) {
      const conn = tcb.conn;
      const now = this.tcp.now();
      this.tcp.orphan(tcb);
      if (err || this.resetOnDestroy || conn.readable > 0 || conn.state === 'SYN-SENT') {
        // RFC 9293 §3.10.5 ABORT; Linux does it on close() with unread data (RFC 2525 §2.17).
        tcb.handle(conn.abort(now), now);
      } else if (!this.finQueued) {
        this.finQueued = true;
        tcb.handle(conn.close(now), now);
      }
    } else if (tcb) {
      tcb.owner = undefined;
    }
    cb(err);
    // After the stream's own 'error' (also on the next tick): net.Socket's 'close'(hadError).
    const hadError = err !== null && err !== undefined;
    process.nextTick(() => this.emit('close', hadError));
  }

  /** Close with a RST (net.Socket.resetAndDestroy). */
  resetAndDestroy(): this {
    this.resetOnDestroy = true;
    this.destroy();
    return this;
  }

  /** End, then destroy once everything is written (used by node:http). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  // -------------------------------------------------------------------------------------
  // Options

  setNoDelay(noDelay = true): this {
    this.noDelay = noDelay;
    if (this.tcb) this.tcb.conn.setNoDelay(noDelay);
    return this;
  }

  /** SO_KEEPALIVE with TCP_KEEPIDLE = initialDelay ms (0: the 2-hour default of RFC 1122 §4.2.3.6). */
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.keepAlive = { enable, delay: initialDelay };
    if (this.tcb && !this.connecting) this.applyOptions();
    return this;
  }

  /**
   * Emit 'timeout' after `ms` without reads or writes (0 disables), as net.Socket.setTimeout.
   * The socket owns at most one idle timer: calling this again (node:http does on every
   * keep-alive request) replaces it, never adds a second one.
   */
  setTimeout(ms: number, cb?: () => void): this {
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    this.timeout = ms;
    this.cancelIdle();
    if (ms > 0) {
      this.lastActivity = this.tcp.now();
      this.armIdle();
    }
    return this;
  }

  private touch(): void {
    this.lastActivity = this.tcp.now();
    if (this.timeout && !this.idleTimer) this.armIdle();
  }

  private cancelIdle(): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
  }

  /**
   * One timer per idle period. Activity does not re-arm it (that would cost a timer per
   * segment); when it fires early because of activity it re-arms for the new deadline.
   */
  private armIdle(): void {
    this.cancelIdle();
    const ms = this.timeout;
    if (!ms || this.destroyed) return;
    const timers = this.tcp.timers;
    const handle = timers.setTimer(this.lastActivity + ms, () => {
      if (this.idleTimer !== handle) return;
      this.idleTimer = undefined;
      if (this.destroyed || this.timeout !== ms) return;
      if (timers.now() >= this.lastActivity + ms) {
        this.emit('timeout');
        return;
      }
      this.armIdle();
    });
    this.idleTimer = handle;
  }

  address(): TcpAddressInfo | Record<string, never> {
    if (this.localAddress === undefined || this.localPort === undefined) return {};
    return { address: this.localAddress, family: this.localFamily ?? 'IPv4', port: this.localPort };
  }

  /** No event-loop handle to hold: kept for net.Socket compatibility. */
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
