import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AntiReplayCache, certificateSigner, certificateVerifier, pki } from '@stepwire/tls';
import { ByteReader, bytesEqual, concatBytes, Prng, RealClock, TraceBus, utf8 } from '@stepwire/wire';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../../test/support/peer-process.ts';
import type { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionEvent } from '../src/connection/types.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { readVarint } from '../src/packet/varint.ts';
import { createQuicTlsClient, createQuicTlsServer } from '../src/tls/handshake.ts';

/**
 * Our QuicConnection and QuicEndpoint, with our TLS in QUIC mode, against ngtcp2 (the
 * GnuTLS build: gtlsserver and gtlsclient) over node:dgram on loopback, both directions.
 * ngtcp2 speaks HTTP/3 after the handshake; the few HTTP/3 bytes needed are written by
 * hand here (a control stream with empty SETTINGS, a request or a response whose header
 * fields are QPACK static-table references, RFC 9204 §4.5.2), so what is checked is QUIC:
 * the handshake, transport parameters, stream data both ways (a 300 kB body), ACKs and
 * loss recovery, and a clean close.
 */

const dir = mkdtempSync(join(tmpdir(), 'stepwire-quic-interop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { key, cert } = selfSignedCertificate(dir);
const htdocs = join(dir, 'htdocs');
mkdirSync(htdocs);
const BODY = new Prng(42).bytes(300_000);
writeFileSync(join(htdocs, 'big.bin'), BODY);

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});

const children: ChildProcess[] = [];
const sockets: Socket[] = [];
const drivers: QuicDriver[] = [];
afterEach(() => {
  // Only processes this file started, by their handle (PID).
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of drivers.splice(0)) d.close();
  for (const s of sockets.splice(0)) s.close();
});

async function freePort(): Promise<number> {
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

async function loopbackSocket(port = 0): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(port, '127.0.0.1', r));
  return s;
}

// ---- the HTTP/3 bytes (RFC 9114 §7, RFC 9204 §4.5) ----

