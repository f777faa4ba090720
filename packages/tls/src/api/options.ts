/**
 * The options of connect(), createServer() and createSecureContext(), named and shaped as
 * node:tls names them, and the small interfaces we need from a TCP stack (node:net, our Tcp).
 * parse-options.ts turns them into what our machines take.
 */
import type { Duplex } from 'node:stream';
import type { TraceBus } from '@stepwire/wire';
import type { AntiReplayStore } from '../anti-replay.ts';
import type { CertificateCompressor } from '../cert-compression.ts';
import type { SessionTicket } from '../connection.ts';
import type { CertificatesInput } from '../credentials.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import type { PrivateKey } from '../pki/index.ts';
import type { PeerCertificate } from './peer-certificate.ts';
import type { SecureContext } from './secure-context.ts';

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

export interface CommonOptions {
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

/** Anything that announces incoming byte streams: our TcpServer, node:net.Server, ... */
export interface ConnectionSource {
  on(event: 'connection', listener: (socket: Duplex) => void): unknown;
  off?(event: 'connection', listener: (socket: Duplex) => void): unknown;
  removeListener?(event: 'connection', listener: (socket: Duplex) => void): unknown;
}
