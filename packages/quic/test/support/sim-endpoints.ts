import { type Impairments, MemoryLink } from '@stepwire/link';
import { SIM_EPOCH, Sim } from '@stepwire/sim';
import { pki } from '@stepwire/tls';
import type { UdpSocket } from '@stepwire/udp';
import { Prng, type Timer, TraceBus } from '@stepwire/wire';
import type { QuicConnection } from '../../src/connection/connection.ts';
import type { QuicConnectionEvent, TransportConfig } from '../../src/connection/types.ts';
import {
  QuicEndpoint,
  type QuicEndpointOptions,
  type QuicServerConfig,
} from '../../src/endpoint/endpoint.ts';
import { quicClientTls, quicServerTls } from './tls.ts';

/**
 * Two QuicEndpoints on the simulated network with our UDP and IP, pumped by a small loop of
 * its own rather than QuicDriver: it passes the IP ECN field both ways (rinfo.ecn up,
 * Transmit.ecn down through setEcn, RFC 9000 §13.4), which node:dgram cannot, and it can
 * bind the server on more than one address. For the transport features that need the IP
 * layer (ECN, path MTU, preferred_address).
 */

/**
 * The simulated network (hosts A 198.18.0.1 and B 198.18.0.2, our UDP and IP) for a test that
 * runs QuicDrivers on it: a seeded random source for the endpoints, a server socket on
 * B:`serverPort` and a client socket on an ephemeral port of A.
 */
export function simSockets(seed: number, impairments: Impairments = {}, serverPort = 4433) {
  const sim = new Sim({ seed, impairments });
  const prng = new Prng(seed);
  const random = (n: number) => prng.bytes(n);
  const serverSocket = sim.b.udp.createSocket('udp4');
  serverSocket.bindSync(serverPort, sim.b.ipv4);
  const clientSocket = sim.a.udp.createSocket('udp4');
  clientSocket.bindSync(0, sim.a.ipv4);
  return { sim, random, serverSocket, clientSocket };
}

/**
 * Two sans-I/O endpoints, client A and server B (with `server`), sharing one seeded random
 * source and one trace whose lines are kept ("A out ..."), for tests that carry datagrams
 * between them by hand.
 */
export function endpointPair(seed: number, server: QuicServerConfig) {
  const prng = new Prng(seed);
  const random = (n: number) => prng.bytes(n);
  const trace = new TraceBus();
  const lines: string[] = [];
  trace.on((e) => lines.push(`${e.host} ${e.dir} ${e.summary}`));
  return {
    client: new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH, trace, host: 'A' }),
    server: new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH, trace, host: 'B', server }),
    random,
    trace,
    lines,
  };
}

export const ALPN = 'stepwire-test';
let creds: ReturnType<typeof pki.createStepwireCredentials> | undefined;
function credentials() {
  creds ??= pki.createStepwireCredentials(new Date(SIM_EPOCH));
  return creds;
}

export interface PumpSide {
  ep: QuicEndpoint;
  sockets: UdpSocket[];
  /** Socket used to send; for the client, rebind() may change it. */
  send: UdpSocket;
  /** Pass the ECN field of received datagrams up (false: the path bleaches it). */
  readEcn: boolean;
  /** Set the ECN field of sent datagrams from Transmit.ecn. */
  writeEcn: boolean;
  /** A middlebox in front of this side that silently drops datagrams above this size (a PMTU black hole). */
  dropAbove: number | undefined;
  /** Sends refused by the local stack (EMSGSIZE with DF above the link MTU). */
  sendErrors: number;
  events: { conn: QuicConnection; e: QuicConnectionEvent }[];
}

export interface SimPair {
  sim: Sim;
  trace: TraceBus;
  lines: string[];
  client: PumpSide;
  server: PumpSide;
  /** Sends every datagram, delivers events, arms timers; call after writing from outside. */
  flush(): void;
  /** Runs the simulation until `until()` or `limitMs` of virtual time; returns whether `until()` held. */
  runUntil(until: () => boolean, limitMs?: number): Promise<boolean>;
  connect(transport?: Partial<TransportConfig>): QuicConnection;
  /** Server connections accepted so far. */
  accepted: QuicConnection[];
}

export interface SimPairOptions {
  seed: number;
  impairments?: Impairments;
  mtu?: number;
  clientTransport?: Partial<TransportConfig>;
  serverTransport?: Partial<TransportConfig>;
  serverEndpoint?: Partial<QuicEndpointOptions>;
  onServerEvent?: (conn: QuicConnection, e: QuicConnectionEvent) => void;
  /**
   * The server advertises a preferred address (RFC 9000 §9.6) and listens there too: another
   * port of the same address, or another address on a second link between A and B.
   */
  preferred?: 'port' | 'address';
}

