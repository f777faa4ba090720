import { fc, test as fcTest } from '@fast-check/vitest';
import { SIM_EPOCH, type Sim } from '@stepwire/sim';
import { AntiReplayCache, pki } from '@stepwire/tls';
import { bytesEqual, concatBytes, Prng, TraceBus, utf8 } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent } from '../src/connection/types.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import {
  decodeVersionNegotiation,
  encodePacketHeader,
  encodeVersionNegotiation,
  QUIC_VERSION_1,
} from '../src/packet/header.ts';
import { endpointPair, simSockets } from './support/sim-endpoints.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

/**
 * Two endpoints on our own stack: the simulated network (MemoryLink, IP, our UDP), the
 * virtual clock, the tls package's machines in QUIC mode. A client fetches bytes from an
 * echo server; with impairments on the wire the bytes still arrive intact. Plus the
 * endpoint's stateless answers: Retry, Version Negotiation and Stateless Reset.
 */

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date(SIM_EPOCH));
});

const ALPN = 'stepwire-echo';

// Made per connection: the credentials exist once beforeAll has run.
const serverTls = (tp: Uint8Array) => quicServerTls(creds.leaf, ALPN)(tp);
const clientTls = (tp: Uint8Array) => quicClientTls(creds.ca.certificatePem, ALPN)(tp);

interface World {
  sim: Sim;
  client: QuicDriver;
  server: QuicDriver;
  trace: TraceBus;
}

function world(seed: number, impairments = {}, retry = false): World {
  const { sim, random, serverSocket: ss, clientSocket: cs } = simSockets(seed, impairments);
  const trace = new TraceBus();
  const serverEp = new QuicEndpoint({
    random,
    tlsEpoch: SIM_EPOCH,
    trace,
    host: 'B',
    server: { tls: serverTls, retry },
  });
  const clientEp = new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH, trace, host: 'A' });
  const server: QuicDriver = new QuicDriver(serverEp, ss, sim.clock, {
    // Echo: every byte goes back on the same stream, FIN included.
    onEvent: (conn, e) => {
      if (e.type === 'stream-data') conn.write(e.id, e.data, e.fin);
    },
  });
  const client = new QuicDriver(clientEp, cs, sim.clock);
  return { sim, client, server, trace };
}

/** Connects, sends `body` on `streams` streams, resolves with what came back per stream. */
function echoOver(
  w: World,
  body: Uint8Array,
  streams: number,
): Promise<{ conn: QuicConnection; got: Map<number, Uint8Array>; alpn: string | undefined }> {
  return new Promise((resolve, reject) => {
    const got = new Map<number, Uint8Array>();
    let fins = 0;
    let alpn: string | undefined;
    const driver = new QuicDriver(w.client.endpoint, w.client.socket, w.sim.clock, {
      onEvent: (c, e: QuicConnectionEvent) => {
        if (e.type === 'connected') {
          alpn = e.alpn;
          for (let i = 0; i < streams; i++) c.write(c.openStream('bidi'), body, true);
        }
        if (e.type === 'stream-data') {
          got.set(e.id, concatBytes(got.get(e.id) ?? new Uint8Array(0), e.data));
          if (e.fin && ++fins === streams) resolve({ conn: c, got, alpn });
        }
        if (e.type === 'closed' && fins < streams) reject(new Error(`closed: ${JSON.stringify(e.error)}`));
      },
    });
    w.client.close();
    w.client = driver;
    driver.connect({ address: w.sim.b.ipv4, port: 4433 }, { tls: clientTls });
  });
}

