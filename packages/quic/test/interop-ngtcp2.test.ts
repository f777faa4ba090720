import { AntiReplayCache, pki } from '@stepwire/tls';
import { bytesEqual, concatBytes, Prng, RealClock, TraceBus } from '@stepwire/wire';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent } from '../src/connection/types.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import {
  CONTROL_STREAM,
  closeAndDrain,
  closeNgtcp2,
  getRequest,
  gtlsSite,
  h3Body,
  h3Frames,
  loopbackSocket,
  ourClientTls,
  ourGet,
  ourServer,
  runGtlsClient,
  startGtlsServer,
  tracked,
  waitFor,
} from './support/ngtcp2.ts';

/**
 * Our QuicConnection and QuicEndpoint, with our TLS in QUIC mode, against ngtcp2 (the
 * GnuTLS build: gtlsserver and gtlsclient) over node:dgram on loopback, both directions.
 * ngtcp2 speaks HTTP/3 after the handshake; the few HTTP/3 bytes needed are written by
 * hand (support/ngtcp2.ts: a control stream with empty SETTINGS, a request or a response whose header
 * fields are QPACK static-table references, RFC 9204 §4.5.2), so what is checked is QUIC:
 * the handshake, transport parameters, stream data both ways (a 300 kB body), ACKs and
 * loss recovery, and a clean close.
 */

const BODY = new Prng(42).bytes(300_000);
const site = gtlsSite('stepwire-quic-interop-', { 'big.bin': BODY });
afterAll(() => site.remove());

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});

afterEach(closeNgtcp2);

describe('our client against ngtcp2 gtlsserver (node:dgram, loopback)', () => {
  // Our client offers one suite at a time; gtlsserver takes what is offered.
  const cases: { name: string; code: number; serverArgs: string[]; keyUpdate?: boolean; lossy?: boolean }[] =
    [
      { name: 'TLS_AES_128_GCM_SHA256', code: 0x1301, serverArgs: [] },
      { name: 'TLS_CHACHA20_POLY1305_SHA256', code: 0x1303, serverArgs: [] },
      // RFC 9001 §6: we update keys once the handshake is confirmed; ngtcp2 must follow.
      { name: 'TLS_AES_128_GCM_SHA256, our key update', code: 0x1301, serverArgs: [], keyUpdate: true },
      // ngtcp2 drops 10% of what it sends and receives: our recovery and its ACKs must cope.
      {
        name: 'TLS_AES_128_GCM_SHA256, 10% loss both ways',
        code: 0x1301,
        serverArgs: ['--tx-loss=0.1', '--rx-loss=0.1'],
        lossy: true,
      },
    ];
  for (const { name, code, serverArgs, keyUpdate, lossy } of cases) {
    it(`handshake (${name}), transport parameters, a 300 kB body, a clean close`, async () => {
      const { port, server } = await startGtlsServer(site, { args: serverArgs });
      const trace = new TraceBus();
      const ackLines: string[] = [];
      /** 1-RTT packet numbers that reached us: never reused, so a lost packet leaves a hole (RFC 9000 §12.3). */
      const received1Rtt = new Set<number>();
      trace.on((e) => {
        if (e.dir === 'out' && e.summary.includes('ACK')) ackLines.push(e.summary);
        const f = e.fields as { type?: unknown; packetNumber?: unknown } | undefined;
        if (e.layer === 'quic' && e.dir === 'in' && f?.type === '1-RTT' && typeof f.packetNumber === 'number')
          received1Rtt.add(f.packetNumber);
      });
      let updated = false;
      const g = await ourGet(site, port, {
        path: '/big.bin',
        trace,
        tls: { cipherSuites: [code] },
        onResponseData: (c, got) => {
          // With the first bytes of the response, the handshake complete.
          if (keyUpdate && !updated) {
            updated = true;
            c.initiateKeyUpdate(got.clock.now());
          }
        },
      });
      const { conn, driver } = g;
      // With loss, the response can be whole before a HANDSHAKE_DONE (or an ACK of ours) that
      // confirms the handshake made it through: wait for both.
      await waitFor(
        'the response and a confirmed handshake',
        () => (g.fin && conn.isHandshakeConfirmed) || g.ended(),
        30_000,
      );
      expect(g.events[0]).toEqual({ type: 'connected', alpn: 'h3' });
      // ngtcp2's transport parameters decoded and applied (RFC 9000 §7.4).
      expect(conn.peerParams?.initial_max_data).toBeGreaterThan(0);
      expect(conn.peerParams?.original_destination_connection_id).toBeDefined();
      expect(conn.isHandshakeConfirmed).toBe(true);
      // The server's control stream (server uni stream 3) arrived and starts with type 0x00.
      expect(g.events.some((e) => e.type === 'stream-opened' && e.id === 3)).toBe(true);
      expect(g.fin).toBe(true);
      expect(h3Frames(g.response)[0]?.type).toBe(0x01);
      const body = h3Body(g.response);
      expect(body.length).toBe(BODY.length);
      expect(bytesEqual(body, BODY)).toBe(true);
      if (keyUpdate) expect(conn.keyUpdates).toBe(1);
      // Loss happened and was recovered from, in at least one direction: packet numbers of the
      // server's that never reached us (never reused, so a loss leaves a hole, RFC 9000 §12.3),
      // or packets of ours declared lost (RFC 9002 §6). ngtcp2's simulated loss is random per
      // packet and now and then spares a whole direction of a short transfer.
      if (lossy) {
        const holes = Math.max(...received1Rtt) + 1 - received1Rtt.size;
        const ourLost = (conn.stats().counters as Record<string, number>)['quic.lost'] ?? 0;
        expect(holes + ourLost).toBeGreaterThan(0);
        expect(ackLines.length).toBeGreaterThan(0);
      }
      // H3_NO_ERROR (RFC 9114 §8.1) in an application CONNECTION_CLOSE; we drain.
      await closeAndDrain(g);
      expect(driver.endpoint.connections.length).toBe(0);
      expect(driver.timers.armed).toBe(0);
      expect(server.exitCode).toBeNull(); // ngtcp2 did not crash on anything we sent
    });
  }
});

