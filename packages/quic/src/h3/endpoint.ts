import { type Clock, RealClock, type TraceBus } from '@stepwire/wire';
import type { QuicConnection } from '../connection/connection.ts';
import type { RemoteAddress, TransportConfig } from '../connection/types.ts';
import { type DatagramSocketLike, QuicDriver } from '../endpoint/driver.ts';
import { QuicEndpoint, type QuicEndpointOptions, type QuicServerConfig } from '../endpoint/endpoint.ts';
import {
  createQuicTlsClient,
  createQuicTlsServer,
  type QuicTlsClientOptions,
  type QuicTlsServerOptions,
} from '../tls/handshake.ts';
import { Http3Client, type Http3ClientOptions } from './client.ts';
import { H3ErrorCode } from './errors.ts';
import { flushSoon, h3TransportOverQuic } from './quic-adapter.ts';
import {
  type H3RequestListener,
  Http3Server,
  type Http3ServerConnection,
  type Http3ServerOptions,
} from './server.ts';

/**
 * HTTP/3 on our QUIC over a datagram socket — node:dgram's, or @stepwire/udp's on the
 * simulated network or TUN — with its clock (RealClock, or the simulation's VirtualClock).
 * The QUIC endpoint and its driver come from src/endpoint; TLS offers and accepts ALPN
 * "h3" only (RFC 9114 §3.1).
 *
 *   const service = serveHttp3((req, res) => res.end('hi'), { socket, tls: { signer } });
 *   const session = connectHttp3({ socket, remote, tls: { serverName, verifier } });
 *   await session.ready();
 *   const res = await session.client.request({ ':path': '/' });
 */

const ALPN_H3 = ['h3'];

export interface ServeHttp3Options extends Http3ServerOptions {
  /** A bound datagram socket. */
  socket: DatagramSocketLike;
  /** Our certificate and key (signer) and any other TLS server option but ALPN. */
  tls: Omit<QuicTlsServerOptions, 'transportParameters' | 'alpnProtocols'>;
  /** Validate client addresses with a Retry first (RFC 9000 §8.1.2). */
  retry?: boolean;
  transport?: Partial<TransportConfig>;
  clock?: Clock;
  quicTrace?: TraceBus;
  /** More QUIC endpoint options (a seeded `random` and a fixed `tlsEpoch` make a simulation repeatable). */
  endpoint?: Omit<QuicEndpointOptions, 'server'>;
  /** Each new HTTP/3 connection, as it starts (for stats, tests, per-connection policy). */
  onConnection?: (c: Http3ServerConnection) => void;
}

/** An HTTP/3 server on one socket: every QUIC connection it accepts runs the (req, res) listener. */
export class Http3Service {
  readonly server: Http3Server;
  readonly endpoint: QuicEndpoint;
  readonly driver: QuicDriver;
  private readonly connections = new Map<QuicConnection, Http3ServerConnection>();

  constructor(listener: H3RequestListener, opts: ServeHttp3Options) {
    const {
      socket,
      tls,
      retry,
      transport,
      clock = new RealClock(),
      quicTrace,
      onConnection,
      endpoint,
      ...h3
    } = opts;
    this.server = new Http3Server(listener, h3);
    const server: QuicServerConfig = {
      tls: (transportParameters) =>
        createQuicTlsServer({ ...tls, alpnProtocols: ALPN_H3, transportParameters }),
    };
    if (retry !== undefined) server.retry = retry;
    if (transport) server.transport = transport;
    this.endpoint = new QuicEndpoint({
      tlsEpoch: Date.now() - clock.now(),
      ...(quicTrace ? { trace: quicTrace } : {}),
      ...endpoint,
      server,
    });
    const flush = flushSoon(() => this.driver.flush());
    this.driver = new QuicDriver(this.endpoint, socket, clock, {
      onEvent: (conn, e) => {
        let c = this.connections.get(conn);
        if (!c) {
          c = this.server.accept(h3TransportOverQuic(conn, () => clock.now(), flush));
          this.connections.set(conn, c);
          onConnection?.(c);
        }
        c.handle(e, clock.now());
        if (e.type === 'closed') this.connections.delete(conn);
      },
      onFlushed: () => this.server.drain(),
    });
  }

  /** HTTP/3 connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** GOAWAY on every connection (RFC 9114 §5.2): requests in flight finish, clients then close. */
  shutdown(): void {
    this.server.shutdown();
    this.driver.flush();
  }

  /** Closes every connection at once (H3_NO_ERROR) and stops the driver; the socket stays the caller's. */
  close(): void {
    for (const c of this.connections.values()) c.h3.close(H3ErrorCode.H3_NO_ERROR, 'server closing');
    this.driver.flush();
    this.driver.close();
  }
}

export function serveHttp3(listener: H3RequestListener, opts: ServeHttp3Options): Http3Service {
  return new Http3Service(listener, opts);
}

export interface ConnectHttp3Options extends Http3ClientOptions {
  /** A bound datagram socket. */
  socket: DatagramSocketLike;
  remote: RemoteAddress;
  /** Server name, verifier and any other TLS client option but ALPN. */
  tls: Omit<QuicTlsClientOptions, 'transportParameters' | 'alpnProtocols'>;
  transport?: Partial<TransportConfig>;
  clock?: Clock;
  quicTrace?: TraceBus;
  /** More QUIC endpoint options (a seeded `random` and a fixed `tlsEpoch` make a simulation repeatable). */
  endpoint?: Omit<QuicEndpointOptions, 'server'>;
}

/** One HTTP/3 connection from a client. */
export class Http3Session {
  readonly client: Http3Client;
  readonly connection: QuicConnection;
  readonly driver: QuicDriver;

  constructor(opts: ConnectHttp3Options) {
    const {
      socket,
      remote,
      tls,
      transport,
      clock = new RealClock(),
      quicTrace,
      endpoint: more,
      ...h3
    } = opts;
    let client: Http3Client | undefined;
    const endpoint = new QuicEndpoint({
      tlsEpoch: Date.now() - clock.now(),
      ...(quicTrace ? { trace: quicTrace } : {}),
      ...more,
    });
    this.driver = new QuicDriver(endpoint, socket, clock, {
      onEvent: (_conn, e) => client?.handle(e, clock.now()),
    });
    this.connection = this.driver.connect(remote, {
      tls: (transportParameters) =>
        createQuicTlsClient({ ...tls, alpnProtocols: ALPN_H3, transportParameters }),
      ...(transport ? { transport } : {}),
    });
    const authority =
      h3.authority ??
      `${remote.address.includes(':') ? `[${remote.address}]` : remote.address}:${remote.port}`;
    client = new Http3Client(
      h3TransportOverQuic(
        this.connection,
        () => clock.now(),
        flushSoon(() => this.driver.flush()),
      ),
      { ...h3, authority },
    );
    this.client = client;
  }

  /** Resolves once the handshake is done and our control streams are open; rejects if the connection closes first. */
  ready(): Promise<void> {
    return this.client.ready();
  }

  /** H3_NO_ERROR close (RFC 9114 §5.4); QUIC then drains on its own timer (RFC 9000 §10.2). */
  close(): void {
    this.client.close();
    this.driver.flush();
  }
}

export function connectHttp3(opts: ConnectHttp3Options): Http3Session {
  return new Http3Session(opts);
}
