/**
 * Issue 9: one server answers HTTP/1.1 and HTTP/2 on the same routes with the same (req, res)
 * handler — h2 chosen by ALPN over TLS, or by the connection preface in cleartext (h2c with
 * prior knowledge). curl speaks each version to the same port.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createServer as tlsCreateServer } from '@stepwire/tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from '../packages/http/src/h1/messages.ts';
import { createServer as createHttpServer, type HttpServer } from '../packages/http/src/h1/server.ts';
import { SERVER_NAME, tlsFixtures } from './support/tls-peers.ts';

function curl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('curl', ['-s', '--max-time', '20', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const handler = (req: IncomingMessage, res: ServerResponse) => {
  let n = 0;
  req.on('data', (d: Buffer) => (n += d.length));
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.httpVersion} ${req.method} ${req.url} ${n}\n`);
  });
};

let app: HttpServer;
let plain: net.Server;
let secure: net.Server;
let plainPort = 0;
let securePort = 0;
const fx = tlsFixtures();
const id = fx.server['P-256'];

beforeAll(async () => {
  app = createHttpServer(handler);
  plain = net.createServer((s) => app.handle(s));
  const tls = tlsCreateServer({
    cert: id.leaf.certPem,
    key: id.leaf.keyPem,
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  app.listen(tls, 'secureConnection');
  secure = net.createServer((s) => tls.emit('connection', s));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => secure.listen(0, '127.0.0.1', () => r()));
  plainPort = (plain.address() as net.AddressInfo).port;
  securePort = (secure.address() as net.AddressInfo).port;
});

afterAll(async () => {
  app.closeAllConnections();
  app.close();
  plain.close();
  secure.close();
});

describe('one HTTP server for h1 and h2', () => {
  it('cleartext: HTTP/1.1 and h2c with prior knowledge on the same port, same handler', async () => {
    const url = `http://127.0.0.1:${plainPort}/same`;
    const h1 = await curl(['--http1.1', url]);
    expect(h1.stdout, h1.stderr).toBe('1.1 GET /same 0\n');
    const h2 = await curl(['--http2-prior-knowledge', '-d', 'hello', url]);
    expect(h2.stdout, h2.stderr).toBe('2.0 POST /same 5\n');
    expect(app.counters.get('accepted.h2')).toBeGreaterThanOrEqual(1);
  });

  it('TLS: ALPN picks h2 or HTTP/1.1 on the same port, curl verifying our certificate', async () => {
    const common = ['--cacert', id.ca.certFile, '--resolve', `${SERVER_NAME}:${securePort}:127.0.0.1`];
    const url = `https://${SERVER_NAME}:${securePort}/alpn`;
    const h2 = await curl([...common, '--http2', url]);
    expect(h2.stdout, h2.stderr).toBe('2.0 GET /alpn 0\n');
    const h1 = await curl([...common, '--http1.1', url]);
    expect(h1.stdout, h1.stderr).toBe('1.1 GET /alpn 0\n');
  });

  it('a cleartext connection that never speaks is cut at the headers timeout, as HTTP/1.1 would', async () => {
    const quiet = createHttpServer({ timeouts: { headersTimeout: 200 } }, handler);
    const srv = net.createServer((s) => quiet.handle(s));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const c = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
    let got = '';
    c.on('data', (d) => (got += d));
    await new Promise((r) => c.on('close', r));
    expect(got).toMatch(/^HTTP\/1\.1 408 /);
    quiet.close();
    srv.close();
  });

  it('a client that resets before its first byte is counted, and the server keeps serving', async () => {
    const c = net.connect(plainPort, '127.0.0.1');
    await new Promise((r) => c.on('connect', r));
    c.resetAndDestroy();
    await expect.poll(() => app.counters.get('error.before-first-byte')).toBe(1);
    const again = await curl(['--http1.1', `http://127.0.0.1:${plainPort}/after`]);
    expect(again.stdout, again.stderr).toBe('1.1 GET /after 0\n');
  });
});
