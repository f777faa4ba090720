/**
 * A Node-style TLS stream over any Duplex byte stream (our TCP socket, a node:net socket,
 * an in-memory pair): the driver that owns I/O for a sans-I/O TlsClient or TlsServer.
 * Writes made before the handshake completes are queued.
 */
import { Duplex } from 'node:stream';
import { TlsClient, type TlsClientOptions } from './client.ts';
import type { SessionTicket, TlsEvent, TlsOutput } from './connection.ts';
import { TlsServer, type TlsServerOptions } from './server.ts';

export class TlsError extends Error {
  override readonly name = 'TlsError';
  constructor(
    readonly alert: string,
    readonly reason: string,
    readonly sentByUs: boolean,
  ) {
    super(`TLS ${alert} (${sentByUs ? 'sent' : 'received'}): ${reason}`);
  }
}

export class TlsSocket extends Duplex {
  /** The negotiated parameters once 'secure' has fired. */
  handshake?: Extract<TlsEvent, { type: 'handshake-complete' }>;
  private queued: { chunk: Uint8Array; cb: (e?: Error | null) => void }[] = [];
  private readonly now: () => number;

  constructor(
    readonly transport: Duplex,
    readonly machine: TlsClient | TlsServer,
    options: { now?: () => number } = {},
  ) {
    super();
    this.now = options.now ?? Date.now;
    transport.on('data', (b: Buffer) =>
      this.apply(this.machine.receive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), this.now())),
    );
    transport.on('end', () => {
      // A transport EOF without close_notify is a truncation; the reader still sees the end (RFC 8446 §6.1).
      this.push(null);
    });
    transport.on('error', (e) => this.destroy(e));
    transport.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  get alpnProtocol(): string | undefined {
    return this.handshake?.alpn;
  }

  /** Start a client handshake (servers wait for the ClientHello). */
  startHandshake(): this {
    if (this.machine instanceof TlsClient) this.apply(this.machine.start(this.now()));
    return this;
  }

  /** Ask both sides to update their traffic keys (RFC 8446 §4.6.3). */
  updateKeys(requestPeer = true): void {
    this.apply(this.machine.updateKeys(requestPeer, this.now()));
  }

  exportKeyingMaterial(length: number, label: string, context: Uint8Array = new Uint8Array(0)): Uint8Array {
    return this.machine.exportKeyingMaterial(label, context, length);
  }

  private apply(out: TlsOutput): void {
    for (const d of out.data) this.transport.write(d);
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
          this.emit('session', e.ticket satisfies SessionTicket);
          break;
        case 'peer-closed':
          this.push(null);
          break;
        case 'key-update':
          this.emit('keyUpdate', e.direction);
          break;
        case 'error':
          this.destroy(new TlsError(e.alertName, e.reason, e.sent));
          break;
      }
    }
  }

  private writeNow(chunk: Uint8Array, cb: (e?: Error | null) => void): void {
    try {
      this.apply(this.machine.send(chunk, this.now()));
      cb();
    } catch (e) {
      cb(e as Error);
    }
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
    this.transport.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    for (const q of this.queued.splice(0)) q.cb(err ?? new Error('socket destroyed'));
    this.transport.destroy();
    cb(err);
  }
}

/** A client TlsSocket over `transport`, handshake started. */
export function connect(transport: Duplex, options: TlsClientOptions): TlsSocket {
  return new TlsSocket(transport, new TlsClient(options)).startHandshake();
}

/** A server TlsSocket over `transport`, waiting for the ClientHello. */
export function accept(transport: Duplex, options: TlsServerOptions): TlsSocket {
  return new TlsSocket(transport, new TlsServer(options));
}
