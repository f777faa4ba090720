/**
 * A node:tls-shaped face on our TLS 1.3 machines, for programs that hold a byte stream
 * (our TCP socket, a node:net socket, an in-memory pair) and want TLS on it:
 *
 *   const s = connect({ socket: tcp, servername: 'stepwire.test', ca: caPem, ALPNProtocols: ['http/1.1'] },
 *     () => console.log(s.authorized, s.alpnProtocol));
 *   const server = createServer({ cert: leafPem, key: keyPem }, (s) => s.pipe(s)).listen(tcpServer);
 *
 * Certificates go through our pki (credentials.ts); errors are TlsError with the alert's
 * name. Only TLS 1.3 exists here (RFC 8446): minVersion/maxVersion other than 'TLSv1.3' are
 * refused rather than silently ignored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { rootCertificates } from 'node:tls';
import type { TraceBus } from '@stepwire/wire';
import { TlsClient, type TlsClientOptions } from './client.ts';
import { CipherSuite, NamedGroup, SignatureScheme } from './codec/common.ts';
import type { SessionTicket } from './connection.ts';
import {
  type CertificatesInput,
  certificateSigner,
  certificateVerifier,
  parseCertificates,
} from './credentials.ts';
import { nobleCrypto } from './crypto/noble.ts';
import { nodeCrypto } from './crypto/node.ts';
import type { CryptoProvider } from './crypto/provider.ts';
import {
  CertificateError,
  decodeCertificate,
  NAME_ATTRIBUTES,
  type Name,
  nodeSignatures,
  type PrivateKey,
  pureSignatures,
  type SignatureProvider,
  type X509Certificate,
} from './pki/index.ts';
import { AntiReplayCache, TlsServer, type TlsServerOptions } from './server.ts';
import { decodeStoredSession, encodeStoredSession } from './session-ticket.ts';
import { TlsSocket } from './socket.ts';

/** 'noble' (pure TypeScript, with pure signatures), 'node' (OpenSSL through node:crypto) or your own. */
export type ProviderChoice = 'noble' | 'node' | CryptoProvider;

interface CommonOptions {
  /** Only 'TLSv1.3' exists here; anything else throws. */
  minVersion?: string;
  maxVersion?: string;
  /** node:tls style 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256' or code points, preferred first. */
  cipherSuites?: string | readonly number[];
  /** 'X25519:P-256' (node's ecdhCurve names) or NamedGroup code points, preferred first. */
  groups?: string | readonly number[];
  provider?: ProviderChoice;
  /** Receives each NSS key log line (no newline); also emitted as 'keylog' events (Buffer, with newline). */
  keylog?: (line: string) => void;
  trace?: TraceBus;
  /** Host name in trace events. */
  hostName?: string;
  /** The clock, in ms since the epoch (validity checks, ticket ages). Default Date.now. */
  now?: () => number;
}

export interface ConnectOptions extends CommonOptions {
  /** The byte stream to run TLS over. */
  socket: Duplex;
  /** SNI (RFC 6066; not sent for IP literals) and the name the certificate must hold. */
  servername?: string;
  /** Used as servername when that is absent, as node:tls does. */
  host?: string;
  /** Trust anchors; default node:tls's bundled root certificates. */
  ca?: CertificatesInput;
  /** Fail the handshake on a certificate we cannot verify (default true); false: report it in `authorized`. */
  rejectUnauthorized?: boolean;
  /** Our certificate chain and key, for servers that ask for one (RFC 8446 §4.3.2). */
  cert?: CertificatesInput;
  key?: string | PrivateKey;
  ALPNProtocols?: readonly string[];
  /**
   * The signature schemes we accept from the server (signature_algorithms, RFC 8446 §4.2.3),
   * preferred first: node:tls's 'ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256' or code points.
   */
  sigalgs?: string | readonly number[];
  /** A ticket from an earlier connection's 'session' event, to resume (RFC 8446 §2.2). */
  session?: SessionTicket;
  /**
   * Data to send first: as 0-RTT data with `session` when its ticket allows (RFC 8446 §2.3;
   * replayable by an attacker: idempotent requests only), otherwise, or when the server
   * refuses it, as ordinary data right after the handshake. Either way the server reads it
   * once, before anything written later; `earlyDataAccepted` tells which way it went.
   */
  earlyData?: Uint8Array | string;
  /** Send a legacy session id and change_cipher_spec (RFC 8446 §D.4). Default true, as browsers do. */
  compatibilityMode?: boolean;
}