export function simPair(o: SimPairOptions): SimPair {
  const sim = new Sim({ seed: o.seed, impairments: o.impairments ?? {}, ...(o.mtu ? { mtu: o.mtu } : {}) });
  const trace = new TraceBus();
  const lines: string[] = [];
  trace.on((e) => lines.push(`${e.host} ${e.dir} ${e.summary}`));
  const prng = new Prng(o.seed);
  const random = (n: number) => prng.bytes(n);
  const c = credentials();
  const second =
    o.preferred === 'address'
      ? { address: '198.18.1.2', port: 4433 }
      : o.preferred === 'port'
        ? { address: sim.b.ipv4, port: 4434 }
        : undefined;
  if (o.preferred === 'address') {
    // A second wire between the hosts: B is reachable on a second address.
    const [la, lb] = MemoryLink.pair({
      clock: sim.clock,
      mtu: o.mtu ?? 1500,
      seed: o.seed + 7,
      name: 'wire2',
    });
    sim.a.host.addInterface({ link: la, ipv4: '198.18.1.1/24' });
    sim.b.host.addInterface({ link: lb, ipv4: '198.18.1.2/24' });
  }
  const serverEp = new QuicEndpoint({
    random,
    tlsEpoch: SIM_EPOCH,
    trace,
    host: 'B',
    ...o.serverEndpoint,
    server: {
      tls: quicServerTls(c.leaf, ALPN),
      ...(o.serverTransport ? { transport: o.serverTransport } : {}),
      ...(second ? { preferredAddress: { ipv4: second } } : {}),
    },
  });
  const clientEp = new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH, trace, host: 'A' });
  const serverSockets: UdpSocket[] = [];
  const ss = sim.b.udp.createSocket('udp4');
  ss.bindSync(4433, sim.b.ipv4);
  serverSockets.push(ss);
  if (second) {
    const s2 = sim.b.udp.createSocket('udp4');
    s2.bindSync(second.port, second.address);
    serverSockets.push(s2);
  }
  const cs = sim.a.udp.createSocket('udp4');
  cs.bindSync(0, sim.a.ipv4);
  const mk = (ep: QuicEndpoint, sockets: UdpSocket[]): PumpSide => ({
    ep,
    sockets,
    send: sockets[0] as UdpSocket,
    readEcn: true,
    writeEcn: true,
    dropAbove: undefined,
    sendErrors: 0,
    events: [],
  });
  const client = mk(clientEp, [cs]);
  const server = mk(serverEp, serverSockets);
  const accepted: QuicConnection[] = [];
  let timer: Timer | undefined;
  let flushing = false;
  const flushSide = (side: PumpSide, isServer: boolean) => {
    if (isServer) for (let a = side.ep.accept(); a; a = side.ep.accept()) accepted.push(a);
    for (const conn of side.ep.connections)
      for (let e = conn.pollEvent(); e; e = conn.pollEvent()) {
        side.events.push({ conn, e });
        if (isServer) o.onServerEvent?.(conn, e);
      }
    const now = sim.clock.now();
    for (let t = side.ep.pollTransmit(now); t; t = side.ep.pollTransmit(now)) {
      // A server with two addresses answers from the one the endpoint names.
      const local = t.local;
      const from =
        (local &&
          side.sockets.find(
            (s) => s.address().address === local.address && s.address().port === local.port,
          )) ||
        side.send;
      if (side.writeEcn) from.setEcn(t.ecn ?? 0);
      from.send(t.datagram, t.remote.port, t.remote.address);
    }
  };
  const flush = () => {
    if (flushing) return;
    flushing = true;
    try {
      flushSide(client, false);
      flushSide(server, true);
    } finally {
      flushing = false;
    }
    timer?.cancel();
    const times = [client.ep.pollTimeout(), server.ep.pollTimeout()].filter((t) => t !== undefined);
    if (times.length > 0) {
      const at = Math.max(Math.min(...times), sim.clock.now() + 0.001);
      timer = sim.clock.setTimer(at, () => {
        timer = undefined;
        const now = sim.clock.now();
        client.ep.handleTimeout(now);
        server.ep.handleTimeout(now);
        flush();
      });
    }
  };
  const listen = (side: PumpSide) => {
    for (const s of side.sockets) {
      // QUIC never lets IP fragment (RFC 9000 §14): too big fails here as EMSGSIZE.
      s.setDontFragment(true);
      s.on('error', () => {
        side.sendErrors++;
      });
      s.on('message', (msg, rinfo) => {
        if (side.dropAbove !== undefined && msg.byteLength > side.dropAbove) return;
        const here = s.address();
        side.ep.handle(
          new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
          { address: rinfo.address, port: rinfo.port },
          sim.clock.now(),
          side.readEcn ? rinfo.ecn : undefined,
          side.sockets.length > 1 ? { address: here.address, port: here.port } : undefined,
        );
        flush();
      });
    }
  };
  listen(client);
  listen(server);
  const runUntil = async (until: () => boolean, limitMs = 60_000): Promise<boolean> => {
    const deadline = sim.clock.now() + limitMs;
    await sim.run(
      new Promise<void>((resolve) => {
        const check = () => {
          if (until() || sim.clock.now() >= deadline) resolve();
          else sim.clock.setTimer(sim.clock.now() + 1, check);
        };
        check();
      }),
      limitMs + 1000,
    );
    return until();
  };
  const connect = (transport?: Partial<TransportConfig>) => {
    const conn = clientEp.connect(
      { address: sim.b.ipv4, port: 4433 },
      {
        tls: quicClientTls(c.ca.certificatePem, ALPN),
        ...((transport ?? o.clientTransport) ? { transport: transport ?? o.clientTransport } : {}),
      },
      sim.clock.now(),
    );
    flush();
    return conn;
  };
  return { sim, trace, lines, client, server, flush, runUntil, connect, accepted };
}
