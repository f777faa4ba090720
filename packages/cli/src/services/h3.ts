/**
 * HTTP/3 for `stepwire serve`: our QUIC (QuicEndpoint + QuicDriver) on a datagram socket —
 * node:dgram on loopback, or our UDP over TUN — with our HTTP/3 server on top running the
 * same (req, res) handler as ports 80 and 443 (http-app.ts). TLS is our TLS 1.3 in QUIC mode
 * with the serve identity's certificates, ALPN h3 (RFC 9114 §3.1).
 *
 * The h1/h2 services advertise it with Alt-Svc (RFC 7838 §3, RFC 9114 §3.1.1): withAltSvc
 * wraps their handler so every response carries `h3=":443"; ma=86400`.
 */

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  altSvcH3,
  createQuicTlsServer,
  type DatagramSocketLike,
  flushSoon,
  type H3RequestListener,
  Http3Server,
  type Http3ServerConnection,
  h3TransportOverQuic,
  QlogWriter,
  type QuicConnection,
  QuicDriver,
  QuicEndpoint,
} from '@stepwire/quic';
import { AntiReplayCache, type CertificateSigner, certificateSigner } from '@stepwire/tls';
import { type Clock, TraceBus, type TraceEvent, toHex } from '@stepwire/wire';
import { type AppRequest, type AppResponse, handleRequest } from './http-app.ts';
import type { TlsIdentity } from './https.ts';

export interface H3ServiceOptions {
  socket: DatagramSocketLike;
  clock: Clock;
  identity: TlsIdentity;
  /** The UDP port the socket is bound to (for stats and start-up lines). */
  port: number;
  /** The request handler; default the routes of http-app.ts. */
  handler?: H3RequestListener;
  /** Receives each NSS key log line of every connection (SSLKEYLOGFILE, for Wireshark). */
  keylog?: (line: string) => void;
  /** Packets, frames and state changes of every connection (layer 'quic'). */
  trace?: TraceBus;
  traceHost?: string;
  /** At most this many QUIC connections at once; further Initials are dropped and counted. */
  maxConnections?: number;
  /** Write a qlog (JSON-SEQ) per connection into this directory: `<odcid>_server.sqlog`. */
  qlogDir?: string;
  /** Key sealing the service's session tickets (32 bytes); random per service by default. */
  ticketKey?: Uint8Array;
  /**
   * Use ECN (RFC 9000 §13.4): mark our packets ECT(0), validate the peer's ACK_ECN counts and
   * count received marks into our ACKs. Only for a socket that reads and sets the IP ECN field
   * (our UDP, over TUN); node:dgram can do neither, so `serve --loopback` leaves it off.
   */
  ecn?: boolean;
}

export interface H3Service {
  readonly port: number;
  readonly driver: QuicDriver;
  readonly server: Http3Server;
  /** QUIC connections accepted so far, and those that reached 1-RTT (handshake done). */
  readonly connections: number;
  readonly handshakes: number;
  stats(): Record<string, unknown>;
  close(): void;
}

/** Signers for every certificate of the identity; each handshake takes the one the client can verify. */
export function signersOf(identity: TlsIdentity): CertificateSigner[] {
  return [
    certificateSigner({ cert: identity.certPem, key: identity.keyPem }),
    ...(identity.more ?? []).map((m) => certificateSigner({ cert: m.certPem, key: m.keyPem })),
  ];
}