/** One certificate chain (leaf first) and the leaf's private key. */
export interface KeyCertPair {
  cert: CertificatesInput;
  key: string | PrivateKey;
}

export interface ServerOptions extends CommonOptions {
  /**
   * Our certificate chain, leaf first, and its key. As in node:tls, several chains with keys of
   * different types may be given as arrays (`key: [ecKey, rsaKey], cert: [ecChain, rsaChain]`):
   * each handshake then takes the one that fits the client's SNI and signature_algorithms.
   */
  cert?: CertificatesInput | readonly CertificatesInput[];
  key?: string | PrivateKey | readonly (string | PrivateKey)[];
  /** Several certificates (ECDSA, RSA, Ed25519, ...), in preference order; with or instead of cert/key. */
  certificates?: readonly KeyCertPair[];
  /** Our ALPN protocols, preferred first (RFC 7301). */
  ALPNProtocols?: readonly string[];
  /** Trust anchors for client certificates (with requestCert); default node:tls's root certificates. */
  ca?: CertificatesInput;
  /** Ask clients for a certificate (RFC 8446 §4.3.2). */
  requestCert?: boolean;
  /** With requestCert: refuse clients without a valid certificate (default true). */
  rejectUnauthorized?: boolean;
  /** 32 bytes that seal our session tickets; random per server when absent (then resumption works with this server only). */
  ticketKey?: Uint8Array;
  /** Seconds a ticket is good for (RFC 8446 §4.6.1, at most 7 days). */
  sessionTimeout?: number;
  /**
   * Accept 0-RTT data (RFC 8446 §2.3): true for 16 KiB or a byte limit. It arrives as ordinary
   * readable data before 'secureConnection' and can be replayed by an attacker, so accept it
   * only for idempotent requests. An anti-replay cache per server refuses a second use.
   */
  earlyData?: boolean | number;
  /**
   * Milliseconds a client has to finish its handshake (node:tls's handshakeTimeout, same
   * default 120 s; 0 for none). A stalled one is destroyed and reported as 'tlsClientError'
   * with code ERR_TLS_HANDSHAKE_TIMEOUT, so idle connections cannot pile up. The timer is a
   * real one: with your own `now` (a virtual clock) the default is 0, so a simulation paused
   * in a debugger is not cut off.
   */
  handshakeTimeout?: number;
}

const CIPHER_NAMES = CipherSuite as Record<string, number>;
const GROUP_ALIASES: Record<string, number> = {
  x25519: NamedGroup.x25519,
  'p-256': NamedGroup.secp256r1,
  prime256v1: NamedGroup.secp256r1,
  secp256r1: NamedGroup.secp256r1,
};

function cipherSuitesOf(v: string | readonly number[] | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return [...v];
  return v
    .split(':')
    .filter((s) => s !== '')
    .map((name) => {
      const code = CIPHER_NAMES[name];
      if (code === undefined) throw new RangeError(`unknown TLS 1.3 cipher suite '${name}'`);
      return code;
    });
}

function groupsOf(v: string | readonly number[] | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return [...v];
  return v
    .split(':')
    .filter((s) => s !== '')
    .map((name) => {
      const code = GROUP_ALIASES[name.toLowerCase()];
      if (code === undefined) throw new RangeError(`unsupported group '${name}' (X25519 and P-256 exist)`);
      return code;
    });
}

const SCHEME_NAMES = SignatureScheme as Record<string, number>;

function sigalgsOf(v: string | readonly number[] | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return [...v];
  return v
    .split(':')
    .filter((s) => s !== '')
    .map((name) => {
      const code = SCHEME_NAMES[name.toLowerCase()];
      if (code === undefined) throw new RangeError(`unknown TLS 1.3 signature scheme '${name}'`);
      return code;
    });
}

function checkVersions(o: CommonOptions): void {
  for (const [k, v] of [
    ['minVersion', o.minVersion],
    ['maxVersion', o.maxVersion],
  ] as const) {
    if (v !== undefined && v !== 'TLSv1.3')
      throw new RangeError(`${k} '${v}': only TLSv1.3 is implemented (RFC 8446)`);
  }
}

