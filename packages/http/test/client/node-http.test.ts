import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import zlib from 'node:zlib';
import { TraceBus, type TraceEvent, VirtualClock } from '@stepwire/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/client/agent.ts';
import type { ClientResponse } from '../../src/client/connection.ts';
import { fetch } from '../../src/client/fetch.ts';
import { type ClientRequest, request } from '../../src/client/request.ts';

/** Our client against node:http's server on loopback: an independent HTTP/1.1 implementation. */
let server: http.Server;
let base = '';
let port = 0;
const seen: {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  remotePort: number;
}[] = [];
const sockets = new Set<Socket>();
let concurrent = 0;
let maxConcurrent = 0;
const held: (() => void)[] = [];

beforeAll(async () => {
  server = http.createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const body = Buffer.concat(parts);
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body,
      remotePort: req.socket.remotePort ?? 0,
    });
    const url = new URL(req.url ?? '/', 'http://x');
    switch (url.pathname) {
      case '/echo':
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'x-sha256': createHash('sha256').update(body).digest('hex'),
        });
        res.end(body);
        return;
      case '/chunked':
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('one ');
        res.write('two ');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end('three');
        return;
      case '/json':
        res.writeHead(201, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
        res.end(JSON.stringify({ ok: true, method: req.method }));
        return;
      case '/gzip':
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'text/plain' });
        res.end(zlib.gzipSync(Buffer.from('squeezed '.repeat(100))));
        return;
      case '/redirect':
        res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: '/json' });
        res.end();
        return;
      case '/slow': {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        held.push(() => {
          concurrent--;
          res.end(`slow ${url.searchParams.get('i')}`);
        });
        return;
      }
      case '/close':
        res.writeHead(200, { connection: 'close' });
        res.end('bye');
        return;
      case '/nobody':
        res.writeHead(204);
        res.end();
        return;
      case '/big':
        res.writeHead(200, { 'content-length': String(4 * 1024 * 1024) });
        res.end(Buffer.alloc(4 * 1024 * 1024, 7));
        return;
      default:
        res.writeHead(404);
        res.end('not found');
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

function text(res: ClientResponse): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (s += d));
    res.on('end', () => resolve(s));
    res.on('error', reject);
  });
}

function responseOf(req: ClientRequest): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
}

