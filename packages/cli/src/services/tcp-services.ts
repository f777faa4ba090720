import type { HttpServer } from '@stepwire/http';
import { systemError, type Tcp, type TcpServer, type TcpServerOptions, type TcpSocket } from '@stepwire/tcp';
import { createHttpApp } from './http-app.ts';

/**
 * The TCP services of `stepwire serve`: echo (RFC 862), discard (RFC 863) and HTTP (the
 * routes of http-app.ts, served by our HTTP/1.1 server over our sockets). Each listens on both
 * families ('::' without ipv6Only) and counts what it did, so tests and the CLI can check
 * that the bytes went where they should.
 */
export interface TcpService {
  readonly port: number;
  readonly server: TcpServer;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Bytes read from clients. */
  readonly bytesIn: number;
  /** Bytes handed back to clients (the echo; HTTP responses are not counted). */
  readonly bytesOut: number;
  /** Connections that ended with an error (a reset, a timeout). */
  readonly errors: number;
  /** Stop listening and destroy every open connection. */
  close(): void;
}

export interface TcpServiceOptions {
  /** Options of the listening server (Fast Open, SYN cookies, connection options). */
  server?: TcpServerOptions;
}

/**
 * Listen on `port` and run `onSocket` for every connection. Throws at once when the port
 * cannot be had (EADDRINUSE), so that startServices can refuse a table with a port twice.
 */
function serve(
  tcp: Tcp,
  port: number,
  options: TcpServiceOptions,
  onSocket: (s: TcpSocket, counts: Counts) => void,
): TcpService {
  const counts: Counts = { connections: 0, bytesIn: 0, bytesOut: 0, errors: 0 };
  const open = new Set<TcpSocket>();
  const server = tcp.createServer(options.server ?? {}, (s) => {
    counts.connections++;
    open.add(s);
    s.once('close', () => open.delete(s));
    // A client that resets or vanishes ends its own connection; the service keeps serving.
    s.on('error', () => {
      counts.errors++;
    });
    onSocket(s, counts);
  });
  // TcpServer reports a listen error on the next tick; the caller wants it now (below), so
  // the later event has nowhere to go but here.
  server.on('error', () => {});
  server.listen(port, '::');
  if (!server.listening) {
    // On the wildcard '::' the only way to fail is a port already taken.
    throw systemError('listen', 'EADDRINUSE', '::', port);
  }
  return {
    port,
    server,
    get connections() {
      return counts.connections;
    },
    get bytesIn() {
      return counts.bytesIn;
    },
    get bytesOut() {
      return counts.bytesOut;
    },
    get errors() {
      return counts.errors;
    },
    close() {
      server.close();
      for (const s of open) s.destroy();
      open.clear();
    },
  };
}

interface Counts {
  connections: number;
  bytesIn: number;
  bytesOut: number;
  errors: number;
}

/**
 * RFC 862 echo: every byte received goes back. Half-open is allowed, so a client that
 * sends its FIN first still gets the rest of its echo, then our FIN (pipe ends the
 * writable side once the readable side has ended). pipe() carries backpressure: a client
 * that does not read stops us reading, and our window closes.
 */
export function tcpEcho(tcp: Tcp, port = 7, options: TcpServiceOptions = {}): TcpService {
  return serve(tcp, port, withHalfOpen(options), (s, counts) => {
    s.on('data', (d: Buffer) => {
      counts.bytesIn += d.length;
      counts.bytesOut += d.length;
    });
    s.pipe(s);
  });
}

/** RFC 863 discard: read and throw away everything; close when the client does. */
export function tcpDiscard(tcp: Tcp, port = 9, options: TcpServiceOptions = {}): TcpService {
  return serve(tcp, port, options, (s, counts) => {
    s.on('data', (d: Buffer) => {
      counts.bytesIn += d.length;
    });
  });
}

/**
 * An HTTP server on our TCP: our HTTP/1.1 server (@stepwire/http) over our sockets,
 * with the routes of http-app.ts unless another app is given. The app is never bound to a
 * kernel port; it only sees sockets handed to it.
 */
export function httpOverTcp(
  tcp: Tcp,
  port = 80,
  app: HttpServer = createHttpApp(),
  options: TcpServiceOptions = {},
): TcpService & { app: HttpServer } {
  const service = serve(tcp, port, options, (s, counts) => {
    s.on('data', (d: Buffer) => {
      counts.bytesIn += d.length;
    });
    app.emit('connection', s);
  });
  return Object.assign(service, { app });
}

function withHalfOpen(options: TcpServiceOptions): TcpServiceOptions {
  return { ...options, server: { allowHalfOpen: true, ...options.server } };
}