function providerOf(p: ProviderChoice | undefined): {
  crypto: CryptoProvider;
  signatures?: SignatureProvider;
} {
  if (p === undefined) return { crypto: nobleCrypto };
  if (p === 'noble') return { crypto: nobleCrypto, signatures: pureSignatures };
  if (p === 'node') return { crypto: nodeCrypto, signatures: nodeSignatures };
  return { crypto: p };
}

let defaultAnchors: X509Certificate[] | undefined;
/** node:tls's bundled Mozilla roots, parsed once; any our strict parser refuses is left out. */
function defaultCa(): X509Certificate[] {
  if (!defaultAnchors) {
    defaultAnchors = rootCertificates.flatMap((pem) => {
      try {
        return parseCertificates(pem);
      } catch {
        return [];
      }
    });
  }
  return defaultAnchors;
}

/**
 * The key/cert pairs of server options: `certificates`, then cert/key, where (as in node:tls)
 * a key array goes with a cert array of the same length, one chain per key.
 */
function keyCertPairs(o: Pick<ServerOptions, 'cert' | 'key' | 'certificates'>): KeyCertPair[] {
  const out: KeyCertPair[] = [...(o.certificates ?? [])];
  if (o.key === undefined && o.cert === undefined) return out;
  if (o.key === undefined || o.cert === undefined) throw new TypeError('cert and key go together');
  if (Array.isArray(o.key)) {
    const certs = o.cert as readonly CertificatesInput[];
    if (!Array.isArray(o.cert) || certs.length !== o.key.length)
      throw new TypeError('with several keys, cert is an array of as many chains, in the same order');
    const keys = o.key as readonly (string | PrivateKey)[];
    for (let i = 0; i < keys.length; i++) out.push({ key: keys[i]!, cert: certs[i]! });
  } else out.push({ key: o.key as string | PrivateKey, cert: o.cert as CertificatesInput });
  return out;
}

/** A peer certificate as node:tls's getPeerCertificate() describes it. */
export interface PeerCertificate {
  subject: Record<string, string>;
  issuer: Record<string, string>;
  /** 'DNS:stepwire.test, IP Address:198.18.0.2', as node:tls writes it. */
  subjectaltname?: string;
  valid_from: string;
  valid_to: string;
  /** Hex, upper case. */
  serialNumber: string;
  /** SHA-256 of the DER, 'AB:CD:...'. */
  fingerprint256: string;
  ca: boolean;
  raw: Buffer;
  /** The parsed certificate, for everything else. */
  x509: X509Certificate;
}

function nameRecord(n: Name): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rdn of n.rdns) for (const a of rdn) out[NAME_ATTRIBUTES[a.type] ?? a.type] = a.value;
  return out;
}

function describePeer(der: Uint8Array): PeerCertificate {
  const c = decodeCertificate(der);
  const san = (c.subjectAltName ?? [])
    .map((g) =>
      g.type === 'dns'
        ? `DNS:${g.value}`
        : g.type === 'ip'
          ? `IP Address:${g.value}`
          : g.type === 'email'
            ? `email:${g.value}`
            : g.type === 'uri'
              ? `URI:${g.value}`
              : undefined,
    )
    .filter((s) => s !== undefined);
  const digest = createHash('sha256').update(der).digest('hex').toUpperCase();
  return {
    subject: nameRecord(c.subject),
    issuer: nameRecord(c.issuer),
    ...(san.length ? { subjectaltname: san.join(', ') } : {}),
    valid_from: c.notBefore.toUTCString(),
    valid_to: c.notAfter.toUTCString(),
    serialNumber: c.serialNumber.toString(16).toUpperCase(),
    fingerprint256: digest.match(/../g)!.join(':'),
    ca: c.basicConstraints?.cA ?? false,
    raw: Buffer.from(der),
    x509: c,
  };
}

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
 * make their server emit 'secureConnection'; both emit 'session' (client: a SessionTicket
 * for `session` next time) and 'keylog' (Buffer line with newline, as node:tls).
 */
