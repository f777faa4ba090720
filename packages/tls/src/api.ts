/**
 * A node:tls-shaped face on our TLS 1.3 machines, for programs that hold a byte stream
 * (our TCP socket, a node:net socket, an in-memory pair) and want TLS on it:
 *
 *   const s = connect({ host: 'stepwire.test', port: 443, ca: caPem, ALPNProtocols: ['http/1.1'] },
 *     () => console.log(s.authorized, s.alpnProtocol));
 *   const server = createServer({ cert: leafPem, key: keyPem }, (s) => s.pipe(s)).listen(8443);
 *
 * Sockets come from node:net by default; `net: ourTcp` (anything with connect() and
 * createServer(), like @stepwire/tcp's Tcp) runs the same code on our TCP, and `socket: duplex`
 * runs it over a stream you already hold (`listen(source)` takes a server's connections).
 *
 * Certificates go through our pki (credentials.ts); errors are TlsError with the alert's
 * name. Only TLS 1.3 exists here (RFC 8446): minVersion/maxVersion other than 'TLSv1.3' are
 * refused rather than silently ignored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as nodeNet from 'node:net';
import type { Duplex } from 'node:stream';
import { rootCertificates } from 'node:tls';
import type { TraceBus } from '@stepwire/wire';
import type { AntiReplayStore } from './anti-replay.ts';
import type { CertificateSigner, CertificateVerifier } from './auth.ts';
import type { CertificateCompressor } from './cert-compression.ts';
import { TlsClient, type TlsClientOptions } from './client.ts';
import { AlertDescription, TlsAlertError } from './codec/alert.ts';
import { CipherSuite, ContentType, HandshakeType, NamedGroup, SignatureScheme } from './codec/common.ts';
import { decodeHandshake } from './codec/handshake.ts';
import type { SessionTicket, TlsEvent } from './connection.ts';
import {
  type CertificatesInput,
  certificateSigner,
  certificateVerifier,
  parseCertificates,
} from './credentials.ts';
import { nobleCrypto } from './crypto/noble.ts';
import { nodeCrypto } from './crypto/node.ts';
import type { CryptoProvider } from './crypto/provider.ts';
import { nodeCodeForCertificateError, X509_MESSAGE } from './node-codes.ts';
import {
  CertificateError,
  decodeCertificate,
  matchesHostname,
  NAME_ATTRIBUTES,
  type Name,
  namesEqual,
  nodeSignatures,
  type PrivateKey,
  pureSignatures,
  type SignatureProvider,
  type X509Certificate,
} from './pki/index.ts';
import { AntiReplayCache, TlsServer, type TlsServerOptions } from './server.ts';
import { decodeStoredSession, encodeStoredSession } from './session-ticket.ts';
import { type TlsError, TlsSocket } from './socket.ts';

/** 'noble' (pure TypeScript, with pure signatures), 'node' (OpenSSL through node:crypto) or your own. */
export type ProviderChoice = 'noble' | 'node' | CryptoProvider;

/** What connect() and listen() need from a TCP stack: node:net, or our Tcp. */
export interface NetModule {
  connect(options: { host: string; port: number }): Duplex;
  createServer(): NetServerLike;
}

/** A listening TCP server as node:net.Server (and our TcpServer) shape it. */
export interface NetServerLike extends ConnectionSource {
  listen(...args: unknown[]): unknown;
  address(): unknown;
  close(cb?: (err?: Error) => void): unknown;
  once(event: string, listener: (...args: never[]) => void): unknown;
}