describe('ngtcp2 gtlsclient against our server (node:dgram, loopback)', () => {
  it.each([
    ['plain', false, [] as string[]],
    ['after our Retry', true, [] as string[]],
    ['with a key update from the client', false, ['--key-update=1ms', '--delay-stream=30ms']],
    ['with 10% loss on the client side', false, ['--tx-loss=0.1', '--rx-loss=0.1']],
  ])('%s: handshake, its request read, our response taken, its clean close', async (_name, retry, extra) => {
    // Short idle timeout, so a close lost on the way still ends the connection within the test (RFC 9000 §10.1).
    const s = await ourServer(creds, BODY.subarray(0, 100_000), {
      server: { retry, transport: { maxIdleTimeout: 3000 } },
    });
    const { code } = await runGtlsClient(s.port, { args: extra });
    // gtlsclient exits 0 once every stream closed: our response (headers, 100 kB, FIN) arrived whole.
    expect(code).toBe(0);
    const connected = s.events.filter((x) => x.e.type === 'connected');
    expect(connected).toHaveLength(1);
    expect(connected[0]?.e).toEqual({ type: 'connected', alpn: 'h3' });
    const conn = connected[0]?.conn as QuicConnection;
    // ngtcp2's parameters, checked against the connection IDs it used (RFC 9000 §7.3).
    expect(conn.peerParams?.initial_source_connection_id).toBeDefined();
    // Its request: a HEADERS frame on stream 0.
    expect(h3Frames(s.requests.get(conn)?.get(0) ?? new Uint8Array(0))[0]?.type).toBe(0x01);
    // Its close: application H3_NO_ERROR (0x100), or a transport NO_ERROR (no error reported);
    // when its CONNECTION_CLOSE is among the packets it drops, our idle timeout (3 s here)
    // ends the connection instead (RFC 9000 §10.1).
    await waitFor('the close', () => s.events.some((x) => x.e.type === 'closed'), 15_000);
    const closed = s.events.find((x) => x.e.type === 'closed')?.e;
    if (closed?.type === 'closed' && closed.error?.source === 'peer')
      expect(closed.error).toMatchObject({ application: true, code: 0x100 });
    else if (closed?.type === 'closed' && closed.error) expect(closed.error.source).toBe('idle-timeout');
    // Either way the endpoint forgets the connection and no timer is left (RFC 9000 §10.2).
    await waitFor('the connection to be forgotten', () => s.driver.endpoint.connections.length === 0, 15_000);
    expect(s.driver.timers.armed).toBe(0);
    if (extra.some((a) => a.startsWith('--key-update'))) expect(conn.keyUpdates).toBeGreaterThanOrEqual(1);
  });
});