export class SecureSocket extends TlsSocket {
  readonly encrypted = true;
  /** The peer's chain verified (client: always, unless rejectUnauthorized was false; server: with requestCert). */
  authorized = false;
  /** Why `authorized` is false: the pki error, with its code and the alert it maps to. */
  authorizationError?: CertificateError;
  /** For a client with `earlyData`: whether the server took it (RFC 8446 §4.2.10). */
  earlyDataAccepted?: boolean;
  private lastSession?: SessionTicket;
  /** Client 0-RTT: writes wait here until we know whether the early data must be sent again. */
  private early?: { data: Uint8Array; held: { chunk: Buffer; cb: (e?: Error | null) => void }[] };

  constructor(
    transport: Duplex,
    machine: TlsClient | TlsServer,
    readonly isServer: boolean,
    now?: () => number,
  ) {
    super(transport, machine, now ? { now } : {});
    this.on('session', (t: SessionTicket) => {
      this.lastSession = t;
    });
    this.on('earlyDataStatus', (accepted: boolean) => {
      this.earlyDataAccepted = accepted;
    });
    // An idle timeout set through us (node:http's keepAliveTimeout, say) fires on the transport.
    transport.on('timeout', () => this.emit('timeout'));
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

  /** The latest session ticket the server sent (client), for `session` on a later connect. */
  getSession(): SessionTicket | undefined {
    return this.lastSession;
  }

  isSessionReused(): boolean {
    return this.handshake?.resumed ?? false;
  }

  /** The peer's leaf; undefined before the handshake or when the peer sent none. */
  getPeerCertificate(): PeerCertificate | undefined {
    const leaf = this.handshake?.peerCertificates[0];
    return leaf && describePeer(leaf);
  }

  /** The peer's certificates as sent, leaf first, parsed. */
  getPeerX509Certificates(): X509Certificate[] {
    return (this.handshake?.peerCertificates ?? []).map((d) => decodeCertificate(d));
  }
}

function keylogFanout(o: CommonOptions, target: () => EventEmitter | undefined, server?: SecureServer) {
  return (line: string) => {
    o.keylog?.(line);
    const s = target();
    const buf = Buffer.from(`${line}\n`);
    s?.emit('keylog', buf);
    server?.emit('keylog', buf, s);
  };
}

/** For each ticket our clients received: whether the connection that got it was authorized. */
const ticketOrigin = new WeakMap<
  SessionTicket,
  { authorized: boolean; authorizationError?: CertificateError }
>();

/**
 * A session from the 'session' event as bytes to keep (a file, a cache), with whether its
 * connection was authorized, so a resumption from it reports `authorized` again. The bytes
 * hold the resumption secret: keep them as private as a key.
 */
export function encodeSession(ticket: SessionTicket): Buffer {
  const origin = ticketOrigin.get(ticket);
  return Buffer.from(encodeStoredSession({ ticket, authorized: origin?.authorized === true }));
}

/** A session back from encodeSession's bytes, for `session` in connect(). Throws ParseError on other bytes. */
export function decodeSession(bytes: Uint8Array): SessionTicket {
  const { ticket, authorized } = decodeStoredSession(bytes);
  ticketOrigin.set(
    ticket,
    authorized
      ? { authorized }
      : {
          authorized,
          authorizationError: new CertificateError(
            'no_certificate',
            'the connection that got this session did not verify the server',
          ),
        },
  );
  return ticket;
}

/** Is `x` a stream rather than an options object? (the low-level connect(transport, options) form) */
function isStream(x: unknown): x is Duplex {
  return typeof (x as Duplex)?.pipe === 'function' && typeof (x as Duplex)?.write === 'function';
}

/**
 * node:tls-style: TLS 1.3 over `options.socket`, the handshake started at once. The result
 * emits 'secureConnect' (also given as `onSecureConnect`) once the handshake is done and the
 * server's certificate verified; a failure is an 'error' event with a TlsError.
 *
 * The low-level form connect(transport, TlsClientOptions) of socket.ts is kept: it takes
 * the machine's own options (a CertificateVerifier rather than PEM).
 */
export function connect(options: ConnectOptions, onSecureConnect?: () => void): SecureSocket;
export function connect(transport: Duplex, options: TlsClientOptions): TlsSocket;
export function connect(
  a: ConnectOptions | Duplex,
  b?: (() => void) | TlsClientOptions,
): SecureSocket | TlsSocket {
  if (isStream(a)) return new TlsSocket(a, new TlsClient(b as TlsClientOptions)).startHandshake();
  const o = a;
  checkVersions(o);
  const { crypto, signatures } = providerOf(o.provider);
  const servername = o.servername ?? o.host;
  const reject = o.rejectUnauthorized ?? true;
  let socket: SecureSocket | undefined;
  let result: { ok: boolean; error?: CertificateError } | undefined;
  const sigalgs = sigalgsOf(o.sigalgs);
  const verifier = certificateVerifier({
    ...(sigalgs ? { signatureSchemes: sigalgs } : {}),
    ca: o.ca ?? defaultCa(),
    purpose: 'serverAuth',
    // node:tls checks 'localhost' when neither servername nor host is given; so do we.
    hostname: servername ?? 'localhost',
    ...(signatures ? { signatures } : {}),
    reject,
    onResult: (r) => {
      result = r.ok ? { ok: true } : { ok: false, error: r.error };
    },
  });
  const earlyData = typeof o.earlyData === 'string' ? Buffer.from(o.earlyData) : o.earlyData;
  const cipherSuites = cipherSuitesOf(o.cipherSuites);
  const groups = groupsOf(o.groups);
  const options: TlsClientOptions = {
    verifier,
    crypto,
    compatibilityMode: o.compatibilityMode ?? true,
    keyLog: keylogFanout(o, () => socket),
    ...(servername !== undefined ? { serverName: servername } : {}),
    ...(cipherSuites ? { cipherSuites } : {}),
    ...(groups ? { groups } : {}),
    ...(o.ALPNProtocols ? { alpnProtocols: o.ALPNProtocols } : {}),
    ...(o.session ? { session: o.session } : {}),
    ...(earlyData ? { earlyData: new Uint8Array(earlyData) } : {}),
    ...(o.cert !== undefined && o.key !== undefined
      ? {
          certificate: certificateSigner({ cert: o.cert, key: o.key, ...(signatures ? { signatures } : {}) }),
        }
      : {}),
    ...(o.trace ? { trace: o.trace } : {}),
    ...(o.hostName ? { host: o.hostName } : {}),
  };
  socket = new SecureSocket(o.socket, new TlsClient(options), false, o.now);
  const s = socket;
  if (earlyData) s.holdForEarlyData(new Uint8Array(earlyData));
  s.once('secure', () => {
    if (s.handshake?.resumed) {
      // RFC 8446 §2.2: a resumed handshake is authenticated by the PSK, which stands for the
      // connection that issued the ticket; that connection's verdict carries over.
      const origin = o.session && ticketOrigin.get(o.session);
      s.authorized = origin?.authorized === true;
      if (origin?.authorizationError) s.authorizationError = origin.authorizationError;
      else if (!origin)
        s.authorizationError = new CertificateError(
          'no_certificate',
          'resumed from a ticket whose first connection this process did not see',
        );
    } else {
      s.authorized = result?.ok === true;
      if (result?.error) s.authorizationError = result.error;
    }
    // After the verdict, so a secureConnect listener reads `authorized` as it will stay.
    s.emit('secureConnect');
  });
  s.on('session', (t: SessionTicket) => {
    ticketOrigin.set(t, {
      authorized: s.authorized,
      ...(s.authorizationError ? { authorizationError: s.authorizationError } : {}),
    });
  });
  if (typeof b === 'function') s.once('secureConnect', b);
  // Listeners attach after connect() returns; the ClientHello goes out on the next tick.
  process.nextTick(() => {
    if (!s.destroyed) s.startHandshake();
  });
  return s;
}

/** Anything that announces incoming byte streams: our TcpServer, node:net.Server, ... */
export interface ConnectionSource {
  on(event: 'connection', listener: (socket: Duplex) => void): unknown;
  off?(event: 'connection', listener: (socket: Duplex) => void): unknown;
  removeListener?(event: 'connection', listener: (socket: Duplex) => void): unknown;
}

/**
 * A TLS server in the shape of node:tls.Server, without a listening socket of its own: hand
 * it byte streams with `server.emit('connection', duplex)` (as node:http takes them) or
 * `accept(duplex)`, or let `listen(source)` take every connection of a TCP server. Emits
 * 'secureConnection' (SecureSocket), 'tlsClientError' (TlsError, socket) for handshakes that
 * fail, 'keylog' (line, socket).
 */
export class SecureServer extends EventEmitter {
  /** Connections handed to us so far. */
  connections = 0;
  private readonly base: Omit<TlsServerOptions, 'clientAuth'>;
  private readonly options: ServerOptions;
  private readonly signatures?: SignatureProvider;
  private readonly clientCa?: X509Certificate[];
  private readonly sources: { source: ConnectionSource; listener: (s: Duplex) => void }[] = [];
  private readonly open = new Set<SecureSocket>();
  private closed = false;

