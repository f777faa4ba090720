/**
 * The client speaks HTTP/2 when the server agrees (RFC 9113 §3.2 ALPN, §3.3 prior knowledge):
 * one session per origin carries every request at once; a server that answers ALPN with
 * http/1.1 gets the HTTP/1.1 pool. Peers: our createHttpServer over our TLS on node:net, and
 * node:http2's secure server (OpenSSL and nghttp2) as an independent one.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as tlsCreateServer } from '@stepwire/tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SERVER_NAME, tlsFixtures } from '../../../../test/support/tls-peers.ts';
import { Agent } from '../../src/client/agent.ts';
import type { ClientResponse } from '../../src/client/connection.ts';
import { fetch } from '../../src/client/fetch.ts';
import { get } from '../../src/client/request.ts';
import type { IncomingMessage, ServerResponse } from '../../src/h1/messages.ts';
import { createServer as createHttpServer, type HttpServer } from '../../src/h1/server.ts';

const fx = tlsFixtures();
const id = fx.server['P-256'];

/** Echoes what arrived: version, method, path, body length and digest. */
const handler = (req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.setHeader('content-type', 'text/plain');
    res.setHeader('x-version', req.httpVersion);
    res.setHeader('x-connection-header', String(req.headers.connection ?? '-'));
    if (req.url === '/trailers') res.addTrailers({ 'x-done': 'yes' });
    res.end(`${req.method} ${req.url} ${body.length} ${createHash('sha256').update(body).digest('hex')}`);
  });
};

const servers: net.Server[] = [];
const apps: HttpServer[] = [];
let h2Port = 0;
let h1Port = 0;
let plainPort = 0;
const accepted = { h2: 0, h1: 0, plain: 0 };

