import { describe, expect, it } from 'vitest';
import { createServer } from '../../src/h1/server.ts';
import { FakeSocket, settle } from './fake-socket.ts';

/**
 * A cleartext connection's first bytes decide between HTTP/1.1 and h2 with prior knowledge
 * (RFC 9113 §3.4): the HTTP/1.1 driver looks at them itself and hands the socket to the h2
 * side only when they are the preface, however the bytes are split.
 */
const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
// an empty SETTINGS frame (RFC 9113 §6.5): length 0, type 4, flags 0, stream 0
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

function server() {
  return createServer((req, res) => {
    res.end(`${req.httpVersion} ${req.method} ${req.url}\n`);
  });
}

describe('h2 preface sniffing on cleartext connections', () => {
  it('the preface one byte at a time goes to HTTP/2: the server answers with its SETTINGS', async () => {
    const s = server();
    const sock = new FakeSocket();
    s.emit('connection', sock);
    for (const b of Buffer.concat([Buffer.from(PREFACE, 'latin1'), SETTINGS])) {
      sock.feed(Uint8Array.of(b));
      await settle();
    }
    const out = Buffer.concat(sock.written);
    // the first frame an h2 server sends is SETTINGS (type 4 at offset 3, stream 0)
    expect(out.length).toBeGreaterThanOrEqual(9);
    expect(out[3]).toBe(4);
    expect(out.readUInt32BE(5) & 0x7fffffff).toBe(0);
    expect(s.stats().counters['accepted.h2']).toBe(1);
    // counted as HTTP/1.1 neither in 'accepted' nor among the HTTP/1.1 connections
    expect(s.stats().accepted).toBe(0);
    expect(s.stats().connections).toBe(0);
    s.closeAllConnections();
    sock.destroy();
  });

  it('bytes that start like the preface and then differ are HTTP/1.1 (here a bad request: 400)', async () => {
    const s = server();
    const sock = new FakeSocket();
    s.emit('connection', sock);
    sock.feed('PRI * HTTP/1.1\r\n');
    await settle();
    expect(sock.output).toBe('');
    sock.feed('Host: x\r\n\r\n');
    await settle();
    expect(sock.output).toMatch(/^HTTP\/1\.1 400 /);
    expect(s.stats().accepted).toBe(1);
    expect(s.stats().counters['accepted.h2']).toBeUndefined();
  });

  it('a request split in the first bytes is parsed whole, as if read at once', async () => {
    const s = server();
    const sock = new FakeSocket();
    s.emit('connection', sock);
    for (const part of ['G', 'ET /a HT', 'TP/1.1\r\nHost: x\r\n', '\r\n']) {
      sock.feed(part);
      await settle();
    }
    expect(sock.output).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(sock.output.endsWith('1.1 GET /a\n')).toBe(true);
    expect(s.stats().accepted).toBe(1);
    s.closeAllConnections();
  });

  it('part of a preface, then FIN: parsed as the HTTP/1.1 bytes it is (400), not left hanging', async () => {
    const s = server();
    const sock = new FakeSocket();
    s.emit('connection', sock);
    sock.feed('PRI * HT');
    await settle();
    sock.feedEnd();
    await settle();
    expect(sock.output).toMatch(/^HTTP\/1\.1 400 /);
    expect(s.stats().counters['parse-error.truncated']).toBe(1);
  });

  it('a connection that has sent nothing yet is idle: closeIdleConnections() closes it', async () => {
    const s = server();
    const sock = new FakeSocket();
    s.emit('connection', sock);
    expect(s.stats().connections).toBe(1);
    s.closeIdleConnections();
    await settle();
    expect(sock.destroyed).toBe(true);
    expect(s.stats().connections).toBe(0);
  });
});
