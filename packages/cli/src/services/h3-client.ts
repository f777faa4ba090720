/**
 * One HTTP/3 connection for `stepwire fetch --http3`: our QUIC client (QuicEndpoint +
 * QuicDriver) on a datagram socket — node:dgram on loopback, or our UDP over TUN — with our
 * TLS 1.3 in QUIC mode (ALPN h3, RFC 9114 §3.1) and our Http3Client on top.
 *
 * A handshake that fails ends in a 'closed' event before the client is ready: its QUIC
 * error says why (CRYPTO_ERROR 0x100 + TLS alert, RFC 9001 §4.8), which fetch maps to
 * curl's exit statuses.
 */
import { rootCertificates } from 'node:tls';
import {
  createQuicTlsClient,
  type DatagramSocketLike,
  flushSoon,
  Http3Client,
  h3TransportOverQuic,
  type QuicCloseError,
  type QuicConnection,
  QuicDriver,
  QuicEndpoint,
} from '@stepwire/quic';
import { type CertificateVerifier, certificateVerifier, parseCertificates } from '@stepwire/tls';
import type { Clock, TraceBus } from '@stepwire/wire';

export interface H3ConnectOptions {
  socket: DatagramSocketLike;
  clock: Clock;
  remote: { address: string; port: number };
  /** server_name (RFC 6066) and the name the certificate must hold; an IP literal is checked as such. */
  serverName: string;
  /** :authority of requests (host[:port] of the URL). */
  authority: string;
  /** Trust anchors (PEM); Node's bundled roots when absent. */
  ca?: string;
  /** Accept any certificate (curl -k); the CertificateVerify signature is still checked. */
  insecure?: boolean;
  keylog?: (line: string) => void;
  /** Every packet, frame and state change of the connection (layer 'quic'). */
  trace?: TraceBus;
  traceHost?: string;
  /** The QUIC connection as soon as it exists (before the handshake): for qlog metrics. */
  onConnection?: (conn: QuicConnection) => void;
}

export interface H3Connection {
  client: Http3Client;
  conn: QuicConnection;
  driver: QuicDriver;
  /** The negotiated ALPN once connected. */
  alpn: string | undefined;
  close(): void;
}

/** The handshake did not complete: how the connection ended. */
export class H3ConnectError extends Error {
  constructor(readonly error: QuicCloseError | undefined) {
    super(
      error
        ? `${error.source === 'local' ? 'we closed' : error.source === 'peer' ? 'the server closed' : error.source} the connection: 0x${error.code.toString(16)}${error.reason ? ` ${error.reason}` : ''}`
        : 'the connection closed during the handshake',
    );
  }
  /** The TLS alert carried as CRYPTO_ERROR (0x0100-0x01ff, RFC 9001 §4.8), if that is how it ended. */
  get alert(): number | undefined {
    const e = this.error;
    if (!e || e.application || e.code < 0x100 || e.code > 0x1ff) return undefined;
    return e.code - 0x100;
  }
}

let roots: string[] | undefined;
/** Node's bundled Mozilla roots that our parser takes (a few old ones it refuses are left out). */
function defaultRoots(): string[] {
  roots ??= rootCertificates.filter((pem) => {
    try {
      parseCertificates(pem);
      return true;
    } catch {
      return false;
    }
  });
  return roots;
}

function verifierFor(o: H3ConnectOptions): CertificateVerifier {
  return certificateVerifier({
    ca: o.ca ?? defaultRoots(),
    hostname: o.serverName,
    ...(o.insecure ? { onResult: () => {}, reject: false } : {}),
  });
}

/** Connects and resolves once HTTP/3 can carry requests (SETTINGS sent, RFC 9114 §6.2.1). */
export function connectH3(o: H3ConnectOptions): Promise<H3Connection> {
  let client: Http3Client | undefined;
  let alpn: string | undefined;
  let settle: { resolve: (c: H3Connection) => void; reject: (e: Error) => void } | undefined;
  const endpoint = new QuicEndpoint({
    tlsEpoch: Date.now() - o.clock.now(),
    ...(o.trace ? { trace: o.trace, host: o.traceHost ?? 'client' } : {}),
  });
  const driver: QuicDriver = new QuicDriver(endpoint, o.socket, o.clock, {
    onEvent: (_conn, e) => {
      if (e.type === 'connected') alpn = e.alpn;
      client?.handle(e, o.clock.now());
      if (e.type === 'closed' && settle) {
        const s = settle;
        settle = undefined;
        driver.close();
        s.reject(new H3ConnectError(e.error));
      }
    },
  });
  const conn = driver.connect(o.remote, {
    tls: (transportParameters) =>
      createQuicTlsClient({
        serverName: o.serverName,
        verifier: verifierFor(o),
        alpnProtocols: ['h3'],
        transportParameters,
        ...(o.keylog ? { keyLog: o.keylog } : {}),
      }),
  });
  o.onConnection?.(conn);
  client = new Http3Client(
    h3TransportOverQuic(
      conn,
      () => o.clock.now(),
      flushSoon(() => driver.flush()),
    ),
    { authority: o.authority },
  );
  const h3 = client;
  return new Promise<H3Connection>((resolve, reject) => {
    settle = { resolve, reject };
    // ready() also rejects when the connection closes first; the 'closed' event above has
    // already settled with the QUIC error by then (it carries the TLS alert), so that wins.
    h3.ready().then(
      () => {
        if (!settle) return;
        settle = undefined;
        resolve({
          client: h3,
          conn,
          driver,
          get alpn() {
            return alpn;
          },
          close() {
            h3.close();
            driver.flush();
            driver.close();
          },
        });
      },
      (e: Error) => {
        if (!settle) return;
        settle = undefined;
        reject(e);
      },
    );
  });
}
