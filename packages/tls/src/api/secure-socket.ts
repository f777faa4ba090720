/**
 * SecureSocket: a TlsSocket with node:tls's accessors (authorized, getPeerCertificate,
 * getSession, the transport's addresses and timeouts), writes held behind 0-RTT data until
 * its fate is known (RFC 8446 §4.2.10), and the ClientHello held for an SNICallback.
 */
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { CertificateSigner } from '../auth.ts';
import type { TlsClient } from '../client.ts';
import type { SessionTicket, TlsEvent } from '../connection.ts';
import { type CertificateError, decodeCertificate, type X509Certificate } from '../pki/index.ts';
import type { TlsServer } from '../server.ts';
import { type TlsError, TlsSocket } from '../socket.ts';
import type { CommonOptions, ServerOptions } from './options.ts';
import { describePeer, type PeerCertificate } from './peer-certificate.ts';
import type { SecureServer } from './secure-server.ts';
import { encodeSession, ticketOrigin } from './session.ts';
import { peekServerName } from './sni.ts';

/** What a net.Socket-like transport (node:net, our TcpSocket) may offer beyond Duplex. */
interface NetLike {
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
  localAddress?: string;
  localPort?: number;
  address?(): object;
  setTimeout?(ms: number): unknown;
  setNoDelay?(noDelay: boolean): unknown;
  setKeepAlive?(enable: boolean, initialDelay: number): unknown;
}

/**
 * A TlsSocket with node:tls's accessors. Client sockets emit 'secureConnect', server sockets
 * make their server emit 'secureConnection'; client sockets emit 'session' (bytes for the
 * `session` option next time, as node:tls's Buffer) and both emit 'keylog' (Buffer line with
 * newline, as node:tls).
 */
export class SecureSocket extends TlsSocket {
  readonly encrypted = true;
  /** The peer's chain verified (client: always, unless rejectUnauthorized was false; server: with requestCert). */
  authorized = false;
  /** Why `authorized` is false, as node:tls says it: 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', ... */
  authorizationError?: string;
  /** The same verdict from our pki: its code, message and the alert it maps to. */
  authorizationDetail?: CertificateError;
  /** For a client with `earlyData`: whether the server took it (RFC 8446 §4.2.10). */
  earlyDataAccepted?: boolean;
  private lastSession?: Buffer;
  /** Client 0-RTT: writes wait here until we know whether the early data must be sent again. */
  private early?: { data: Uint8Array; held: { chunk: Buffer; cb: (e?: Error | null) => void }[] };
  /** Set by connect()/accept(): the error a failed certificate check should be reported with. */
  failureOverride?: () => { code: string; message: string; cause?: Error } | undefined;
  /** Server: the certificates an SNICallback chose for this connection. */
  sniSigners?: readonly CertificateSigner[];

  constructor(
    transport: Duplex,
    machine: TlsClient | TlsServer,
    readonly isServer: boolean,
    now?: () => number,
  ) {
    super(transport, machine, now ? { now } : {});
    this.on('earlyDataStatus', (accepted: boolean) => {
      this.earlyDataAccepted = accepted;
    });
    // An idle timeout set through us (node:http's keepAliveTimeout, say) fires on the transport.
    transport.on('timeout', () => this.emit('timeout'));
  }

  /** The verdict on the server's certificate, for the tickets this connection receives. */
  protected override onSessionTicket(ticket: SessionTicket): void {
    ticketOrigin.set(ticket, {
      authorized: this.authorized,
      ...(this.authorizationDetail ? { authorizationError: this.authorizationDetail } : {}),
    });
    this.lastSession = encodeSession(ticket);
    this.emit('session', this.lastSession);
  }

  protected override errorFor(e: Extract<TlsEvent, { type: 'error' }>): Error {
    const err = super.errorFor(e) as TlsError;
    const o = e.sent ? this.failureOverride?.() : undefined;
    if (o) {
      err.code = o.code;
      err.message = `${o.message} (TLS ${e.alertName} sent: ${e.reason})`;
      if (o.cause) err.cause = o.cause;
    }
    return err;
  }