interface CommonOptions {
  /** Only 'TLSv1.3' exists here; anything else throws. */
  minVersion?: string;
  maxVersion?: string;
  /** node:tls style 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256' or code points, preferred first. */
  cipherSuites?: string | readonly number[];
  /**
   * node:tls's `ciphers` list: its TLS 1.3 suite names are taken (as cipherSuites), the TLS 1.2
   * names it may also hold are ignored, since only TLS 1.3 exists here.
   */
  ciphers?: string;
  /** 'X25519:P-256' (node's ecdhCurve names) or NamedGroup code points, preferred first. */
  groups?: string | readonly number[];
  /** node:tls's name for `groups`: 'auto' (our default order) or 'X25519:P-256'. */
  ecdhCurve?: string;
  /**
   * Where TCP connections come from when no `socket` is given (connect) or when listen() gets
   * a port: node:net by default, or anything shaped like it, e.g. @stepwire/tcp's Tcp.
   */
  net?: NetModule;
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
  /** The byte stream to run TLS over; without it we open a TCP connection to host:port (`net`). */
  socket?: Duplex;
  /** With host, where to connect when no socket is given. */
  port?: number;
  /** SNI (RFC 6066; not sent for IP literals) and the name the certificate must hold. */
  servername?: string;
  /** Where to connect (default 'localhost'), and servername when that is absent, as node:tls does. */
  host?: string;
  /**
   * Our own check of the server's name, as node:tls's: return an Error to refuse the server
   * (its `code` becomes the connection error's code), undefined to accept. Replaces the RFC
   * 6125 check we otherwise make against servername.
   */
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
  /** node:tls's createSecureContext() result: its ca, cert and key unless given here. */
  secureContext?: SecureContext;
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
  /**
   * A session from an earlier connection's 'session' event (bytes, as node:tls's Buffer) to
   * resume (RFC 8446 §2.2); a SessionTicket object works too.
   */
  session?: Uint8Array | SessionTicket;
  /**
   * Data to send first: as 0-RTT data with `session` when its ticket allows (RFC 8446 §2.3;
   * replayable by an attacker: idempotent requests only), otherwise, or when the server
   * refuses it, as ordinary data right after the handshake. Either way the server reads it
   * once, before anything written later; `earlyDataAccepted` tells which way it went.
   */
  earlyData?: Uint8Array | string;
  /** Send a legacy session id and change_cipher_spec (RFC 8446 §D.4). Default true, as browsers do. */
  compatibilityMode?: boolean;
  /** Offer certificate compression (RFC 8879), e.g. [brotliCompressor, zlibCompressor]. None by default. */
  certificateCompression?: readonly CertificateCompressor[];
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
  /** node:tls's form: 48 bytes (our sealing key is derived from them); see getTicketKeys/setTicketKeys. */
  ticketKeys?: Uint8Array;
  /**
   * node:tls's SNICallback: given the client's server_name, answer cb(null, secureContext) with
   * the certificates for it (or cb(err) to refuse the client). It may answer later: the
   * handshake waits. Not called for clients that send no SNI.
   */
  SNICallback?: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  /** node:tls's ALPNCallback: choose from the client's protocols, or return undefined to refuse it. */
  ALPNCallback?: (offer: { servername?: string; protocols: string[] }) => string | undefined;
  /** A createSecureContext() result: its certificates when cert/key are not given. */
  secureContext?: SecureContext;
  /** Certificate compression we do for clients that offer it (RFC 8879): default brotli, zlib; false for none. */
  certificateCompression?: readonly CertificateCompressor[] | false;
  /** Allow psk_ke (PSK without (EC)DHE, no forward secrecy; RFC 8446 §4.2.9) for resumption. Default false. */
  allowPskKe?: boolean;
  /** Seconds a ticket is good for (RFC 8446 §4.6.1, at most 7 days). */
  sessionTimeout?: number;
  /**
   * Accept 0-RTT data (RFC 8446 §2.3): true for 16 KiB or a byte limit. It arrives as ordinary
   * readable data before 'secureConnection' and can be replayed by an attacker, so accept it
   * only for idempotent requests. An anti-replay cache per server refuses a second use.
   */
  earlyData?: boolean | number;
  /**
   * The strike register that lets each 0-RTT ClientHello in once (RFC 8446 §8). Default: in
   * memory, per server. A FileAntiReplayStore keeps refusing replays across restarts and
   * processes (with `ticketKeys` shared, a ticket outlives the process that issued it).
   */
  antiReplay?: AntiReplayStore;
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
  x25519mlkem768: NamedGroup.X25519MLKEM768,
  x25519: NamedGroup.x25519,
  'p-256': NamedGroup.secp256r1,
  prime256v1: NamedGroup.secp256r1,
  secp256r1: NamedGroup.secp256r1,
  'p-384': NamedGroup.secp384r1,
  secp384r1: NamedGroup.secp384r1,
  'p-521': NamedGroup.secp521r1,
  secp521r1: NamedGroup.secp521r1,
  x448: NamedGroup.x448,
};