describe('resumption and 0-RTT with ngtcp2 (RFC 9001 §4.6)', () => {
  it('gtlsclient resumes against our server and its request arrives in 0-RTT, which we take', async () => {
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => lines.push(`${e.dir} ${e.summary}`));
    // Every connection's TLS server shares one ticket key and one anti-replay store.
    const s = await ourServer(creds, BODY.subarray(0, 1000), {
      trace,
      tls: { ticketKey: new Prng(77).bytes(32), antiReplay: new AntiReplayCache(), maxEarlyData: 0xffffffff },
    });
    const files = [`--session-file=${site.dir}/session.pem`, `--tp-file=${site.dir}/tp.txt`];
    const run = async () => (await runGtlsClient(s.port, { args: files })).code;
    expect(await run()).toBe(0);
    const before = lines.filter((l) => l.startsWith('in 0-RTT')).length;
    expect(before).toBe(0);
    expect(await run()).toBe(0);
    const connected = s.events.filter((x) => x.e.type === 'connected').map((x) => x.e);
    expect(connected).toHaveLength(2);
    expect(connected[1]).toEqual({ type: 'connected', alpn: 'h3', earlyData: 'accepted' });
    // Its request came in 0-RTT packets that we opened with the early keys.
    expect(lines.some((l) => l.startsWith('in 0-RTT') && l.includes('STREAM'))).toBe(true);
  });

  it('our client resumes against gtlsserver and sends its request in 0-RTT', async () => {
    const { port } = await startGtlsServer(site);
    const clock = new RealClock();
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => lines.push(`${e.dir} ${e.summary}`));
    const sock = await loopbackSocket();
    let ticket: Extract<QuicConnectionEvent, { type: 'session-ticket' }> | undefined;
    const done = new Map<QuicConnection, Uint8Array>();
    const finished = new Set<QuicConnection>();
    const connected: QuicConnectionEvent[] = [];
    const request = (c: QuicConnection) => {
      c.write(c.openStream('uni'), CONTROL_STREAM);
      c.write(c.openStream('bidi'), getRequest(`127.0.0.1:${port}`, '/big.bin'), true);
    };
    const driver = tracked(
      new QuicDriver(new QuicEndpoint({ tlsEpoch: Date.now() - clock.now(), trace }), sock, clock, {
        onEvent: (c, e) => {
          if (e.type === 'session-ticket') ticket = e;
          if (e.type === 'connected') {
            connected.push(e);
            if (e.earlyData === undefined) request(c);
          }
          if (e.type === 'stream-data' && e.id === 0) {
            done.set(c, concatBytes(done.get(c) ?? new Uint8Array(0), e.data));
            if (e.fin) finished.add(c);
          }
        },
      }),
    );
    const first = driver.connect({ address: '127.0.0.1', port }, { tls: ourClientTls(site) });
    await waitFor('the first response', () => finished.has(first));
    await waitFor('a ticket', () => ticket !== undefined, 3000);
    first.close(clock.now(), 0x100);
    driver.flush();
    const t = ticket;
    if (!t?.transportParameters) throw new Error('no ticket with transport parameters');
    const second = driver.connect(
      { address: '127.0.0.1', port },
      {
        tls: ourClientTls(site, { session: t.ticket, earlyData: true }),
        earlyTransportParameters: t.transportParameters,
      },
    );
    // Written before the handshake: 0-RTT.
    request(second);
    driver.flush();
    await waitFor('the second response', () => finished.has(second));
    expect(bytesEqual(h3Body(done.get(second) ?? new Uint8Array(0)), BODY)).toBe(true);
    expect(lines.some((l) => l.startsWith('out 0-RTT') && l.includes('STREAM'))).toBe(true);
    expect(connected[1]).toEqual({ type: 'connected', alpn: 'h3', earlyData: 'accepted' });
    second.close(clock.now(), 0x100);
    driver.flush();
  });
});

