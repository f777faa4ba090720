import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../../../test/support/peer-process.ts';
import { Agent } from '../../src/client/agent.ts';
import { fetch } from '../../src/client/fetch.ts';
import { WebSocketServer } from '../../src/ws/server.ts';
import { connectWebSocket, type WebSocket } from '../../src/ws/websocket.ts';

/** https and wss from our client (over @stepwire/tls on node:net) to node:https (OpenSSL) on loopback. */
let server: https.Server;
let port = 0;
let certPem = '';

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stepwire-http-tls-'));
  try {
    const made = selfSignedCertificate(dir);
    certPem = readFileSync(made.cert, 'utf8');
    const keyPem = readFileSync(made.key, 'utf8');
    server = https.createServer({ cert: certPem, key: keyPem, minVersion: 'TLSv1.3' }, (req, res) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'x-alpn': String((req.socket as { alpnProtocol?: string }).alpnProtocol),
      });
      res.end(`secure ${req.method} ${req.url}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws: WebSocket) =>
    ws.on('message', (d: Buffer) => ws.send(`tls echo: ${d.toString()}`)),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('our client over our TLS', () => {
  it('fetch https: verifies the certificate, reuses the TLS connection', async () => {
    const agent = new Agent({ tls: { ca: certPem, servername: 'stepwire.test' } });
    for (const path of ['/a', '/b']) {
      const r = await fetch(`https://127.0.0.1:${port}${path}`, { agent });
      expect(await r.text()).toBe(`secure GET ${path}`);
      expect(r.headers.get('x-alpn')).toBe('http/1.1');
    }
    expect(agent.stats().origins[`https://127.0.0.1:${port}`]).toMatchObject({ created: 1, reused: 1 });
    agent.destroy();
  });

  it('an untrusted certificate fails the request', async () => {
    const agent = new Agent({ tls: { servername: 'stepwire.test' } });
    await expect(fetch(`https://127.0.0.1:${port}/`, { agent })).rejects.toThrow(/fetch failed/);
    agent.destroy();
  });

  it('wss: connectWebSocket over our TLS', async () => {
    const ws = connectWebSocket(`wss://127.0.0.1:${port}/`, {
      tls: { ca: certPem, servername: 'stepwire.test' },
    });
    await once(ws, 'open');
    ws.send('over tls');
    const [d] = (await once(ws, 'message')) as [Buffer];
    expect(d.toString()).toBe('tls echo: over tls');
    ws.close(1000);
    const [code] = await once(ws, 'close');
    expect(code).toBe(1000);
  });
});
