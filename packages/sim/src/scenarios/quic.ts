/**
 * QUIC and HTTP/3 on the simulated network: a QUIC v1 handshake between two hosts over our
 * UDP (RFC 9000 §7, RFC 9001 §4), an HTTP/3 GET (RFC 9114 §4.1), then a second connection
 * that resumes with the ticket of the first and sends its request in 0-RTT packets
 * (RFC 9001 §4.6). The connections trace every packet and frame on the network's bus
 * (layer 'quic', HTTP/3 frames as 'h3'), so each datagram on the ladder is preceded by the
 * QUIC packets it carries.
 */
import {
  createQuicTlsClient,
  createQuicTlsServer,
  type DatagramSocketLike,
  flushSoon,
  type H3Response,
  Http3Client,
  Http3Server,
  type Http3ServerConnection,
  h3TransportOverQuic,
  type QuicConnection,
  QuicDriver,
  QuicEndpoint,
  type TransportParameters,
} from '@stepwire/quic';
import { AntiReplayCache, certificateSigner, certificateVerifier, type SessionTicket } from '@stepwire/tls';
import { Prng, TraceBus } from '@stepwire/wire';
import { type NetHost, type Network, seededCrypto } from '../network.ts';
import { about } from './about.ts';
import type { Scenario } from './scenario.ts';

/** QUIC's own events go on the ladder as they are: packets out (with their frames), state changes, key discards. */
function quicTrace(net: Network): TraceBus {
  const bus = new TraceBus();
  bus.on((e) => {
    // Received packets are the same packets the sender's line already shows.
    if (e.dir === 'in' && e.layer === 'quic') return;
    net.trace.emit({ ...e, t: net.clock.now() });
  });
  return bus;
}

interface Ticket {
  ticket: SessionTicket;
  transportParameters?: TransportParameters;
}

/** B's HTTP/3 server on UDP 443: the same (req, res) shape as every HTTP server here. */
function h3Server(net: Network, b: NetHost, trace: TraceBus, seed: Prng) {
  const creds = net.issueCertificate(['b.test', 'stepwire.test'], [b.ipv4, b.ipv6]);
  const sock = b.udp.createSocket('udp4');
  sock.bindSync(443);
  const app = new Http3Server(
    (req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`hello over HTTP/3, ${req.method} ${req.url}\n`);
    },
    { trace, host: b.name },
  );
  // One strike register for the server: each ticket's early data is taken once (RFC 8446 §8).
  const antiReplay = new AntiReplayCache(100);
  const ticketKey = seed.bytes(32);
  const conns = new Map<QuicConnection, Http3ServerConnection>();
  const endpoint = new QuicEndpoint({
    random: (n) => seed.bytes(n),
    tlsEpoch: net.epoch,
    trace,
    host: b.name,
    server: {
      tls: (transportParameters) =>
        createQuicTlsServer({
          signer: certificateSigner(creds),
          alpnProtocols: ['h3'],
          transportParameters,
          crypto: seededCrypto(seed),
          ticketKey,
          antiReplay,
          maxEarlyData: 0xffffffff,
          ...(net.keylogSink ? { keyLog: net.keylogSink } : {}),
        }),
    },
  });
  const driver: QuicDriver = new QuicDriver(endpoint, sock as DatagramSocketLike, net.clock, {
    onEvent: (conn, e) => {
      let c = conns.get(conn);
      if (!c) {
        c = app.accept(
          h3TransportOverQuic(
            conn,
            () => net.clock.now(),
            flushSoon(() => driver.flush()),
          ),
        );
        conns.set(conn, c);
      }
      c.handle(e, net.clock.now());
    },
  });
  return {
    close() {
      driver.close();
      sock.close();
    },
  };
}