  constructor(options: ServerOptions, onSecureConnection?: (socket: SecureSocket) => void) {
    super();
    checkVersions(options);
    this.options = options;
    const { crypto, signatures } = providerOf(options.provider);
    this.signatures = signatures;
    const signer = keyCertPairs(options).map((p) =>
      certificateSigner({ cert: p.cert, key: p.key, ...(signatures ? { signatures } : {}) }),
    );
    if (signer.length === 0) throw new TypeError('a TLS server needs cert and key (or certificates)');
    const maxEarlyData =
      options.earlyData === true ? 16 * 1024 : options.earlyData ? Math.max(0, options.earlyData) : 0;
    const cipherSuites = cipherSuitesOf(options.cipherSuites);
    const groups = groupsOf(options.groups);
    this.base = {
      signer,
      crypto,
      // One key for every connection of this server: a ticket from one resumes on another.
      ticketKey: options.ticketKey ?? new Uint8Array(randomBytes(32)),
      ...(cipherSuites ? { cipherSuites } : {}),
      ...(groups ? { groups } : {}),
      ...(options.ALPNProtocols ? { alpnProtocols: options.ALPNProtocols } : {}),
      ...(options.sessionTimeout !== undefined ? { ticketLifetimeSeconds: options.sessionTimeout } : {}),
      ...(maxEarlyData > 0 ? { maxEarlyData, antiReplay: new AntiReplayCache() } : {}),
      ...(options.trace ? { trace: options.trace } : {}),
      ...(options.hostName ? { host: options.hostName } : {}),
    };
    if (options.requestCert) this.clientCa = options.ca ? parseCertificates(options.ca) : defaultCa();
    if (onSecureConnection) this.on('secureConnection', onSecureConnection);
    this.on('connection', (duplex: Duplex) => {
      this.accept(duplex);
    });
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
    this.open.add(s);
    s.once('close', () => this.open.delete(s));
    // 0-RTT data is application data that came early: the reader gets it first, in order.
    s.on('earlyData', (d: Uint8Array) => s.push(d));
    const onError = (e: Error) => this.emit('tlsClientError', e, s);
    s.on('error', onError);
    const limit = o.handshakeTimeout ?? (o.now ? 0 : 120_000);
    const timer =
      limit > 0
        ? setTimeout(() => {
            s.destroy(
              Object.assign(new Error('TLS handshake timeout'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }),
            );
          }, limit)
        : undefined;
    timer?.unref?.();
    s.once('close', () => clearTimeout(timer));
    s.once('secure', () => {
      clearTimeout(timer);
      s.off('error', onError);
      if (s.handshake?.resumed && this.clientCa && reject) {
        // Our tickets come only from handshakes that passed the same required client
        // authentication, so a resumption is that client again (its certificate is not in the ticket).
        s.authorized = true;
      } else {
        s.authorized = result?.ok === true;
        if (result?.error) s.authorizationError = result.error;
      }
      this.emit('secureConnection', s);
    });
    return s;
  }

  /** Take every 'connection' of `source` (our TcpServer, node:net.Server). */
  listen(source: ConnectionSource): this {
    const listener = (d: Duplex) => {
      if (!this.closed) this.emit('connection', d);
    };
    source.on('connection', listener);
    this.sources.push({ source, listener });
    return this;
  }

  /**
   * Stop taking connections (detach from the sources given to listen(); they stay open, they
   * are yours) and, with `destroyOpen`, end the sessions in progress too.
   */
  close(destroyOpen = false): void {
    this.closed = true;
    for (const { source, listener } of this.sources.splice(0)) {
      if (source.off) source.off('connection', listener);
      else source.removeListener?.('connection', listener);
    }
    if (destroyOpen) for (const s of [...this.open]) s.destroy();
    this.emit('close');
  }
}

/** node:tls-style createServer (see SecureServer). */
export function createServer(
  options: ServerOptions,
  onSecureConnection?: (socket: SecureSocket) => void,
): SecureServer {
  return new SecureServer(options, onSecureConnection);
}
