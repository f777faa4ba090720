/**
 * The client side of the node:tls shape: connect() in its three forms, the options mapped to
 * a TlsClient, the server's certificate checked (our pki, then checkServerIdentity when one
 * is given) and the verdict set on the socket before 'secureConnect' (RFC 8446 §4.4.2.4;
 * for a resumption, the verdict of the connection that got the ticket, §2.2).
 */
import * as nodeNet from 'node:net';
import type { Duplex } from 'node:stream';
import type { CertificateVerifier } from '../auth.ts';
import { TlsClient, type TlsClientOptions } from '../client.ts';
import { AlertDescription, TlsAlertError } from '../codec/alert.ts';
import { certificateSigner, certificateVerifier } from '../credentials.ts';
import { nodeCodeForCertificateError } from '../node-codes.ts';
import { CertificateError } from '../pki/index.ts';
import { TlsSocket } from '../socket.ts';
import type { ConnectOptions } from './options.ts';
import { checkVersions, defaultCa, groupsOf, providerOf, sigalgsOf, suitesOf } from './parse-options.ts';
import { certificateFailure, describePeer } from './peer-certificate.ts';
import { keylogFanout, SecureSocket } from './secure-socket.ts';
import { decodeSession, ticketOrigin } from './session.ts';

function isStream(x: unknown): x is Duplex {
  return typeof (x as Duplex)?.pipe === 'function' && typeof (x as Duplex)?.write === 'function';
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