export function h3OverDatagrams(o: H3ServiceOptions): H3Service {
  const signers = signersOf(o.identity);
  const app = new Http3Server(o.handler ?? (handleRequest as unknown as H3RequestListener));
  const byConn = new Map<QuicConnection, Http3ServerConnection>();
  const counts = { connections: 0, handshakes: 0 };
  let trace = o.trace;
  let qlogs: ServerQlogs | undefined;
  if (o.qlogDir) {
    fs.mkdirSync(o.qlogDir, { recursive: true });
    const bus = new TraceBus();
    if (o.trace) {
      const user = o.trace;
      bus.on((e) => user.emit(e));
    }
    bus.on((e) => qlogs?.observe(e));
    trace = bus;
  }
  // One ticket key and one anti-replay record for the whole service, so a client resumes on
  // its next connection, with its request in 0-RTT (RFC 9001 §4.6, single use per RFC 8446 §8.1).
  const ticketKey = o.ticketKey ?? new Uint8Array(randomBytes(32));
  const antiReplay = new AntiReplayCache();
  const endpoint = new QuicEndpoint({
    // TLS keeps calendar time (certificate validity, ticket ages); the driver's clock may start at 0.
    tlsEpoch: Date.now() - o.clock.now(),
    ...(trace ? { trace, host: o.traceHost ?? 'h3' } : {}),
    server: {
      maxConnections: o.maxConnections ?? 256,
      ...(o.ecn ? { transport: { ecn: true } } : {}),
      tls: (transportParameters) =>
        createQuicTlsServer({
          signer: signers,
          alpnProtocols: ['h3'],
          transportParameters,
          ticketKey,
          antiReplay,
          // RFC 9001 §4.6.1: a QUIC server that takes 0-RTT says so with 0xffffffff.
          maxEarlyData: 0xffffffff,
          ...(o.keylog ? { keyLog: o.keylog } : {}),
        }),
    },
  });
  if (o.qlogDir) qlogs = new ServerQlogs(endpoint, o.qlogDir, Date.now() - o.clock.now());
  const driver: QuicDriver = new QuicDriver(endpoint, o.socket, o.clock, {
    // Response writes held by backpressure (H3_WRITE_HIGH_WATER) go on once a flush sent data.
    onFlushed: () => app.drain(),
    onConnection: () => {
      counts.connections++;
    },
    onEvent: (conn, e) => {
      let c = byConn.get(conn);
      if (!c) {
        c = app.accept(
          h3TransportOverQuic(
            conn,
            () => o.clock.now(),
            flushSoon(() => driver.flush()),
          ),
        );
        byConn.set(conn, c);
      }
      if (e.type === 'connected') counts.handshakes++;
      c.handle(e, o.clock.now());
      if (e.type === 'closed') byConn.delete(conn);
      if (e.type === 'closed') qlogs?.forget(conn);
    },
  });
  return {
    port: o.port,
    driver,
    server: app,
    get connections() {
      return counts.connections;
    },
    get handshakes() {
      return counts.handshakes;
    },
    stats() {
      let streams = 0;
      for (const c of app.connections) streams += c.h3.activeStreams;
      return {
        connections: endpoint.connections.length,
        h3Connections: app.connections.size,
        accepted: counts.connections,
        handshakes: counts.handshakes,
        streams,
        quic: driver.stats(),
      };
    },
    close() {
      // GOAWAY (RFC 9114 §5.2) on each connection still open; one that QUIC already closed
      // (idle timeout, the peer's CONNECTION_CLOSE) has nothing left to say.
      for (const c of app.connections) {
        try {
          c.h3.shutdown();
        } catch {
          // the QUIC connection is closed: its streams refuse writes
        }
      }
      driver.flush();
      for (const conn of endpoint.connections) conn.close(o.clock.now(), 0, 'server shutting down', true);
      driver.flush();
      driver.close();
      byConn.clear();
      qlogs?.closeAll();
    },
  };
}

/** The Alt-Svc value serve's h1/h2 responses carry: HTTP/3 on `port` of the same host. */
export function serveAltSvc(port = 443): string {
  return altSvcH3({ port, maxAge: 86400 });
}

/**
 * The handler of http-app.ts with Alt-Svc on every response (RFC 7838 §3): set before the
 * route runs, so writeHead's own fields join it.
 */
