/**
 * A Node-style TLS stream over any Duplex byte stream (our TCP socket, a node:net socket,
 * an in-memory pair): the driver that owns I/O for a sans-I/O TlsClient or TlsServer.
 * Writes made before the handshake completes are queued.
 */
import { Duplex } from 'node:stream';
import type { CertificateVerifier } from './auth.ts';
import { TlsClient, type TlsClientOptions } from './client.ts';
import type { SessionTicket, TlsEvent, TlsOutput } from './connection.ts';
import { nodeCodeForAlert } from './node-codes.ts';
import { TlsServer, type TlsServerOptions } from './server.ts';

export class TlsError extends Error {
  override readonly name = 'TlsError';
  /**
   * node:tls's code for the failure (ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE, ...; for a refused
   * certificate the X.509 code, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE), so Node code that checks
   * `err.code` works; `alert` and `reason` keep what TLS said.
   */
  code: string;
  constructor(
    readonly alert: string,
    readonly reason: string,
    readonly sentByUs: boolean,
  ) {
    super(`TLS ${alert} (${sentByUs ? 'sent' : 'received'}): ${reason}`);
    this.code = nodeCodeForAlert(alert);
  }
}

/**
 * The transport ended where TLS cannot end: during the handshake or inside a record, without
 * close_notify (RFC 8446 §6.1). No alert was exchanged; `alert` is 'truncated'.
 */
export class TlsTruncationError extends TlsError {
  constructor(reason: string) {
    super('truncated', reason, false);
    // node:tls: 'Client network socket disconnected before secure TLS connection was established'.
    this.code = 'ECONNRESET';
    this.message = `TLS connection truncated: ${reason}`;
  }
}

export interface TlsSocketOptions {
  now?: () => number;
  /**
   * After we send a fatal alert or close_notify, how long (ms) the transport may take to deliver
   * it before it is destroyed anyway, so a peer that never reads cannot hold us open. Default 3000.
   */
  closeTimeoutMs?: number;
}

export class TlsSocket extends Duplex {
  /** The negotiated parameters once 'secure' has fired. */
  handshake?: Extract<TlsEvent, { type: 'handshake-complete' }>;
  private queued: { chunk: Uint8Array; cb: (e?: Error | null) => void }[] = [];
  private readonly now: () => number;
  private readonly closeTimeoutMs: number;
  /** We wrote an alert or close_notify the peer must still receive (RFC 8446 §6). */
  private flushOnClose = false;
  /** The peer's close_notify arrived: a transport end after it is a clean end (RFC 8446 §6.1). */
  private peerClosed = false;
  private outQueue: Uint8Array[] = [];
  private endQueued = false;
  private writing = false;

  constructor(
    readonly transport: Duplex,
    readonly machine: TlsClient | TlsServer,
    options: TlsSocketOptions = {},
  ) {
    super();
    this.now = options.now ?? Date.now;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 3000;
    transport.on('data', (b: Buffer) => this.input(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)));
    transport.on('end', () => this.onTransportEnd());
    transport.on('error', (e) => this.destroy(e));
    transport.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  /** As node:tls: the negotiated ALPN protocol, false when none was, null before the handshake. */
  get alpnProtocol(): string | false | null {
    if (!this.handshake) return null;
    return this.handshake.alpn ?? false;
  }

  /**
   * Transport bytes held back from the machine (a server waiting for an asynchronous SNI
   * callback before it can choose its certificate); undefined while bytes flow straight in.
   */
  protected heldInput?: Uint8Array[];

  private input(bytes: Uint8Array): void {
    if (this.heldInput) {
      this.heldInput.push(bytes.slice());
      this.onHeldInput(this.heldInput);
      return;
    }
    this.apply(this.machine.receive(bytes, this.now()));
  }

  /** Bytes arrived while held; subclasses look at them and call releaseInput(). */
  protected onHeldInput(_held: readonly Uint8Array[]): void {}

  /** Hand the held bytes to the machine and let later ones flow straight in. */
  protected releaseInput(): void {
    const held = this.heldInput ?? [];
    this.heldInput = undefined;
    for (const b of held) {
      if (this.destroyed) return;
      this.apply(this.machine.receive(b, this.now()));
    }
  }

  /** Start a client handshake (servers wait for the ClientHello). */
  startHandshake(): this {
    if (this.machine instanceof TlsClient) this.apply(this.machine.start(this.now()));
    return this;
  }