describe('request() against node:http', () => {
  it('keep-alive: sequential requests reuse one connection', async () => {
    const agent = new Agent({ keepAlive: true });
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const req = request(`${base}/echo?i=${i}`, { method: 'POST', agent });
      req.end(`body ${i}`);
      const res = await responseOf(req);
      expect(res.statusCode).toBe(200);
      expect(await text(res)).toBe(`body ${i}`);
      ports.push(seen.at(-1)?.remotePort ?? -1);
      expect(seen.at(-1)?.headers['content-length']).toBe(String(`body ${i}`.length));
    }
    expect(new Set(ports).size).toBe(1);
    expect(agent.stats().origins[`http://127.0.0.1:${port}`]).toMatchObject({
      created: 1,
      reused: 2,
      idle: 1,
      active: 0,
    });
    agent.destroy();
  });

  it('a chunked request body (writes before end) arrives whole, framed chunked', async () => {
    const agent = new Agent();
    const req = request({ hostname: '127.0.0.1', port, path: '/echo', method: 'PUT', agent });
    const pieces = ['alpha ', 'beta ', 'gamma'];
    for (const p of pieces) req.write(p);
    req.end();
    const res = await responseOf(req);
    const body = await text(res);
    expect(body).toBe(pieces.join(''));
    expect(seen.at(-1)?.headers['transfer-encoding']).toBe('chunked');
    expect(seen.at(-1)?.headers['content-length']).toBeUndefined();
    agent.destroy();
  });

  it('a chunked response with trailers', async () => {
    const agent = new Agent();
    const res = await responseOf(request(`${base}/chunked`, { agent }).end() as ClientRequest);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(await text(res)).toBe('one two three');
    expect(res.trailers).toEqual({ 'x-checksum': 'abc123' });
    agent.destroy();
  });

  it('pool: maxSockets=2 and 10 requests: two connections, eight queued, all answered in order of the queue', async () => {
    const bus = new TraceBus();
    const trace: TraceEvent[] = [];
    bus.on((e) => trace.push(e));
    const agent = new Agent({ maxSockets: 2, trace: bus });
    maxConcurrent = 0;
    const reqs = Array.from(
      { length: 10 },
      (_, i) => request(`${base}/slow?i=${i}`, { agent }).end() as ClientRequest,
    );
    const key = `http://127.0.0.1:${port}`;
    expect(agent.stats().origins[key]).toMatchObject({ active: 2, queued: 8 });
    const bodies = reqs.map(async (r) => text(await responseOf(r)));
    // The server answers one held request at a time, once it holds two (the pool's limit).
    for (let answered = 0; answered < 10; answered++) {
      while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
      expect(concurrent).toBeLessThanOrEqual(2);
      held.shift()?.();
    }
    expect(await Promise.all(bodies)).toEqual(Array.from({ length: 10 }, (_, i) => `slow ${i}`));
    expect(maxConcurrent).toBe(2);
    expect(agent.stats().origins[key]).toMatchObject({
      created: 2,
      reused: 8,
      queuedTotal: 8,
      maxQueued: 8,
      queued: 0,
    });
    expect(trace.filter((e) => e.summary.includes('busy, queued')).length).toBe(8);
    expect(trace.filter((e) => e.summary.includes('to the next queued request')).length).toBe(8);
    expect(trace.filter((e) => e.summary.includes('new connection')).length).toBe(2);
    // Each request and response crosses the trace: out the request line, in the status line.
    expect(
      trace.filter((e) => e.dir === 'out' && /^GET \/slow\?i=\d HTTP\/1\.1 on #\d+$/.test(e.summary)).length,
    ).toBe(10);
    expect(trace.filter((e) => e.dir === 'in' && /^HTTP\/1\.1 200 OK on #\d+$/.test(e.summary)).length).toBe(
      10,
    );
    agent.destroy();
  });

  it('idle close: an idle connection is closed after idleTimeout (virtual time) and its timer is released', async () => {
    const clock = new VirtualClock();
    const agent = new Agent({ idleTimeout: 5000, clock });
    const before = sockets.size;
    const res = await responseOf(
      request(`${base}/echo`, { method: 'POST', agent }).end('x') as ClientRequest,
    );
    await text(res);
    const key = `http://127.0.0.1:${port}`;
    expect(agent.stats()).toMatchObject({ timersArmed: 1, origins: { [key]: { idle: 1 } } });
    clock.advance(4999);
    expect(agent.stats().origins[key]?.idle).toBe(1);
    clock.advance(1);
    expect(agent.stats()).toMatchObject({ timersArmed: 0, origins: { [key]: { idle: 0, idleClosed: 1 } } });
    // The server sees the connection go.
    while (sockets.size > before) await new Promise((r) => setTimeout(r, 5));
    // The next request opens a new connection.
    await text(
      await responseOf(request(`${base}/echo`, { method: 'POST', agent }).end('y') as ClientRequest),
    );
    expect(agent.stats().origins[key]?.created).toBe(2);
    agent.destroy();
  });

  it('Connection: close from the server retires the connection; a server-closed idle connection leaves the pool', async () => {
    const agent = new Agent();
    const key = `http://127.0.0.1:${port}`;
    expect(await text(await responseOf(request(`${base}/close`, { agent }).end() as ClientRequest))).toBe(
      'bye',
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(agent.stats().origins[key]).toMatchObject({ idle: 0, active: 0 });
    await text(
      await responseOf(request(`${base}/echo`, { agent, method: 'POST' }).end('z') as ClientRequest),
    );
    expect(agent.stats().origins[key]?.idle).toBe(1);
    server.closeIdleConnections();
    while ((agent.stats().origins[key]?.idle ?? 0) > 0) await new Promise((r) => setTimeout(r, 5));
    expect(agent.stats().origins[key]?.created).toBe(2);
    agent.destroy();
  });

  it('204 and HEAD have no body; 4 MB streams through with backpressure', async () => {
    const agent = new Agent();
    const r204 = await responseOf(request(`${base}/nobody`, { agent }).end() as ClientRequest);
    expect(r204.statusCode).toBe(204);
    expect(await text(r204)).toBe('');
    const head = await responseOf(request(`${base}/big`, { agent, method: 'HEAD' }).end() as ClientRequest);
    expect(head.headers['content-length']).toBe(String(4 * 1024 * 1024));
    expect(await text(head)).toBe('');
    const big = await responseOf(request(`${base}/big`, { agent }).end() as ClientRequest);
    let n = 0;
    for await (const c of big) {
      n += (c as Buffer).length;
      if (n < 1024 * 1024) await new Promise((r) => setImmediate(r));
    }
    expect(n).toBe(4 * 1024 * 1024);
    // All three on one connection.
    expect(agent.stats().origins[`http://127.0.0.1:${port}`]?.created).toBe(1);
    agent.destroy();
  });

  it('a refused connection is an error with ECONNREFUSED', async () => {
    const agent = new Agent();
    const free = http.createServer();
    free.listen(0, '127.0.0.1');
    await once(free, 'listening');
    const p = (free.address() as AddressInfo).port;
    free.close();
    await once(free, 'close');
    const req = request(`http://127.0.0.1:${p}/`, { agent }).end() as ClientRequest;
    const [err] = (await once(req, 'error')) as [Error & { code?: string }];
    expect(err.code).toBe('ECONNREFUSED');
    agent.destroy();
  });
});

describe('fetch() against node:http', () => {
  it('GET json, status, headers (set-cookie kept apart)', async () => {
    const agent = new Agent();
    const r = await fetch(`${base}/json`, { agent });
    expect(r.status).toBe(201);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await r.json()).toEqual({ ok: true, method: 'GET' });
    agent.destroy();
  });

  it('POST bodies: string, bytes, URLSearchParams, ReadableStream (chunked)', async () => {
    const agent = new Agent();
    const s = await fetch(`${base}/echo`, { method: 'POST', body: 'héllo', agent });
    expect(await s.text()).toBe('héllo');
    expect(seen.at(-1)?.headers['content-type']).toBe('text/plain;charset=UTF-8');
    const b = await fetch(`${base}/echo`, { method: 'POST', body: new Uint8Array([1, 2, 3]), agent });
    expect(new Uint8Array(await b.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
    const f = await fetch(`${base}/echo`, {
      method: 'POST',
      body: new URLSearchParams({ a: '1', b: 'x y' }),
      agent,
    });
    expect(await f.text()).toBe('a=1&b=x+y');
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('streamed '));
        c.enqueue(new TextEncoder().encode('body'));
        c.close();
      },
    });
    const st = await fetch(`${base}/echo`, { method: 'POST', body: stream, duplex: 'half', agent });
    expect(await st.text()).toBe('streamed body');
    expect(seen.at(-1)?.headers['transfer-encoding']).toBe('chunked');
    expect(agent.stats().origins[`http://127.0.0.1:${port}`]?.created).toBe(1);
    agent.destroy();
  });

  it('follows redirects (303 turns POST into GET), or not with redirect: manual', async () => {
    const agent = new Agent();
    const r = await fetch(`${base}/redirect?status=303`, { method: 'POST', body: 'x', agent });
    expect(r.redirected).toBe(true);
    expect(r.url).toBe(`${base}/json`);
    expect(await r.json()).toEqual({ ok: true, method: 'GET' });
    const m = await fetch(`${base}/redirect?status=307`, { redirect: 'manual', agent });
    expect(m.status).toBe(307);
    expect(m.headers.get('location')).toBe('/json');
    agent.destroy();
  });

  it('undoes gzip Content-Encoding', async () => {
    const agent = new Agent();
    const r = await fetch(`${base}/gzip`, { agent });
    expect(await r.text()).toBe('squeezed '.repeat(100));
    expect(r.headers.get('content-encoding')).toBeNull();
    agent.destroy();
  });

  it('abort through the signal rejects with the reason and frees the slot', async () => {
    const agent = new Agent({ maxSockets: 1 });
    const ac = new AbortController();
    const p = fetch(`${base}/slow?i=abort`, { agent, signal: ac.signal });
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    held.shift()?.();
    const r = await fetch(`${base}/json`, { agent });
    expect(r.status).toBe(201);
    await r.text();
    agent.destroy();
  });
});