/** createHttpServer behind our TLS offering `alpn`, on node:net; counts TCP connections. */
async function secureServer(alpn: string[], count: keyof typeof accepted): Promise<number> {
  const app = createHttpServer(handler);
  apps.push(app);
  const tls = tlsCreateServer({ cert: id.leaf.certPem, key: id.leaf.keyPem, ALPNProtocols: alpn });
  app.listen(tls, 'secureConnection');
  const srv = net.createServer((s) => {
    accepted[count]++;
    tls.emit('connection', s);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return (srv.address() as net.AddressInfo).port;
}

let nodeServer: http2.Http2SecureServer;
let nodePort = 0;
const nodeSessions = new Set<http2.ServerHttp2Session>();
const hangResets: number[] = [];

beforeAll(async () => {
  h2Port = await secureServer(['h2', 'http/1.1'], 'h2');
  h1Port = await secureServer(['http/1.1'], 'h1');
  const app = createHttpServer(handler);
  apps.push(app);
  const plain = net.createServer((s) => {
    accepted.plain++;
    app.handle(s);
  });
  servers.push(plain);
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
  plainPort = (plain.address() as net.AddressInfo).port;

  nodeServer = http2.createSecureServer({ cert: id.leaf.certPem, key: id.leaf.keyPem });
  nodeServer.on('session', (s) => {
    nodeSessions.add(s);
    s.on('close', () => nodeSessions.delete(s));
  });
  nodeServer.on('stream', (stream, headers) => {
    if (headers[':path'] === '/hang') {
      // Answers the head, never the body: for aborts.
      stream.respond({ ':status': 200 });
      stream.write('part');
      stream.on('close', () => {
        hangResets.push(stream.rstCode);
      });
      return;
    }
    stream.respond({
      ':status': 200,
      'x-alpn': String(stream.session?.alpnProtocol),
      'x-authority': String(headers[':authority']),
    });
    stream.end(`node ${headers[':method']} ${headers[':path']}`);
  });
  await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', () => r()));
  nodePort = (nodeServer.address() as net.AddressInfo).port;
});

afterAll(() => {
  for (const a of apps) {
    a.closeAllConnections();
    a.close();
  }
  for (const s of servers) s.close();
  for (const s of nodeSessions) s.destroy();
  nodeServer.close();
});

const tls = { ca: id.ca.certPem, servername: SERVER_NAME };

function getResponse(url: string, agent: Agent): Promise<{ res: ClientResponse; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const EMPTY = sha(new Uint8Array(0));

describe('client over HTTP/2', () => {
  it('20 concurrent fetches to one https origin share one TCP connection (ALPN h2)', async () => {
    const agent = new Agent({ tls });
    const before = accepted.h2;
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`https://127.0.0.1:${h2Port}/r/${i}`, { agent })),
    );
    const bodies = await Promise.all(responses.map((r) => r.text()));
    for (const [i, r] of responses.entries()) {
      expect(r.status).toBe(200);
      expect(r.headers.get('x-version')).toBe('2.0');
      expect(bodies[i]).toBe(`GET /r/${i} 0 ${EMPTY}`);
    }
    expect(accepted.h2 - before).toBe(1);
    expect(agent.stats()).toMatchObject({ http2Sessions: 1, http2SessionsCreated: 1 });
    // The next request reuses the session: still one connection.
    const { res, body } = await getResponse(`https://127.0.0.1:${h2Port}/trailers`, agent);
    expect(res.httpVersion).toBe('2.0');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain');
    expect(res.trailers).toMatchObject({ 'x-done': 'yes' });
    expect(body).toBe(`GET /trailers 0 ${EMPTY}`);
    expect(accepted.h2 - before).toBe(1);
    agent.destroy();
  });

  it('a server offering only http/1.1 gets the HTTP/1.1 pool', async () => {
    const agent = new Agent({ tls });
    const { res, body } = await getResponse(`https://127.0.0.1:${h1Port}/one`, agent);
    expect(res.httpVersion).toBe('1.1');
    expect(body).toBe(`GET /one 0 ${EMPTY}`);
    const r = await fetch(`https://127.0.0.1:${h1Port}/two`, { agent });
    expect(r.headers.get('x-version')).toBe('1.1');
    expect(await r.text()).toBe(`GET /two 0 ${EMPTY}`);
    expect(agent.stats()).toMatchObject({ http2SessionsCreated: 0 });
    expect(agent.stats().origins[`https://127.0.0.1:${h1Port}`]).toMatchObject({ created: 1, reused: 1 });
    agent.destroy();
  });

  it('http2: false keeps HTTP/1.1 even when the server offers h2', async () => {
    const agent = new Agent({ tls, http2: false });
    const { res } = await getResponse(`https://127.0.0.1:${h2Port}/x`, agent);
    expect(res.httpVersion).toBe('1.1');
    agent.destroy();
  });

  it('a POST body (bigger than the initial flow-control window) arrives intact over h2', async () => {
    const agent = new Agent({ tls });
    const body = new Uint8Array(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 8)) & 0xff;
    const r = await fetch(`https://127.0.0.1:${h2Port}/upload`, {
      agent,
      method: 'POST',
      body,
      headers: { connection: 'keep-alive' },
    });
    expect(r.headers.get('x-version')).toBe('2.0');
    // RFC 9113 §8.2.2: the Connection field is not forwarded over h2.
    expect(r.headers.get('x-connection-header')).toBe('-');
    expect(await r.text()).toBe(`POST /upload ${body.length} ${sha(body)}`);
    // A streamed body too (written in pieces, no Content-Length).
    const parts = [body.subarray(0, 70_000), body.subarray(70_000)];
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        const p = parts.shift();
        if (p) c.enqueue(p);
        else c.close();
      },
    });
    const r2 = await fetch(`https://127.0.0.1:${h2Port}/stream`, {
      agent,
      method: 'PUT',
      body: stream,
      duplex: 'half',
    });
    expect(await r2.text()).toBe(`PUT /stream ${body.length} ${sha(body)}`);
    agent.destroy();
  });

  it('an idle session does not outlive idleTimeout: closed, its timer disarmed, the next request opens another', async () => {
    const agent = new Agent({ tls, idleTimeout: 30 });
    const r = await fetch(`https://127.0.0.1:${h2Port}/idle`, { agent });
    expect(await r.text()).toBe(`GET /idle 0 ${EMPTY}`);
    expect(agent.stats().http2Sessions).toBe(1);
    await vi.waitFor(() => expect(agent.stats()).toMatchObject({ http2Sessions: 0, timersArmed: 0 }));
    const r2 = await fetch(`https://127.0.0.1:${h2Port}/idle2`, { agent });
    expect(await r2.text()).toBe(`GET /idle2 0 ${EMPTY}`);
    expect(agent.stats().http2SessionsCreated).toBe(2);
    agent.destroy();
    expect(agent.stats()).toMatchObject({ http2Sessions: 0, timersArmed: 0 });
  });

  it("http2: 'prior-knowledge' speaks h2c to an http origin", async () => {
    const agent = new Agent({ http2: 'prior-knowledge' });
    const before = accepted.plain;
    const rs = await Promise.all(
      [1, 2, 3].map((i) =>
        fetch(`http://127.0.0.1:${plainPort}/c/${i}`, { agent, method: 'POST', body: `b${i}` }),
      ),
    );
    for (const [i, r] of rs.entries()) {
      expect(r.headers.get('x-version')).toBe('2.0');
      expect(await r.text()).toBe(`POST /c/${i + 1} 2 ${sha(Buffer.from(`b${i + 1}`))}`);
    }
    expect(accepted.plain - before).toBe(1);
    // Without it, the same origin is HTTP/1.1.
    const plainAgent = new Agent();
    const r = await fetch(`http://127.0.0.1:${plainPort}/h1`, { agent: plainAgent });
    expect(r.headers.get('x-version')).toBe('1.1');
    await r.text();
    agent.destroy();
    plainAgent.destroy();
  });

  it('against node:http2 (OpenSSL, nghttp2): h2 by ALPN; a GOAWAY makes the next request open a new session', async () => {
    const agent = new Agent({ tls });
    const r = await fetch(`https://127.0.0.1:${nodePort}/n?q=1`, { agent });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-alpn')).toBe('h2');
    expect(r.headers.get('x-authority')).toBe(`127.0.0.1:${nodePort}`);
    expect(await r.text()).toBe('node GET /n?q=1');
    const { res } = await getResponse(`https://127.0.0.1:${nodePort}/v`, agent);
    expect(res.httpVersion).toBe('2.0');
    expect(agent.stats().http2SessionsCreated).toBe(1);
    for (const s of nodeSessions) s.close();
    await vi.waitFor(() => expect(agent.stats().http2Sessions).toBe(0));
    const r2 = await fetch(`https://127.0.0.1:${nodePort}/again`, { agent });
    expect(await r2.text()).toBe('node GET /again');
    expect(agent.stats().http2SessionsCreated).toBe(2);
    agent.destroy();
  });

  it('aborting one fetch resets only its stream (RST_STREAM CANCEL); the session goes on', async () => {
    const agent = new Agent({ tls });
    const ac = new AbortController();
    const r = await fetch(`https://127.0.0.1:${nodePort}/hang`, { agent, signal: ac.signal });
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    expect(Buffer.from((await reader.read()).value ?? []).toString()).toBe('part');
    ac.abort();
    await expect(reader.read()).rejects.toThrow();
    await vi.waitFor(() => expect(hangResets).toEqual([http2.constants.NGHTTP2_CANCEL]));
    const ok = await fetch(`https://127.0.0.1:${nodePort}/after`, { agent });
    expect(await ok.text()).toBe('node GET /after');
    expect(agent.stats()).toMatchObject({ http2Sessions: 1, http2SessionsCreated: 1 });
    agent.destroy();
  });

  it('against nghttpd over TLS: ALPN h2, ten concurrent fetches on one session, 404 passed through', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-h2-nghttpd-'));
    writeFileSync(join(dir, 'index.html'), 'from nghttpd\n');
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const d = spawn(
      'nghttpd',
      ['-a', '127.0.0.1', '-d', dir, String(port), id.leaf.keyFile, id.leaf.certFile],
      {
        stdio: 'ignore',
      },
    );
    const agent = new Agent({ tls });
    try {
      // Wait (bounded in count) until it listens.
      for (let i = 0; i < 50; i++) {
        const up = await new Promise<boolean>((r) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            r(true);
          });
          s.on('error', () => r(false));
        });
        if (up) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const rs = await Promise.all(
        Array.from({ length: 10 }, () => fetch(`https://127.0.0.1:${port}/index.html`, { agent })),
      );
      for (const r of rs) {
        expect(r.status).toBe(200);
        expect(await r.text()).toBe('from nghttpd\n');
      }
      const { res } = await getResponse(`https://127.0.0.1:${port}/missing`, agent);
      expect(res.httpVersion).toBe('2.0');
      expect(res.statusCode).toBe(404);
      expect(agent.stats()).toMatchObject({ http2SessionsCreated: 1 });
    } finally {
      agent.destroy();
      if (d.pid) process.kill(d.pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
