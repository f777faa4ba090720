/**
 * The QUIC driver on node:dgram loopback, as the loopback benchmark runs it: `serve`'s
 * HTTP/3 service and `fetch`'s client in one process. Three things the benchmark found:
 * a response larger than the h3 write high-water mark (256 KiB) stalled until the idle
 * timeout because the service never resumed held writes after a flush; every datagram got
 * its own flush (one ACK and one pass over the connections per datagram); and the kernel's
 * default ~208 KiB receive buffer overflowed under a window's burst (netstat -su receive
 * buffer errors), each overflow a loss to repair.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesEqual, RealClock } from '@stepwire/wire';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { h3OverDatagrams } from '../../cli/src/services/h3.ts';
import { connectH3 } from '../../cli/src/services/h3-client.ts';
import { patternChunk } from '../../cli/src/services/http-app.ts';
import { ephemeralServeIdentity } from '../../cli/src/services/https.ts';
import { DEFAULT_SOCKET_BUFFER_SIZE, QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { closeNgtcp2, runGtlsClient } from './support/ngtcp2.ts';

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

const sockets: Socket[] = [];
const dirs: string[] = [];
afterEach(closeNgtcp2);
afterAll(() => {
  for (const s of sockets) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('QUIC driver on node:dgram loopback', () => {
  const identity = ephemeralServeIdentity();

  it('asks for larger socket buffers, and handles a burst of datagrams before one flush', async () => {
    const sock = await bound();
    sockets.push(sock);
    const before = sock.getRecvBufferSize();
    const driver = new QuicDriver(new QuicEndpoint({}), sock, new RealClock());
    // Linux doubles what it grants and caps the request at net.core.rmem_max: above the default either way.
    expect(sock.getRecvBufferSize()).toBeGreaterThan(before);
    expect(DEFAULT_SOCKET_BUFFER_SIZE).toBe(4 * 1024 * 1024);
    // Three datagrams queued before the event loop polls: loopback delivers inside sendto,
    // and libuv reads a readable socket's queue in one poll phase.
    const peer = await bound();
    sockets.push(peer);
    const port = sock.address().port;
    const junk = new Uint8Array(40).fill(0x40);
    let sent = 0;
    await new Promise<void>((r) => {
      for (let i = 0; i < 3; i++)
        peer.send(junk, port, '127.0.0.1', () => {
          if (++sent === 3) r();
        });
    });
    await new Promise((r) => setTimeout(r, 50));
    const stats = driver.stats();
    expect(stats.datagramsIn).toBe(3);
    expect(stats.receiveBursts).toBe(1);
    driver.close();
  });

  it('a sans-batching option keeps one flush per datagram', async () => {
    const sock = await bound();
    sockets.push(sock);
    const driver = new QuicDriver(new QuicEndpoint({}), sock, new RealClock(), { batchReceive: false });
    const peer = await bound();
    sockets.push(peer);
    await new Promise<void>((r) =>
      peer.send(new Uint8Array(40), sock.address().port, '127.0.0.1', () => r()),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(driver.stats().datagramsIn).toBe(1);
    expect(driver.stats().receiveBursts).toBe(0);
    driver.close();
  });

  it('our client downloads 2 MB from our HTTP/3 service (8× the write high-water mark), intact', async () => {
    const udp = await bound();
    sockets.push(udp);
    const port = udp.address().port;
    const service = h3OverDatagrams({ socket: udp, clock: new RealClock(), port, identity });
    const sock = await bound();
    sockets.push(sock);
    const h3 = await connectH3({
      socket: sock,
      clock: new RealClock(),
      remote: { address: '127.0.0.1', port },
      serverName: 'stepwire.test',
      authority: `127.0.0.1:${port}`,
      ca: identity.caPem,
    });
    const n = 2_000_000;
    const res = await h3.client.request({ ':path': `/bytes/${n}` });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(n);
    expect(bytesEqual(res.body, patternChunk(0, n))).toBe(true);
    // The client's driver saw bursts: fewer flushes after receiving than datagrams received.
    const cs = h3.driver.stats();
    expect(Number(cs.receiveBursts)).toBeGreaterThan(0);
    expect(Number(cs.receiveBursts)).toBeLessThan(Number(cs.datagramsIn));
    h3.close();
    service.close();
  }, 60_000);

  it('gtlsclient downloads 2 MB from our HTTP/3 service, intact', async () => {
    const udp = await bound();
    sockets.push(udp);
    const port = udp.address().port;
    const service = h3OverDatagrams({ socket: udp, clock: new RealClock(), port, identity });
    const dir = mkdtempSync(join(tmpdir(), 'sw-perf-loop-'));
    dirs.push(dir);
    const n = 2_000_000;
    const { code } = await runGtlsClient(port, {
      args: [`--download=${dir}`],
      paths: [`/bytes/${n}`],
      timeout: '30s',
      waitMs: 50_000,
    });
    expect(code).toBe(0);
    expect(statSync(join(dir, String(n))).size).toBe(n);
    service.close();
  }, 60_000);
});