describe('QuicEndpoint over the simulated network, with our TLS', () => {
  it('handshakes (ALPN, certificate) and echoes 200 kB on 4 streams', async () => {
    const w = world(1);
    const body = new Prng(1).bytes(50_000);
    const r = await w.sim.run(echoOver(w, body, 4), 60_000);
    expect(r.alpn).toBe(ALPN);
    expect(r.got.size).toBe(4);
    for (const v of r.got.values()) expect(bytesEqual(v, body)).toBe(true);
    // Close cleanly; both ends drain and forget the connection; no timer left armed.
    r.conn.close(w.sim.clock.now(), 0, 'done');
    w.client.flush();
    await w.sim.run(new Promise<void>((res) => w.sim.clock.setTimer(w.sim.clock.now() + 5000, res)));
    expect(w.client.endpoint.connections.length).toBe(0);
    expect(w.server.endpoint.connections.length).toBe(0);
    expect(w.client.timers.armed).toBe(0);
    expect(w.server.timers.armed).toBe(0);
  });

  it('with a Retry first (RFC 9000 §8.1.2): the token validates the address', async () => {
    const w = world(2, {}, true);
    const lines: string[] = [];
    w.trace.on((e) => lines.push(`${e.host} ${e.dir} ${e.summary}`));
    const body = new Prng(2).bytes(5000);
    const r = await w.sim.run(echoOver(w, body, 1), 60_000);
    expect(bytesEqual(r.got.get(0) ?? new Uint8Array(0), body)).toBe(true);
    expect(lines.some((l) => l.startsWith('B out Retry'))).toBe(true);
    expect(lines.some((l) => l.startsWith('A in Retry'))).toBe(true);
  });

  fcTest.prop(
    [
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.record({
        loss: fc.double({ min: 0, max: 0.1, noNaN: true }),
        duplicate: fc.double({ min: 0, max: 0.05, noNaN: true }),
        reorder: fc.double({ min: 0, max: 0.1, noNaN: true }),
        corrupt: fc.double({ min: 0, max: 0.02, noNaN: true }),
      }),
    ],
    { numRuns: 4 },
  )(
    'bytes arrive intact through loss, duplication, reordering and corruption on the wire',
    async (seed, imp) => {
      const w = world(seed, { ...imp, delay: 5 });
      const body = new Prng(seed).bytes(40_000);
      const r = await w.sim.run(echoOver(w, body, 2), 600_000);
      for (const v of r.got.values()) expect(bytesEqual(v, body)).toBe(true);
    },
  );
});

