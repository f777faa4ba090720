/**
 * The server side of the node:tls shape: SecureServer takes byte streams (listen, accept,
 * 'connection'), runs a TlsServer on each with certificates chosen by SNI (addContext,
 * SNICallback), asks for client certificates when told to (RFC 8446 §4.3.2), cuts stalled
 * handshakes (handshakeTimeout) and seals tickets under keys shared by all its connections.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as nodeNet from 'node:net';
import type { Duplex } from 'node:stream';
import type { CertificateSigner } from '../auth.ts';
import { certificateSigner, certificateVerifier, parseCertificates } from '../credentials.ts';
import type { CertificateError, SignatureProvider, X509Certificate } from '../pki/index.ts';
import { AntiReplayCache, TlsServer, type TlsServerOptions } from '../server.ts';
import type { ConnectionSource, NetModule, NetServerLike, ServerOptions } from './options.ts';
import { checkVersions, defaultCa, groupsOf, keyCertPairs, providerOf, suitesOf } from './parse-options.ts';
import { certificateFailure } from './peer-certificate.ts';
import { SecureContext, type SecureContextOptions } from './secure-context.ts';
import { keylogFanout, SecureSocket } from './secure-socket.ts';
import { ticketKeyFrom } from './session.ts';

/**
 * A TLS server in the shape of node:tls.Server. listen(port[, host][, cb]) opens a TCP server
 * (node:net, or `net` such as our Tcp) as node:tls does; or hand it byte streams with
 * `server.emit('connection', duplex)` (as node:http takes them) or `accept(duplex)`, or let
 * `listen(source)` take every connection of a TCP server you hold. Emits 'secureConnection'
 * (SecureSocket), 'tlsClientError' (TlsError, socket) for handshakes that fail, 'keylog'
 * (line, socket), 'listening', and 'close' once closed and the last session has ended.
 */
export class SecureServer extends EventEmitter {
  /** Connections handed to us so far. */
  connections = 0;
  private readonly base: Omit<TlsServerOptions, 'clientAuth' | 'signer' | 'ticketKey'>;
  private readonly options: ServerOptions;
  private readonly signatures?: SignatureProvider;
  private readonly clientCa?: X509Certificate[];
  private readonly sources: { source: ConnectionSource; listener: (s: Duplex) => void }[] = [];
  private readonly open = new Set<SecureSocket>();
  /** Handshake timers armed now, and handshakes cut by them (issue 15: visible, back to 0 when idle). */
  private handshakeTimers = 0;
  private handshakeTimeouts = 0;
  private readonly signers: readonly CertificateSigner[];
  private readonly contexts: { pattern: string; context: SecureContext }[] = [];
  private ticketKeys: Buffer;
  private ticketKey: Uint8Array;
  /** The TCP server listen(port) opened, if any: ours to close. */
  private server?: NetServerLike;
  private closed = false;
  private closeCallbacks: ((err?: Error) => void)[] = [];
  private closeEmitted = false;

  constructor(options: ServerOptions, onSecureConnection?: (socket: SecureSocket) => void) {
    super();
    checkVersions(options);
    this.options = options;
    const { crypto, signatures } = providerOf(options.provider);
    this.signatures = signatures;
    const own = keyCertPairs(options).map((p) =>
      certificateSigner({ cert: p.cert, key: p.key, ...(signatures ? { signatures } : {}) }),
    );
    this.signers = own.length > 0 ? own : (options.secureContext?.signers ?? []);
    if (this.signers.length === 0 && !options.SNICallback)
      throw new TypeError('a TLS server needs cert and key (or certificates, secureContext or SNICallback)');
    if (options.ALPNCallback && options.ALPNProtocols)
      throw Object.assign(new TypeError('ALPNCallback and ALPNProtocols cannot both be set'), {
        code: 'ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS',
      });
    const maxEarlyData =
      options.earlyData === true ? 16 * 1024 : options.earlyData ? Math.max(0, options.earlyData) : 0;
    const cipherSuites = suitesOf(options);
    const groups = groupsOf(options.groups ?? options.ecdhCurve);
    this.ticketKeys = Buffer.from(options.ticketKeys ?? randomBytes(48));
    if (this.ticketKeys.length !== 48) throw new TypeError('ticketKeys must be 48 bytes, as in node:tls');
    // One key for every connection of this server: a ticket from one resumes on another.
    this.ticketKey = options.ticketKey ?? ticketKeyFrom(this.ticketKeys);
    const alpnCallback = options.ALPNCallback;
    this.base = {
      crypto,
      ...(cipherSuites ? { cipherSuites } : {}),
      ...(groups ? { groups } : {}),
      ...(options.ALPNProtocols ? { alpnProtocols: options.ALPNProtocols } : {}),
      ...(alpnCallback
        ? {
            alpnSelect: (offer: { protocols: readonly string[]; serverName?: string }) =>
              alpnCallback({
                protocols: [...offer.protocols],
                ...(offer.serverName !== undefined ? { servername: offer.serverName } : {}),
              }),
          }
        : {}),
      ...(options.sessionTimeout !== undefined ? { ticketLifetimeSeconds: options.sessionTimeout } : {}),
      ...(options.certificateCompression !== undefined
        ? { certificateCompression: options.certificateCompression }
        : {}),
      ...(options.allowPskKe ? { allowPskKe: true } : {}),
      ...(maxEarlyData > 0 ? { maxEarlyData, antiReplay: options.antiReplay ?? new AntiReplayCache() } : {}),
      ...(options.trace ? { trace: options.trace } : {}),
      ...(options.hostName ? { host: options.hostName } : {}),
    };
    if (options.requestCert) this.clientCa = options.ca ? parseCertificates(options.ca) : defaultCa();
    if (onSecureConnection) this.on('secureConnection', onSecureConnection);
    this.on('connection', (duplex: Duplex) => {
      this.accept(duplex);
    });
  }

