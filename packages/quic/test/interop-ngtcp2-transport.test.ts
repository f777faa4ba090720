import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateVerifier } from '@stepwire/tls';
import { ByteReader, bytesEqual, concatBytes, Prng, RealClock, TraceBus } from '@stepwire/wire';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../../test/support/peer-process.ts';
import type { QuicConnection } from '../src/connection/connection.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { readVarint } from '../src/packet/varint.ts';
import { createQuicTlsClient } from '../src/tls/handshake.ts';

/**
 * Our client against ngtcp2's gtlsserver (node:dgram, loopback) for transport features
 * added after the first interop round: gtlsserver advertising a preferred address (RFC 9000
 * §9.6, `--preferred-ipv4-addr=127.0.0.2:PORT`): after the handshake our client validates
 * 127.0.0.2 with the connection ID of sequence 1 and moves there, the 300 kB body still
 * coming; and our path MTU discovery (RFC 9000 §14.3) probing gtlsserver up to 1452 bytes.
 */

const dir = mkdtempSync(join(tmpdir(), 'stepwire-quic-preferred-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { key, cert } = selfSignedCertificate(dir);
const htdocs = join(dir, 'htdocs');
mkdirSync(htdocs);
const BODY = new Prng(43).bytes(300_000);
writeFileSync(join(htdocs, 'big.bin'), BODY);

const children: ChildProcess[] = [];
const sockets: Socket[] = [];
const drivers: QuicDriver[] = [];
afterEach(() => {
  // Only processes this file started, by their handle (PID).
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of drivers.splice(0)) d.close();
  for (const s of sockets.splice(0)) s.close();
});

async function freePort(address: string): Promise<number> {
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, address, r));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

function varint(v: number): Uint8Array {
  return v < 64 ? Uint8Array.of(v) : Uint8Array.of(0x40 | (v >> 8), v & 0xff);
}
function h3Frame(type: number, payload: Uint8Array): Uint8Array {
  return concatBytes(varint(type), varint(payload.length), payload);
}
/** Control stream with empty SETTINGS (RFC 9114 §6.2.1). */
const CONTROL_STREAM = concatBytes(Uint8Array.of(0x00), h3Frame(0x04, new Uint8Array(0)));
/** GET with static-table :method GET, :scheme https and literal :authority, :path (RFC 9204 §4.5). */
function getRequest(authority: string, path: string): Uint8Array {
  const lit = (i: number, s: string) => {
    const v = new TextEncoder().encode(s);
    return concatBytes(Uint8Array.of(0x50 | i, v.length), v);
  };
  return h3Frame(
    0x01,
    concatBytes(Uint8Array.of(0x00, 0x00, 0xc0 | 17, 0xc0 | 23), lit(0, authority), lit(1, path)),
  );
}
function dataOf(bytes: Uint8Array): Uint8Array {
  const r = new ByteReader(bytes, 'h3');
  const parts: Uint8Array[] = [];
  while (!r.atEnd) {
    const type = readVarint(r, 'type');
    const length = readVarint(r, 'length');
    const payload = r.copy(length, 'payload');
    if (type === 0x00) parts.push(payload);
  }
  return concatBytes(...parts);
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

describe('preferred_address and path MTU discovery with ngtcp2 (RFC 9000 §9.6, §14.3)', () => {
  it("our client moves to gtlsserver's preferred address 127.0.0.2 and the 300 kB body arrives whole", async () => {
    const port = await freePort('127.0.0.1');
    const preferredPort = await freePort('127.0.0.2');
    const server = spawn(
      'gtlsserver',
      [
        '--quiet',
        '-d',
        htdocs,
        `--preferred-ipv4-addr=127.0.0.2:${preferredPort}`,
        '127.0.0.1',
        String(port),
        key,
        cert,
      ],
      { stdio: 'ignore' },
    );
    children.push(server);
    await new Promise((r) => setTimeout(r, 300));
    const sock = createSocket('udp4');
    sockets.push(sock);
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const from = new Set<string>();
    sock.on('message', (_m, rinfo) => from.add(rinfo.address));
    const clock = new RealClock();
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => lines.push(`${e.dir} ${e.summary}`));
    let response: Uint8Array = new Uint8Array(0);
    let fin = false;
    let requestId = -1;
    const driver = new QuicDriver(
      new QuicEndpoint({ tlsEpoch: Date.now() - clock.now(), trace }),
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
    expect(bytesEqual(dataOf(response), BODY)).toBe(true);
    expect(conn.peerParams?.preferred_address?.ipv4Port).toBe(preferredPort);
    expect(conn.counters.get('quic.path.preferred-address')).toBe(1);
    expect(conn.remote).toEqual({ address: '127.0.0.2', port: preferredPort });
    // gtlsserver answered from its preferred address.
    expect(from.has('127.0.0.2')).toBe(true);
    expect(lines.some((l) => l.startsWith('local moved to the server'))).toBe(true);
    conn.close(clock.now(), 0x100, '');
    driver.flush();
    await waitFor('our side to close', () => conn.isDrained, 10_000);
  });

  it('our client probes the path MTU against gtlsserver: its PING+PADDING probe of 1452 bytes is acknowledged and the size raised', async () => {
    const port = await freePort('127.0.0.1');
    const server = spawn('gtlsserver', ['--quiet', '-d', htdocs, '127.0.0.1', String(port), key, cert], {
      stdio: 'ignore',
    });
    children.push(server);
    await new Promise((r) => setTimeout(r, 300));
    const sock = createSocket('udp4');
    sockets.push(sock);
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const sizes: number[] = [];
    const send = sock.send.bind(sock) as (...a: unknown[]) => void;
    (sock as unknown as { send: (...a: unknown[]) => void }).send = (msg: unknown, ...rest: unknown[]) => {
      sizes.push((msg as Uint8Array).byteLength);
      send(msg, ...rest);
    };
    const clock = new RealClock();
    let response: Uint8Array = new Uint8Array(0);
    let fin = false;
    let requestId = -1;
    const driver = new QuicDriver(new QuicEndpoint({ tlsEpoch: Date.now() - clock.now() }), sock, clock, {
      onEvent: (c, e) => {
        if (e.type === 'connected') {
          c.write(c.openStream('uni'), CONTROL_STREAM);
          requestId = c.openStream('bidi');
          c.write(requestId, getRequest(`127.0.0.1:${port}`, '/big.bin'), true);
        }
        if (e.type === 'stream-data' && e.id === requestId) {
          response = concatBytes(response, e.data);
          fin ||= e.fin;
        }
      },
    });
    drivers.push(driver);
    const conn: QuicConnection = driver.connect(
      { address: '127.0.0.1', port },
      {
        transport: { maxUdpPayloadSize: 1452 },
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
    expect(bytesEqual(dataOf(response), BODY)).toBe(true);
    expect(conn.counters.get('quic.pmtu.probe')).toBeGreaterThanOrEqual(1);
    expect(conn.maxDatagramSize).toBe(1452);
    expect(conn.pmtuState).toBe('search-complete');
    expect(Math.max(...sizes)).toBe(1452);
    conn.close(clock.now(), 0x100, '');
    driver.flush();
    await waitFor('our side to close', () => conn.isDrained, 10_000);
  });
});