function h3Frame(type: number, payload: Uint8Array): Uint8Array {
  const varint = (v: number) =>
    v < 64
      ? Uint8Array.of(v)
      : v < 16384
        ? Uint8Array.of(0x40 | (v >> 8), v & 0xff)
        : Uint8Array.of(0x80 | ((v >>> 24) & 0x3f), (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  return concatBytes(varint(type), varint(payload.length), payload);
}
/** Control stream: stream type 0x00 then SETTINGS (0x04) with nothing in it (RFC 9114 §6.2.1, §7.2.4). */
const CONTROL_STREAM = concatBytes(Uint8Array.of(0x00), h3Frame(0x04, new Uint8Array(0)));
/** A literal with a static name reference (RFC 9204 §4.5.4), value without Huffman. */
function literal(staticIndex: number, value: string): Uint8Array {
  const v = utf8(value);
  if (staticIndex > 14 || v.length > 126) throw new RangeError('kept to one-byte prefixes');
  return concatBytes(Uint8Array.of(0x50 | staticIndex, v.length), v);
}
/** GET https://authority/path: :method GET (17), :scheme https (23) indexed; :authority (0), :path (1) literal. */
function getRequest(authority: string, path: string): Uint8Array {
  const section = concatBytes(
    Uint8Array.of(0x00, 0x00, 0xc0 | 17, 0xc0 | 23),
    literal(0, authority),
    literal(1, path),
  );
  return h3Frame(0x01, section);
}
/** :status 200 is static entry 25. */
const RESPONSE_HEADERS = h3Frame(0x01, Uint8Array.of(0x00, 0x00, 0xc0 | 25));

/** The HTTP/3 frames of a request or response stream. */
function h3Frames(bytes: Uint8Array): { type: number; payload: Uint8Array }[] {
  const r = new ByteReader(bytes, 'h3');
  const out: { type: number; payload: Uint8Array }[] = [];
  while (!r.atEnd) {
    const type = readVarint(r, 'type');
    const length = readVarint(r, 'length');
    out.push({ type, payload: r.copy(length, 'payload') });
  }
  return out;
}

function waitFor(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

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
      const port = await freePort();
      const server = spawn(
        'gtlsserver',
        ['--quiet', '-d', htdocs, ...serverArgs, '127.0.0.1', String(port), key, cert],
        {
          stdio: 'ignore',
        },
      );
      children.push(server);
      await new Promise((r) => setTimeout(r, 300));
      const sock = await loopbackSocket();
      const clock = new RealClock();
      const events: QuicConnectionEvent[] = [];
      let response: Uint8Array = new Uint8Array(0);
      let fin = false;
      let requestId = -1;
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
      const driver = new QuicDriver(
        new QuicEndpoint({ tlsEpoch: Date.now() - clock.now(), trace }),
        sock,
        clock,
        {
          onEvent: (c, e) => {
            events.push(e);
            if (e.type === 'connected') {
              c.write(c.openStream('uni'), CONTROL_STREAM);
              requestId = c.openStream('bidi');
              c.write(requestId, getRequest(`127.0.0.1:${port}`, '/big.bin'), true);
            }
            if (e.type === 'stream-data' && e.id === requestId) {
              if (keyUpdate && response.length === 0) c.initiateKeyUpdate(clock.now());
              response = concatBytes(response, e.data);
              fin ||= e.fin;
            }
          },
        },
      );
      drivers.push(driver);
      const conn: QuicConnection = driver.connect(
        { address: '127.0.0.1', port },
        {
          tls: (transportParameters) =>
            createQuicTlsClient({
              serverName: 'stepwire.test',
              verifier: certificateVerifier({ ca: readFileSync(cert, 'utf8') }),
              alpnProtocols: ['h3'],
              cipherSuites: [code],
              transportParameters,
            }),
        },
      );
      // With loss, the response can be whole before a HANDSHAKE_DONE (or an ACK of ours) that
      // confirms the handshake made it through: wait for both.
      await waitFor(
        'the response and a confirmed handshake',
        () =>
          (fin && conn.isHandshakeConfirmed) ||
          (conn.state !== 'established' && conn.state !== 'handshaking'),
        30_000,
      );
      expect(events[0]).toEqual({ type: 'connected', alpn: 'h3' });
      // ngtcp2's transport parameters decoded and applied (RFC 9000 §7.4).
      expect(conn.peerParams?.initial_max_data).toBeGreaterThan(0);
      expect(conn.peerParams?.original_destination_connection_id).toBeDefined();
      expect(conn.isHandshakeConfirmed).toBe(true);
      // The server's control stream (server uni stream 3) arrived and starts with type 0x00.
      expect(events.some((e) => e.type === 'stream-opened' && e.id === 3)).toBe(true);
      expect(fin).toBe(true);
      const frames = h3Frames(response);
      expect(frames[0]?.type).toBe(0x01);
      const body = concatBytes(...frames.filter((f) => f.type === 0x00).map((f) => f.payload));
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
      conn.close(clock.now(), 0x100, '');
      driver.flush();
      await waitFor('our side to close', () => conn.isDrained, 10_000);
      expect(driver.endpoint.connections.length).toBe(0);
      expect(driver.timers.armed).toBe(0);
      expect(server.exitCode).toBeNull(); // ngtcp2 did not crash on anything we sent
    });
  }
});

