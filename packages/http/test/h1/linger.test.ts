import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { createServer } from '../../src/h1/server.ts';
import { FakeSocket, settle } from './fake-socket.ts';

/**
 * RFC 9112 §9.6: after a response that ends the connection the server half-closes, reads
 * until the client's FIN, then closes — and a client that never sends its FIN does not
 * keep the socket: it is dropped after the linger time (5 s), counted. When the client
 * itself said close (it sends no further request), the socket goes once the response is
 * flushed, as node:http's.
 */
function setup() {
  const clock = new VirtualClock();
  // the server ends each connection after its response; the client expects keep-alive
  const server = createServer({ clock }, (_req, res) => {
    res.setHeader('Connection', 'close');
    res.end('bye');
  });
  const sock = new FakeSocket();
  server.emit('connection', sock);
  return { clock, server, sock };
}

describe('closing after a Connection: close response', () => {
  it('a client that never closes is dropped after the linger time, counted; no timer left', async () => {
    const { clock, server, sock } = setup();
    sock.feed('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await settle();
    expect(sock.output).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: close\r\n/);
    expect(sock.output.endsWith('\r\n\r\nbye')).toBe(true);
    expect(sock.ended).toBe(true);
    expect(sock.destroyed).toBe(false);
    expect(server.stats().armedTimers).toBe(1);
    clock.advance(4999);
    expect(sock.destroyed).toBe(false);
    clock.advance(1);
    await settle();
    expect(sock.destroyed).toBe(true);
    expect(server.stats().counters['linger-timeout']).toBe(1);
    expect(server.stats().armedTimers).toBe(0);
    expect(server.stats().connections).toBe(0);
  });

  it('bytes the client sends after the close are read and dropped while we linger, not parsed', async () => {
    const { clock, server, sock } = setup();
    sock.feed('GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /again HTTP/1.1\r\nHost: x\r\n\r\n');
    await settle();
    expect(server.stats().requests).toBe(1);
    sock.feed('more bytes');
    await settle();
    expect(server.stats().requests).toBe(1);
    expect(server.stats().bufferedBytes).toBe(0);
    clock.advance(5000);
    await settle();
    expect(sock.destroyed).toBe(true);
  });

  it('a client that closes in time: closed without the linger timeout', async () => {
    const { clock, server, sock } = setup();
    sock.feed('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await settle();
    sock.feedEnd();
    await settle();
    expect(sock.destroyed).toBe(true);
    expect(server.stats().armedTimers).toBe(0);
    clock.advance(10_000);
    expect(server.stats().counters['linger-timeout']).toBeUndefined();
  });

  it('the client said Connection: close: the socket goes once the response is flushed, no linger', async () => {
    const clock = new VirtualClock();
    const server = createServer({ clock }, (_req, res) => res.end('bye'));
    const sock = new FakeSocket();
    server.emit('connection', sock);
    sock.feed('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await settle();
    expect(sock.output.endsWith('\r\n\r\nbye')).toBe(true);
    expect(sock.ended).toBe(true);
    expect(sock.destroyed).toBe(true);
    expect(server.stats().armedTimers).toBe(0);
    expect(server.stats().connections).toBe(0);
    expect(server.stats().counters['linger-timeout']).toBeUndefined();
  });
});
