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
 *
 * What lives where (api/): options.ts (the option types, node:tls's names) and
 * parse-options.ts (their values in our terms: suites, groups, sigalgs, versions, provider,
 * default CA); connect.ts (the client: connect() and the server-certificate verdict);
 * secure-server.ts (SecureServer: accept, listen/close, SNI contexts, handshake timeout,
 * ticket keys); secure-socket.ts (SecureSocket: node:tls's accessors, 0-RTT write ordering,
 * the SNICallback hold, with the ClientHello peek in sni.ts); secure-context.ts;
 * session.ts (sessions as bytes, ticket keys); peer-certificate.ts (getPeerCertificate(),
 * Node's certificate error codes, checkServerIdentity).
 */
export { connect } from './api/connect.ts';
export type {
  ConnectionSource,
  ConnectOptions,
  KeyCertPair,
  NetModule,
  NetServerLike,
  ProviderChoice,
  ServerOptions,
} from './api/options.ts';
export { checkServerIdentity, type PeerCertificate } from './api/peer-certificate.ts';
export { createSecureContext, SecureContext, type SecureContextOptions } from './api/secure-context.ts';
export { createServer, SecureServer } from './api/secure-server.ts';
export { SecureSocket } from './api/secure-socket.ts';
export { decodeSession, encodeSession } from './api/session.ts';