describe('gtlsclient with many requests against our server', () => {
  it('30 requests on one connection while we allow 4 streams at a time: MAX_STREAMS keeps it going (RFC 9000 §4.6)', async () => {
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => {
      if (e.dir === 'out' && e.summary.includes('MAX_STREAMS')) lines.push(e.summary);
    });
    const s = await ourServer(creds, BODY.subarray(0, 5000), {
      trace,
      server: { transport: { initialMaxStreamsBidi: 4 } },
    });
    const { code } = await runGtlsClient(s.port, { args: ['-n', '30'] });
    expect(code).toBe(0);
    expect(s.answered).toBe(30);
    expect(lines.some((l) => l.includes('MAX_STREAMS bidi'))).toBe(true);
  });
});

describe('migration with ngtcp2 (RFC 9000 §9)', () => {
  it('our client moves to a new local port and connection ID mid-transfer; gtlsserver follows; the 300 kB body arrives whole', async () => {
    const { port, server } = await startGtlsServer(site);
    const sock = await loopbackSocket();
    const sock2 = await loopbackSocket();
    let dcidBefore: Uint8Array | undefined;
    let migratedAt = -1;
    const afterMove = { datagramsOnNew: 0 };
    sock2.on('message', () => afterMove.datagramsOnNew++);
    const g = await ourGet(site, port, {
      path: '/big.bin',
      socket: sock,
      onResponseData: (c, got) => {
        // Mid-transfer, once the handshake is confirmed (§9: not before) and the
        // server's NEW_CONNECTION_IDs gave us one to move with (§9.5).
        if (migratedAt < 0 && !got.fin && c.isHandshakeConfirmed && got.response.length > 20_000) {
          migratedAt = got.response.length;
          dcidBefore = c.remoteCid;
          queueMicrotask(() => got.driver.rebind(sock2));
        }
      },
    });
    const { conn } = g;
    await waitFor('the response', () => g.fin || g.ended(), 30_000);
    expect(g.fin).toBe(true);
    expect(migratedAt).toBeGreaterThan(0);
    expect(migratedAt).toBeLessThan(BODY.length);
    expect(conn.counters.get('quic.path.client-migrated')).toBe(1);
    expect(bytesEqual(conn.remoteCid, dcidBefore ?? new Uint8Array(0))).toBe(false);
    // gtlsserver answered on the new path: its packets reached the new socket.
    expect(afterMove.datagramsOnNew).toBeGreaterThan(0);
    expect(bytesEqual(h3Body(g.response), BODY)).toBe(true);
    await closeAndDrain(g);
    expect(server.exitCode).toBeNull();
  });

  it.each([
    ['path validation (migration)', ['--change-local-addr=100ms']],
    ['NAT rebinding', ['--change-local-addr=100ms', '--nat-rebinding']],
  ])(
    'gtlsclient changes its local address (%s) before its request; our server follows and answers',
    async (_n, extra) => {
      const conns: QuicConnection[] = [];
      const s = await ourServer(creds, BODY.subarray(0, 100_000), {
        server: { transport: { maxIdleTimeout: 3000 } },
        onConnection: (c) => conns.push(c),
      });
      const peers = new Set<number>();
      s.socket.on('message', (_m, rinfo) => peers.add(rinfo.port));
      const { code } = await runGtlsClient(s.port, { args: ['--delay-stream=600ms', ...extra] });
      // It exits 0 once our response (headers, 100 kB, FIN) arrived whole at its new address.
      expect(code).toBe(0);
      expect(peers.size).toBe(2);
      const conn = conns[0];
      expect(conn?.counters.get('quic.path.migrated')).toBe(1);
      expect(conn?.counters.get('quic.path.validation-failed')).toBe(0);
    },
  );
});