  /**
   * Server with an asynchronous SNICallback: hold the client's bytes until its ClientHello is
   * whole, ask the callback for the certificates for its server_name, then let them through.
   */
  waitForSni(callback: NonNullable<ServerOptions['SNICallback']>): void {
    this.heldInput = [];
    let asked = false;
    this.onHeldInput = (held) => {
      if (asked) return;
      const sni = peekServerName(held);
      if (sni === 'incomplete') return;
      asked = true;
      if (sni === undefined) {
        this.releaseInput();
        return;
      }
      callback(sni, (err, ctx) => {
        if (this.destroyed) return;
        if (err) {
          this.destroy(err);
          return;
        }
        if (ctx) this.sniSigners = ctx.signers;
        this.releaseInput();
      });
    };
  }

  /**
   * Hold application writes until the fate of `data`, sent as 0-RTT, is known: accepted, it
   * is delivered; refused (RFC 8446 §4.2.10) or never sent (the ticket did not allow it), it
   * is written again ahead of the held writes, so the stream stays in order.
   */
  holdForEarlyData(data: Uint8Array): void {
    this.early = { data, held: [] };
    const settle = (accepted: boolean) => {
      const e = this.early;
      if (!e) return;
      this.early = undefined;
      if (!accepted) super._write(Buffer.from(e.data), 'buffer' as BufferEncoding, () => {});
      for (const h of e.held) super._write(h.chunk, 'buffer' as BufferEncoding, h.cb);
    };
    this.once('earlyDataStatus', settle);
    this.once('secure', () => settle(this.earlyDataAccepted === true));
  }

  override _write(chunk: Buffer, enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.early) this.early.held.push({ chunk, cb });
    else super._write(chunk, enc, cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    for (const h of this.early?.held.splice(0) ?? []) h.cb(err ?? new Error('socket destroyed'));
    super._destroy(err, cb);
  }

  private get net(): NetLike {
    return this.transport as NetLike;
  }
  /** The transport's addresses, as node:tls passes them through from its net.Socket. */
  get remoteAddress(): string | undefined {
    return this.net.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.net.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.net.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.net.localAddress;
  }
  get localPort(): number | undefined {
    return this.net.localPort;
  }
  address(): object {
    return this.net.address?.() ?? {};
  }
  /** Idle timeout of the transport (when it has one): emits 'timeout', as net.Socket does. */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback) {
      if (ms === 0) this.off('timeout', callback);
      else this.once('timeout', callback);
    }
    this.net.setTimeout?.(ms);
    return this;
  }
  setNoDelay(noDelay = true): this {
    this.net.setNoDelay?.(noDelay);
    return this;
  }
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.net.setKeepAlive?.(enable, initialDelay);
    return this;
  }

  /** SNI: what we asked for (client) or what the client asked for (server). */
  get servername(): string | undefined {
    return this.handshake?.serverName;
  }

  getProtocol(): 'TLSv1.3' | null {
    return this.handshake ? 'TLSv1.3' : null;
  }

  getCipher(): { name: string; standardName: string; version: 'TLSv1.3' } | undefined {
    const h = this.handshake;
    return h && { name: h.cipherSuite, standardName: h.cipherSuite, version: 'TLSv1.3' };
  }

  /** The latest session (client) as bytes for `session` on a later connect, as node:tls's Buffer. */
  getSession(): Buffer | undefined {
    return this.lastSession;
  }

  isSessionReused(): boolean {
    return this.handshake?.resumed ?? false;
  }

  /**
   * The peer's leaf in node:tls's form; as node:tls, an empty object `{}` when the peer sent
   * none (or before the handshake), so check `Object.keys(c).length` or `c.subject`.
   */
  getPeerCertificate(): PeerCertificate {
    const leaf = this.handshake?.peerCertificates[0];
    return leaf ? describePeer(leaf) : ({} as PeerCertificate);
  }

  /** The peer's certificates as sent, leaf first, parsed. */
  getPeerX509Certificates(): X509Certificate[] {
    return (this.handshake?.peerCertificates ?? []).map((d) => decodeCertificate(d));
  }
}

export function keylogFanout(
  o: CommonOptions,
  target: () => EventEmitter | undefined,
  server?: SecureServer,
) {
  return (line: string) => {
    o.keylog?.(line);
    const s = target();
    const buf = Buffer.from(`${line}\n`);
    s?.emit('keylog', buf);
    server?.emit('keylog', buf, s);
  };
}