  /** node:tls: the 48 bytes our ticket key comes from. */
  getTicketKeys(): Buffer {
    return Buffer.from(this.ticketKeys);
  }

  /** node:tls: new ticket keys for connections from now on (tickets sealed before no longer open). */
  setTicketKeys(keys: Uint8Array): void {
    if (keys.length !== 48) throw new TypeError('ticketKeys must be 48 bytes, as in node:tls');
    this.ticketKeys = Buffer.from(keys);
    this.ticketKey = ticketKeyFrom(this.ticketKeys);
  }

  /** node:tls: certificates for clients whose SNI matches `hostname` ('*.example.com' allowed). */
  addContext(hostname: string, context: SecureContext | SecureContextOptions): void {
    this.contexts.unshift({
      pattern: hostname.toLowerCase(),
      context: context instanceof SecureContext ? context : new SecureContext(context),
    });
  }

  /** The certificates for a server name: addContext's match, else ours. */
  private signersFor(serverName: string | undefined): readonly CertificateSigner[] {
    if (serverName !== undefined) {
      const name = serverName.toLowerCase();
      for (const { pattern, context } of this.contexts) {
        const wild =
          pattern.startsWith('*.') &&
          name.endsWith(pattern.slice(1)) &&
          !name.slice(0, -pattern.length + 1).includes('.');
        if (pattern === name || wild) return context.signers;
      }
    }
    return this.signers;
  }

  /** Run a TLS server handshake on `transport`; the socket is returned at once. */
  accept(transport: Duplex): SecureSocket {
    if (this.closed) {
      transport.destroy();
      throw new Error('server is closed');
    }
    this.connections++;
    const o = this.options;
    let socket: SecureSocket | undefined;
    let result: { ok: boolean; error?: CertificateError } | undefined;
    const reject = o.rejectUnauthorized ?? true;
    const machineOptions: TlsServerOptions = {
      ...this.base,
      ticketKey: this.ticketKey,
      signer: (hello) => socket?.sniSigners ?? this.signersFor(hello.serverName),
      keyLog: keylogFanout(o, () => socket, this),
      ...(this.clientCa
        ? {
            clientAuth: {
              required: reject,
              verifier: certificateVerifier({
                ca: this.clientCa,
                purpose: 'clientAuth',
                ...(this.signatures ? { signatures: this.signatures } : {}),
                reject,
                onResult: (r) => {
                  result = r.ok ? { ok: true } : { ok: false, error: r.error };
                },
              }),
            },
          }
        : {}),
    };
    socket = new SecureSocket(transport, new TlsServer(machineOptions), true, o.now);
    const s = socket;
    if (o.SNICallback) s.waitForSni(o.SNICallback);
    this.open.add(s);
    s.once('close', () => {
      this.open.delete(s);
      this.maybeClosed();
    });
    // 0-RTT data is application data that came early: the reader gets it first, in order.
    s.on('earlyData', (d: Uint8Array) => s.push(d));
    const onError = (e: Error) => this.emit('tlsClientError', e, s);
    s.on('error', onError);
    const limit = o.handshakeTimeout ?? (o.now ? 0 : 120_000);
    const timer =
      limit > 0
        ? setTimeout(() => {
            timerLive = false;
            this.handshakeTimers--;
            this.handshakeTimeouts++;
            s.destroy(
              Object.assign(new Error('TLS handshake timeout'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }),
            );
          }, limit)
        : undefined;
    timer?.unref?.();
    if (timer) this.handshakeTimers++;
    let timerLive = timer !== undefined;
    const stopTimer = () => {
      if (!timerLive) return;
      timerLive = false;
      clearTimeout(timer);
      this.handshakeTimers--;
    };
    s.once('close', stopTimer);
    s.once('secure', () => {
      stopTimer();
      s.off('error', onError);
      if (s.handshake?.resumed && this.clientCa && reject) {
        // Our tickets come only from handshakes that passed the same required client
        // authentication, so a resumption is that client again (its certificate is not in the ticket).
        s.authorized = true;
      } else {
        s.authorized = result?.ok === true;
        if (this.clientCa && !result) {
          // node:tls: a client that sent no certificate reads as UNABLE_TO_GET_ISSUER_CERT.
          s.authorizationError = 'UNABLE_TO_GET_ISSUER_CERT';
        }
        if (result?.error) {
          s.authorizationDetail = result.error;
          s.authorizationError = certificateFailure(result.error, s.handshake?.peerCertificates ?? []).code;
        }
      }
      this.emit('secureConnection', s);
    });
    return s;
  }