describe('protocol hand-offs', () => {
  it('CONNECT: a 200 hands the socket to the caller as a tunnel (RFC 9110 §9.3.6), and it leaves the pool', async () => {
    const proxy = http.createServer();
    proxy.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      socket.write(`HTTP/1.1 200 Connection Established\r\nX-Target: ${req.url}\r\n\r\n`);
      if (head.length) socket.write(head);
      socket.pipe(socket);
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const agent = new Agent();
    const req = request({
      hostname: '127.0.0.1',
      port: (proxy.address() as AddressInfo).port,
      method: 'CONNECT',
      path: 'origin.test:443',
      agent,
    });
    req.end();
    const [res, socket] = (await once(req, 'connect')) as [ClientResponse, Socket];
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-target']).toBe('origin.test:443');
    socket.write('through the tunnel');
    const [echo] = (await once(socket, 'data')) as [Buffer];
    expect(echo.toString()).toBe('through the tunnel');
    socket.destroy();
    expect(Object.values(agent.stats().origins)[0]).toMatchObject({ active: 0, idle: 0 });
    agent.destroy();
    proxy.closeAllConnections();
    proxy.close();
  });

  it("Upgrade: a 101 hands the socket to the 'upgrade' listener with the bytes after the head", async () => {
    const up = http.createServer();
    up.on('upgrade', (_req: http.IncomingMessage, socket: Socket) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello after 101',
      );
      socket.pipe(socket);
    });
    up.listen(0, '127.0.0.1');
    await once(up, 'listening');
    const agent = new Agent();
    const req = request({
      hostname: '127.0.0.1',
      port: (up.address() as AddressInfo).port,
      headers: { Connection: 'Upgrade', Upgrade: 'echo' },
      agent,
    });
    req.end();
    const [res, socket, head] = (await once(req, 'upgrade')) as [ClientResponse, Socket, Buffer];
    expect(res.statusCode).toBe(101);
    let seen = head.toString();
    while (!seen.includes('hello after 101'))
      seen += ((await once(socket, 'data')) as [Buffer])[0].toString();
    socket.destroy();
    agent.destroy();
    up.closeAllConnections();
    up.close();
  });
});
