import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { fc, test as fcTest } from '@fast-check/vitest';
import { TraceBus, type TraceEvent, VirtualClock } from '@stepwire/wire';
import { afterEach, describe, expect, it } from 'vitest';
import type { HttpServer, HttpServerOptions } from '../../src/h1/index.ts';
import { createServer, type RequestListener } from '../../src/h1/server.ts';
import { arbitraryHttpishBytes } from '../../src/h1/testing.ts';
import { FakeSocket, settle } from './fake-socket.ts';

const servers: HttpServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function listen(
  handler: RequestListener,
  options: HttpServerOptions = {},
): Promise<{ server: HttpServer; port: number }> {
  const server = createServer(options, handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

function request(
  port: number,
  opts: http.RequestOptions & { body?: Buffer | string },
): Promise<{
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  trailers: NodeJS.Dict<string>;
}> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, ...opts }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts),
          trailers: res.trailers,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Send raw bytes, collect everything until the server closes (or `untilBytes` seen). */
function raw(port: number, data: string | Buffer, opts: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    s.on('data', (d) => parts.push(d));
    s.on('close', () => resolve(Buffer.concat(parts).toString('latin1')));
    s.on('error', reject);
    s.write(data);
    if (opts.end) s.end();
  });
}

const hello: RequestListener = (req, res) => {
  if (req.url === '/chunked') {
    res.setHeader('content-type', 'text/plain');
    res.addTrailers({ 'x-checksum': 'abc' });
    res.setHeader('trailer', 'x-checksum');
    res.write('hello ');
    res.end('world');
  } else if (req.url === '/echo') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
  } else if (req.url === '/sha') {
    const h = createHash('sha256');
    req.on('data', (d: Buffer) => h.update(d));
    req.on('end', () => res.end(h.digest('hex')));
  } else {
    res.end(`hello ${req.method} ${req.url} ${req.httpVersion}`);
  }
};