  /**
   * As node:tls: listen(port[, host][, backlog][, cb]) or listen({ port, host }[, cb]) opens a
   * TCP server (node:net, or the `net` option's) and takes its connections. listen(source)
   * takes every 'connection' of a server you hold (our TcpServer, node:net.Server) instead.
   */
  listen(source: ConnectionSource): this;
  listen(port?: number, host?: string, backlog?: number, cb?: () => void): this;
  listen(port?: number, host?: string, cb?: () => void): this;
  listen(port?: number, cb?: () => void): this;
  listen(options: { port?: number; host?: string }, cb?: () => void): this;
  listen(...args: unknown[]): this {
    const first = args[0] as ConnectionSource | undefined;
    if (first && typeof first === 'object' && typeof first.on === 'function') {
      this.attach(first);
      return this;
    }
    const server = (this.options.net ?? (nodeNet as unknown as NetModule)).createServer();
    this.server = server;
    this.closed = false;
    this.closeEmitted = false;
    this.attach(server);
    server.once('listening', () => this.emit('listening'));
    server.once('error', ((e: Error) => this.emit('error', e)) as (...a: never[]) => void);
    server.listen(...args);
    return this;
  }

  private attach(source: ConnectionSource): void {
    const listener = (d: Duplex) => {
      if (!this.closed) this.emit('connection', d);
      else d.destroy();
    };
    source.on('connection', listener);
    this.sources.push({ source, listener });
  }

  /** What the server holds: open sessions, handshakes still in progress and their timers. */
  stats(): { connections: number; handshaking: number; timersArmed: number; handshakeTimeouts: number } {
    let handshaking = 0;
    for (const s of this.open) if (!s.handshake) handshaking++;
    return {
      connections: this.open.size,
      handshaking,
      timersArmed: this.handshakeTimers,
      handshakeTimeouts: this.handshakeTimeouts,
    };
  }

  /** The address listen(port) bound, as net.Server.address(); null otherwise. */
  address(): nodeNet.AddressInfo | string | null {
    return (this.server?.address() as nodeNet.AddressInfo | string | null | undefined) ?? null;
  }

  get listening(): boolean {
    return this.server !== undefined && !this.closed;
  }

  /**
   * As node:tls: stop taking connections, let the open sessions finish, and call `cb` (and
   * emit 'close') when the last has ended. The TCP server listen(port) opened is closed;
   * sources given to listen(source) are only let go (they are yours). close(true) also ends
   * the sessions in progress.
   */
  close(cb?: ((err?: Error) => void) | boolean): this {
    const destroyOpen = cb === true;
    if (typeof cb === 'function') this.closeCallbacks.push(cb);
    const wasClosed = this.closed;
    this.closed = true;
    for (const { source, listener } of this.sources.splice(0)) {
      if (source.off) source.off('connection', listener);
      else source.removeListener?.('connection', listener);
    }
    if (this.server && !wasClosed) this.server.close(() => {});
    if (destroyOpen) for (const s of [...this.open]) s.destroy();
    this.maybeClosed();
    return this;
  }

  private maybeClosed(): void {
    if (!this.closed || this.open.size > 0 || this.closeEmitted) return;
    this.closeEmitted = true;
    const cbs = this.closeCallbacks.splice(0);
    process.nextTick(() => {
      for (const cb of cbs) cb();
      this.emit('close');
    });
  }
}

/** node:tls-style createServer (see SecureServer). */
export function createServer(
  options: ServerOptions,
  onSecureConnection?: (socket: SecureSocket) => void,
): SecureServer {
  return new SecureServer(options, onSecureConnection);
}
