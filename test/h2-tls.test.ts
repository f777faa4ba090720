/**
 * h2 over our TLS 1.3 (packages/tls) with ALPN on node:net loopback: curl --http2 and
 * nghttp against our server (curl verifies our certificate with the fixture CA), and our
 * client over our TLS against node:http2's secure server.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { connect as tlsConnect, createServer as tlsCreateServer } from '@stepwire/tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from '../packages/http/src/h1/messages.ts';
import { createServer as createHttpServer } from '../packages/http/src/h1/server.ts';
import {
  connect,
  createCompatHttp2Server,
  createServer,
  type Http2Server,
} from '../packages/http/src/h2/internal.ts';
import { runPeer } from './support/peer-process.ts';
import { SERVER_NAME, tlsFixtures } from './support/tls-peers.ts';

const fx = tlsFixtures();
const id = fx.server['P-256'];
let h2: Http2Server;
let tcp: net.Server;
let port = 0;
const alpnSeen: (string | false | null)[] = [];

beforeAll(async () => {
  h2 = createServer({}, (stream, headers) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(`h2 over stepwire TLS ${headers[':path']}\n`);
  });
  const tls = tlsCreateServer(
    { cert: id.leaf.certPem, key: id.leaf.keyPem, ALPNProtocols: ['h2'] },
    (sock) => {
      alpnSeen.push(sock.alpnProtocol);
      if (sock.alpnProtocol === 'h2') h2.handle(sock);
      else sock.destroy();
    },
  );
  tcp = net.createServer((s) => tls.emit('connection', s));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  port = (tcp.address() as net.AddressInfo).port;
});

afterAll(() => {
  for (const s of h2.sessions) s.destroy();
  tcp.close();
});

describe('h2 over our TLS with ALPN', () => {
  it('curl --http2 verifies our certificate and speaks h2 after ALPN', async () => {
    const r = await runPeer('curl', [
      '-s',
      '--http2',
      '--cacert',
      id.ca.certFile,
      '--resolve',
      `${SERVER_NAME}:${port}:127.0.0.1`,
      '-w',
      '|%{http_version}|%{http_code}',
      `https://${SERVER_NAME}:${port}/curl`,
    ]);
    expect(r.stdout, r.stderr).toBe('h2 over stepwire TLS /curl\n|2|200');
    expect(alpnSeen).toContain('h2');
  });

  it('nghttp over TLS negotiates h2 and completes', async () => {
    const r = await runPeer('nghttp', ['-v', `https://127.0.0.1:${port}/nghttp`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/The negotiated protocol: h2/);
    expect(r.stdout).toMatch(/h2 over stepwire TLS \/nghttp/);
  });

  it('one TLS port, one (req, res) handler: ALPN picks h2 or HTTP/1.1 (curl both ways)', async () => {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => res.end(`${req.httpVersion} ${req.url}\n`));
    };
    const h1 = createHttpServer(handler);
    const h2c = createCompatHttp2Server(handler);
    const tls = tlsCreateServer(
      { cert: id.leaf.certPem, key: id.leaf.keyPem, ALPNProtocols: ['h2', 'http/1.1'] },
      (sock) => (sock.alpnProtocol === 'h2' ? h2c.handle(sock) : h1.handle(sock)),
    );
    const server = net.createServer((s) => tls.emit('connection', s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const p = (server.address() as net.AddressInfo).port;
    try {
      const common = ['-s', '--cacert', id.ca.certFile, '--resolve', `${SERVER_NAME}:${p}:127.0.0.1`];
      const a = await runPeer('curl', [...common, '--http2', `https://${SERVER_NAME}:${p}/alpn`]);
      expect(a.stdout, a.stderr).toBe('2.0 /alpn\n');
      const b = await runPeer('curl', [...common, '--http1.1', `https://${SERVER_NAME}:${p}/alpn`]);
      expect(b.stdout, b.stderr).toBe('1.1 /alpn\n');
    } finally {
      for (const s of h2c.sessions) s.destroy();
      server.close();
    }
  });

  it('our client over our TLS against node:http2 createSecureServer', async () => {
    const node = http2.createSecureServer({ cert: id.leaf.certPem, key: id.leaf.keyPem });
    node.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`node says ${headers[':path']}`);
    });
    await new Promise<void>((r) => node.listen(0, '127.0.0.1', () => r()));
    const p = (node.address() as net.AddressInfo).port;
    try {
      const session = connect(`https://${SERVER_NAME}:${p}`, {
        createConnection: () =>
          tlsConnect({
            socket: net.connect(p, '127.0.0.1'),
            servername: SERVER_NAME,
            ca: id.ca.certPem,
            ALPNProtocols: ['h2'],
          }),
      });
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/over-our-tls' });
        let b = '';
        req.on('data', (c: Buffer) => {
          b += c;
        });
        req.on('end', () => resolve(b));
        req.on('error', reject);
      });
      expect(body).toBe('node says /over-our-tls');
      await new Promise<void>((r) => session.close(r));
    } finally {
      node.close();
    }
  });
});