describe('HttpServer over node:net with the node:http client', () => {
  it('GET: end(body) sends Content-Length, keep-alive advertised', async () => {
    const { port } = await listen(hello);
    const r = await request(port, { path: '/x' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('16');
    expect(r.headers.connection).toBe('keep-alive');
    expect(r.headers.date).toBeDefined();
    expect(r.body.toString()).toBe('hello GET /x 1.1');
  });

  it('a header value set with spaces at its ends goes out as OWS around the value (RFC 9112 §5), as node:http sends it', async () => {
    const { port } = await listen((_req, res) => {
      res.setHeader('x-padded', ' padded ');
      res.end('ok');
    });
    const r = await request(port, { path: '/' });
    expect(r.status).toBe(200);
    expect(r.headers['x-padded']).toBe('padded');
    expect(r.body.toString()).toBe('ok');
  });

  it('chunked response with trailers', async () => {
    const { port } = await listen(hello);
    const r = await request(port, { path: '/chunked' });
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.body.toString()).toBe('hello world');
    expect(r.trailers['x-checksum']).toBe('abc');
  });

  it('POST echo of 2 MB with backpressure both ways, and a chunked upload', async () => {
    const { port } = await listen(hello);
    const body = Buffer.alloc(2 * 1024 * 1024, 7);
    const r = await request(port, { path: '/echo', method: 'POST', body });
    expect(r.body.equals(body)).toBe(true);
    const r2 = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/sha', method: 'POST' }, (res) => {
        let s = '';
        res.on('data', (d) => {
          s += d;
        });
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.write('part one, ');
      req.end('part two');
    });
    expect(r2).toBe(createHash('sha256').update('part one, part two').digest('hex'));
  });

  it('one keep-alive connection serves several requests', async () => {
    const { server, port } = await listen(hello);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 5; i++) expect((await request(port, { path: `/${i}`, agent })).status).toBe(200);
    expect(server.stats().accepted).toBe(1);
    expect(server.stats().requests).toBe(5);
    agent.destroy();
  });

  it('pipelined requests on a raw socket are answered in order, a slow first one holding the rest', async () => {
    const { port } = await listen((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('slow'), 50);
      else res.end(req.url ?? '');
    });
    const out = await raw(
      port,
      'GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    const bodies = out
      .split('HTTP/1.1 200 OK')
      .slice(1)
      .map((r) => r.split('\r\n\r\n')[1]);
    expect(bodies).toEqual(['slow', '/2', '/3']);
  });

  it('HEAD: headers of the GET, no body', async () => {
    const { port } = await listen(hello);
    const out = await raw(port, 'HEAD /h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(out).toMatch(/Content-Length: 17\r\n/);
    expect(out.endsWith('\r\n\r\n')).toBe(true);
  });

  it('HTTP/1.0: close-delimited when the length is unknown, keep-alive when asked and known', async () => {
    const { port } = await listen((req, res) => {
      if (req.url === '/stream') {
        res.write('a');
        res.end('b');
      } else res.end('ok');
    });
    const out = await raw(port, 'GET /stream HTTP/1.0\r\n\r\n');
    expect(out).toMatch(/Connection: close\r\n/);
    expect(out).not.toMatch(/chunked/i);
    expect(out.endsWith('\r\n\r\nab')).toBe(true);
    const ka = await raw(port, 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n');
    expect(ka.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(ka).toMatch(/Connection: keep-alive\r\n/);
  });

  it('Expect: 100-continue gets 100 then the final response', async () => {
    const { port } = await listen(hello);
    const s = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (d) => {
      got.push(d);
      if (Buffer.concat(got).toString().includes('100 Continue\r\n\r\n') && !s.writableEnded) s.end('abc');
    });
    s.write(
      'POST /sha HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n',
    );
    await new Promise((r) => s.on('close', r));
    const out = Buffer.concat(got).toString();
    expect(out.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(true);
    expect(out).toContain(createHash('sha256').update('abc').digest('hex'));
  });

  it('an unknown expectation is 417', async () => {
    const { port } = await listen(hello);
    expect(await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 417 /,
    );
  });

  it("'upgrade' gets the socket and the bytes after the head", async () => {
    const { server, port } = await listen(hello);
    server.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
      socket.end(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n${req.headers.upgrade}:${head.toString()}`,
      );
    });
    const out = await raw(
      port,
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly',
    );
    expect(out).toMatch(/^HTTP\/1\.1 101 /);
    expect(out.endsWith('echo:early')).toBe(true);
    expect(server.stats().upgrades).toBe(1);
  });

  it("'connect' gets CONNECT requests and their tunnel", async () => {
    const { server, port } = await listen(hello);
    server.on('connect', (req, socket: net.Socket, head: Buffer) => {
      socket.end(`HTTP/1.1 200 Connection Established\r\n\r\n${req.url} ${head.toString()}`);
    });
    const out = await raw(port, 'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\nxyz');
    expect(out).toBe('HTTP/1.1 200 Connection Established\r\n\r\nexample.test:443 xyz');
  });
});

describe('HttpServer: hostile and broken input', () => {
  const cases: [string, string, number][] = [
    [
      'TE+CL',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    ['TE in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    [
      'TE not ending in chunked',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n',
      400,
    ],
    [
      'duplicate differing CL',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      400,
    ],
    ['bare CR', 'GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n', 400],
    ['whitespace before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n', 400],
    ['Host missing', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['Host duplicate', 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 400],
    ['request-line too long', `GET /${'x'.repeat(10_000)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414],
    [
      'header section too large',
      `GET / HTTP/1.1\r\nHost: a\r\n${'X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(500)}\r\n`,
      431,
    ],
    ['HTTP/2.0 request-line', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
  ];
  for (const [name, bytes, status] of cases) {
    it(`${name}: ${status} and the connection closes; another connection is served meanwhile`, async () => {
      const { server, port } = await listen(hello);
      const agent = new http.Agent({ keepAlive: true });
      const bystander = await request(port, { path: '/before', agent });
      const out = await raw(port, bytes);
      expect(out.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
      expect(out).toMatch(/Connection: close\r\n/);
      expect((await request(port, { path: '/after', agent })).status).toBe(bystander.status);
      expect(server.stats().accepted).toBe(2);
      expect(Object.values(server.stats().parseErrors).reduce((a, b) => a + b, 0)).toBe(1);
      agent.destroy();
    });
  }

  it("'clientError' listeners take over the answer", async () => {
    const { server, port } = await listen(hello);
    let code = '';
    server.on('clientError', (err: { code: string }, socket: net.Socket) => {
      code = err.code;
      socket.end('HTTP/1.1 400 Mine\r\n\r\n');
    });
    expect(await raw(port, 'GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n')).toBe('HTTP/1.1 400 Mine\r\n\r\n');
    expect(code).toBe('HPE_SPACE_BEFORE_COLON');
  });

  fcTest.prop(
    [fc.array(fc.oneof(arbitraryHttpishBytes, fc.uint8Array({ maxLength: 100 })), { maxLength: 6 })],
    { numRuns: 200 },
  )('arbitrary bytes into a connection never throw and never stop the server', async (pieces) => {
    const server = createServer({ clock: new VirtualClock() }, (req, res) => {
      req.resume();
      res.end('ok');
    });
    const s = new FakeSocket();
    server.handle(s);
    for (const p of pieces) {
      s.feed(p);
      await settle();
    }
    s.feedEnd();
    await settle();
    // the server still serves a fresh connection
    const t = new FakeSocket();
    server.handle(t);
    t.feed('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await settle();
    expect(t.output).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    server.closeAllConnections();
  });
});

describe('HttpServer: slowloris timeouts on a virtual clock', () => {
  function setup(timeouts: HttpServerOptions['timeouts']) {
    const clock = new VirtualClock();
    const server = createServer({ clock, timeouts }, (req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const s = new FakeSocket();
    server.handle(s);
    return { clock, server, s };
  }
  const timeouts = { headersTimeout: 1000, requestTimeout: 3000, keepAliveTimeout: 500 };

  it('headers timeout: 408 and close, counted', async () => {
    const { clock, server, s } = setup(timeouts);
    s.feed('GET / HTTP/1.1\r\nHost: a\r\n');
    await settle();
    expect(server.stats().armedTimers).toBe(1);
    clock.advance(999);
    await settle();
    expect(s.output).toBe('');
    clock.advance(1);
    await settle();
    expect(s.output).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\nConnection: close/);
    expect(s.ended).toBe(true);
    expect(server.stats().timeouts.headers).toBe(1);
  });

  it('a connection that never sends a byte hits the headers timeout too', async () => {
    const { clock, server } = setup(timeouts);
    clock.advance(1000);
    await settle();
    expect(server.stats().timeouts.headers).toBe(1);
  });

  it('request timeout: a body that trickles', async () => {
    const { clock, server, s } = setup(timeouts);
    s.feed('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n');
    await settle();
    for (let i = 0; i < 5; i++) {
      clock.advance(500);
      s.feed('x');
      await settle();
    }
    clock.advance(500);
    await settle();
    expect(server.stats().timeouts.request).toBe(1);
    expect(s.output).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('keep-alive timeout closes an idle connection without a response', async () => {
    const { clock, server, s } = setup(timeouts);
    s.feed('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await settle();
    expect(s.output).toMatch(/Keep-Alive: timeout=0\r\n/);
    const before = s.output.length;
    // Not at the advertised 500 ms: node:http's 1,000 ms buffer lets a request sent just
    // before it, or read late by a busy loop, still be answered (keepAliveTimeoutBuffer).
    clock.advance(500);
    await settle();
    expect(s.destroyed).toBe(false);
    clock.advance(999);
    await settle();
    expect(s.destroyed).toBe(false);
    clock.advance(1);
    await settle();
    expect(server.stats().timeouts['keep-alive']).toBe(1);
    expect(s.destroyed).toBe(true);
    expect(s.output.length).toBe(before);
    expect(server.stats().armedTimers).toBe(0);
    expect(server.stats().connections).toBe(0);
  });

  it('no timer is left armed after connections end', async () => {
    const { server, s } = setup(timeouts);
    s.feed('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await settle();
    s.feedEnd();
    s.destroy();
    await settle();
    expect(server.stats().armedTimers).toBe(0);
  });
});

describe('HttpServer: backpressure, half-close, per-socket limits, close', () => {
  it('a handler that does not read pauses the socket: the request buffer stays bounded', async () => {
    let req: import('../../src/h1/index.ts').IncomingMessage | undefined;
    const server = createServer({ clock: new VirtualClock() }, (r) => {
      req = r; // never read
    });
    const s = new FakeSocket();
    server.handle(s);
    s.feed('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n');
    for (let i = 0; i < 64; i++) s.feed(Buffer.alloc(16 * 1024, 1));
    await settle();
    expect(s.isPaused()).toBe(true);
    expect(req?.readableLength ?? 0).toBeLessThanOrEqual(64 * 1024);
    expect(s.readableLength).toBeGreaterThan(900 * 1024);
    // reading drains it all
    let got = 0;
    req?.on('data', (d: Buffer) => {
      got += d.length;
    });
    await new Promise((r) => req?.once('end', r));
    expect(got).toBe(1048576);
    server.closeAllConnections();
  });

  it('pipelined bytes past maxPipelineBuffer pause the socket until the cycle moves on', async () => {
    const held: import('../../src/h1/index.ts').ServerResponse[] = [];
    const server = createServer({ clock: new VirtualClock(), maxPipelineBuffer: 1000 }, (_req, res) => {
      held.push(res);
    });
    const s = new FakeSocket();
    server.handle(s);
    s.feed('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(100));
    await settle();
    expect(held).toHaveLength(1);
    expect(s.isPaused()).toBe(true);
    expect(server.stats().bufferedBytes).toBeGreaterThan(1000);
    for (let i = 0; i < 100; i++) {
      held[i]?.end('x');
      await settle();
    }
    expect(held).toHaveLength(100);
    expect(server.stats().bufferedBytes).toBe(0);
    server.closeAllConnections();
  });

  it('20 000 pipelined requests with a synchronous handler: answered in order, the stack does not grow', async () => {
    const server = createServer({ clock: new VirtualClock(), maxPipelineBuffer: 1 << 20 }, (req, res) =>
      res.end(req.url),
    );
    const s = new FakeSocket();
    server.handle(s);
    let all = '';
    for (let i = 0; i < 20_000; i++) all += `GET /${i} HTTP/1.1\r\nHost: a\r\n\r\n`;
    s.feed(all);
    for (let i = 0; i < 50 && server.stats().responses < 20_000; i++) await settle();
    expect(server.stats().responses).toBe(20_000);
    const bodies = s.output
      .split('\r\n\r\n')
      .filter((_, i) => i > 0)
      .map((p) => p.split('HTTP/1.1')[0]);
    expect(bodies.slice(0, 3)).toEqual(['/0', '/1', '/2']);
    expect(bodies[19_999]).toBe('/19999');
    server.closeAllConnections();
  });

  it('a handler that writes past its Content-Length loses its connection, counted; the server carries on', async () => {
    const { server, port } = await listen((req, res) => {
      if (req.url === '/bad') {
        res.setHeader('content-length', '2');
        res.end('abc');
      } else res.end('fine');
    });
    const out = await raw(port, 'GET /bad HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(out).not.toMatch(/abc/);
    expect(server.stats().counters['local-protocol-errors']).toBe(1);
    expect((await request(port, { path: '/ok' })).body.toString()).toBe('fine');
  });

  it('a client gone mid-exchange: req is aborted, res closes, late writes are harmless', async () => {
    const seen: string[] = [];
    let res: import('../../src/h1/index.ts').ServerResponse | undefined;
    const server = createServer({ clock: new VirtualClock() }, (req, r) => {
      res = r;
      req.on('aborted', () => seen.push('req aborted'));
      r.on('close', () => seen.push('res close'));
      r.write('partial');
    });
    const s = new FakeSocket();
    server.handle(s);
    s.feed('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc');
    await settle();
    s.destroy();
    await settle();
    expect(seen).toEqual(expect.arrayContaining(['req aborted', 'res close']));
    res?.write('more');
    res?.end('end');
    await settle();
    expect(server.stats().connections).toBe(0);
  });

  it('a client that half-closes after its request still gets the response, then the close', async () => {
    const { port } = await listen(hello);
    const out = await raw(port, 'GET /half HTTP/1.1\r\nHost: a\r\n\r\n', { end: true });
    expect(out).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*hello GET \/half 1\.1$/);
  });

  it('maxRequestsPerSocket: the last allowed response says Connection: close', async () => {
    const { port } = await listen(hello, { maxRequestsPerSocket: 2 });
    const out = await raw(
      port,
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n',
    );
    expect(out.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(out.split('HTTP/1.1 200 OK')[2]).toMatch(/Connection: close\r\n/);
  });

  it('close(): idle connections go at once, a busy one after its response, then the callback', async () => {
    let release: (() => void) | undefined;
    const server = createServer({ clock: new VirtualClock() }, (_req, res) => {
      release = () => res.end('done');
    });
    const idle = new FakeSocket();
    const busy = new FakeSocket();
    server.handle(idle);
    server.handle(busy);
    busy.feed('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await settle();
    let closed = false;
    server.close(() => {
      closed = true;
    });
    await settle();
    expect(idle.destroyed).toBe(true);
    expect(closed).toBe(false);
    release?.();
    await settle();
    expect(busy.output).toMatch(/Connection: close\r\n/);
    expect(busy.ended).toBe(true);
    busy.destroy();
    await settle();
    expect(closed).toBe(true);
  });
});

describe('HttpServer: close, idle connections, trace', () => {
  it('closeIdleConnections closes only the idle ones', async () => {
    const server = createServer({ clock: new VirtualClock() }, (_req, res) => {
      if (_req.url === '/hold') return;
      res.end('ok');
    });
    const idle = new FakeSocket();
    const busy = new FakeSocket();
    server.handle(idle);
    server.handle(busy);
    idle.feed('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    busy.feed('GET /hold HTTP/1.1\r\nHost: a\r\n\r\n');
    await settle();
    server.closeIdleConnections();
    await settle();
    expect(idle.destroyed).toBe(true);
    expect(busy.destroyed).toBe(false);
    expect(server.stats().connections).toBe(1);
    server.closeAllConnections();
  });

  it('traces the journey: accept, read, parse, process, respond', async () => {
    const trace = new TraceBus();
    const events: TraceEvent[] = [];
    trace.on((e) => events.push(e));
    const server = createServer({ clock: new VirtualClock(), trace, hostName: 'B' }, (_req, res) =>
      res.end('ok'),
    );
    const s = new FakeSocket();
    server.handle(s);
    s.feed('GET /j HTTP/1.1\r\nHost: a\r\n\r\n');
    await settle();
    const words = events.filter((e) => !e.state).map((e) => e.summary.split(' ')[0]);
    expect(words.slice(0, 5)).toEqual(['accept', 'read', 'parse', 'process', 'respond']);
    // and every state change of both sides, with the rule that made it
    const changes = events.filter((e) => e.state).map((e) => e.summary);
    expect(changes.slice(0, 2)).toEqual(['server IDLE -> SEND_RESPONSE', 'client IDLE -> SEND_BODY']);
    expect(changes).toContain('server SEND_BODY -> DONE');
    expect(events.filter((e) => e.state).every((e) => /^RFC 911[02] §/.test(e.rfc ?? ''))).toBe(true);
    expect(events.every((e) => e.layer === 'http' && e.host === 'B')).toBe(true);
    server.closeAllConnections();
  });
});