/** cipherSuites, else the TLS 1.3 names in node:tls's `ciphers` (undefined: our default). */
function suitesOf(o: CommonOptions): number[] | undefined {
  if (o.cipherSuites !== undefined) return cipherSuitesOf(o.cipherSuites);
  const names = (o.ciphers ?? '').split(':').filter((n) => CIPHER_NAMES[n] !== undefined);
  return names.length > 0 ? cipherSuitesOf(names.join(':')) : undefined;
}

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
  if (v === undefined || v === 'auto') return undefined;
  if (typeof v !== 'string') return [...v];
  return v
    .split(':')
    .filter((s) => s !== '')
    .map((name) => {
      const code = GROUP_ALIASES[name.toLowerCase()];
      if (code === undefined)
        throw new RangeError(
          `unsupported group '${name}' (X25519MLKEM768, X25519, X448, P-256, P-384 and P-521 exist)`,
        );
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

const VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** A minVersion up to TLSv1.3 allows TLS 1.3; a maxVersion below it would need a TLS we lack. */
function checkVersions(o: CommonOptions): void {
  if (o.minVersion !== undefined && !VERSIONS.includes(o.minVersion))
    throw new RangeError(`minVersion '${o.minVersion}' is not a TLS version`);
  if (o.maxVersion !== undefined && o.maxVersion !== 'TLSv1.3')
    throw new RangeError(`maxVersion '${o.maxVersion}': only TLSv1.3 is implemented (RFC 8446)`);
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
  /** 'Dec  6 18:46:40 2026 GMT', as OpenSSL prints times. */
  valid_from: string;
  valid_to: string;
  /** Hex, upper case, two digits a byte. */
  serialNumber: string;
  /** SHA-1, SHA-256 and SHA-512 of the DER, 'AB:CD:...'. */
  fingerprint: string;
  fingerprint256: string;
  fingerprint512: string;
  /** Key size in bits (RSA modulus, EC curve, 253 for Ed25519 as OpenSSL says). */
  bits?: number;
  /** Extended key usage OIDs. */
  ext_key_usage?: string[];
  ca: boolean;
  raw: Buffer;
  /** The parsed certificate, for everything else. */
  x509: X509Certificate;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** OpenSSL's ASN1_TIME_print form, which node:tls's valid_from/valid_to carry: 'Dec  6 18:46:40 2026 GMT'. */
function opensslTime(d: Date): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const time = `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${time} ${d.getUTCFullYear()} GMT`;
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
  const fp = (alg: string) =>
    (createHash(alg).update(der).digest('hex').toUpperCase().match(/../g) ?? []).join(':');
  const serial = c.serialNumber.toString(16).toUpperCase();
  const key = c.subjectPublicKeyInfo.publicKey;
  const bits = key.type === 'rsa' ? key.bits : key.type === 'ec' ? (key.curve === 'P-256' ? 256 : 384) : 253;
  return {
    subject: nameRecord(c.subject),
    issuer: nameRecord(c.issuer),
    ...(san.length ? { subjectaltname: san.join(', ') } : {}),
    valid_from: opensslTime(c.notBefore),
    valid_to: opensslTime(c.notAfter),
    serialNumber: serial.length % 2 ? `0${serial}` : serial,
    fingerprint: fp('sha1'),
    fingerprint256: fp('sha256'),
    fingerprint512: fp('sha512'),
    bits,
    ...(c.extKeyUsage ? { ext_key_usage: [...c.extKeyUsage] } : {}),
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
 * node:tls's SecureContext: certificates (and trust anchors) made once and used by many
 * connections, for SNICallback, addContext and the secureContext options.
 */
export class SecureContext {
  /** Our certificates, in preference order (empty for a client-only context without cert/key). */
  readonly signers: readonly CertificateSigner[];
  readonly ca?: X509Certificate[];
  /** The parsed options, so a client context can still give its own cert and key. */
  readonly pairs: readonly KeyCertPair[];
  constructor(options: SecureContextOptions = {}) {
    const { signatures } = providerOf(options.provider);
    this.pairs = keyCertPairs(options);
    this.signers = this.pairs.map((p) =>
      certificateSigner({ cert: p.cert, key: p.key, ...(signatures ? { signatures } : {}) }),
    );
    if (options.ca !== undefined) this.ca = parseCertificates(options.ca);
  }
}

export interface SecureContextOptions {
  cert?: CertificatesInput | readonly CertificatesInput[];
  key?: string | PrivateKey | readonly (string | PrivateKey)[];
  certificates?: readonly KeyCertPair[];
  ca?: CertificatesInput;
  provider?: ProviderChoice;
}

/** node:tls's createSecureContext. */
export function createSecureContext(options: SecureContextOptions = {}): SecureContext {
  return new SecureContext(options);
}

/** A chain as node:tls tells unknown issuers apart: which certificates sign themselves. */
function chainShape(chain: readonly Uint8Array[]): { selfSigned: boolean }[] {
  return chain.map((der) => {
    try {
      const c = decodeCertificate(der);
      return { selfSigned: namesEqual(c.subject, c.issuer) };
    } catch {
      return { selfSigned: false };
    }
  });
}

/** A refused certificate's Node code, and OpenSSL's words for it where Node users know them. */
function certificateFailure(
  error: CertificateError,
  chain: readonly Uint8Array[],
): { code: string; message: string } {
  const code = nodeCodeForCertificateError(error, chainShape(chain));
  return { code, message: X509_MESSAGE[code] ?? error.message };
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

/**
 * The server_name in the ClientHello at the start of `held` (cleartext handshake records),
 * 'incomplete' while more bytes are needed, undefined when there is none or the bytes are not
 * a ClientHello (the machine then answers them as it should).
 */
function peekServerName(held: readonly Uint8Array[]): string | undefined | 'incomplete' {
  const all = Buffer.concat(held);
  const body: Buffer[] = [];
  let at = 0;
  let have = 0;
  while (all.length - at >= 5) {
    if (all[at] !== ContentType.handshake) return undefined;
    const len = all.readUInt16BE(at + 3);
    if (all.length - at < 5 + len) break;
    body.push(all.subarray(at + 5, at + 5 + len));
    have += len;
    at += 5 + len;
    const msg = Buffer.concat(body);
    if (msg.length >= 4) {
      if (msg[0] !== HandshakeType.client_hello) return undefined;
      const need = 4 + msg.readUIntBE(1, 3);
      if (have >= need) {
        try {
          const ch = decodeHandshake(new Uint8Array(msg.subarray(0, need)));
          if (ch.msgType !== 'client_hello') return undefined;
          const sni = ch.extensions.find((e) => e.type === 'server_name');
          return sni && 'hostName' in sni ? sni.hostName : undefined;
        } catch {
          return undefined;
        }
      }
    }
  }
  // A ClientHello is at most 2^24 bytes, but we hold no more than 64 KiB waiting for one.
  return all.length > 1 << 16 ? undefined : 'incomplete';
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

/** node:tls's default check of the server's name (RFC 6125), with its error code and message. */
export function checkServerIdentity(hostname: string, cert: PeerCertificate): Error | undefined {
  if (cert.x509 && matchesHostname(cert.x509, hostname, false)) return undefined;
  const err = new Error(
    `Hostname/IP does not match certificate's altnames: Host: ${hostname}. is not in the cert's altnames: ${cert.subjectaltname ?? ''}`,
  ) as Error & { code: string; reason: string; host: string; cert: PeerCertificate };
  err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
  err.reason = `Host: ${hostname}. is not in the cert's altnames: ${cert.subjectaltname ?? ''}`;
  err.host = hostname;
  err.cert = cert;
  return err;
}

/**
 * node:tls-style: TLS 1.3 to `host:port` over a TCP connection we open (node:net, or `net`),
 * or over `options.socket`; the handshake starts on the next tick. The result emits
 * 'secureConnect' (also given as `onSecureConnect`) once the handshake is done and the
 * server's certificate verified; a failure is an 'error' event with a TlsError whose `code`
 * is node:tls's (ERR_TLS_CERT_ALTNAME_INVALID, UNABLE_TO_VERIFY_LEAF_SIGNATURE,
 * ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE, ...) and whose `alert` is the TLS alert.
 *
 * Also as node:tls: connect(port[, host][, options][, onSecureConnect]). The low-level form
 * connect(transport, TlsClientOptions) of socket.ts is kept: it takes the machine's own
 * options (a CertificateVerifier rather than PEM).
 */
export function connect(options: ConnectOptions, onSecureConnect?: () => void): SecureSocket;
export function connect(
  port: number,
  host?: string | ConnectOptions | (() => void),
  options?: ConnectOptions | (() => void),
  onSecureConnect?: () => void,
): SecureSocket;
export function connect(transport: Duplex, options: TlsClientOptions): TlsSocket;
export function connect(
  a: ConnectOptions | Duplex | number,
  b?: (() => void) | TlsClientOptions | string | ConnectOptions,
  c?: ConnectOptions | (() => void),
  d?: () => void,
): SecureSocket | TlsSocket {
  if (isStream(a)) return new TlsSocket(a, new TlsClient(b as TlsClientOptions)).startHandshake();
  if (typeof a === 'number') {
    const args = [b, c, d];
    const host = typeof args[0] === 'string' ? (args.shift() as string) : undefined;
    const opts = typeof args[0] === 'object' ? (args.shift() as ConnectOptions) : {};
    const cb = args.find((x): x is () => void => typeof x === 'function');
    return connectWith({ ...opts, port: a, ...(host !== undefined ? { host } : {}) }, cb);
  }
  return connectWith(a, typeof b === 'function' ? b : undefined);
}

function connectWith(o: ConnectOptions, onSecureConnect?: () => void): SecureSocket {
  checkVersions(o);
  const { crypto, signatures } = providerOf(o.provider);
  const servername = o.servername ?? o.host;
  const reject = o.rejectUnauthorized ?? true;
  let socket: SecureSocket | undefined;
  let result: { ok: boolean; error?: CertificateError; chain: readonly Uint8Array[] } | undefined;
  let identityError: Error | undefined;
  const sigalgs = sigalgsOf(o.sigalgs);
  const ctx = o.secureContext;
  // node:tls checks 'localhost' when neither servername nor host is given; so do we.
  const checkedName = servername ?? 'localhost';
  const base = certificateVerifier({
    ...(sigalgs ? { signatureSchemes: sigalgs } : {}),
    ca: o.ca ?? ctx?.ca ?? defaultCa(),
    purpose: 'serverAuth',
    hostname: checkedName,
    checkHostname: o.checkServerIdentity === undefined,
    ...(signatures ? { signatures } : {}),
    reject,
    onResult: (r) => {
      result = r.ok ? { ok: true, chain: lastChain } : { ok: false, error: r.error, chain: lastChain };
    },
  });
  let lastChain: readonly Uint8Array[] = [];
  const verifier: CertificateVerifier = {
    signatureSchemes: base.signatureSchemes,
    verifySignature: (...args) => base.verifySignature(...args),
    verifyChain(chain, context) {
      lastChain = chain;
      base.verifyChain(chain, context);
      const leaf = chain[0];
      if (o.checkServerIdentity && leaf && result?.ok) {
        identityError = o.checkServerIdentity(checkedName, describePeer(leaf));
        if (identityError) {
          result = {
            ok: false,
            error: new CertificateError('hostname_mismatch', identityError.message, 0),
            chain,
          };
          // RFC 8446 §4.4.2.4: a server we refuse gets bad_certificate, as for a wrong name.
          if (reject) throw new TlsAlertError(AlertDescription.bad_certificate, identityError.message);
        }
      }
    },
  };
  const earlyData = typeof o.earlyData === 'string' ? Buffer.from(o.earlyData) : o.earlyData;
  const cipherSuites = suitesOf(o);
  const groups = groupsOf(o.groups ?? o.ecdhCurve);
  const session = o.session instanceof Uint8Array ? decodeSession(o.session) : o.session;
  const own = o.cert !== undefined && o.key !== undefined ? { cert: o.cert, key: o.key } : ctx?.pairs[0];
  const options: TlsClientOptions = {
    verifier,
    crypto,
    compatibilityMode: o.compatibilityMode ?? true,
    keyLog: keylogFanout(o, () => socket),
    ...(servername !== undefined ? { serverName: servername } : {}),
    ...(cipherSuites ? { cipherSuites } : {}),
    ...(groups ? { groups } : {}),
    ...(o.ALPNProtocols ? { alpnProtocols: o.ALPNProtocols } : {}),
    ...(o.certificateCompression ? { certificateCompression: o.certificateCompression } : {}),
    ...(session ? { session } : {}),
    ...(earlyData ? { earlyData: new Uint8Array(earlyData) } : {}),
    ...(own
      ? {
          certificate: certificateSigner({
            cert: own.cert,
            key: own.key,
            ...(signatures ? { signatures } : {}),
          }),
        }
      : {}),
    ...(o.trace ? { trace: o.trace } : {}),
    ...(o.hostName ? { host: o.hostName } : {}),
  };
  const transport =
    o.socket ?? (o.net ?? nodeNet).connect({ host: o.host ?? 'localhost', port: o.port ?? 443 });
  socket = new SecureSocket(transport, new TlsClient(options), false, o.now);
  const s = socket;
  s.failureOverride = () => {
    if (identityError)
      return {
        code: (identityError as { code?: string }).code ?? 'ERR_TLS_CERT_ALTNAME_INVALID',
        message: identityError.message,
        cause: identityError,
      };
    if (result?.error) return certificateFailure(result.error, result.chain);
    return undefined;
  };
  if (earlyData) s.holdForEarlyData(new Uint8Array(earlyData));
  s.once('secure', () => {
    if (s.handshake?.resumed) {
      // RFC 8446 §2.2: a resumed handshake is authenticated by the PSK, which stands for the
      // connection that issued the ticket; that connection's verdict carries over.
      const origin = session && ticketOrigin.get(session);
      s.authorized = origin?.authorized === true;
      const detail =
        origin?.authorizationError ??
        (origin
          ? undefined
          : new CertificateError(
              'no_certificate',
              'resumed from a ticket whose first connection this process did not see',
            ));
      if (detail) {
        s.authorizationDetail = detail;
        s.authorizationError = nodeCodeForCertificateError(detail);
      }
    } else {
      s.authorized = result?.ok === true;
      if (result?.error) {
        s.authorizationDetail = result.error;
        s.authorizationError = identityError
          ? ((identityError as { code?: string }).code ?? 'ERR_TLS_CERT_ALTNAME_INVALID')
          : certificateFailure(result.error, result.chain).code;
      }
    }
    // After the verdict, so a secureConnect listener reads `authorized` as it will stay.
    s.emit('secureConnect');
  });
  if (onSecureConnect) s.once('secureConnect', onSecureConnect);
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

  /** The address listen(port) bound, as net.Server.address(); null otherwise. */
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

/** Our 32-byte ticket sealing key from node:tls's 48 bytes of ticket keys. */
function ticketKeyFrom(keys: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update('stepwire ticket key').update(keys).digest());
}

/** node:tls-style createServer (see SecureServer). */
export function createServer(
  options: ServerOptions,
  onSecureConnection?: (socket: SecureSocket) => void,
): SecureServer {
  return new SecureServer(options, onSecureConnection);
}