export function withAltSvc(
  value: string,
  handler: (req: AppRequest, res: AppResponse) => void = handleRequest,
): (req: AppRequest, res: AppResponse) => void {
  return (req, res) => {
    res.setHeader('alt-svc', value);
    handler(req, res);
  };
}

/**
 * One datagram socket over two (udp4 and udp6 of our UDP): messages from both, each send
 * through the one of the destination's family. QuicDriver takes a single socket.
 */
export function dualStackSocket(v4: DatagramSocketLike, v6: DatagramSocketLike): DatagramSocketLike {
  return {
    on(event, listener) {
      v4.on(event, listener);
      v6.on(event, listener);
      return this;
    },
    send(msg, port, address) {
      (address.includes(':') ? v6 : v4).send(msg, port, address);
    },
    // RFC 9000 §13.4: the driver sets the codepoint before each send; both sockets carry it,
    // whichever family the datagram takes.
    ...(v4.setEcn && v6.setEcn
      ? {
          setEcn(ecn: number) {
            v4.setEcn?.(ecn);
            v6.setEcn?.(ecn);
          },
        }
      : {}),
  };
}

/**
 * One qlog file per server connection. The endpoint traces every connection on one bus, so
 * each packet event is matched to its connection by the connection IDs in its header: a
 * packet in carries one of the connection's own CIDs as DCID (or, in a long header, the
 * client's CID as SCID); a packet out carries the client's CID as DCID. A state change has
 * no header: it belongs to the connection whose packet or timer is being handled, which is
 * the last one matched.
 */
class ServerQlogs {
  private readonly writers = new Map<QuicConnection, { qlog: QlogWriter; fd: number }>();
  private last: QuicConnection | undefined;
  /** Connections whose file is closed: their last packets (a repeated CONNECTION_CLOSE) are left out. */
  private readonly done = new WeakSet<QuicConnection>();

  constructor(
    private readonly endpoint: QuicEndpoint,
    private readonly dir: string,
    private readonly referenceTime: number,
  ) {}

  private connectionOf(e: TraceEvent): QuicConnection | undefined {
    const dcid = /\bdcid=([0-9a-f]*)/.exec(e.summary)?.[1];
    const scid = /\bscid=([0-9a-f]*)/.exec(e.summary)?.[1];
    if (dcid === undefined) return e.state ? this.last : undefined;
    for (const c of this.endpoint.connections) {
      const remote = toHex(c.remoteCid);
      if (
        e.dir === 'out'
          ? dcid === remote
          : scid === remote || c.activeLocalCids.some((x) => toHex(x) === dcid)
      )
        return c;
    }
    return undefined;
  }

  observe(e: TraceEvent): void {
    if (e.layer !== 'quic') return;
    const conn = this.connectionOf(e);
    if (!conn || this.done.has(conn)) return;
    this.last = conn;
    let w = this.writers.get(conn);
    if (!w) {
      // The first packet we see of a connection is the client's Initial: its DCID names the file.
      const odcid = /\bdcid=([0-9a-f]*)/.exec(e.summary)?.[1] || `conn${this.writers.size}`;
      const fd = fs.openSync(path.join(this.dir, `${odcid}_server.sqlog`), 'w');
      w = {
        fd,
        qlog: new QlogWriter((r) => fs.writeSync(fd, r), {
          vantagePoint: 'server',
          groupId: odcid,
          referenceTime: this.referenceTime,
          title: `stepwire serve ${odcid}`,
        }),
      };
      this.writers.set(conn, w);
    }
    w.qlog.observe(e, () => conn.stats());
  }

  /** The connection closed: its file is complete. */
  forget(conn: QuicConnection): void {
    const w = this.writers.get(conn);
    if (!w) return;
    fs.closeSync(w.fd);
    this.writers.delete(conn);
    this.done.add(conn);
    if (this.last === conn) this.last = undefined;
  }

  closeAll(): void {
    for (const c of [...this.writers.keys()]) this.forget(c);
  }
}