describe('QuicEndpoint stateless answers', () => {
  const remote = { address: '198.18.0.1', port: 5000 };

  it('answers an unknown version with Version Negotiation listing v1 (RFC 9000 §6.1)', () => {
    const ep = new QuicEndpoint({ server: { tls: serverTls } });
    const d = new Uint8Array(1200);
    const head = encodePacketHeader(
      {
        type: 'Initial',
        version: QUIC_VERSION_1,
        dcid: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
        scid: Uint8Array.of(9, 9),
        reservedBits: 0,
        packetNumberLength: 1,
        truncatedPacketNumber: 0,
        token: new Uint8Array(0),
      },
      1000,
    );
    d.set(head);
    d.set([0x1a, 0x2a, 0x3a, 0x4a], 1); // a reserved (greasing) version
    ep.handle(d, remote, 0);
    const t = ep.pollTransmit(0);
    expect(t?.remote).toEqual(remote);
    const vn = decodeVersionNegotiation(t?.datagram ?? new Uint8Array(0));
    expect(vn.supportedVersions).toEqual([QUIC_VERSION_1]);
    expect([...vn.dcid]).toEqual([9, 9]);
    expect([...vn.scid]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Too small to be a client's first datagram: no answer (no amplification).
    ep.handle(d.subarray(0, 600), remote, 0);
    expect(ep.pollTransmit(0)).toBeUndefined();
  });

  it('answers a short header for an unknown connection with a smaller Stateless Reset (RFC 9000 §10.3)', () => {
    const ep = new QuicEndpoint({ server: { tls: serverTls } });
    const d = new Prng(5).bytes(100);
    d[0] = 0x40;
    ep.handle(d, remote, 0);
    const t = ep.pollTransmit(0);
    expect(t).toBeDefined();
    expect(t?.datagram.length).toBeLessThan(100);
    expect((t?.datagram[0] ?? 0) & 0xc0).toBe(0x40);
    // Small enough that a reset could not be smaller than it: silence.
    ep.handle(d.subarray(0, 21), remote, 0);
    expect(ep.pollTransmit(0)).toBeUndefined();
  });

  it('drops an Initial in a datagram below 1200 bytes (RFC 9000 §14.1)', () => {
    const ep = new QuicEndpoint({ server: { tls: serverTls } });
    const head = encodePacketHeader(
      {
        type: 'Initial',
        version: QUIC_VERSION_1,
        dcid: new Uint8Array(8),
        scid: new Uint8Array(8),
        reservedBits: 0,
        packetNumberLength: 1,
        truncatedPacketNumber: 0,
        token: new Uint8Array(0),
      },
      100,
    );
    ep.handle(concatBytes(head, new Uint8Array(100)), remote, 0);
    expect(ep.connections.length).toBe(0);
    expect(ep.counters.get('quic.endpoint.initial-too-small')).toBe(1);
  });

  it('a server that lost its state answers with a Stateless Reset the client recognises (RFC 9000 §10.3)', () => {
    const secret = new Prng(9).bytes(32);
    const prng = new Prng(9);
    const random = (n: number) => prng.bytes(n);
    const client = new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH });
    let server = new QuicEndpoint({ random, secret, tlsEpoch: SIM_EPOCH, server: { tls: serverTls } });
    const cAddr = { address: '198.18.0.1', port: 1111 };
    const sAddr = { address: '198.18.0.2', port: 443 };
    const conn = client.connect(sAddr, { tls: clientTls }, 0);
    const events: QuicConnectionEvent[] = [];
    let now = 0;
    const ferry = () => {
      for (let i = 0; i < 200; i++) {
        let moved = false;
        for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now)) {
          server.handle(t.datagram, cAddr, now);
          moved = true;
        }
        for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now)) {
          client.handle(t.datagram, sAddr, now);
          moved = true;
        }
        for (let e = conn.pollEvent(); e; e = conn.pollEvent()) events.push(e);
        if (!moved) break;
        now += 1;
      }
    };
    ferry();
    expect(conn.isHandshakeConfirmed).toBe(true);
    // The server restarts with the same secret and no connections.
    server = new QuicEndpoint({ random, secret, tlsEpoch: SIM_EPOCH, server: { tls: serverTls } });
    conn.ping();
    ferry();
    expect(server.counters.get('quic.endpoint.stateless-reset')).toBe(1);
    expect(client.counters.get('quic.endpoint.stateless-reset-received')).toBe(1);
    expect(events).toContainEqual({
      type: 'closed',
      error: expect.objectContaining({ source: 'stateless-reset' }),
    });
    expect(conn.state).toBe('draining');
  });

  it('a client told of no common version gives up (RFC 9000 §6.2)', () => {
    const client = new QuicEndpoint({ tlsEpoch: SIM_EPOCH });
    const sAddr = { address: '198.18.0.2', port: 443 };
    const conn = client.connect(sAddr, { tls: clientTls }, 0);
    const first = client.pollTransmit(0);
    expect(first).toBeDefined();
    const vn = encodeVersionNegotiation({
      type: 'VersionNegotiation',
      unusedBits: 0x2a,
      dcid: conn.initialLocalCid,
      scid: conn.remoteCid,
      supportedVersions: [0x6b3343cf, 0xff00001d],
    });
    client.handle(vn, sAddr, 5);
    expect(conn.pollEvent()).toEqual({
      type: 'closed',
      error: expect.objectContaining({ source: 'version-negotiation' }),
    });
    expect(conn.state).toBe('closed');
    expect(client.connections.length).toBe(0);
  });

  it('NAT rebinding: the server validates the new address and sends there (RFC 9000 §9.3, §8.2)', () => {
    const { client, server, lines } = endpointPair(10, { tls: serverTls });
    let cAddr = { address: '198.18.0.1', port: 1111 };
    const sAddr = { address: '198.18.0.2', port: 443 };
    const conn = client.connect(sAddr, { tls: clientTls }, 0);
    const toClient: { address: string; port: number }[] = [];
    let now = 0;
    const ferry = () => {
      for (let i = 0; i < 200; i++) {
        let moved = false;
        for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now)) {
          server.handle(t.datagram, cAddr, now);
          moved = true;
        }
        for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now)) {
          toClient.push(t.remote);
          // Only what is sent to the client's current address reaches it.
          if (t.remote.port === cAddr.port) client.handle(t.datagram, sAddr, now);
          moved = true;
        }
        if (!moved) break;
        now += 1;
      }
    };
    ferry();
    expect(conn.isHandshakeConfirmed).toBe(true);
    const serverConn = server.connections[0] as QuicConnection;
    // The client's NAT gives it a new port.
    cAddr = { address: '198.18.0.1', port: 2222 };
    toClient.length = 0;
    const id = conn.openStream('bidi');
    conn.write(id, utf8('after the rebinding'), true);
    ferry();
    expect(server.remoteOf(serverConn)).toEqual(cAddr);
    expect(toClient.every((r) => r.port === 2222)).toBe(true);
    expect(lines.some((l) => l.startsWith('B out') && l.includes('PATH_CHALLENGE'))).toBe(true);
    expect(lines.some((l) => l.startsWith('A out') && l.includes('PATH_RESPONSE'))).toBe(true);
    expect(lines).toContain('B local path validated');
    expect(serverConn.counters.get('quic.path.migrated')).toBe(1);
  });

  describe('resumption and 0-RTT (RFC 9001 §4.6)', () => {
    const sAddr = { address: '198.18.0.2', port: 443 };
    const cAddr = { address: '198.18.0.1', port: 1111 };
    const ticketKey = new Prng(11).bytes(32);

    function pair(acceptEarly: boolean) {
      // Tickets always allow 0-RTT; the refusing server's anti-replay store has no room, so it
      // refuses every early data attempt (and falls back to 1-RTT, RFC 8446 §8).
      const antiReplay = new AntiReplayCache(acceptEarly ? 100 : 0);
      const { client, server, lines } = endpointPair(acceptEarly ? 12 : 13, {
        tls: quicServerTls(creds.leaf, ALPN, { ticketKey, antiReplay, maxEarlyData: 0xffffffff }),
      });
      let now = 0;
      const ferry = (until: () => boolean) => {
        for (let i = 0; i < 400 && !until(); i++) {
          for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now))
            server.handle(t.datagram, cAddr, now);
          for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now))
            client.handle(t.datagram, sAddr, now);
          now += 1;
          for (const ep of [client, server])
            if ((ep.pollTimeout() ?? Number.POSITIVE_INFINITY) <= now) ep.handleTimeout(now);
        }
      };
      return { client, server, ferry, lines };
    }

    for (const accept of [true, false]) {
      it(`a second connection resumes and sends in 0-RTT; the server ${accept ? 'takes it' : 'refuses it and the data goes again in 1-RTT'}`, () => {
        const { client, server, ferry, lines } = pair(accept);
        const first = client.connect(sAddr, { tls: clientTls }, 0);
        let ticket: Extract<QuicConnectionEvent, { type: 'session-ticket' }> | undefined;
        ferry(() => {
          for (let e = first.pollEvent(); e; e = first.pollEvent())
            if (e.type === 'session-ticket') ticket = e;
          return ticket !== undefined;
        });
        expect(ticket?.transportParameters?.initial_max_data).toBeGreaterThan(0);
        const session = ticket?.ticket;
        if (!session) throw new Error('no ticket');
        const second = client.connect(
          sAddr,
          {
            tls: quicClientTls(creds.ca.certificatePem, ALPN, { session, earlyData: true }),
            ...(ticket?.transportParameters ? { earlyTransportParameters: ticket.transportParameters } : {}),
          },
          0,
        );
        // Written before any packet left: it can only travel in 0-RTT (or, refused, 1-RTT).
        const id = second.openStream('bidi');
        second.write(id, utf8('early request'), true);
        const got: string[] = [];
        const clientEvents: QuicConnectionEvent[] = [];
        ferry(() => {
          for (let e = second.pollEvent(); e; e = second.pollEvent()) clientEvents.push(e);
          for (const c of server.connections)
            for (let e = c.pollEvent(); e; e = c.pollEvent())
              if (e.type === 'stream-data') got.push(new TextDecoder().decode(e.data));
          return got.join('') === 'early request' && second.isHandshakeConfirmed;
        });
        expect(got.join('')).toBe('early request');
        expect(lines.some((l) => l.startsWith('A out 0-RTT') && l.includes('STREAM'))).toBe(true);
        expect(clientEvents).toContainEqual({
          type: 'connected',
          alpn: ALPN,
          earlyData: accept ? 'accepted' : 'rejected',
        });
        expect(second.counters.get('quic.0rtt.rejected')).toBe(accept ? 0 : 1);
        if (accept) expect(lines.some((l) => l.startsWith('B in 0-RTT'))).toBe(true);
      });
    }
  });

  it('forgets everything after many connections come and go (no route, connection or timer left)', () => {
    const prng = new Prng(14);
    const random = (n: number) => prng.bytes(n);
    const client = new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH });
    const server = new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH, server: { tls: serverTls } });
    const cAddr = { address: '198.18.0.1', port: 1111 };
    const sAddr = { address: '198.18.0.2', port: 443 };
    let now = 0;
    const step = () => {
      for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now))
        server.handle(t.datagram, cAddr, now);
      for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now))
        client.handle(t.datagram, sAddr, now);
      for (const c of server.connections)
        for (let e = c.pollEvent(); e; e = c.pollEvent())
          if (e.type === 'stream-data') c.write(e.id, e.data, e.fin);
      now += 5;
      for (const ep of [client, server])
        if ((ep.pollTimeout() ?? Number.POSITIVE_INFINITY) <= now) ep.handleTimeout(now);
    };
    for (let i = 0; i < 8; i++) {
      const conn = client.connect(sAddr, { tls: clientTls }, now);
      let echoed = false;
      for (let k = 0; k < 2000 && !echoed; k++) {
        step();
        for (let e = conn.pollEvent(); e; e = conn.pollEvent()) {
          if (e.type === 'connected') conn.write(conn.openStream('bidi'), utf8(`hello ${i}`), true);
          if (e.type === 'stream-data' && e.fin) echoed = true;
        }
      }
      expect(echoed).toBe(true);
      // Half close from the client, half from the server.
      if (i % 2 === 0) conn.close(now, 0, 'bye');
      else server.connections[0]?.close(now, 0, 'bye');
      for (let k = 0; k < 2000 && (client.connections.length > 0 || server.connections.length > 0); k++)
        step();
    }
    for (const ep of [client, server]) {
      expect(ep.connections.length).toBe(0);
      expect(ep.stats()).toMatchObject({ connections: 0, routes: 0, queued: 0 });
      expect(ep.pollTimeout()).toBeUndefined();
    }
  });

  it('a Retry token is bound to the client address: the same Initial from elsewhere is dropped (RFC 9000 §8.1.4)', () => {
    const prng = new Prng(15);
    const random = (n: number) => prng.bytes(n);
    const client = new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH });
    const secret = new Prng(16).bytes(32);
    const server = new QuicEndpoint({
      random,
      secret,
      tlsEpoch: SIM_EPOCH,
      server: { tls: serverTls, retry: true },
    });
    const cAddr = { address: '198.18.0.1', port: 1111 };
    const sAddr = { address: '198.18.0.2', port: 443 };
    client.connect(sAddr, { tls: clientTls }, 0);
    server.handle((client.pollTransmit(0) as { datagram: Uint8Array }).datagram, cAddr, 0);
    const retry = server.pollTransmit(0);
    expect(retry).toBeDefined();
    expect(server.connections.length).toBe(0); // no state before the address is proven
    client.handle((retry as { datagram: Uint8Array }).datagram, sAddr, 1);
    const second = (client.pollTransmit(1) as { datagram: Uint8Array }).datagram;
    // Replayed from another address: the token does not verify.
    server.handle(second, { address: '198.18.0.66', port: 1111 }, 2);
    expect(server.counters.get('quic.endpoint.invalid-token')).toBe(1);
    expect(server.connections.length).toBe(0);
    // From the address it was issued to: accepted.
    server.handle(second, cAddr, 2);
    expect(server.connections.length).toBe(1);
    // And too late (same key, so only the age differs): a token older than its lifetime is refused.
    const late = new QuicEndpoint({
      random,
      secret,
      tlsEpoch: SIM_EPOCH,
      server: { tls: serverTls, retry: true },
    });
    late.handle(second, cAddr, 60_000);
    expect(late.counters.get('quic.endpoint.invalid-token')).toBe(1);
  });

  it('a NEW_TOKEN token lets the next connection skip the Retry (RFC 9000 §8.1.3)', () => {
    const { client, server, lines } = endpointPair(17, { tls: serverTls, retry: true });
    const cAddr = { address: '198.18.0.1', port: 1111 };
    const sAddr = { address: '198.18.0.2', port: 443 };
    let now = 0;
    const ferry = (until: () => boolean) => {
      for (let i = 0; i < 300 && !until(); i++) {
        for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now))
          server.handle(t.datagram, cAddr, now);
        for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now))
          client.handle(t.datagram, sAddr, now);
        now += 1;
      }
    };
    const first = client.connect(sAddr, { tls: clientTls }, now);
    ferry(() => first.receivedToken !== undefined);
    const token = first.receivedToken;
    expect(token).toBeDefined();
    // One Retry per Initial datagram of the first flight (a ClientHello with a post-quantum
    // key share takes two).
    const retries = lines.filter((l) => l.startsWith('B out Retry')).length;
    expect(retries).toBeGreaterThan(0);
    // The next connection, from another port of the same host, with the token.
    cAddr.port = 2222;
    const second = client.connect(sAddr, { tls: clientTls, ...(token ? { token } : {}) }, now);
    ferry(() => second.isHandshakeConfirmed);
    expect(second.isHandshakeConfirmed).toBe(true);
    expect(lines.filter((l) => l.startsWith('B out Retry'))).toHaveLength(retries);
    expect(server.counters.get('quic.endpoint.new-token-valid')).toBe(1);
  });
});