  /**
   * Server: ask the client for its certificate now, after the handshake (RFC 8446 §4.6.2,
   * TLS 1.3's replacement for renegotiation; node:tls has no such call). The verified chain
   * arrives as 'clientCertificate' (leaf first; empty when the client declined and none was
   * required); a refusal fails the socket with the alert. The client must have offered
   * post_handshake_auth.
   */
  requestCertificate(options?: { verifier?: CertificateVerifier; required?: boolean }): void {
    if (!(this.machine instanceof TlsServer)) throw new Error('requestCertificate is for server sockets');
    this.apply(this.machine.requestClientCertificate(this.now(), options));
  }

  /** Ask both sides to update their traffic keys (RFC 8446 §4.6.3). */
  updateKeys(requestPeer = true): void {
    this.apply(this.machine.updateKeys(requestPeer, this.now()));
  }

  exportKeyingMaterial(length: number, label: string, context: Uint8Array = new Uint8Array(0)): Uint8Array {
    return this.machine.exportKeyingMaterial(label, context, length);
  }

  /**
   * RFC 8446 §6.1: an end without close_notify is a truncation. During the handshake or inside
   * a record it can only be a failure (and no alert can reach the peer); at a record boundary
   * after the handshake the reader sees the end, as with node:tls.
   */
  private onTransportEnd(): void {
    if (this.destroyed) return;
    if (!this.peerClosed && !this.machine.isClosed) {
      if (this.handshake === undefined) {
        this.destroy(new TlsTruncationError('transport ended during the handshake'));
        return;
      }
      const partial = this.machine.partialRecordBytes;
      if (partial > 0) {
        this.destroy(new TlsTruncationError(`transport ended inside a record (${partial} bytes of it)`));
        return;
      }
    }
    this.push(null);
  }

  /**
   * Write records (and then, with `end`, end the transport) in the order the machine made them.
   * A transport may deliver synchronously (duplexPair), so a write can re-enter us through the
   * peer; what the nested call produces (its alert, say) queues behind the records still being
   * written, whose sequence numbers come first (RFC 8446 §5.3).
   */
  private output(data: Uint8Array[], end = false): void {
    this.outQueue.push(...data);
    if (end) this.endQueued = true;
    if (this.writing) return;
    this.writing = true;
    try {
      const t = this.transport;
      while (this.outQueue.length > 0) {
        // One transport write per batch of records (a flight, or one large write's records),
        // not one per record. A nested call may queue more while we write: the loop takes it next.
        const batch = coalesce(this.outQueue);
        this.outQueue = [];
        for (const d of batch) {
          // Nothing goes out after the transport has ended (after our close_notify or fatal alert).
          if (!t.writableEnded && !t.destroyed) t.write(d);
        }
      }
      if (this.endQueued && !t.writableEnded && !t.destroyed) t.end();
    } finally {
      this.writing = false;
    }
  }

  private apply(out: TlsOutput): void {
    this.output(out.data);
    for (const e of out.events) {
      switch (e.type) {
        case 'handshake-complete':
          this.handshake = e;
          this.emit('secure', e);
          for (const q of this.queued.splice(0)) this.writeNow(q.chunk, q.cb);
          break;
        case 'data':
          this.push(e.data);
          break;
        case 'early-data':
          this.emit('earlyData', e.data);
          break;
        case 'early-data-status':
          this.emit('earlyDataStatus', e.accepted);
          break;
        case 'session-ticket':
          this.onSessionTicket(e.ticket);
          break;
        case 'client-certificate':
          this.emit('clientCertificate', e.peerCertificates);
          break;
        case 'peer-closed':
          this.peerClosed = true;
          this.push(null);
          break;
        case 'key-update':
          this.emit('keyUpdate', e.direction);
          break;
        case 'error':
          // RFC 8446 §6: the alert we just wrote must reach the peer before the transport goes.
          if (e.sent) this.flushOnClose = true;
          this.destroy(this.errorFor(e));
          break;
      }
    }
  }

  /** A ticket for resumption arrived (client): emitted as 'session'. */
  protected onSessionTicket(ticket: SessionTicket): void {
    this.emit('session', ticket);
  }

  /** The error a failure is reported with; subclasses add what they know (certificate verdicts). */
  protected errorFor(e: Extract<TlsEvent, { type: 'error' }>): Error {
    return new TlsError(e.alertName, e.reason, e.sent);
  }