/** One client connection from A: full handshake, or resumed with `resume` and its request in 0-RTT. */
async function h3Get(
  net: Network,
  a: NetHost,
  b: NetHost,
  trace: TraceBus,
  seed: Prng,
  path: string,
  resume?: Ticket,
): Promise<{
  response: H3Response;
  ticket?: Ticket;
  earlyData?: 'accepted' | 'rejected';
  conn: QuicConnection;
}> {
  const sock = a.udp.createSocket('udp4');
  sock.bindSync(0);
  let client: Http3Client | undefined;
  let ticket: Ticket | undefined;
  let earlyData: 'accepted' | 'rejected' | undefined;
  const endpoint = new QuicEndpoint({
    random: (n) => seed.bytes(n),
    tlsEpoch: net.epoch,
    trace,
    host: a.name,
  });
  const driver: QuicDriver = new QuicDriver(endpoint, sock as DatagramSocketLike, net.clock, {
    onEvent: (_conn, e) => {
      if (e.type === 'session-ticket')
        ticket = {
          ticket: e.ticket,
          ...(e.transportParameters ? { transportParameters: e.transportParameters } : {}),
        };
      if (e.type === 'connected') earlyData = e.earlyData;
      client?.handle(e, net.clock.now());
    },
  });
  const conn = driver.connect(
    { address: b.ipv4, port: 443 },
    {
      tls: (transportParameters) =>
        createQuicTlsClient({
          serverName: 'b.test',
          verifier: certificateVerifier({ ca: net.certificateAuthority().certificatePem }),
          alpnProtocols: ['h3'],
          transportParameters,
          crypto: seededCrypto(seed),
          ...(resume ? { session: resume.ticket, earlyData: true } : {}),
          ...(net.keylogSink ? { keyLog: net.keylogSink } : {}),
        }),
      // RFC 9000 §7.4.1: 0-RTT obeys the limits the server gave last time.
      ...(resume?.transportParameters ? { earlyTransportParameters: resume.transportParameters } : {}),
    },
  );
  client = new Http3Client(
    h3TransportOverQuic(
      conn,
      () => net.clock.now(),
      flushSoon(() => driver.flush()),
    ),
    { authority: 'b.test', trace, host: a.name },
  );
  // With a ticket the request need not wait for the handshake: open the control streams now
  // and write the request, which can only leave in 0-RTT packets (RFC 9114 §7.2.4.2).
  if (resume) client.h3.start();
  const done = resume
    ? client.request({ ':path': path })
    : client.ready().then(() => client.request({ ':path': path }));
  const response = await net.run(done);
  // Wait for the ticket (it follows the handshake), then close cleanly (RFC 9114 §5.2).
  if (!resume) await net.run(() => ticket !== undefined, { limit: 5_000 });
  client.close();
  driver.flush();
  await net.run(() => conn.isDrained, { limit: 10_000 });
  driver.close();
  sock.close();
  return { response, conn, ...(ticket ? { ticket } : {}), ...(earlyData ? { earlyData } : {}) };
}

export const quicHttp3: Scenario = {
  ...about('quic'),
  link: { delay: 10 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const trace = quicTrace(net);
    const seed = new Prng(net.seed * 7919 + 443);
    const server = h3Server(net, b, trace, seed);
    try {
      step('first connection: full handshake (1-RTT), GET /, a session ticket arrives');
      const first = await h3Get(net, a, b, trace, seed, '/');
      const text = new TextDecoder().decode(first.response.body);
      result('A', first.response.status === 200, `HTTP/3 ${first.response.status}: ${text.trim()}`);
      result('A', first.ticket !== undefined, `ticket received (${first.ticket ? 'kept' : 'none'})`);
      if (!first.ticket) return;
      step('second connection: resume with the ticket, GET /again in 0-RTT');
      const second = await h3Get(net, a, b, trace, seed, '/again', first.ticket);
      result(
        'A',
        second.response.status === 200 && second.earlyData === 'accepted',
        `HTTP/3 ${second.response.status}, 0-RTT ${second.earlyData ?? 'not attempted'}: ${new TextDecoder().decode(second.response.body).trim()}`,
      );
    } finally {
      server.close();
    }
  },
};