describe('ngtcp2 gtlsclient against our server (node:dgram, loopback)', () => {
  async function serve(retry: boolean, early = false) {
    const sock = await loopbackSocket();
    const port = (sock.address() as { port: number }).port;
    const clock = new RealClock();
    const events: { conn: QuicConnection; e: QuicConnectionEvent }[] = [];
    const requests = new Map<number, Uint8Array>();
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => lines.push(`${e.dir} ${e.summary}`));
    // For resumption every connection's TLS server shares one ticket key and one anti-replay store.
    const ticketKey = new Prng(77).bytes(32);
    const antiReplay = new AntiReplayCache();
    const endpoint = new QuicEndpoint({
      tlsEpoch: Date.now() - clock.now(),
      trace,
      server: {
        retry,
        // Short, so a close lost on the way still ends in an idle timeout within the test (RFC 9000 §10.1).
        transport: { maxIdleTimeout: 3000 },
        tls: (transportParameters) =>
          createQuicTlsServer({
            signer: certificateSigner(creds.leaf),
            alpnProtocols: ['h3'],
            transportParameters,
            ...(early ? { ticketKey, antiReplay, maxEarlyData: 0xffffffff } : {}),
          }),
      },
    });
    const driver = new QuicDriver(endpoint, sock, clock, {
      onEvent: (conn, e) => {
        events.push({ conn, e });
        if (e.type === 'connected') conn.write(conn.openStream('uni'), CONTROL_STREAM);
        // Client-initiated bidirectional streams are requests (RFC 9114 §6.1).
        if (e.type === 'stream-data' && e.id % 4 === 0) {
          requests.set(e.id, concatBytes(requests.get(e.id) ?? new Uint8Array(0), e.data));
          if (e.fin)
            conn.write(e.id, concatBytes(RESPONSE_HEADERS, h3Frame(0x00, BODY.subarray(0, 100_000))), true);
        }
      },
    });
    drivers.push(driver);
    return { port, events, requests, driver, lines };
  }

  async function runClient(port: number, extra: string[] = []): Promise<number | null> {
    const client = spawn(
      'gtlsclient',
      [
        '--quiet',
        '--exit-on-all-streams-close',
        '--timeout=10s',
        ...extra,
        '127.0.0.1',
        String(port),
        `https://127.0.0.1:${port}/`,
      ],
      { stdio: 'ignore' },
    );
    children.push(client);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(-1), 30_000);
      client.once('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  it.each([
    ['plain', false, [] as string[]],
    ['after our Retry', true, [] as string[]],
    ['with a key update from the client', false, ['--key-update=1ms', '--delay-stream=30ms']],
    ['with 10% loss on the client side', false, ['--tx-loss=0.1', '--rx-loss=0.1']],
  ])('%s: handshake, its request read, our response taken, its clean close', async (_name, retry, extra) => {
    const s = await serve(retry);
    const code = await runClient(s.port, extra);
    // gtlsclient exits 0 once every stream closed: our response (headers, 100 kB, FIN) arrived whole.
    expect(code).toBe(0);
    const connected = s.events.filter((x) => x.e.type === 'connected');
    expect(connected).toHaveLength(1);
    expect(connected[0]?.e).toEqual({ type: 'connected', alpn: 'h3' });
    const conn = connected[0]?.conn as QuicConnection;
    // ngtcp2's parameters, checked against the connection IDs it used (RFC 9000 §7.3).
    expect(conn.peerParams?.initial_source_connection_id).toBeDefined();
    // Its request: a HEADERS frame on stream 0.
    expect(h3Frames(s.requests.get(0) ?? new Uint8Array(0))[0]?.type).toBe(0x01);
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
    const sock = await loopbackSocket();
    const port = (sock.address() as { port: number }).port;
    const clock = new RealClock();
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => lines.push(`${e.dir} ${e.summary}`));
    const ticketKey = new Prng(77).bytes(32);
    const antiReplay = new AntiReplayCache();
    const connected: QuicConnectionEvent[] = [];
    const endpoint = new QuicEndpoint({
      tlsEpoch: Date.now() - clock.now(),
      trace,
      server: {
        tls: (transportParameters) =>
          createQuicTlsServer({
            signer: certificateSigner(creds.leaf),
            alpnProtocols: ['h3'],
            transportParameters,
            ticketKey,
            antiReplay,
            maxEarlyData: 0xffffffff,
          }),
      },
    });
    const requests = new Map<QuicConnection, Map<number, Uint8Array>>();
    const driver = new QuicDriver(endpoint, sock, clock, {
      onEvent: (conn, e) => {
        if (e.type === 'connected') {
          connected.push(e);
          conn.write(conn.openStream('uni'), CONTROL_STREAM);
        }
        if (e.type === 'stream-data' && e.id % 4 === 0) {
          const m = requests.get(conn) ?? new Map<number, Uint8Array>();
          requests.set(conn, m);
          m.set(e.id, concatBytes(m.get(e.id) ?? new Uint8Array(0), e.data));
          if (e.fin)
            conn.write(e.id, concatBytes(RESPONSE_HEADERS, h3Frame(0x00, BODY.subarray(0, 1000))), true);
        }
      },
    });
    drivers.push(driver);
    const files = [`--session-file=${join(dir, 'session.pem')}`, `--tp-file=${join(dir, 'tp.txt')}`];
    const run = () =>
      new Promise<number | null>((resolve) => {
        const c = spawn(
          'gtlsclient',
          [
            '--quiet',
            '--exit-on-all-streams-close',
            '--timeout=10s',
            ...files,
            '127.0.0.1',
            String(port),
            `https://127.0.0.1:${port}/`,
          ],
          { stdio: 'ignore' },
        );
        children.push(c);
        const t = setTimeout(() => resolve(-1), 30_000);
        c.once('exit', (code) => {
          clearTimeout(t);
          resolve(code);
        });
      });
    expect(await run()).toBe(0);
    const before = lines.filter((l) => l.startsWith('in 0-RTT')).length;
    expect(before).toBe(0);
    expect(await run()).toBe(0);
    expect(connected).toHaveLength(2);
    expect(connected[1]).toEqual({ type: 'connected', alpn: 'h3', earlyData: 'accepted' });
    // Its request came in 0-RTT packets that we opened with the early keys.
    expect(lines.some((l) => l.startsWith('in 0-RTT') && l.includes('STREAM'))).toBe(true);
  });

  it('our client resumes against gtlsserver and sends its request in 0-RTT', async () => {
    const port = await freePort();
    children.push(
      spawn('gtlsserver', ['--quiet', '-d', htdocs, '127.0.0.1', String(port), key, cert], {
        stdio: 'ignore',
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
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
    const driver = new QuicDriver(
      new QuicEndpoint({ tlsEpoch: Date.now() - clock.now(), trace }),
      sock,
      clock,
      {
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
      },
    );
    drivers.push(driver);
    const tls =
      (o: { session?: NonNullable<typeof ticket>['ticket'] } = {}) =>
      (transportParameters: Uint8Array) =>
        createQuicTlsClient({
          serverName: 'stepwire.test',
          verifier: certificateVerifier({ ca: readFileSync(cert, 'utf8') }),
          alpnProtocols: ['h3'],
          transportParameters,
          ...(o.session ? { session: o.session, earlyData: true } : {}),
        });
    const first = driver.connect({ address: '127.0.0.1', port }, { tls: tls() });
    await waitFor('the first response', () => finished.has(first));
    await waitFor('a ticket', () => ticket !== undefined, 3000);
    first.close(clock.now(), 0x100);
    driver.flush();
    const t = ticket;
    if (!t?.transportParameters) throw new Error('no ticket with transport parameters');
    const second = driver.connect(
      { address: '127.0.0.1', port },
      { tls: tls({ session: t.ticket }), earlyTransportParameters: t.transportParameters },
    );
    // Written before the handshake: 0-RTT.
    request(second);
    driver.flush();
    await waitFor('the second response', () => finished.has(second));
    const body = concatBytes(
      ...h3Frames(done.get(second) ?? new Uint8Array(0))
        .filter((f) => f.type === 0)
        .map((f) => f.payload),
    );
    expect(bytesEqual(body, BODY)).toBe(true);
    expect(lines.some((l) => l.startsWith('out 0-RTT') && l.includes('STREAM'))).toBe(true);
    expect(connected[1]).toEqual({ type: 'connected', alpn: 'h3', earlyData: 'accepted' });
    second.close(clock.now(), 0x100);
    driver.flush();
  });
});

describe('gtlsclient with many requests against our server', () => {
  it('30 requests on one connection while we allow 4 streams at a time: MAX_STREAMS keeps it going (RFC 9000 §4.6)', async () => {
    const sock = await loopbackSocket();
    const port = (sock.address() as { port: number }).port;
    const clock = new RealClock();
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => {
      if (e.dir === 'out' && e.summary.includes('MAX_STREAMS')) lines.push(e.summary);
    });
    let answered = 0;
    const endpoint = new QuicEndpoint({
      tlsEpoch: Date.now() - clock.now(),
      trace,
      server: {
        transport: { initialMaxStreamsBidi: 4 },
        tls: (transportParameters) =>
          createQuicTlsServer({
            signer: certificateSigner(creds.leaf),
            alpnProtocols: ['h3'],
            transportParameters,
          }),
      },
    });
    const driver = new QuicDriver(endpoint, sock, clock, {
      onEvent: (conn, e) => {
        if (e.type === 'connected') conn.write(conn.openStream('uni'), CONTROL_STREAM);
        if (e.type === 'stream-data' && e.id % 4 === 0 && e.fin) {
          answered++;
          conn.write(e.id, concatBytes(RESPONSE_HEADERS, h3Frame(0x00, BODY.subarray(0, 5000))), true);
        }
      },
    });
    drivers.push(driver);
    const code = await new Promise<number | null>((resolve) => {
      const c = spawn(
        'gtlsclient',
        [
          '--quiet',
          '--exit-on-all-streams-close',
          '--timeout=10s',
          '-n',
          '30',
          '127.0.0.1',
          String(port),
          `https://127.0.0.1:${port}/`,
        ],
        { stdio: 'ignore' },
      );
      children.push(c);
      const t = setTimeout(() => resolve(-1), 30_000);
      c.once('exit', (x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
    expect(code).toBe(0);
    expect(answered).toBe(30);
    expect(lines.some((l) => l.includes('MAX_STREAMS bidi'))).toBe(true);
  });
});

describe('migration with ngtcp2 (RFC 9000 §9)', () => {
  it('our client moves to a new local port and connection ID mid-transfer; gtlsserver follows; the 300 kB body arrives whole', async () => {
    const port = await freePort();
    const server = spawn('gtlsserver', ['--quiet', '-d', htdocs, '127.0.0.1', String(port), key, cert], {
      stdio: 'ignore',
    });
    children.push(server);
    await new Promise((r) => setTimeout(r, 300));
    const sock = await loopbackSocket();
    const sock2 = await loopbackSocket();
    const clock = new RealClock();
    let response: Uint8Array = new Uint8Array(0);
    let fin = false;
    let requestId = -1;
    let dcidBefore: Uint8Array | undefined;
    let migratedAt = -1;
    const afterMove = { datagramsOnNew: 0 };
    sock2.on('message', () => afterMove.datagramsOnNew++);
    const driver: QuicDriver = new QuicDriver(
      new QuicEndpoint({ tlsEpoch: Date.now() - clock.now() }),
      sock,
      clock,
      {
        onEvent: (c, e) => {
          if (e.type === 'connected') {
            c.write(c.openStream('uni'), CONTROL_STREAM);
            requestId = c.openStream('bidi');
            c.write(requestId, getRequest(`127.0.0.1:${port}`, '/big.bin'), true);
          }
          if (e.type === 'stream-data' && e.id === requestId) {
            response = concatBytes(response, e.data);
            fin ||= e.fin;
            // Mid-transfer, once the handshake is confirmed (§9: not before) and the
            // server's NEW_CONNECTION_IDs gave us one to move with (§9.5).
            if (migratedAt < 0 && !fin && c.isHandshakeConfirmed && response.length > 20_000) {
              migratedAt = response.length;
              dcidBefore = c.remoteCid;
              queueMicrotask(() => driver.rebind(sock2));
            }
          }
        },
      },
    );
    drivers.push(driver);
    const conn: QuicConnection = driver.connect(
      { address: '127.0.0.1', port },
      {
        tls: (transportParameters) =>
          createQuicTlsClient({
            serverName: 'stepwire.test',
            verifier: certificateVerifier({ ca: readFileSync(cert, 'utf8') }),
            alpnProtocols: ['h3'],
            transportParameters,
          }),
      },
    );
    await waitFor(
      'the response',
      () => fin || (conn.state !== 'established' && conn.state !== 'handshaking'),
      30_000,
    );
    expect(fin).toBe(true);
    expect(migratedAt).toBeGreaterThan(0);
    expect(migratedAt).toBeLessThan(BODY.length);
    expect(conn.counters.get('quic.path.client-migrated')).toBe(1);
    expect(bytesEqual(conn.remoteCid, dcidBefore ?? new Uint8Array(0))).toBe(false);
    // gtlsserver answered on the new path: its packets reached the new socket.
    expect(afterMove.datagramsOnNew).toBeGreaterThan(0);
    const body = concatBytes(
      ...h3Frames(response)
        .filter((f) => f.type === 0x00)
        .map((f) => f.payload),
    );
    expect(bytesEqual(body, BODY)).toBe(true);
    conn.close(clock.now(), 0x100, '');
    driver.flush();
    await waitFor('our side to close', () => conn.isDrained, 10_000);
    expect(server.exitCode).toBeNull();
  });

  async function serveOnce() {
    const sock = await loopbackSocket();
    const port = (sock.address() as { port: number }).port;
    const clock = new RealClock();
    const conns: QuicConnection[] = [];
    const peers = new Set<number>();
    sock.on('message', (_m, rinfo) => peers.add(rinfo.port));
    const endpoint = new QuicEndpoint({
      tlsEpoch: Date.now() - clock.now(),
      server: {
        transport: { maxIdleTimeout: 3000 },
        tls: (transportParameters) =>
          createQuicTlsServer({
            signer: certificateSigner(creds.leaf),
            alpnProtocols: ['h3'],
            transportParameters,
          }),
      },
    });
    const driver = new QuicDriver(endpoint, sock, clock, {
      onConnection: (c) => conns.push(c),
      onEvent: (conn, e) => {
        if (e.type === 'connected') conn.write(conn.openStream('uni'), CONTROL_STREAM);
        if (e.type === 'stream-data' && e.id % 4 === 0 && e.fin)
          conn.write(e.id, concatBytes(RESPONSE_HEADERS, h3Frame(0x00, BODY.subarray(0, 100_000))), true);
      },
    });
    drivers.push(driver);
    return { port, conns, peers };
  }

  it.each([
    ['path validation (migration)', ['--change-local-addr=100ms']],
    ['NAT rebinding', ['--change-local-addr=100ms', '--nat-rebinding']],
  ])(
    'gtlsclient changes its local address (%s) before its request; our server follows and answers',
    async (_n, extra) => {
      const s = await serveOnce();
      const client = spawn(
        'gtlsclient',
        [
          '--quiet',
          '--exit-on-all-streams-close',
          '--timeout=10s',
          '--delay-stream=600ms',
          ...extra,
          '127.0.0.1',
          String(s.port),
          `https://127.0.0.1:${s.port}/`,
        ],
        { stdio: 'ignore' },
      );
      children.push(client);
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => resolve(-1), 30_000);
        client.once('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      // It exits 0 once our response (headers, 100 kB, FIN) arrived whole at its new address.
      expect(code).toBe(0);
      expect(s.peers.size).toBe(2);
      const conn = s.conns[0];
      expect(conn?.counters.get('quic.path.migrated')).toBe(1);
      expect(conn?.counters.get('quic.path.validation-failed')).toBe(0);
    },
  );
});