  private writeNow(chunk: Uint8Array, cb: (e?: Error | null) => void): void {
    try {
      this.apply(this.machine.send(chunk, this.now()));
    } catch (e) {
      cb(e as Error);
      return;
    }
    // The transport's backpressure is ours: while it holds more than its high-water mark, the
    // write completes only when it drains, so a peer that reads slowly holds our writer back
    // instead of growing the transport's buffer without bound (as net.Socket and node:tls do).
    const t = this.transport;
    if (t.writableNeedDrain && !t.destroyed && !t.writableEnded) {
      const done = (): void => {
        t.off('drain', done);
        t.off('close', done);
        cb();
      };
      t.on('drain', done);
      t.on('close', done);
    } else cb();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.machine.isConnected) this.writeNow(bytes, cb);
    else this.queued.push({ chunk: bytes.slice(), cb });
  }

  override _read(): void {
    // Data is pushed as records are opened; the transport is always flowing.
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.apply(this.machine.close(this.now()));
    this.flushOnClose = true;
    this.output([], true);
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    for (const q of this.queued.splice(0)) q.cb(err ?? new Error('socket destroyed'));
    this.closeTransport();
    cb(err);
  }

  /**
   * destroy() discards writes the transport still queues (backpressure, or a duplexPair waiting
   * for its reader), and with them our alert or close_notify: the peer would never learn why we
   * left (RFC 8446 §6). And a TCP socket closed while the peer's bytes are still unread (or
   * still arriving) answers with a reset, which can make the peer's stack drop our alert
   * before its application reads it. So after such a write we shut down our sending side,
   * keep reading (and discarding) until the peer ends too, and only then destroy the
   * transport; closeTimeoutMs bounds the whole, so a peer that never reads or never ends
   * cannot hold us open.
   */
  private closeTransport(): void {
    const t = this.transport;
    if (t.destroyed) return;
    if (!this.flushOnClose) {
      t.destroy();
      return;
    }
    const timer = setTimeout(() => t.destroy(), this.closeTimeoutMs);
    timer.unref?.();
    const done = () => {
      clearTimeout(timer);
      if (!t.destroyed) t.destroy();
    };
    const drain = () => {
      if (t.readableEnded || !t.readable) return done();
      t.once('end', done);
      // Bytes still arriving are read and dropped (the machine counts them), never left unread.
      t.resume();
    };
    t.once('close', () => clearTimeout(timer));
    t.once('error', done);
    if (t.writableFinished) drain();
    else t.once('finish', drain);
    this.output([], true);
  }
}

/** Pieces no larger than this are copied together into one write (a handshake flight). */
const JOIN_LIMIT = 16 * 1024;

/**
 * The records queued for the transport, as few buffers as cheaply possible: records that lie
 * side by side in one allocation (RecordProtection cuts a large write's records from one slab)
 * become one view without a copy; small pieces in a row are copied into one buffer.
 */
export function coalesce(parts: readonly Uint8Array[]): Uint8Array[] {
  if (parts.length <= 1) return parts.slice();
  // Views of adjacent bytes of one buffer join for free.
  const runs: Uint8Array[] = [];
  for (const p of parts) {
    if (p.length === 0) continue;
    const last = runs[runs.length - 1];
    if (last && last.buffer === p.buffer && last.byteOffset + last.byteLength === p.byteOffset) {
      runs[runs.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.byteLength + p.byteLength);
    } else runs.push(p);
  }
  // Then small runs in a row are copied together.
  const out: Uint8Array[] = [];
  let group: Uint8Array[] = [];
  let groupBytes = 0;
  const flush = (): void => {
    if (group.length === 1) out.push(group[0] as Uint8Array);
    else if (group.length > 1) {
      const joined = new Uint8Array(groupBytes);
      let at = 0;
      for (const g of group) {
        joined.set(g, at);
        at += g.length;
      }
      out.push(joined);
    }
    group = [];
    groupBytes = 0;
  };
  for (const r of runs) {
    if (r.length > JOIN_LIMIT || groupBytes + r.length > JOIN_LIMIT) flush();
    if (r.length > JOIN_LIMIT) out.push(r);
    else {
      group.push(r);
      groupBytes += r.length;
    }
  }
  flush();
  return out;
}

/** A client TlsSocket over `transport`, handshake started. */
export function connect(transport: Duplex, options: TlsClientOptions): TlsSocket {
  return new TlsSocket(transport, new TlsClient(options)).startHandshake();
}

/** A server TlsSocket over `transport`, waiting for the ClientHello. */
export function accept(transport: Duplex, options: TlsServerOptions): TlsSocket {
  return new TlsSocket(transport, new TlsServer(options));
}
